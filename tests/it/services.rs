//! Docker services (issue 18) against a real engine (`harness::docker`):
//! a busybox `httpd` created through the API is reached through the data
//! plane, answers 503 with a clear body while stopped or dead, and leaves
//! nothing behind when deleted; orphans are cleaned up; limits are visible
//! in `docker inspect`.
//!
//! Test configuration: `DOCKER_NETWORK_MODE=host`. This machine allows host
//! networking only (no bridge, no iptables), so the bridge mode, where
//! ports are published per `port_configs`, is exercised by unit tests of
//! the container spec, not here.

use std::time::Duration;

use serde_json::{json, Value};

use crate::admin_api::assert_error;
use crate::harness::docker::Engine;
use crate::harness::{eventually, get_as, Portcullis, Redis};

/// Base domain of service proxies in these tests.
pub const DOMAIN: &str = "svc.test";

/// Starts Portcullis on `redis` with the shared engine in host mode.
pub async fn start(redis: &Redis, extra: &[(&str, &str)]) -> Portcullis {
    let engine = Engine::shared();
    let mut env: Vec<(&str, &str)> = vec![
        ("DOCKER_HOST", engine.host.as_str()),
        ("DOCKER_NETWORK_MODE", "host"),
        ("BASE_DOMAIN", DOMAIN),
    ];
    env.extend_from_slice(extra);
    Portcullis::start_with(redis, &env).await
}

/// A busybox httpd service: serves `/www` on `$BIND_ADDRESS:$PORT` (host
/// mode) after printing `started-{name}` and writing `index.html` and `from-route`.
pub fn httpd(name: &str, extra: Value) -> Value {
    let script = format!(
        "echo started-{name}; echo hello-{name} > /www/index.html; echo routed-{name} > /www/from-route; \
         exec /bin/busybox httpd -f -p $BIND_ADDRESS:$PORT -h /www"
    );
    let mut body = json!({
        "service_name": name,
        "image": "busybox:latest",
        "command": ["/bin/busybox", "sh", "-c", script],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

/// Waits until `GET /` as `host` answers `status`; returns the body.
pub async fn wait_status(p: &Portcullis, host: &str, path: &str, status: u16) -> Value {
    let got = eventually(Duration::from_secs(20), || async {
        let (s, _, b) = get_as(p, host, path, &[]).await;
        (s == status).then_some(b)
    })
    .await;
    match got {
        Some(b) => b,
        None => {
            let (s, _, b) = get_as(p, host, path, &[]).await;
            panic!("{host}{path} never answered {status}; last {s} {b}; log:\n{}", p.proc.log_text())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_httpd_service_runs_behind_its_proxy_stops_with_503_and_leaves_nothing_on_delete() {
    let engine = Engine::shared();
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let host = format!("web1.{DOMAIN}");

    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/",
            Some(httpd("web1", json!({"auto_proxy": true, "memory_limit": "64m", "cpu_limit": 0.5}))),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "running", "{v}");
    assert_eq!(v["service_type"], "docker");
    assert_eq!(v["network_mode"], "host");
    assert_eq!(v["proxy"]["hostname"], host.as_str(), "{v}");
    let port = v["port"].as_u64().unwrap();
    assert!((11000..=65535).contains(&port), "allocated from the exposed range: {port}");
    assert_eq!(
        v["environment"].get("PORT"),
        None,
        "PORT is passed to the container, not stored as user env"
    );
    assert_eq!(v["target_url"], format!("http://127.0.0.1:{port}"));

    // Reached through the data plane.
    let body = wait_status(&p, &host, "/", 200).await;
    assert_eq!(body.as_str().map(str::trim), Some("hello-web1"));

    // Limits and labels are on the container.
    let inspect: Value = serde_json::from_str(&engine.docker(&["inspect", "web1"])).unwrap();
    let hc = &inspect[0]["HostConfig"];
    assert_eq!(hc["Memory"], 64 * 1024 * 1024, "{hc}");
    assert_eq!(hc["NanoCpus"], 500_000_000u64, "{hc}");
    assert!(hc["PidsLimit"].as_i64().is_some_and(|n| n > 0), "{hc}");
    assert_eq!(hc["Privileged"], false);
    assert_eq!(hc["NetworkMode"], "host");
    let labels = &inspect[0]["Config"]["Labels"];
    assert_eq!(labels["portcullis.service"], "web1");
    assert!(labels["portcullis.owner"].as_str().unwrap().starts_with("sha256:"), "{labels}");
    let env = inspect[0]["Config"]["Env"].to_string();
    assert!(env.contains(&format!("PORT={port}")), "{env}");

    // Stop: the proxy answers 503 with a clear body.
    let (s, v) = p.admin("POST", "/api/v1/services/web1/stop", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "exited", "{v}");
    let body = wait_status(&p, &host, "/", 503).await;
    let text = body.as_str().unwrap_or_default();
    assert!(text.contains("service web1 is not running"), "{text}");

    // Start: 200 again.
    let (s, v) = p.admin("POST", "/api/v1/services/web1/start", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "running", "{v}");
    wait_status(&p, &host, "/", 200).await;

    // Logs and stats are real.
    let (s, v) = p.admin("GET", "/api/v1/services/web1/logs?lines=50&timestamps=true", None).await;
    assert_eq!(s, 200, "{v}");
    let logs = v["logs"].as_str().unwrap();
    assert_eq!(logs.matches("started-web1").count(), 2, "one line per start: {logs}");
    assert!(logs.starts_with("20"), "timestamps first: {logs}");
    let (s, v) = p.admin("GET", "/api/v1/services/web1/stats", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["memory_limit_bytes"], 64 * 1024 * 1024, "{v}");
    assert!(v["memory_usage_bytes"].as_u64().is_some_and(|m| m > 0), "{v}");
    assert!(v["pids"].as_u64().is_some_and(|n| n >= 1), "{v}");

    // A `service` route target resolves to the Docker service.
    p.create_proxy(json!({"hostname": "front.test", "target_url": "http://127.0.0.1:9", "enable_https": false}))
        .await;
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(json!({"path_pattern": "/from-route", "target_type": "service", "target_value": "web1", "priority": 50})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let body = wait_status(&p, "front.test", "/from-route", 200).await;
    assert_eq!(body.as_str().map(str::trim), Some("routed-web1"));

    // Delete: container, port and proxy are gone.
    let (s, v) = p.admin("DELETE", "/api/v1/services/web1", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["released_ports"], json!([port]), "{v}");
    assert_eq!(v["deleted_proxies"], json!([host]), "{v}");
    assert!(!engine.try_docker(&["inspect", "web1"]), "the container is removed");
    let (s, _) = p.admin("GET", &format!("/api/v1/proxy/targets/{host}"), None).await;
    assert_eq!(s, 404);
    let (s, v) = p.admin("POST", "/api/v1/services/ports/check", Some(json!({"port": port}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["available"], true, "the port is released: {v}");
    let (s, v) = p.admin("GET", "/api/v1/services/ports", None).await;
    assert_eq!((s, v), (200, json!([])));
    assert_error(&p.admin("GET", "/api/v1/services/web1", None).await, 404, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_dies_is_reported_from_events_and_its_proxy_answers_503() {
    let engine = Engine::shared();
    let redis = Redis::start();
    // The periodic reconcile is far away: only the engine's events can be seen in time.
    let p = start(&redis, &[("RECONCILE_INTERVAL", "600")]).await;
    let host = format!("dies.{DOMAIN}");
    let (s, v) = p
        .admin("POST", "/api/v1/services/", Some(httpd("dies", json!({"auto_proxy": true}))))
        .await;
    assert_eq!(s, 201, "{v}");
    wait_status(&p, &host, "/", 200).await;

    engine.docker(&["kill", "dies"]);
    let body = wait_status(&p, &host, "/", 503).await;
    assert!(body.as_str().unwrap_or_default().contains("service dies is not running"), "{body}");
    let (s, v) = p.admin("GET", "/api/v1/services/dies", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "exited", "{v}");

    // Started behind the API's back: the event brings it back.
    engine.docker(&["start", "dies"]);
    wait_status(&p, &host, "/", 200).await;
    let (s, _) = p.admin("DELETE", "/api/v1/services/dies", None).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policy_on_failure_restarts_a_crashing_container() {
    let engine = Engine::shared();
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/",
            Some(json!({
                "service_name": "crashy", "image": "busybox:latest", "restart_policy": "on-failure:5",
                "command": ["/bin/busybox", "sh", "-c", "echo up; sleep 1; exit 3"],
            })),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let inspect: Value = serde_json::from_str(&engine.docker(&["inspect", "crashy"])).unwrap();
    assert_eq!(
        inspect[0]["HostConfig"]["RestartPolicy"],
        json!({"Name": "on-failure", "MaximumRetryCount": 5})
    );
    let restarted = eventually(Duration::from_secs(30), || async {
        let i: Value = serde_json::from_str(&engine.docker(&["inspect", "crashy"])).unwrap();
        (i[0]["RestartCount"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    assert!(restarted.is_some(), "the engine restarted it per its policy");
    let (s, v) = p.admin("DELETE", "/api/v1/services/crashy", None).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_an_orphan_container_made_behind_the_apis_back() {
    let engine = Engine::shared();
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    // Containers carry the id of their store: cleanup never takes another
    // deployment's (or a test running beside this one) for an orphan.
    let (s, v) = p.admin("POST", "/api/v1/services/cleanup", None).await;
    assert_eq!(s, 200, "{v}");
    let store_id = redis.cli(&["GET", "internal:service:store-id"]).trim().to_string();
    assert_eq!(store_id.len(), 16, "{store_id}");
    let other = engine
        .docker(&[
            "run",
            "-d",
            "--network",
            "host",
            "--label",
            "portcullis.service=notmine1",
            "--label",
            "portcullis.store=someone-else",
            "--name",
            "notmine1",
            "busybox:latest",
            "/bin/busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let id = engine
        .docker(&[
            "run",
            "-d",
            "--network",
            "host",
            "--label",
            "portcullis.service=orphan1",
            "--label",
            &format!("portcullis.store={store_id}"),
            "--name",
            "orphan1",
            "busybox:latest",
            "/bin/busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let (s, v) = p.admin("POST", "/api/v1/services/cleanup", None).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["removed_containers"].as_array().unwrap().iter().any(|c| c == id.as_str()), "{v}");
    assert!(!engine.try_docker(&["inspect", "orphan1"]), "the orphan is gone");
    assert!(
        engine.try_docker(&["inspect", "notmine1"]),
        "another store's container is left alone"
    );
    engine.docker(&["rm", "-f", &other]);
    // A user may not clean up every owner's containers.
    let user = crate::admin_api::make_token(&p, "cleaner", "user").await;
    assert_error(&p.call("POST", "/api/v1/services/cleanup", Some(&user), None).await, 403, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pull_and_a_disallowed_image_are_clear_422s() {
    let redis = Redis::start();
    let p = start(&redis, &[("DOCKER_IMAGE_ALLOWLIST", "busybox*,127.0.0.1:9/*")]).await;
    // A registry on a closed loopback port: the pull fails without leaving the machine.
    let got = p
        .admin(
            "POST",
            "/api/v1/services/",
            Some(json!({"service_name": "nopull", "image": "127.0.0.1:9/none/missing:1"})),
        )
        .await;
    assert_error(&got, 422, Some("image"));
    assert!(got.1["message"].as_str().unwrap().contains("cannot pull image"), "{}", got.1);
    let got = p
        .admin(
            "POST",
            "/api/v1/services/",
            Some(json!({"service_name": "nginx1", "image": "nginx:latest"})),
        )
        .await;
    assert_error(&got, 422, Some("image"));
    assert!(got.1["message"].as_str().unwrap().contains("DOCKER_IMAGE_ALLOWLIST"), "{}", got.1);
    // Nothing was kept: no record, no port claim.
    let (s, v) = p.admin("GET", "/api/v1/services/", None).await;
    assert_eq!((s, v), (200, json!([])));
    let (s, v) = p.admin("GET", "/api/v1/services/ports", None).await;
    assert_eq!((s, v), (200, json!([])));
}
