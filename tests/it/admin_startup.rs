//! Start-up (issue 2): one-line failures for bad config and unreachable
//! Redis, and the default `localhost` proxy that survives user edits.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::admin_api::{sha, start};
use crate::harness::{eventually, refused_port, serve_env, spawn, Redis, ADMIN_TOKEN};

fn env_with(redis_url: &str, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = serve_env(redis_url);
    for (k, v) in overrides {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_startup_bad_http_port_exits_with_one_line() {
    for bad in ["abc", "70000", "0", "-1"] {
        let env = env_with("redis://127.0.0.1:1/0", &[("HTTP_PORT", bad)]);
        let started = Instant::now();
        let mut proc = spawn(&["serve"], &env);
        let code = proc.wait_exit(Duration::from_secs(5));
        let log = proc.log_text();
        assert!(matches!(code, Some(c) if c != 0), "HTTP_PORT={bad}: exit {code:?}; output:\n{log}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Nothing is logged before config is read: the whole output is stderr.
        let l = lines(&log);
        assert_eq!(l.len(), 1, "HTTP_PORT={bad}: expected one line, got:\n{log}");
        assert!(l[0].contains("HTTP_PORT"), "the line does not name HTTP_PORT: {}", l[0]);
    }

    // Checked separately, on stderr alone.
    let env = env_with("redis://127.0.0.1:1/0", &[("HTTP_PORT", "abc")]);
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(lines(&stderr).len(), 1, "stderr:\n{stderr}");
    assert!(stderr.contains("HTTP_PORT") && stderr.contains("abc"), "stderr:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_startup_unreachable_redis_retries_then_exits() {
    let (_hold, closed) = refused_port();
    let env = env_with(&format!("redis://:secret@127.0.0.1:{closed}/0"), &[("REDIS_STARTUP_TIMEOUT", "2")]);
    let started = Instant::now();
    let mut proc = spawn(&["serve"], &env);
    let code = proc.wait_exit(Duration::from_secs(15));
    let elapsed = started.elapsed();
    let log = proc.log_text();
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?} after {elapsed:?}; output:\n{log}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?} with REDIS_STARTUP_TIMEOUT=2");
    assert!(
        elapsed >= Duration::from_millis(1500),
        "gave up after {elapsed:?}, before the startup timeout"
    );
    assert!(log.to_lowercase().contains("retrying"), "no retry in the log:\n{log}");
    let last = *lines(&log).last().unwrap();
    assert!(last.contains("Redis"), "the final line does not mention Redis: {last}");
    assert!(!log.contains(":secret@"), "the Redis password is logged:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_startup_default_localhost_proxy_survives_restart_after_edit() {
    let redis = Redis::start();
    let p = start(&redis).await;

    let (s, lh) = p.admin("GET", "/api/v1/proxy/targets/localhost", None).await;
    assert_eq!(s, 200, "{lh}");
    assert_eq!(
        lh["target_url"],
        format!("http://127.0.0.1:{}", p.api_port),
        "the default proxy targets the API"
    );
    assert_eq!(lh["owner_token_hash"], sha(ADMIN_TOKEN));
    assert!(redis.cli(&["GET", "proxy:localhost"]).contains("localhost"));

    // Through the data plane, localhost reaches the control plane (its /health bare there).
    let c = reqwest::Client::new();
    let reached = eventually(Duration::from_secs(10), || async {
        let r = c
            .get(p.http("/api/v1/tokens/"))
            .header("Host", "localhost")
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(reached.is_some(), "localhost on the data plane does not reach the API");

    // A restart without edits changes nothing.
    let raw_before = redis.cli(&["GET", "proxy:localhost"]);
    drop(p);
    let p = start(&redis).await;
    assert_eq!(
        redis.cli(&["GET", "proxy:localhost"]),
        raw_before,
        "a restart rewrote the untouched default proxy"
    );

    // Edit it, restart, and the edit is still there.
    let edit = json!({"target_url": "http://127.0.0.1:1", "custom_response_headers": {"X-Edited": "yes"}, "preserve_host_header": false});
    let (s, v) = p.admin("PUT", "/api/v1/proxy/targets/localhost", Some(edit)).await;
    assert_eq!(s, 200, "{v}");
    let raw_edited = redis.cli(&["GET", "proxy:localhost"]);
    drop(p);
    let p = start(&redis).await;
    assert_eq!(
        redis.cli(&["GET", "proxy:localhost"]),
        raw_edited,
        "the restart overwrote the edited proxy"
    );
    let (s, v) = p.admin("GET", "/api/v1/proxy/targets/localhost", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["target_url"], "http://127.0.0.1:1");
    assert_eq!(v["custom_response_headers"], json!({"X-Edited": "yes"}));
    assert_eq!(v["preserve_host_header"], false);

    // Deleted, it is recreated on the next start.
    let (s, _) = p.admin("DELETE", "/api/v1/proxy/targets/localhost", None).await;
    assert_eq!(s, 200);
    drop(p);
    let p = start(&redis).await;
    let (s, v) = p.admin("GET", "/api/v1/proxy/targets/localhost", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["target_url"], format!("http://127.0.0.1:{}", p.api_port));
}

/// Start-up writes through `manage` as the bootstrap admin (issue 15): the
/// default proxies are the admin's and order no certificate, and the OAuth
/// routes earlier versions stored are removed only when untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_startup_writes_defaults_as_the_admin_and_drops_untouched_legacy_routes() {
    let redis = Redis::start();
    let p = start(&redis).await;
    for host in ["localhost", "auth.localhost"] {
        let (s, v) = p.admin("GET", &format!("/api/v1/proxy/targets/{host}"), None).await;
        assert_eq!((s, v["created_by"].as_str()), (200, Some("ADMIN_TOKEN")), "{v}");
        assert_eq!(v["owner_token_hash"], sha(ADMIN_TOKEN), "{v}");
    }
    let (s, v) = p.admin("GET", "/api/v1/certificates/", None).await;
    assert_eq!(s, 200, "{v}");
    assert!(!v.to_string().contains("auth.localhost"), "start-up ordered a certificate: {v}");

    // Two routes as an earlier version stored them; the admin edited one.
    let api = format!("http://127.0.0.1:{}", p.api_port);
    for (id, pattern, description) in [
        ("oauth-token", "^/token$", "OAuth endpoint (default route)"),
        ("oauth-jwks", "^/jwks$", "mine now"),
    ] {
        let route = json!({"route_id": id, "path_pattern": pattern, "is_regex": true, "target_type": "url",
            "target_value": api, "priority": 95, "scope": "global", "description": description});
        let (s, v) = p.admin("POST", "/api/v1/routes/", Some(route)).await;
        assert_eq!(s, 201, "{v}");
    }
    let api_port = p.api_port.to_string();
    drop(p);
    // the same API address, so the untouched route still matches what start-up wrote
    let p = crate::harness::Portcullis::start_with(&redis, &[("API_PORT", &api_port)]).await;
    let (s, _) = p.admin("GET", "/api/v1/routes/oauth-token", None).await;
    assert_eq!(s, 404, "the untouched legacy route is removed");
    let (s, v) = p.admin("GET", "/api/v1/routes/oauth-jwks", None).await;
    assert_eq!((s, v["description"].as_str()), (200, Some("mine now")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_startup_mcp_conformance_fixtures_warn_that_they_are_not_for_production() {
    const WARNING: &str = "for the conformance suite only; never in production";
    let redis = Redis::start();
    let plain = crate::harness::Portcullis::start(&redis).await;
    let on = crate::harness::Portcullis::start_with(&redis, &[("MCP_CONFORMANCE_FIXTURES", "true")]).await;
    // logged before the server runs, so it is there once /health answers
    let warned = eventually(Duration::from_secs(10), || async {
        on.proc.log_text().contains(WARNING).then_some(())
    })
    .await;
    assert!(warned.is_some(), "no warning with the fixtures on; log:\n{}", on.proc.log_text());
    let log = plain.proc.log_text();
    assert!(!log.contains(WARNING), "a warning with the fixtures off; log:\n{log}");
}
