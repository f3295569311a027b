//! Reliability scenarios of issue 14 (loopback only, every loop bounded in
//! count and time): (e) idle and slow connections are closed by their
//! deadlines while normal requests go on; (f) a flood of unknown key ids
//! causes no rebuild storm. Scenario (c), SIGTERM under load, is
//! `lifecycle::sigterm_exits_as_soon_as_in_flight_requests_are_done`, and (d)
//! `lifecycle::a_binary_upgrade_under_load_fails_no_request`. Each prints its
//! figures (`--nocapture`); `docs/reliability.md` records a run. The bounds
//! asserted here are loose on purpose: these tests run as a debug build next
//! to the rest of the suite on two cores.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{backend, eventually, metric_value, Portcullis, Redis};

/// Latency percentiles (ms) of `samples`.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99), at(1.0))
}

/// Sequential GETs of `host` on one kept-alive connection for `span`.
async fn steady_requests(p: &Portcullis, host: &str, span: Duration) -> Vec<Duration> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let url = p.http("/");
    let mut out = Vec::new();
    let end = Instant::now() + span;
    while Instant::now() < end && out.len() < 100_000 {
        let t = Instant::now();
        let r = client.get(&url).header("Host", host).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        out.push(t.elapsed());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_idle_and_slow_connections_are_closed_while_requests_go_on() {
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("CLIENT_HEADER_TIMEOUT", "2"), ("KEEPALIVE_TIMEOUT", "2")]).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "rel.test", "target_url": a.url()})).await;
    let routed = eventually(Duration::from_secs(5), || async {
        let r = p.client.get(p.http("/")).header("Host", "rel.test").send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(routed.is_some());
    let baseline = percentiles(steady_requests(&p, "rel.test", Duration::from_secs(2)).await);

    // 250 connections that never send, 250 that trickle a head one byte per 400 ms
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..500 {
        let port = p.http_port;
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
            let head = b"GET / HTTP/1.1\r\nHost: rel.test\r\nX-Slow: 0123456789012345678901234567890123456789\r\n\r\n";
            let mut buf = [0u8; 256];
            let mut sent = 0;
            let end = Instant::now() + Duration::from_secs(20);
            while Instant::now() < end {
                if i % 2 == 1 && sent < head.len() && s.write_all(&head[sent..sent + 1]).await.is_err() {
                    return Some(t0.elapsed());
                }
                sent += 1;
                match tokio::time::timeout(Duration::from_millis(400), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Some(t0.elapsed()),
                    Ok(Ok(_)) => return None, // an answer: the head was served, not cut
                    Err(_) => {}
                }
            }
            None
        }));
    }
    let during = steady_requests(&p, "rel.test", Duration::from_secs(3)).await;
    let n_during = during.len();
    let during = percentiles(during);
    let mut closed = Vec::new();
    for t in tasks {
        if let Some(at) = t.await.unwrap() {
            closed.push(at);
        }
    }
    let last_close = closed.iter().max().copied().unwrap_or_default();
    eprintln!(
        "(e) 500 idle/slow connections: {} closed, the last after {last_close:?}; requests p50/p99/max ms: \
         before {:.1}/{:.1}/{:.1}, during {:.1}/{:.1}/{:.1} ({n_during} requests in 3 s)",
        closed.len(),
        baseline.0,
        baseline.1,
        baseline.2,
        during.0,
        during.1,
        during.2
    );
    assert_eq!(closed.len(), 500, "every idle or slow connection is closed by a deadline");
    assert!(last_close < Duration::from_secs(12), "closed only after {last_close:?}");
    assert!(during.1 < 250.0, "p99 {:.1} ms while 500 slow connections were open", during.1);
}

/// A syntactically valid RS256 token naming key `kid`, with a junk signature.
fn forged(kid: &str) -> String {
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT", "kid": kid})),
        b64(json!({"sub": "mallory", "iss": "x", "exp": chrono::Utc::now().timestamp() + 600})),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

/// GETs of `host` with 4 clients in parallel for `span`; returns req/s.
async fn throughput(p: &Portcullis, host: &str, span: Duration) -> f64 {
    let t = Instant::now();
    let runs = (0..4).map(|_| steady_requests(p, host, span));
    let n: usize = futures::future::join_all(runs).await.iter().map(Vec::len).sum();
    n as f64 / t.elapsed().as_secs_f64()
}

/// ~500 tokens per second of `host` for 6 s, their key ids from `kid`, while
/// the plain proxy's throughput is measured; returns (sent, refused with
/// 401, plain req/s meanwhile).
async fn flood(p: &Portcullis, host: &'static str, kid: fn(u32) -> String) -> (u32, u32, f64) {
    let url = p.http("/");
    let flood = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut sent, mut refused) = (0u32, 0u32);
        let end = Instant::now() + Duration::from_secs(6);
        while Instant::now() < end {
            tick.tick().await;
            let batch = (0..10).map(|i| {
                let req = client.get(&url).header("Host", host).bearer_auth(forged(&kid(sent + i))).send();
                async move { req.await.map(|r| r.status().as_u16()).unwrap_or(0) }
            });
            for status in futures::future::join_all(batch).await {
                sent += 1;
                refused += u32::from(status == 401);
            }
        }
        (sent, refused)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rps = throughput(p, "plain.test", Duration::from_secs(3)).await;
    let (sent, refused) = flood.await.unwrap();
    (sent, refused, rps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f_an_unknown_key_id_flood_causes_no_rebuild_storm() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "plain.test", "target_url": a.url()})).await;
    p.create_proxy(json!({"hostname": "auth.flood.test", "target_url": a.url(), "enable_https": false, "auth_enabled": true}))
        .await;
    let routed = eventually(Duration::from_secs(5), || async {
        let r = p.client.get(p.http("/")).header("Host", "plain.test").send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(routed.is_some());
    // the signing key's id, for the control flood (known kid, bad signature)
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/oauth/test-token",
            Some(json!({"username": "alice", "aud": ["http://x"]})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let header = v["access_token"].as_str().unwrap().split('.').next().unwrap().to_string();
    let header: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    KNOWN_KID.set(header["kid"].as_str().unwrap().to_string()).unwrap();

    let quiet = throughput(&p, "plain.test", Duration::from_secs(3)).await;
    let (c_sent, c_refused, c_rps) = flood(&p, "auth.flood.test", |_| KNOWN_KID.get().unwrap().clone()).await;
    let before = p.metrics().await;
    let (sent, refused, rps) = flood(&p, "auth.flood.test", |n| format!("flood-{n}")).await;
    let after = p.metrics().await;
    let delta = |name: &str| metric_value(&after, name) - metric_value(&before, name);
    let reloads: f64 = ["changed", "unchanged", "failed"]
        .iter()
        .map(|r| delta(&format!("portcullis_key_refreshes_total{{result=\"{r}\"}}")))
        .sum();
    let rebuilds = delta("portcullis_snapshot_rebuilds_total{result=\"ok\"}");
    eprintln!(
        "(f) plain proxy {quiet:.0} req/s quiet; {c_sent} bad signatures with the known key id ({:.0}/s): plain {c_rps:.0} req/s \
         ({:.2}x); {sent} unknown key ids ({:.0}/s): plain {rps:.0} req/s ({:.2}x), key reloads {reloads}, full rebuilds {rebuilds}",
        f64::from(c_sent) / 6.0,
        c_rps / quiet,
        f64::from(sent) / 6.0,
        rps / quiet
    );
    assert_eq!((c_refused, refused), (c_sent, sent), "every forged token is refused with 401");
    assert!(reloads <= 3.0, "{reloads} key reloads in ~6.5 s (one per 5 s at most)");
    assert_eq!(rebuilds, 0.0, "forged key ids caused full snapshot rebuilds");
    // The two 3 s samples may meet different neighbours in a parallel test
    // run: a pair that misses is measured again (up to twice), and the
    // comparison holds when one pair, taken back to back, shows it. The
    // quiet-machine figure is in docs/reliability.md.
    let (mut c_rps, mut rps) = (c_rps, rps);
    for _ in 0..2 {
        if rps >= c_rps * 0.5 {
            break;
        }
        c_rps = flood(&p, "auth.flood.test", |_| KNOWN_KID.get().unwrap().clone()).await.2;
        rps = flood(&p, "auth.flood.test", |n| format!("flood-again-{n}")).await.2;
    }
    assert!(
        rps >= c_rps * 0.5,
        "unknown key ids cost the plain proxy more than bad signatures: {rps:.0} vs {c_rps:.0} req/s"
    );
}

/// The signing key id of the running instance (set once by the (f) test).
static KNOWN_KID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
