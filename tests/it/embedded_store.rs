//! `STORE=embedded`: one `portcullis serve` with no Redis at all keeps its
//! state in one file, reloads its data plane on writes, keeps the state
//! across a restart, and refuses a second process on the same file.

use std::time::Duration;

use serde_json::json;

use crate::harness::{backend, eventually, serve_env, spawn, Portcullis};

/// A Redis URL on a closed port: nothing may depend on Redis here.
const NO_REDIS: &str = "redis://127.0.0.1:9/0";

async fn served_by(p: &Portcullis, host: &str) -> Option<String> {
    let r = p.client.get(p.http("/")).header("Host", host).send().await.ok()?;
    let v: serde_json::Value = r.json().await.ok()?;
    v["backend"].as_str().map(String::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_without_redis_persists_across_restarts_and_locks_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let path_s = path.to_str().unwrap().to_string();
    let env = [("STORE", "embedded"), ("STORE_PATH", path_s.as_str())];
    let a = backend::start("A").await;

    let p = Portcullis::start_env(NO_REDIS, &env).await;
    let (s, v) = p.call("GET", "/health", None, None).await;
    assert_eq!((s, &v["store"], &v["redis"]), (200, &json!("embedded"), &json!("not used")), "{v}");
    p.create_proxy(json!({"hostname": "emb.test", "target_url": a.url()})).await;
    let routed = eventually(Duration::from_secs(5), || served_by(&p, "emb.test")).await;
    assert_eq!(routed.as_deref(), Some("A"), "the data plane picked up the new proxy");
    let route = json!({"path_pattern": "/emb/", "target_type": "url", "target_value": a.url(), "priority": 10});
    let (s, v) = p.admin("POST", "/api/v1/routes/", Some(route.clone())).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = p.admin("POST", "/api/v1/routes/", Some(route)).await;
    assert_eq!(s, 409, "same path and priority conflict as with Redis: {v}");
    let saved = std::fs::read(&path).unwrap();
    assert!(saved.starts_with(b"redb"), "written to the database at {path_s}");

    // A second process on the same file is refused with a clear reason.
    let mut second = spawn(&["serve"], &{
        let mut e = serve_env(NO_REDIS);
        e.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        e
    });
    let code = second.wait_exit(Duration::from_secs(20));
    assert!(matches!(code, Some(c) if c != 0), "second process must fail, got {code:?}");
    assert!(
        second.log_text().contains("in use by another portcullis process"),
        "{}",
        second.log_text()
    );

    drop(p);
    let p = Portcullis::start_env(NO_REDIS, &env).await;
    let routed = eventually(Duration::from_secs(5), || served_by(&p, "emb.test")).await;
    assert_eq!(routed.as_deref(), Some("A"), "the proxy survived the restart");
    let (s, v) = p.admin("GET", "/api/v1/routes/", None).await;
    assert_eq!(s, 200);
    assert!(v.to_string().contains("/emb/"), "the route survived the restart: {v}");
}
