//! Behaviours that had no test (issue 19): `.env` loading under the real
//! environment, a failed snapshot build keeping the previous one, event
//! bursts merged into few rebuilds, the upstream connect timeout and a
//! disabled PROXY-protocol listener.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{backend, eventually, serve_env, Portcullis, Redis};

async fn get_host(p: &Portcullis, host: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(p.http(path))
        .header("Host", host)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

const REBUILDS_OK: &str = r#"portcullis_snapshot_rebuilds_total{result="ok"}"#;
const REBUILDS_FAILED: &str = r#"portcullis_snapshot_rebuilds_total{result="failed"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_env_is_read_and_the_real_environment_overrides_it() {
    let redis = Redis::start();
    let env = serve_env(&redis.url());
    let port_of = |k: &str| env.iter().find(|(ek, _)| ek == k).unwrap().1.clone();
    let api_port = port_of("API_PORT");

    // .env alone: its bad HTTP_PORT stops start-up, naming the variable.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "HTTP_PORT=not-a-port\nLOG_LEVEL=DEBUG\n").unwrap();
    let without: Vec<(String, String)> = env.iter().filter(|(k, _)| k != "HTTP_PORT").cloned().collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(without.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with .env's bad HTTP_PORT:\n{stderr}");
    assert!(stderr.contains("HTTP_PORT") && stderr.contains("not-a-port"), "{stderr}");

    // The same .env under a real, valid HTTP_PORT: the real value wins.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let health = format!("http://127.0.0.1:{api_port}/health");
    let up = eventually(Duration::from_secs(30), || async {
        let r = reqwest::get(&health).await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(up.is_some(), "serve did not start with HTTP_PORT from the environment over .env");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_snapshot_build_keeps_the_previous_one() {
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("RECONCILE_INTERVAL", "1")]).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "kept.test", "target_url": a.url()})).await;
    let reached = eventually(Duration::from_secs(10), || async {
        (get_host(&p, "kept.test", "/").await.1["backend"] == "A").then_some(())
    })
    .await;
    assert!(reached.is_some(), "kept.test never routed");

    // A record that cannot be read makes every rebuild fail from now on.
    let failed_before = p.metric(REBUILDS_FAILED).await;
    redis.cli(&["SET", "proxy:broken.test", "{not json"]);
    redis.cli(&["ZADD", "portcullis:keys", "0", "proxy:broken.test"]);
    redis.cli(&["SADD", "proxies", "broken.test"]);
    let failing = eventually(Duration::from_secs(10), || async {
        (p.metric(REBUILDS_FAILED).await > failed_before).then_some(())
    })
    .await;
    assert!(failing.is_some(), "no failed rebuild was counted for an unreadable record");
    // The previous snapshot still serves.
    let (s, v) = get_host(&p, "kept.test", "/").await;
    assert_eq!((s, &v["backend"]), (200, &json!("A")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_change_events_is_merged_into_few_rebuilds() {
    let redis = Redis::start();
    // No periodic reconcile during the test: every rebuild counted is an event's.
    let p = Portcullis::start_with(&redis, &[("RECONCILE_INTERVAL", "3600")]).await;
    let settled = eventually(Duration::from_secs(10), || async {
        (p.metric(REBUILDS_OK).await >= 1.0).then_some(())
    })
    .await;
    assert!(settled.is_some());
    let before = p.metric(REBUILDS_OK).await;
    // 200 events in one pipelined write (raw protocol for --pipe) arrive together.
    let event = json!({"kind": "proxy", "op": "update", "id": "burst.test"}).to_string();
    let one: String = ["PUBLISH", "portcullis:changes", event.as_str()]
        .iter()
        .fold("*3\r\n".to_string(), |acc, part| acc + &format!("${}\r\n{}\r\n", part.len(), part));
    let mut cli = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "-a", &redis.password, "--no-auth-warning", "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = cli.stdin.take().unwrap();
        stdin.write_all(one.repeat(200).as_bytes()).unwrap();
    }
    assert!(cli.wait().unwrap().success());
    let started = Instant::now();
    let rebuilt = eventually(Duration::from_secs(10), || async {
        (p.metric(REBUILDS_OK).await > before).then_some(())
    })
    .await;
    assert!(rebuilt.is_some(), "the burst caused no rebuild");
    // Let any further rebuilds of the burst happen, then count them.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(started.elapsed())).await;
    let rebuilds = p.metric(REBUILDS_OK).await - before;
    assert!(rebuilds <= 20.0, "200 events caused {rebuilds} rebuilds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_accepts_answers_502_after_the_connect_timeout() {
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("PROXY_CONNECT_TIMEOUT", "1")]).await;
    // A listener with a full accept queue: the kernel drops further SYNs,
    // so a connect neither succeeds nor is refused.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(1).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(300), s.connect(listener.local_addr().unwrap())).await {
            fillers.push(c);
        }
    }
    p.create_proxy(json!({"hostname": "blackhole.test", "target_url": format!("http://127.0.0.1:{port}")}))
        .await;
    let started = Instant::now();
    let status = eventually(Duration::from_secs(10), || async {
        let (s, _) = get_host(&p, "blackhole.test", "/").await;
        (s != 404).then_some(s)
    })
    .await;
    let elapsed = started.elapsed();
    assert_eq!(status, Some(502), "after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "answered before the connect timeout: {elapsed:?}"
    );
    drop(fillers);
}

/// Listening TCP sockets that belong to process `pid` (from /proc).
fn listening_sockets(pid: u32) -> usize {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" {
                inodes.insert(f[9].to_string());
            }
        }
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
        .filter(|i| inodes.contains(i))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_port_zero_opens_no_listener() {
    let redis = Redis::start();
    let with = Portcullis::start(&redis).await;
    let without = Portcullis::start_with(&redis, &[("PROXY_PROTOCOL_PORT", "0")]).await;
    let (n_with, n_without) = (listening_sockets(with.proc.pid()), listening_sockets(without.proc.pid()));
    assert_eq!(n_with, n_without + 1, "listeners with PROXY protocol {n_with}, without {n_without}");
    // The instance without it still serves HTTP.
    let (s, _) = get_host(&without, "localhost", "/health").await;
    assert_eq!(s, 200);
}
