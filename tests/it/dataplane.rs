//! Data plane tests (issue 3): routing rules, headers, errors, streaming,
//! TLS by SNI, PROXY protocol, hot reload across instances, graceful stop.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{backend, eventually, Portcullis, Redis};

/// GET through the HTTP listener with `host`; returns (status, headers, JSON-or-text body).
async fn get(p: &Portcullis, host: &str, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    send(p, "GET", host, path, &[]).await
}

async fn send(p: &Portcullis, method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut rb = client.request(method.parse().unwrap(), p.http(path)).header("Host", host);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    (status, h, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn create_route(p: &Portcullis, body: Value) -> String {
    let (s, v) = p.admin("POST", "/api/v1/routes/", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    v["route_id"].as_str().unwrap().to_string()
}

/// Waits until `host` answers `path` from `backend`.
async fn wait_backend(p: &Portcullis, host: &str, path: &str, backend: &str) {
    let ok = eventually(Duration::from_secs(5), || async {
        let (_, _, v) = get(p, host, path).await;
        (v["backend"] == backend).then_some(())
    })
    .await;
    assert!(
        ok.is_some(),
        "{host}{path} never reached {backend}: {:?}",
        get(p, host, path).await.2
    );
}

/// Portcullis with `PROXY_REQUEST_TIMEOUT` set to `timeout`, proxying `host`
/// to a new test backend "A", once traffic for `host` reaches it. The Redis
/// and the backend are returned so they live as long as the test.
async fn proxied_with_timeout(timeout: &str, host: &str) -> (Redis, Portcullis, backend::Backend) {
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("PROXY_REQUEST_TIMEOUT", timeout)]).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": host, "target_url": a.url()})).await;
    wait_backend(&p, host, "/", "A").await;
    (redis, p, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_priority_prefix_regex_method_scope_and_target_type() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (a, b, c) = (backend::start("A").await, backend::start("B").await, backend::start("C").await);
    let a2 = backend::start("A2").await;
    p.create_proxy(json!({"hostname": "app.test", "target_url": a.url()})).await;
    p.create_proxy(json!({"hostname": "two.test", "target_url": a2.url()})).await;
    p.create_proxy(json!({"hostname": "other.test", "target_url": format!("{}/base", c.url())}))
        .await;
    let (s, _) = p
        .admin(
            "POST",
            "/api/v1/services/external",
            Some(json!({"service_name": "svc", "target_url": b.url()})),
        )
        .await;
    assert_eq!(s, 201);
    create_route(
        &p,
        json!({"path_pattern": "/api", "target_type": "port", "target_value": b.port.to_string(), "priority": 10}),
    )
    .await;
    create_route(
        &p,
        json!({"path_pattern": "/api", "target_type": "url", "target_value": c.url(), "priority": 5}),
    )
    .await;
    create_route(
        &p,
        json!({"path_pattern": "/api/special", "target_type": "url", "target_value": format!("{}/base", c.url()),
        "priority": 20, "scope": "proxy", "proxy_hostnames": ["app.test"]}),
    )
    .await;
    create_route(
        &p,
        json!({"path_pattern": "^/items/[0-9]+$", "is_regex": true, "target_type": "service", "target_value": "svc", "priority": 30}),
    )
    .await;
    create_route(
        &p,
        json!({"path_pattern": "/post-only", "methods": ["POST"], "target_type": "hostname", "target_value": "other.test", "priority": 40}),
    )
    .await;
    let off = create_route(
        &p,
        json!({"path_pattern": "/off", "target_type": "port", "target_value": b.port.to_string(), "enabled": false}),
    )
    .await;
    wait_backend(&p, "app.test", "/items/1", "B").await;

    // priority: /api at 10 (B) beats /api at 5 (C); proxy-scoped /api/special at 20 wins on app.test only
    assert_eq!(get(&p, "app.test", "/api/x").await.2["backend"], "B");
    let (_, _, v) = get(&p, "app.test", "/api/special/y?q=1").await;
    assert_eq!(v["backend"], "C");
    assert_eq!(v["uri"], "/base/api/special/y?q=1", "url target joins its path");
    assert_eq!(
        get(&p, "two.test", "/api/special/y").await.2["backend"],
        "B",
        "scope proxy does not leak"
    );
    // regex vs prefix
    assert_eq!(get(&p, "app.test", "/items/42").await.2["backend"], "B");
    assert_eq!(get(&p, "app.test", "/items/abc").await.2["backend"], "A");
    // methods + hostname target (joins other.test's target path)
    let (_, _, v) = send(&p, "POST", "app.test", "/post-only", &[]).await;
    assert_eq!((v["backend"].as_str(), v["path"].as_str()), (Some("C"), Some("/base/post-only")));
    assert_eq!(get(&p, "app.test", "/post-only").await.2["backend"], "A");
    // disabled route never matches; no route -> target_url
    assert_eq!(get(&p, "app.test", "/off").await.2["backend"], "A");
    assert_eq!(get(&p, "app.test", "/").await.2["backend"], "A");
    // route_mode selective / none, disabled_routes
    let (s, _) = p
        .admin("PUT", "/api/v1/proxy/targets/two.test", Some(json!({"route_mode": "none"})))
        .await;
    assert_eq!(s, 200);
    wait_backend(&p, "two.test", "/api/x", "A2").await;
    let (s, _) = p
        .admin(
            "PUT",
            "/api/v1/proxy/targets/two.test",
            Some(json!({"route_mode": "selective", "enabled_routes": [off.clone()]})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = p
        .admin("PUT", &format!("/api/v1/routes/{off}"), Some(json!({"enabled": true})))
        .await;
    assert_eq!(s, 200);
    wait_backend(&p, "two.test", "/off", "B").await;
    assert_eq!(
        get(&p, "two.test", "/api/x").await.2["backend"],
        "A2",
        "selective mode ignores other routes"
    );
}

/// A proxy to `a` with one custom request header (`X-Custom: in`) and one
/// custom response header (`X-Resp: out`).
async fn header_rules_proxy(p: &Portcullis, host: &str, a: &backend::Backend) {
    p.create_proxy(json!({"hostname": host, "target_url": a.url(),
        "custom_headers": {"X-Custom": "in"}, "custom_response_headers": {"X-Resp": "out"}}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_and_strips_forwarding_headers_and_applies_header_rules() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let a = backend::start("A").await;
    header_rules_proxy(&p, "hdr.test", &a).await;
    p.create_proxy(json!({"hostname": "nohost.test", "target_url": a.url(), "preserve_host_header": false}))
        .await;
    wait_backend(&p, "hdr.test", "/", "A").await;
    let forged = [
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Real-IP", "6.6.6.6"),
        ("X-Forwarded-Proto", "gopher"),
        ("X-Forwarded-Host", "evil"),
        ("X-Auth-User", "root"),
        ("X-Auth-Email", "root@evil"),
        ("Forwarded", "for=6.6.6.6"),
        ("X-Forwarded-For", "7.7.7.7"),
        ("X-Auth-User", "admin"),
        ("Accept", "text/plain"),
        ("Accept", "application/json"),
    ];
    let (s, h, v) = send(&p, "GET", "hdr.test", "/h", &forged).await;
    assert_eq!(s, 200);
    let hv = &v["headers"];
    assert_eq!(hv["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_eq!(hv["x-real-ip"], json!(["127.0.0.1"]));
    assert_eq!(hv["x-forwarded-proto"], json!(["http"]));
    assert_eq!(hv["x-forwarded-host"], json!(["hdr.test"]));
    assert!(
        hv.get("x-auth-user").is_none() && hv.get("x-auth-email").is_none() && hv.get("forwarded").is_none(),
        "{hv}"
    );
    assert_eq!(hv["x-custom"], json!(["in"]));
    assert_eq!(
        hv["accept"],
        json!(["text/plain", "application/json"]),
        "repeated client headers pass whole"
    );
    assert_eq!(hv["host"], json!(["hdr.test"]), "preserve_host_header defaults to true");
    assert_eq!(h.get("x-resp").unwrap(), "out");
    assert_eq!(
        h.get("content-type").unwrap(),
        "application/json",
        "the backend's headers pass beside ours"
    );
    wait_backend(&p, "nohost.test", "/", "A").await;
    let (_, _, v) = get(&p, "nohost.test", "/").await;
    assert_eq!(v["headers"]["host"], json!([format!("127.0.0.1:{}", a.port)]));
}

/// Our headers reach an HTTP/2 client and its upstream as they reach HTTP/1
/// ones. Over HTTP/1 they are written as header lines after the message's
/// own headers; over h2 the vendored pingora adds the same lines to the
/// header maps (vendor/pingora-proxy/PATCHED.md, "Header lines").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_rules_hold_for_http2_clients() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let a = backend::start("A").await;
    header_rules_proxy(&p, "h2hdr.test", &a).await;
    wait_backend(&p, "h2hdr.test", "/", "A").await;
    let out = std::process::Command::new("curl")
        .args(["-sSk", "--http2", "--max-time", "30", "-D", "-", "-w", "\n%{http_version}"])
        .args(["--resolve", &format!("h2hdr.test:{}:127.0.0.1", p.https_port)])
        .args([
            "-H",
            "X-Forwarded-For: 6.6.6.6",
            "-H",
            "X_Auth_User: root",
            "-H",
            "X-Custom: forged",
        ])
        .arg(format!("https://h2hdr.test:{}/h", p.https_port))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response head: {text}"));
    let (body, version) = rest.rsplit_once('\n').unwrap();
    assert_eq!(version, "2", "not HTTP/2: {text}");
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(": "))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(header("x-resp"), ["out"], "{head}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{text}"));
    let hv = &v["headers"];
    assert_eq!(hv["x-forwarded-for"], json!(["127.0.0.1"]), "{hv}");
    assert_eq!(hv["x-real-ip"], json!(["127.0.0.1"]), "{hv}");
    assert_eq!(hv["x-forwarded-proto"], json!(["https"]), "{hv}");
    assert_eq!(hv["x-forwarded-host"], json!([format!("h2hdr.test:{}", p.https_port)]), "{hv}");
    assert_eq!(hv["x-custom"], json!(["in"]), "our custom header replaces the client's: {hv}");
    assert!(hv.get("x-auth-user").is_none() && hv.get("x_auth_user").is_none(), "{hv}");
    let id = header("x-request-id");
    assert_eq!(id.len(), 1, "{head}");
    assert_eq!(hv["x-request-id"], json!(id), "the client and the upstream see one request id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_404_503_308_502_504() {
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("PROXY_REQUEST_TIMEOUT", "1")]).await;
    let a = backend::start("A").await;
    let (_hold, closed) = crate::harness::refused_port();
    p.create_proxy(json!({"hostname": "off.test", "target_url": a.url(), "enabled": false}))
        .await;
    p.create_proxy(json!({"hostname": "tls-only.test", "target_url": a.url(), "enable_http": false}))
        .await;
    p.create_proxy(json!({"hostname": "dead.test", "target_url": format!("http://127.0.0.1:{closed}")}))
        .await;
    p.create_proxy(json!({"hostname": "slow.test", "target_url": a.url()})).await;
    wait_backend(&p, "slow.test", "/", "A").await;

    let (s, _, body) = get(&p, "nowhere.test", "/").await;
    assert_eq!(s, 404);
    assert!(body.as_str().unwrap().contains("nowhere.test"));
    assert_eq!(get(&p, "off.test", "/").await.0, 503);
    let (s, h, _) = get(&p, "tls-only.test", "/x?y=1").await;
    assert_eq!(s, 308);
    assert_eq!(h["location"], format!("https://tls-only.test:{}/x?y=1", p.https_port));
    let (s, _, body) = get(&p, "dead.test", "/").await;
    assert_eq!(s, 502, "{body}");
    let t = Instant::now();
    let (s, _, _) = get(&p, "slow.test", "/slow?ms=3000").await;
    assert_eq!(s, 504);
    assert!(t.elapsed() < Duration::from_millis(2900));
    // The failure reaches the access log (one JSON object per request, the
    // documented fields) with its cause.
    let logged = eventually(Duration::from_secs(10), || async {
        p.proc
            .log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|r| r["host"] == "dead.test" && r["status"] == 502)
    })
    .await
    .expect("the 502 is in the access log");
    assert!(logged["reason"].as_str().is_some_and(|r| !r.is_empty()), "{logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_sse_chunked_websocket_and_large_uploads() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "stream.test", "target_url": a.url()})).await;
    wait_backend(&p, "stream.test", "/", "A").await;

    // SSE: each event within 100 ms of the upstream writing it
    let client = reqwest::Client::new();
    let r = client.get(p.http("/sse")).header("Host", "stream.test").send().await.unwrap();
    let mut body = r.bytes_stream();
    let mut buf = String::new();
    let mut seen = 0;
    while let Some(chunk) = body.next().await {
        let arrived = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(i) = buf.find("\n\n") {
            let ev: String = buf.drain(..i + 2).collect();
            let data = ev.trim().trim_start_matches("data: ");
            let sent: u128 = data.split(' ').nth(1).unwrap().parse().unwrap();
            assert!(arrived - sent < 100, "event {data} took {} ms", arrived - sent);
            seen += 1;
        }
    }
    assert_eq!(seen, 5);

    // chunked
    let r = client.get(p.http("/chunked")).header("Host", "stream.test").send().await.unwrap();
    assert_eq!(r.headers().get("transfer-encoding").map(|v| v.to_str().unwrap()), Some("chunked"));
    assert_eq!(r.text().await.unwrap().lines().count(), 10);

    // WebSocket: 100 echoes
    let mut req = format!("ws://127.0.0.1:{}/ws", p.http_port).into_client_request().unwrap();
    req.headers_mut().insert("Host", "stream.test".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    // On failure show the proxy's last log lines.
    let fail = |what: String| -> ! {
        let log = p.proc.log_text();
        let tail: Vec<&str> = log.lines().filter(|l| !l.contains("snapshot rebuilt")).collect();
        panic!("{what}\n{}", tail[tail.len().saturating_sub(40)..].join("\n"));
    };
    for i in 0..100 {
        if let Err(e) = ws.send(Message::text(format!("msg {i}"))).await {
            fail(format!("send {i}: {e:?}"));
        }
        match ws.next().await {
            Some(Ok(back)) => assert_eq!(back.into_text().unwrap().as_str(), format!("msg {i}")),
            other => fail(format!("echo {i}: {other:?}")),
        }
    }
    // The close handshake must pass through too.
    if let Err(e) = ws.close(None).await {
        fail(format!("close: {e:?}"));
    }

    // 200 MB upload streams with flat memory
    const MB: usize = 1 << 20;
    let chunks = futures::stream::iter((0..200).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; MB]))));
    let r = client
        .post(p.http("/upload"))
        .header("Host", "stream.test")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["body_len"], 200 * MB);
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.proc.pid())).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(hwm_kb < 150 * 1024, "peak RSS {hwm_kb} kB: the upload was buffered");
}

/// pingora #946 (patched in vendor/pingora-proxy): a tunnel was torn down right
/// after the 101 when the upstream's 101 was read before the upgrade request's
/// empty body; the client got EOF at its first frame. The backend here writes
/// its 101 before it reads the request, so the proxy always finds the 101
/// ready with the request's body end; unpatched, about half the sessions broke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_tunnels_survive_a_fast_101() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let a = backend::start_eager_websocket().await;
    p.create_proxy(json!({"hostname": "ws.test", "target_url": a.url()})).await;

    for n in 0..20 {
        let mut req = format!("ws://127.0.0.1:{}/ws", p.http_port).into_client_request().unwrap();
        req.headers_mut().insert("Host", "ws.test".parse().unwrap());
        req.headers_mut()
            .insert("Sec-WebSocket-Key", backend::EAGER_WS_KEY.parse().unwrap());
        // The snapshot may not carry the new proxy yet: retry the handshake briefly.
        let connect = || tokio_tungstenite::connect_async(req.clone());
        let mut ws = match eventually(Duration::from_secs(5), || async { connect().await.ok() }).await {
            Some((ws, _)) => ws,
            None => panic!("session {n}: no WebSocket handshake through the proxy"),
        };
        ws.send(Message::text(format!("hello {n}"))).await.unwrap();
        match ws.next().await {
            Some(Ok(m)) => assert_eq!(m.into_text().unwrap().as_str(), format!("hello {n}")),
            other => panic!("session {n}: no echo after the 101: {other:?}"),
        }
        ws.close(None).await.unwrap();
    }
}

/// `PROXY_REQUEST_TIMEOUT` bounds each wait for the upstream, not the
/// exchange: an SSE feed longer than the timeout passes while its events come
/// more often; a WebSocket left silent longer than it is closed (as nginx's
/// `proxy_read_timeout` does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_timeout_bounds_silence_not_stream_length() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let (_redis, p, _a) = proxied_with_timeout("1", "quiet.test").await;

    // 5 events 300 ms apart: 1.2 s in all, never 1 s without a byte.
    let r = reqwest::Client::new()
        .get(p.http("/sse"))
        .header("Host", "quiet.test")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert_eq!(body.matches("data: ").count(), 5, "{body}");

    let mut req = format!("ws://127.0.0.1:{}/ws", p.http_port).into_client_request().unwrap();
    req.headers_mut().insert("Host", "quiet.test".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(), "before");
    let t = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a silent WebSocket stayed open");
    assert!(!matches!(end, Some(Ok(Message::Text(_)))), "{end:?}");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

/// The silence bound runs only while portcullis waits for the upstream: a
/// client that reads slowly, an upload that takes longer than the bound, and
/// earlier exchanges on the same connection and thread (whose timers are
/// reused) never end a request early; a silent upstream still gets 504 on
/// time, and the next request on the same connection is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_timeout_spares_slow_clients_and_long_uploads() {
    use futures::StreamExt;

    let (_redis, p, _a) = proxied_with_timeout("1", "patient.test").await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(p.http(path)).header("Host", "patient.test").send();

    // 32 MiB, more than the socket buffers hold: the client pauses 1.5 s after the
    // first chunk, so the proxy waits on the client, not the upstream.
    let mut r = get("/big?mb=32").await.unwrap();
    assert_eq!(r.status(), 200);
    let mut got = r.chunk().await.unwrap().map_or(0, |c| c.len());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    while let Some(c) = r.chunk().await.unwrap() {
        got += c.len();
    }
    assert_eq!(got, 32 << 20);

    // An upload of 6 chunks 300 ms apart (1.8 s); the upstream answers at its end.
    let chunks = futures::stream::iter(0..6).then(|_| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok::<_, std::io::Error>(vec![b'u'; 1000])
    });
    let r = client
        .post(p.http("/upload"))
        .header("Host", "patient.test")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["body_len"], 6000);

    // Timers are reused across exchanges: none fires early or late.
    for _ in 0..3 {
        let r = get("/").await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        let r = get("/slow?ms=600").await.unwrap();
        assert_eq!(r.text().await.unwrap(), "slow done");
        let t = Instant::now();
        let r = get("/slow?ms=2500").await.unwrap();
        assert_eq!(r.status(), 504);
        let waited = t.elapsed();
        // The promise is "not before the 1 s bound"; the upper bound only has to
        // tell the timeout from the backend's own answer at 2.5 s, with room for
        // a loaded 2-core machine.
        assert!(
            waited >= Duration::from_millis(950) && waited < Duration::from_millis(2400),
            "504 after {waited:?}"
        );
    }
    assert_eq!(get("/").await.unwrap().status(), 200);
}

/// An upstream that accepts a connection but reads none of a large request
/// body and never answers is bounded too (nginx's `proxy_send_timeout`): the
/// upload ends with a 504 (or the client sees the connection end) within a
/// few windows, instead of hanging for as long as the client waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_reads_no_body_is_timed_out() {
    use futures::StreamExt;

    // Accepts, then holds every connection without reading from it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("PROXY_REQUEST_TIMEOUT", "1")]).await;
    p.create_proxy(json!({"hostname": "deaf.test", "target_url": upstream})).await;
    // A body-less request: the upstream never answers, so 504 after the window.
    eventually(Duration::from_secs(10), || async {
        (get(&p, "deaf.test", "/").await.0 == 504).then_some(())
    })
    .await
    .expect("deaf.test never answered 504");

    // 256 MiB offered in 64 KiB chunks: far more than the socket buffers hold.
    let chunks = futures::stream::iter(0..4096).map(|_| Ok::<_, std::io::Error>(vec![b'u'; 64 * 1024]));
    let t = Instant::now();
    let sent = tokio::time::timeout(
        Duration::from_secs(20),
        reqwest::Client::new()
            .post(p.http("/upload"))
            .header("Host", "deaf.test")
            .body(reqwest::Body::wrap_stream(chunks))
            .send(),
    )
    .await
    .expect("the upload to a deaf upstream was not ended");
    let waited = t.elapsed();
    if let Ok(r) = sent {
        assert_eq!(r.status(), 504);
    }
    assert!(waited < Duration::from_secs(8), "ended after {waited:?}");
    let log = p.proc.log_text();
    assert!(log.contains("while writing the request body upstream"), "{log}");
}

/// A request timeout too large for milliseconds in 64 bits means "no
/// timeout", not an overflowed deadline that has already passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_request_timeout_does_not_overflow() {
    let (_redis, p, _a) = proxied_with_timeout(&u64::MAX.to_string(), "forever.test").await;
    let (s, _, body) = get(&p, "forever.test", "/slow?ms=300").await;
    assert_eq!((s, body), (200, Value::String("slow done".into())));
}

/// The streaming rules hold for HTTP/2 clients too (browsers reach HTTPS
/// proxies over h2): SSE events arrive as the upstream writes them, a chunked
/// response streams, and a 50 MB upload reaches the upstream whole. curl is
/// the client (`--http2`, ALPN h2 on the HTTPS listener).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_http2_too() {
    use std::io::BufRead;

    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "h2.test", "target_url": a.url()})).await;
    wait_backend(&p, "h2.test", "/", "A").await;
    let base = format!("https://h2.test:{}", p.https_port);
    let resolve = format!("h2.test:{}:127.0.0.1", p.https_port);
    let curl = move |args: Vec<String>| {
        let mut c = std::process::Command::new("curl");
        c.args(["-sSk", "--http2", "--max-time", "30", "--resolve", &resolve]).args(args);
        c
    };

    // SSE: each event within 100 ms of the upstream writing it
    let mut child = curl(vec!["-N".into(), format!("{base}/sse")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl runs");
    let out = child.stdout.take().unwrap();
    let late = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(out).lines() {
            let line = line.unwrap();
            let Some(data) = line.strip_prefix("data: ") else { continue };
            let arrived = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            let sent: u128 = data.split(' ').nth(1).unwrap().parse().unwrap();
            seen.push(arrived - sent);
        }
        seen
    })
    .await
    .unwrap();
    child.wait().unwrap();
    assert_eq!(late.len(), 5, "{late:?}");
    assert!(late.iter().all(|ms| *ms < 100), "event delays over h2 (ms): {late:?}");

    // chunked response, and the protocol really was h2
    let out = curl(vec!["-w".into(), "\n%{http_version}".into(), format!("{base}/chunked")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(text.lines().filter(|l| l.starts_with("chunk-")).count(), 10, "{text}");
    assert!(text.ends_with("\n2"), "not HTTP/2: {text}");

    // 50 MB upload
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, vec![b'x'; 50 << 20]).unwrap();
    let out = curl(vec!["-T".into(), file.display().to_string(), format!("{base}/upload")])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["body_len"], json!(50 << 20), "{}", String::from_utf8_lossy(&out.stderr));
}

/// An HTTP/2 client that ends an upload of unknown length with an empty DATA
/// frame (curl `-T -` does) must give the HTTP/1.1 upstream one chunked
/// terminator, not two: pingora wrote `0\r\n\r\n` for the empty frame and then
/// again to finish the body (pingora #935), and the upstream read the second
/// one as the start of another request on a pooled connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_upload_ending_in_an_empty_frame_is_terminated_once() {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // A raw HTTP/1.1 upstream that keeps every byte each connection sent.
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let log = seen.clone();
    let server = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let i = {
                    let mut l = log.lock().unwrap();
                    l.push(Vec::new());
                    l.len() - 1
                };
                let mut answered = 0;
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = sock.read(&mut buf).await {
                    let all = {
                        let mut l = log.lock().unwrap();
                        l[i].extend_from_slice(&buf[..n]);
                        l[i].clone()
                    };
                    // answer each complete request: a body-less one, or a chunked one at its terminator
                    let text = String::from_utf8_lossy(&all).to_string();
                    let complete = text.matches("\r\n\r\n").count();
                    while answered < complete.min(if text.contains("chunked") { 1 } else { complete }) {
                        answered += 1;
                        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                    }
                }
            });
        }
    });

    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    p.create_proxy(json!({"hostname": "up.test", "target_url": upstream})).await;
    let url = format!("https://up.test:{}/upload", p.https_port);
    let resolve = format!("up.test:{}:127.0.0.1", p.https_port);
    let curl = |body: &'static [u8]| {
        let (url, resolve) = (url.clone(), resolve.clone());
        tokio::task::spawn_blocking(move || {
            let mut c = std::process::Command::new("curl")
                .args([
                    "-sk",
                    "--http2",
                    "--max-time",
                    "10",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_version} %{http_code}",
                ])
                .args(["--resolve", &resolve, "-T", "-", &url])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("curl runs");
            std::io::Write::write_all(c.stdin.as_mut().unwrap(), body).unwrap();
            drop(c.stdin.take());
            String::from_utf8_lossy(&c.wait_with_output().unwrap().stdout).to_string()
        })
    };
    let ok = eventually(Duration::from_secs(5), || async {
        (curl(b"warm-up").await.unwrap() == "2 200").then_some(())
    })
    .await;
    assert!(ok.is_some(), "no h2 upload through the proxy: {}", curl(b"warm-up").await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().unwrap().clone();
    server.abort();
    // Every upload reached the upstream chunked (an h2 body of unknown
    // length); without one such connection the check below proves nothing.
    let chunked: Vec<String> = seen
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .filter(|t| t.contains("chunked"))
        .collect();
    assert!(!chunked.is_empty(), "no chunked upload reached the upstream: {seen:?}");
    for text in &chunked {
        assert_eq!(
            text.matches("0\r\n\r\n").count(),
            1,
            "one terminator per upload; the upstream got:\n{text:?}"
        );
    }
    assert!(chunked.iter().any(|t| t.contains("warm-up")), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_listener_takes_the_client_address_from_the_header() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "pp.test", "target_url": a.url()})).await;
    wait_backend(&p, "pp.test", "/", "A").await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", p.pp_port)).await.unwrap();
    s.write_all(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\nGET /who HTTP/1.1\r\nHost: pp.test\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains(r#""x-forwarded-for":["203.0.113.7"]"#), "{out}");
    // no header: the connection is closed without a response
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", p.pp_port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: pp.test\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "the connection was held open instead of closed");
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_hot_reload_each_other_within_a_second() {
    let redis = Redis::start();
    let (pa, pb) = (Portcullis::start(&redis).await, Portcullis::start(&redis).await);
    let a = backend::start("A").await;
    let t = Instant::now();
    pa.create_proxy(json!({"hostname": "hot.test", "target_url": a.url()})).await;
    let seen = eventually(Duration::from_secs(1), || async {
        (get(&pb, "hot.test", "/").await.0 == 200).then_some(())
    })
    .await;
    assert!(seen.is_some(), "B did not route within 1 s");
    let (s, _) = pb.admin("DELETE", "/api/v1/proxy/targets/hot.test", None).await;
    assert_eq!(s, 200);
    let gone = eventually(Duration::from_secs(1), || async {
        (get(&pa, "hot.test", "/").await.0 == 404).then_some(())
    })
    .await;
    assert!(gone.is_some(), "A still routes 1 s after the delete on B");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_change_event_heals_by_reconcile() {
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("RECONCILE_INTERVAL", "1")]).await;
    let a = backend::start("A").await;
    // write the record directly, with no event, as if the pub/sub message was
    // lost: the record and its key-directory entry (README, "Architecture"),
    // as every writer's batch does
    let proxy = json!({"hostname": "lost.test", "target_url": a.url(), "owner_token_hash": "sha256:x"});
    redis.cli(&["SET", "proxy:lost.test", &proxy.to_string()]);
    redis.cli(&["ZADD", "portcullis:keys", "0", "proxy:lost.test"]);
    let seen = eventually(Duration::from_secs(3), || async {
        (get(&p, "lost.test", "/").await.0 == 200).then_some(())
    })
    .await;
    assert!(seen.is_some(), "reconcile did not pick up the record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let redis = Redis::start();
    let mut p = Portcullis::start_with(&redis, &[("SHUTDOWN_GRACE_PERIOD", "5")]).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "slow.test", "target_url": a.url()})).await;
    wait_backend(&p, "slow.test", "/", "A").await;
    let url = p.http("/slow?ms=3000");
    let inflight = tokio::spawn(async move {
        let r = reqwest::Client::new().get(url).header("Host", "slow.test").send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    // Terminate only once the request reached the backend through the proxy.
    // A fixed sleep raced the connect on a loaded machine, and the proxy's
    // in-flight gauge still counted the `wait_backend` request until its
    // logging phase, so the stop could close the listener before the connect.
    let in_flight = eventually(Duration::from_secs(10), || async { (a.slow_begun() >= 1).then_some(()) }).await;
    assert!(in_flight.is_some(), "the slow request never reached the backend through the proxy");
    p.proc.terminate();
    let (s, body) = inflight.await.unwrap();
    assert_eq!((s, body.as_str()), (200, "slow done"));
    let code = tokio::task::spawn_blocking(move || p.proc.wait_exit(Duration::from_secs(15)))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_host_and_status_class() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "m.test", "target_url": a.url()})).await;
    wait_backend(&p, "m.test", "/", "A").await;
    get(&p, "m.test", "/status?code=503").await;
    // A request is counted in pingora's logging phase, after its response went out.
    let five_xx = r#"portcullis_requests_total{host="m.test",status_class="5xx"} 1"#;
    let metrics = || async { p.client.get(p.api("/metrics")).send().await.ok()?.text().await.ok() };
    let counted = eventually(Duration::from_secs(5), || async { metrics().await.filter(|t| t.contains(five_xx)) }).await;
    let text = counted.unwrap_or_default();
    for needle in [
        r#"portcullis_requests_total{host="m.test",status_class="2xx"}"#,
        r#"portcullis_requests_total{host="m.test",status_class="5xx"} 1"#,
        "portcullis_upstream_response_seconds_bucket",
        "portcullis_active_downstream_requests",
        "portcullis_snapshot_rebuilds_total",
        "portcullis_snapshot_built_timestamp_seconds",
        "portcullis_tls_handshakes_total",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
}

/// A certificate for `names` signed by itself, with a random serial: (cert PEM, key PEM, serial hex).
pub fn make_cert(names: &[&str]) -> (String, String, String) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509NameBuilder, X509};
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", names[0]).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_slice(&rand::random::<[u8; 8]>()).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap()).unwrap();
    let mut san = SubjectAlternativeName::new();
    for n in names {
        san.dns(n);
    }
    let san = san.build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    (
        String::from_utf8(cert.to_pem().unwrap()).unwrap(),
        String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        serial.to_hex_str().unwrap().to_string(),
    )
}

/// Handshakes with `sni` and returns (leaf serial hex, leaf CN, negotiated ALPN).
fn handshake(port: u16, sni: &str) -> (String, String, Option<String>) {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_alpn_protos(b"\x02h2\x08http/1.1").unwrap();
    let conn = b.build();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let s = conn.configure().unwrap().verify_hostname(false).connect(sni, tcp).unwrap();
    let cert = s.ssl().peer_certificate().unwrap();
    let serial = cert.serial_number().to_bn().unwrap().to_hex_str().unwrap().to_string();
    let cn = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .unwrap()
        .data()
        .to_string()
        .unwrap();
    let alpn = s.ssl().selected_alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
    (serial, cn, alpn)
}

async fn upload(p: &Portcullis, name: &str, cert: &str, key: &str) {
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": name, "certificate_pem": cert, "private_key_pem": key})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_picks_certificates_by_sni_and_swaps_them_live() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "exact.test", "target_url": a.url()})).await;
    let (c1, k1, s1) = make_cert(&["exact.test"]);
    let (cw, kw, sw) = make_cert(&["*.wild.test"]);
    upload(&p, "exact", &c1, &k1).await;
    upload(&p, "wild", &cw, &kw).await;
    let port = p.https_port;
    let wait_serial = |sni: &'static str, want: String| async move {
        eventually(Duration::from_secs(2), || {
            let want = want.clone();
            async move {
                tokio::task::spawn_blocking(move || handshake(port, sni))
                    .await
                    .ok()
                    .filter(|h| h.0 == want)
            }
        })
        .await
    };
    let h = wait_serial("exact.test", s1.clone()).await.expect("exact certificate served");
    assert_eq!(h.2.as_deref(), Some("h2"), "ALPN h2 offered");
    wait_serial("sub.wild.test", sw.clone()).await.expect("wildcard certificate served");
    let (_, cn, _) = tokio::task::spawn_blocking(move || handshake(port, "unknown.test")).await.unwrap();
    assert_eq!(cn, "localhost", "self-signed fallback for SELF_SIGNED_CN");

    // HTTPS request over h2 through the proxy
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("exact.test", format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let r = client.get(format!("https://exact.test:{port}/tls")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-forwarded-proto"], json!(["https"]));

    // replacement: the next handshake shows the new serial, and no handshake fails meanwhile
    let (c2, k2, s2) = make_cert(&["exact.test"]);
    let hammer = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut n = 0;
        while t.elapsed() < Duration::from_millis(1500) {
            handshake(port, "exact.test");
            n += 1;
        }
        n
    });
    upload(&p, "exact", &c2, &k2).await;
    wait_serial("exact.test", s2).await.expect("replacement served");
    assert!(hammer.await.unwrap() > 0);
    // deletion falls back to the self-signed certificate
    let (s, _) = p.admin("DELETE", "/api/v1/certificates/exact", None).await;
    assert_eq!(s, 200);
    let fell_back = eventually(Duration::from_secs(2), || async move {
        tokio::task::spawn_blocking(move || handshake(port, "exact.test"))
            .await
            .ok()
            .filter(|h| h.1 == "localhost")
    })
    .await;
    assert!(fell_back.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tls_is_verified_unless_the_proxy_opts_out() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let a = backend::start("A").await;
    // the proxy's own HTTPS listener (self-signed) is the TLS backend, serving host 127.0.0.1
    p.create_proxy(json!({"hostname": "127.0.0.1", "target_url": a.url()})).await;
    let tls_target = format!("https://127.0.0.1:{}", p.https_port);
    p.create_proxy(
        json!({"hostname": "insecure.test", "target_url": tls_target, "preserve_host_header": false, "verify_upstream_tls": false}),
    )
    .await;
    p.create_proxy(json!({"hostname": "strict.test", "target_url": tls_target, "preserve_host_header": false}))
        .await;
    wait_backend(&p, "insecure.test", "/via-tls", "A").await;
    let (_, _, v) = get(&p, "insecure.test", "/via-tls").await;
    assert_eq!(v["headers"]["x-forwarded-proto"], json!(["https"]), "second hop was TLS");
    assert_eq!(get(&p, "strict.test", "/").await.0, 502, "self-signed upstream rejected by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_in_front_speaks_proxy_protocol_v1_and_v2() {
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "lb.test", "target_url": a.url()})).await;
    wait_backend(&p, "lb.test", "/", "A").await;
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (crate::harness::free_port(), crate::harness::free_port());
    let cfg = format!(
        "global\n  maxconn 100\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 10s\n  timeout server 10s\n\
         frontend f1\n  bind 127.0.0.1:{v1}\n  default_backend b1\nfrontend f2\n  bind 127.0.0.1:{v2}\n  default_backend b2\n\
         backend b1\n  server s1 127.0.0.1:{pp} send-proxy\nbackend b2\n  server s2 127.0.0.1:{pp} send-proxy-v2\n",
        pp = p.pp_port
    );
    std::fs::write(dir.path().join("haproxy.cfg"), cfg).unwrap();
    let mut hap = std::process::Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(dir.path().join("haproxy.cfg"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("haproxy must be installed (just test installs it)");
    for port in [v1, v2] {
        let url = format!("http://127.0.0.1:{port}/through-lb");
        let got = eventually(Duration::from_secs(5), || {
            let url = url.clone();
            async move {
                // From 127.0.0.2: the PROXY header then carries an address
                // that differs from haproxy's own connection (127.0.0.1).
                let client = reqwest::Client::builder()
                    .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
                    .build()
                    .ok()?;
                let r = client.get(url).header("Host", "lb.test").send().await.ok()?;
                let v: Value = r.json().await.ok()?;
                (v["backend"] == "A").then_some(v)
            }
        })
        .await;
        let v = got.unwrap_or_else(|| panic!("no answer through haproxy on {port}"));
        assert_eq!(
            v["headers"]["x-forwarded-for"],
            json!(["127.0.0.2"]),
            "the client address from the PROXY header, not haproxy's"
        );
    }
    let _ = hap.kill();
    let _ = hap.wait();
}
