//! What services build and stream (issue 18), against the real engine: an
//! image built from `dockerfile_path` with a file beside the Dockerfile
//! copied in, `logs?follow=true` streaming a line written after the
//! request began, and `networks` refused in host network mode (the only
//! mode this machine allows: no bridge) with a clear 422.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::admin_api::assert_error;
use crate::harness::docker::Engine;
use crate::harness::Redis;
use crate::services::{httpd, start, wait_status, DOMAIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_service_is_built_by_the_engine_with_the_file_beside_it() {
    let dir = std::env::temp_dir().join(format!("pc-build-{}-{:x}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(
        dir.join("app/Dockerfile"),
        "FROM busybox:latest\nCOPY greeting.txt /www/index.html\n",
    )
    .unwrap();
    std::fs::write(dir.join("app/greeting.txt"), "built-from-dockerfile\n").unwrap();
    let redis = Redis::start();
    let p = start(&redis, &[("DOCKER_BUILD_DIR", dir.to_str().unwrap())]).await;
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/",
            Some(json!({
                "service_name": "built",
                "dockerfile_path": "app/Dockerfile",
                "command": ["/bin/busybox", "sh", "-c", "exec /bin/busybox httpd -f -p $BIND_ADDRESS:$PORT -h /www"],
                "auto_proxy": true,
            })),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["image"], "portcullis-built/built:latest", "{v}");
    let body = wait_status(&p, &format!("built.{DOMAIN}"), "/", 200).await;
    assert_eq!(body.as_str().map(str::trim), Some("built-from-dockerfile"));
    let inspected = Engine::shared().docker(&["image", "inspect", "--format", "{{.Id}}", "portcullis-built/built:latest"]);
    assert!(inspected.trim().starts_with("sha256:"), "{inspected}");
    // A Dockerfile that is not there is a 422 naming the field.
    let got = p
        .admin(
            "POST",
            "/api/v1/services/",
            Some(json!({"service_name": "unbuilt", "dockerfile_path": "nowhere/Dockerfile"})),
        )
        .await;
    assert_error(&got, 422, Some("dockerfile_path"));
    let (s, v) = p.admin("DELETE", "/api/v1/services/built", None).await;
    assert_eq!(s, 200, "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_logs_streams_a_line_written_after_the_request_began() {
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let ticker = "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done";
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/",
            Some(json!({
                "service_name": "ticker",
                "image": "busybox:latest",
                "command": ["/bin/busybox", "sh", "-c", ticker],
            })),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let tick_of = |line: &str| line.trim().strip_prefix("tick-").and_then(|n| n.parse::<u64>().ok());
    // The last tick written before the stream starts.
    let (_, v) = p.admin("GET", "/api/v1/services/ticker/logs?lines=5", None).await;
    let before = v["logs"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter_map(tick_of)
        .max()
        .unwrap_or(0);

    let r = p
        .client
        .get(p.api("/api/v1/services/ticker/logs?follow=true&lines=0"))
        .bearer_auth(&p.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"),
        "{:?}",
        r.headers()
    );
    let mut stream = r.bytes_stream();
    let mut seen = String::new();
    let newer = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if let Some(n) = seen.lines().filter_map(tick_of).find(|n| *n > before) {
                return Some(n);
            }
        }
        None
    })
    .await;
    assert!(
        matches!(newer, Ok(Some(n)) if n > before),
        "no line after tick-{before} in 30 s: {newer:?} {seen:?}"
    );
    drop(stream);
    let (s, v) = p.admin("DELETE", "/api/v1/services/ticker", None).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_are_refused_in_host_network_mode() {
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let got = p
        .admin(
            "POST",
            "/api/v1/services/",
            Some(httpd("netted", json!({"networks": ["frontend", "backend"]}))),
        )
        .await;
    assert_error(&got, 422, Some("networks"));
    assert!(
        got.1["message"].as_str().unwrap_or_default().contains("host network mode"),
        "{}",
        got.1
    );
    let (s, v) = p.admin("GET", "/api/v1/services/netted", None).await;
    assert_eq!(s, 404, "nothing was created: {v}");
}
