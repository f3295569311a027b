//! Reliability scenarios (a) and (b) of issue 14, loopback only, every loop
//! bounded in count and time: (a) 100 configuration changes through the admin
//! API during a 30 s load fail no request to the hosts they leave unchanged;
//! (b) 50 certificate replacements under TLS load fail no handshake, and the
//! newest certificate is the one served at the end. Each prints its figures
//! (`--nocapture`); `docs/reliability.md` records a run. Latency bounds are
//! loose on purpose (a debug build next to the rest of the suite on two
//! cores); the properties asserted are exact: nothing failed.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::admin_api::make_cert;
use crate::harness::{backend, eventually, Portcullis, Redis};

/// Latency percentiles (p50, p99, max) in ms.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99), at(1.0))
}

/// What one load loop saw: latencies of the requests that succeeded, and a
/// description of each one that did not.
#[derive(Default)]
struct Seen {
    ok: Vec<Duration>,
    failed: Vec<String>,
}

impl Seen {
    fn merge(all: Vec<Seen>) -> Seen {
        let mut out = Seen::default();
        for s in all {
            out.ok.extend(s.ok);
            out.failed.extend(s.failed);
        }
        out
    }
}

/// GETs `/load` of `hosts` in turn with `client` until `stop`, expecting 200
/// from backend `want` each time (at most 50,000 requests).
async fn load_loop(client: reqwest::Client, url: String, hosts: Vec<String>, want: &'static str, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let needle = format!("\"backend\":\"{want}\"");
    let mut i = 0usize;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && i < 50_000 {
        let host = &hosts[i % hosts.len()];
        i += 1;
        let t = Instant::now();
        let got = async {
            let r = client
                .get(&url)
                .header("Host", host.as_str())
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = r.status().as_u16();
            let body = r.text().await.map_err(|e| format!("body: {e:?}"))?;
            if status != 200 || !body.contains(&needle) {
                return Err(format!("{status} {}", body.chars().take(200).collect::<String>()));
            }
            Ok(())
        }
        .await;
        match got {
            Ok(()) => seen.ok.push(t.elapsed()),
            Err(e) => seen.failed.push(format!("{host} after {:.1?}: {e}", started.elapsed())),
        }
    }
    seen
}

/// For a failure message: whether portcullis still runs, its ERROR and
/// panic lines and the end of its log.
fn post_mortem(p: &mut Portcullis) -> String {
    let exit = p.proc.wait_exit(Duration::from_millis(100));
    let log = p.proc.log_text();
    let lines: Vec<&str> = log.lines().collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("ERROR") || l.contains("panicked"))
        .take(20)
        .collect();
    let tail = &lines[lines.len().saturating_sub(10)..];
    format!(
        "portcullis exit status: {exit:?} (None: still running)\nERROR/panic lines:\n{}\nlog end:\n{}",
        errors.join("\n"),
        tail.join("\n")
    )
}

/// One admin API call that must answer `want`; returns the error text otherwise.
async fn change(p: &Portcullis, method: &str, path: &str, body: Option<serde_json::Value>, want: u16) -> Result<(), String> {
    let (s, v) = p.admin(method, path, body).await;
    (s == want).then_some(()).ok_or_else(|| format!("{method} {path}: {s} {v}"))
}

/// The 100 changes of scenario (a): 20 rounds of 5, a round starting every
/// `pace`: create a proxy (to backend `b`); create a route (even rounds: a
/// global one on a path the load never asks for, so the route table every
/// host uses is rebuilt; odd rounds: one scoped to the new proxy); repoint the
/// proxy (to `c`) and wait until its traffic reaches `c`; delete the route;
/// delete the proxy. Returns the changes applied and how long each update
/// took to be visible in the data plane.
async fn hundred_changes(p: &Portcullis, b: String, c: String, pace: Duration) -> Result<(usize, Vec<Duration>), String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut applied = 0;
    let mut visible = Vec::new();
    let start = Instant::now();
    for k in 0..20u32 {
        tokio::time::sleep_until((start + pace * k).into()).await;
        let host = format!("churn-{k}.test");
        change(
            p,
            "POST",
            "/api/v1/proxy/targets/",
            Some(json!({"hostname": host, "target_url": b, "enable_https": false})),
            201,
        )
        .await?;
        let route_id = format!("churn-{k}");
        let route = if k % 2 == 0 {
            json!({"route_id": route_id, "path_pattern": format!("/churn-{k}/"), "target_type": "url", "target_value": c, "priority": 60})
        } else {
            json!({"route_id": route_id, "path_pattern": "/scoped", "target_type": "url", "target_value": c,
                   "priority": 70, "scope": "proxy", "proxy_hostnames": [host]})
        };
        change(p, "POST", "/api/v1/routes/", Some(route), 201).await?;
        change(
            p,
            "PUT",
            &format!("/api/v1/proxy/targets/{host}"),
            Some(json!({"target_url": c})),
            200,
        )
        .await?;
        let t = Instant::now();
        let url = p.http("/seen");
        let reached = eventually(Duration::from_secs(10), || async {
            let r = client.get(&url).header("Host", host.as_str()).send().await.ok()?;
            r.text().await.ok()?.contains("\"backend\":\"C\"").then_some(())
        })
        .await;
        reached.ok_or_else(|| format!("{host} never reached C after its update"))?;
        visible.push(t.elapsed());
        change(p, "DELETE", &format!("/api/v1/routes/{route_id}"), None, 200).await?;
        change(p, "DELETE", &format!("/api/v1/proxy/targets/{host}"), None, 200).await?;
        applied += 5;
    }
    Ok((applied, visible))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_changes_under_load_fail_no_request_to_unchanged_hosts() {
    let redis = Redis::start();
    let mut p = Portcullis::start(&redis).await;
    let (a, b, c) = (backend::start("A").await, backend::start("B").await, backend::start("C").await);
    let stable: Vec<String> = (0..4).map(|i| format!("stable-{i}.test")).collect();
    for h in &stable {
        p.create_proxy(json!({"hostname": h, "target_url": a.url(), "enable_https": false}))
            .await;
    }
    for h in &stable {
        let routed = eventually(Duration::from_secs(5), || async {
            let r = p.client.get(p.http("/load")).header("Host", h.as_str()).send().await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
        assert!(routed.is_some(), "{h} never routed");
    }

    // 4 kept-alive clients, one host each, and 1 client opening a connection per request
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for h in &stable {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        loops.push(tokio::spawn(load_loop(client, p.http("/load"), vec![h.clone()], "A", stop.clone())));
    }
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    loops.push(tokio::spawn(load_loop(fresh, p.http("/load"), stable.clone(), "A", stop.clone())));

    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // 20 rounds 1.35 s apart: the changes span ~27 s of the 30 s load
    let changes = hundred_changes(&p, b.url(), c.url(), Duration::from_millis(1350)).await;
    let rest = Duration::from_secs(30).saturating_sub(t0.elapsed());
    tokio::time::sleep(rest).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for l in loops {
        all.push(l.await.unwrap());
    }
    let span = t0.elapsed();
    let seen = Seen::merge(all);
    let (p50, p99, max) = percentiles(seen.ok.clone());
    let visible = changes.as_ref().map(|(_, v)| percentiles(v.clone())).unwrap_or_default();
    eprintln!(
        "(a) {} configuration changes in {span:.1?} of load: {} requests to 4 unchanged hosts ({:.0}/s), {} failed; \
         latency p50/p99/max ms {p50:.1}/{p99:.1}/{max:.1}; update visible in the data plane p50/max ms {:.1}/{:.1}",
        changes.as_ref().map(|c| c.0).unwrap_or(0),
        seen.ok.len() + seen.failed.len(),
        (seen.ok.len() + seen.failed.len()) as f64 / span.as_secs_f64(),
        seen.failed.len(),
        visible.0,
        visible.2
    );
    let (applied, _) = changes.unwrap_or_else(|e| panic!("a configuration change failed: {e}"));
    assert_eq!(applied, 100);
    assert!(
        seen.failed.is_empty(),
        "{} of {} requests to unchanged hosts failed, e.g. {:?}\n{}",
        seen.failed.len(),
        seen.ok.len() + seen.failed.len(),
        &seen.failed[..seen.failed.len().min(5)],
        post_mortem(&mut p)
    );
    assert!(seen.ok.len() > 1_000, "only {} requests in {span:?}", seen.ok.len());
    assert!(p99 < 1_000.0, "p99 {p99:.1} ms during the changes");
}

/// A certificate of scenario (b): its PEMs, serial and notAfter.
struct Cert {
    pem: String,
    key: String,
    serial: String,
    not_after: String,
}

/// A self-signed certificate for `tls.test` valid until `days` from now.
fn cert(days: i64) -> Cert {
    let (pem, key) = make_cert(&["tls.test"], -1, days);
    let x = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    Cert {
        serial: x.serial_number().to_bn().unwrap().to_hex_str().unwrap().to_string(),
        not_after: x.not_after().to_string(),
        pem,
        key,
    }
}

/// A TLS client without verification (the certificates are self-signed);
/// built once, as loading the system's CA store costs more than a handshake.
fn connector() -> openssl::ssl::SslConnector {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.build()
}

/// A fresh TLS connection with SNI `tls.test`, then one HTTP/1.1 GET on it;
/// returns the served leaf's (serial, notAfter) once the answer is a 200.
fn handshake_and_get(conn: &openssl::ssl::SslConnector, port: u16) -> Result<(String, String), String> {
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut s = conn
        .configure()
        .map_err(|e| e.to_string())?
        .verify_hostname(false)
        .connect("tls.test", tcp)
        .map_err(|e| format!("handshake: {e}"))?;
    let leaf = s.ssl().peer_certificate().ok_or("handshake: no certificate")?;
    let serial = leaf
        .serial_number()
        .to_bn()
        .map_err(|e| e.to_string())?
        .to_hex_str()
        .map_err(|e| e.to_string())?
        .to_string();
    let not_after = leaf.not_after().to_string();
    s.write_all(b"GET /tls HTTP/1.1\r\nHost: tls.test\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(|e| format!("read: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("answer: {}", answer.lines().next().unwrap_or("(empty)")));
    }
    Ok((serial, not_after))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_certificate_replacements_under_tls_load_fail_no_handshake() {
    // 51 certificates (RSA 2048), made while the servers start: the first, then
    // 50 replacements, each valid one day longer than the one before
    let certs = tokio::task::spawn_blocking(|| (0..51).map(|i| cert(30 + i)).collect::<Vec<_>>());
    let redis = Redis::start();
    let mut p = Portcullis::start(&redis).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "tls.test", "target_url": a.url()})).await;
    let certs = Arc::new(certs.await.unwrap());
    let upload = |i: usize| {
        let c = &certs[i];
        let body = json!({"cert_name": "tls", "certificate_pem": c.pem, "private_key_pem": c.key});
        let rb = p
            .client
            .post(p.api("/api/v1/certificates/upload"))
            .bearer_auth(&p.admin_token)
            .json(&body);
        async move {
            let r = rb.send().await.map_err(|e| format!("{e:?}"))?;
            let status = r.status().as_u16();
            (status == 201)
                .then_some(())
                .ok_or(format!("{status} {}", r.text().await.unwrap_or_default()))
        }
    };
    upload(0).await.unwrap();
    let port = p.https_port;
    let first = certs[0].serial.clone();
    let served = eventually(Duration::from_secs(5), || {
        let first = first.clone();
        async move {
            tokio::task::spawn_blocking(move || handshake_and_get(&connector(), port))
                .await
                .ok()?
                .ok()
                .filter(|(s, _)| *s == first)
        }
    })
    .await;
    assert!(served.is_some(), "the first certificate is never served");

    // 3 threads doing handshake + request back to back; each records which
    // certificate (by upload index) it saw and whether that ever went back
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..3 {
        let (stop, certs) = (stop.clone(), certs.clone());
        threads.push(tokio::task::spawn_blocking(move || {
            let (conn, started) = (connector(), Instant::now());
            let (mut seen, mut went_back, mut last) = (Seen::default(), 0u32, 0usize);
            while !stop.load(Ordering::Relaxed) && seen.ok.len() + seen.failed.len() < 20_000 {
                let t = Instant::now();
                match handshake_and_get(&conn, port) {
                    Ok((serial, not_after)) => match certs.iter().position(|c| c.serial == serial && c.not_after == not_after) {
                        Some(i) => {
                            went_back += u32::from(i < last);
                            last = last.max(i);
                            seen.ok.push(t.elapsed());
                        }
                        None => seen.failed.push(format!(
                            "after {:.1?}: a certificate never uploaded, serial {serial}",
                            started.elapsed()
                        )),
                    },
                    Err(e) => seen.failed.push(format!("after {:.1?}: {e}", started.elapsed())),
                }
            }
            (seen, went_back)
        }));
    }
    // and one HTTPS client on a kept-alive connection
    let keepalive = {
        let stop = stop.clone();
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .resolve("tls.test", format!("127.0.0.1:{port}").parse().unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        tokio::spawn(load_loop(
            client,
            format!("https://tls.test:{port}/load"),
            vec!["tls.test".into()],
            "A",
            stop,
        ))
    };

    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut upload_failures = Vec::new();
    let pace = Duration::from_millis(300);
    for i in 1..=50 {
        tokio::time::sleep_until((t0 + Duration::from_millis(500) + pace * (i as u32 - 1)).into()).await;
        if let Err(e) = upload(i).await {
            upload_failures.push(format!("replacement {i} after {:.1?}: {e}", t0.elapsed()));
        }
    }
    let uploads_done = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut per_thread, mut went_back) = (Vec::new(), 0);
    for t in threads {
        let (seen, back) = t.await.unwrap();
        per_thread.push(seen);
        went_back += back;
    }
    let span = t0.elapsed();
    let tls = Seen::merge(per_thread);
    let kept = keepalive.await.unwrap();
    // the newest certificate is the one a client sees now
    let last = (certs[50].serial.clone(), certs[50].not_after.clone());
    let now_served = tokio::task::spawn_blocking(move || handshake_and_get(&connector(), port))
        .await
        .unwrap();
    let (p50, p99, max) = percentiles(tls.ok.clone());
    let (kp50, kp99, _) = percentiles(kept.ok.clone());
    eprintln!(
        "(b) 50 certificate replacements in {uploads_done:.1?} ({} refused); {} fresh TLS connections (handshake + GET) in \
         {span:.1?}, {} failed, {went_back} saw an older certificate than before; handshake+GET p50/p99/max ms \
         {p50:.1}/{p99:.1}/{max:.1}; kept-alive HTTPS {} requests, {} failed, p50/p99 ms {kp50:.1}/{kp99:.1}; served at the end: {:?}",
        upload_failures.len(),
        tls.ok.len() + tls.failed.len(),
        tls.failed.len(),
        kept.ok.len() + kept.failed.len(),
        kept.failed.len(),
        now_served
    );
    let failed = !(upload_failures.is_empty() && tls.failed.is_empty() && kept.failed.is_empty());
    let why = if failed { post_mortem(&mut p) } else { String::new() };
    assert!(upload_failures.is_empty(), "{upload_failures:?}\n{why}");
    assert!(
        tls.failed.is_empty(),
        "{} of {} TLS connections failed, e.g. {:?}\n{why}",
        tls.failed.len(),
        tls.ok.len() + tls.failed.len(),
        &tls.failed[..tls.failed.len().min(5)]
    );
    assert!(
        kept.failed.is_empty(),
        "kept-alive HTTPS requests failed: {:?}\n{why}",
        &kept.failed[..kept.failed.len().min(5)]
    );
    assert_eq!(
        now_served,
        Ok(last),
        "the newest certificate (serial, notAfter) is served at the end"
    );
    assert_eq!(went_back, 0, "a client saw an older certificate after a newer one");
    assert!(tls.ok.len() >= 100, "only {} TLS connections", tls.ok.len());
    assert!(p99 < 2_000.0, "handshake + GET p99 {p99:.1} ms");
}
