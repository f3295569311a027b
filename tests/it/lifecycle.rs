//! Stopping promptly and upgrading without downtime (issue 14): SIGTERM
//! exits as soon as in-flight requests are done; `serve --upgrade` takes the
//! listeners over while the old process drains.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{backend, eventually, serve_env, spawn, Portcullis, Proc, Redis, ADMIN_TOKEN};

async fn wait_routed(client: &reqwest::Client, url: &str, host: &str) {
    let ok = eventually(Duration::from_secs(10), || async {
        let r = client.get(url).header("Host", host).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(ok.is_some(), "{host} was never routed");
}

/// Sends SIGTERM and waits (at most 25 s) for the exit: its code, and how
/// long after the signal it came.
async fn terminate_and_wait(mut p: Portcullis) -> (Option<i32>, Duration) {
    let t = Instant::now();
    p.proc.terminate();
    let code = tokio::task::spawn_blocking(move || p.proc.wait_exit(Duration::from_secs(25)))
        .await
        .unwrap();
    (code, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_as_soon_as_in_flight_requests_are_done() {
    let redis = Redis::start();
    // idle: exits in about the drain poll, far below the grace period
    let idle = Portcullis::start_with(&redis, &[("SHUTDOWN_GRACE_PERIOD", "20")]).await;
    let (code, took) = terminate_and_wait(idle).await;
    assert_eq!(code, Some(0));
    eprintln!("(c) idle instance: exit 0 {took:?} after SIGTERM (grace period 20 s)");
    assert!(took < Duration::from_secs(3), "an idle instance took {took:?} to exit");

    // under load: 20 requests of 1.5 s in flight at SIGTERM all complete
    let p = Portcullis::start_with(&redis, &[("SHUTDOWN_GRACE_PERIOD", "20")]).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "slow.test", "target_url": a.url()})).await;
    wait_routed(&p.client, &p.http("/"), "slow.test").await;
    let inflight: Vec<_> = (0..20)
        .map(|_| {
            let url = p.http("/slow?ms=1500");
            tokio::spawn(async move {
                let r = reqwest::Client::new().get(url).header("Host", "slow.test").send().await?;
                Ok::<_, reqwest::Error>((r.status().as_u16(), r.text().await?))
            })
        })
        .collect();
    // the backend's count, not the proxy's gauge: the gauge still holds the
    // `wait_routed` request until its logging phase
    let all_in = eventually(Duration::from_secs(10), || async { (a.slow_begun() >= 20).then_some(()) }).await;
    assert!(all_in.is_some(), "the 20 requests never were all in flight");
    let stopping = tokio::spawn(terminate_and_wait(p));
    for r in inflight {
        let (s, body) = r.await.unwrap().expect("an in-flight request failed");
        assert_eq!((s, body.as_str()), (200, "slow done"));
    }
    let (code, took) = stopping.await.unwrap();
    assert_eq!(code, Some(0));
    eprintln!("(c) under load: 20 of 20 in-flight requests completed, exit 0 {took:?} after SIGTERM");
    assert!(took < Duration::from_secs(5), "exit {took:?} after SIGTERM, grace period 20 s");
}

/// Starts `portcullis serve` (`args`) with `env` and waits for its control plane.
async fn start_proc(args: &[&str], env: &[(String, String)], api: &str) -> Proc {
    let proc = spawn(args, env);
    let client = reqwest::Client::new();
    let up = eventually(Duration::from_secs(30), || async {
        let r = client.get(format!("{api}/health")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(up.is_some(), "portcullis did not start; log:\n{}", proc.log_text());
    proc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_upgrade_under_load_fails_no_request() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("upgrade.sock");
    let mut env = serve_env(&redis.url());
    env.push(("SHUTDOWN_GRACE_PERIOD".into(), "20".into()));
    env.push(("UPGRADE_SOCKET".into(), sock.display().to_string()));
    let port = |k: &str| env.iter().find(|(ek, _)| ek == k).unwrap().1.clone();
    let (http, api) = (port("HTTP_PORT"), format!("http://127.0.0.1:{}", port("API_PORT")));
    let mut old = start_proc(&["serve"], &env, &api).await;
    let a = backend::start("A").await;
    let admin = reqwest::Client::new();
    let r = admin
        .post(format!("{api}/api/v1/proxy/targets/"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"hostname": "up.test", "target_url": a.url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let base = format!("http://127.0.0.1:{http}");
    // a fresh connection per request: each one is accepted by one process or the other
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    wait_routed(&client, &format!("{base}/"), "up.test").await;

    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    // 4 loops of plain requests and 20 SSE streams, reopened as they finish
    for i in 0..24 {
        let (client, base, stop, done, failed, errors) = (
            client.clone(),
            base.clone(),
            stop.clone(),
            done.clone(),
            failed.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let path = if i < 4 { "/" } else { "/sse" };
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let r = client.get(format!("{base}{path}")).header("Host", "up.test").send().await;
                let outcome = match r {
                    Ok(r) if r.status() == 200 => match r.text().await {
                        Ok(b) if path == "/" || b.matches("data:").count() == 5 => Ok(()),
                        Ok(b) => Err(format!("{path}: incomplete body {b:?}")),
                        Err(e) => Err(format!("{path}: body {e:?}")),
                    },
                    Ok(r) => Err(format!("{path}: status {}", r.status())),
                    Err(e) => Err(format!("{path}: {e:?}")),
                };
                match outcome {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        errors.lock().unwrap().push(e);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    // long requests in flight when the old process starts draining
    let long: Vec<_> = (0..5)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/slow?ms=7000"));
            tokio::spawn(async move {
                let r = client.get(url).header("Host", "up.test").send().await?;
                Ok::<_, reqwest::Error>((r.status().as_u16(), r.text().await?))
            })
        })
        .collect();
    let in_flight = eventually(Duration::from_secs(10), || async { (a.slow_begun() >= 5).then_some(()) }).await;
    assert!(in_flight.is_some(), "the long requests never reached the backend");

    let new = spawn(&["serve", "--upgrade"], &env);
    let ready = eventually(Duration::from_secs(20), || async { sock.exists().then_some(()) }).await;
    assert!(
        ready.is_some(),
        "the new process never opened the upgrade socket; log:\n{}",
        new.log_text()
    );
    let t = Instant::now();
    let _ = std::process::Command::new("kill").args(["-QUIT", &old.pid().to_string()]).status();
    for r in long {
        let (s, body) = r.await.unwrap().expect("a long request failed during the upgrade");
        assert_eq!((s, body.as_str()), (200, "slow done"));
    }
    let code = tokio::task::spawn_blocking(move || {
        let code = old.wait_exit(Duration::from_secs(40));
        (code, old)
    })
    .await
    .unwrap();
    let (code, old) = code;
    assert_eq!(code, Some(0), "old process log:\n{}", old.log_text());
    let handed_over = t.elapsed();
    // keep the load on the new process alone for a moment
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let (done, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("upgrade: {done} requests and streams completed, {failed} failed; old process gone after {handed_over:?}");
    assert_eq!(
        failed,
        0,
        "{failed} requests failed during the upgrade ({done} succeeded): {:?}\nold log:\n{}",
        errors.lock().unwrap(),
        old.log_text()
    );
    assert!(done > 50, "too little load: {done}");
    let r = client.get(format!("{base}/")).header("Host", "up.test").send().await.unwrap();
    assert_eq!(r.status(), 200, "the new process serves");
    let r = admin.get(format!("{api}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the new control plane serves");
}

/// A request as the admin to the control plane through the data plane's
/// `localhost` proxy.
fn via_localhost(p: &Portcullis, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    p.client
        .request(method, p.http(path))
        .header("Host", "localhost")
        .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
}

/// Streams never end by themselves (`/api/v1/logs/follow`, an MCP
/// session's `GET /mcp`): they end when the process begins to stop, so an
/// instance with followers still exits at once instead of after the grace
/// period. Both go through the data plane (`Host: localhost`), whose
/// graceful stop waits for requests in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_do_not_hold_a_stop() {
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("SHUTDOWN_GRACE_PERIOD", "20")]).await;
    let follow = via_localhost(&p, reqwest::Method::GET, "/api/v1/logs/follow").send().await.unwrap();
    assert_eq!(follow.status(), 200);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "0"}}});
    let r = via_localhost(&p, reqwest::Method::POST, "/mcp")
        .header("Accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let mcp = via_localhost(&p, reqwest::Method::GET, "/mcp")
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", &sid)
        .header("MCP-Protocol-Version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 200);
    let (code, took) = terminate_and_wait(p).await;
    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(8),
        "two open streams held the stop {took:?} (grace period 20 s)"
    );
    // both streams ended rather than being cut mid-event
    for stream in [follow, mcp] {
        assert!(tokio::time::timeout(Duration::from_secs(5), stream.bytes()).await.is_ok());
    }
}
