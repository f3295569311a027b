//! Issue 16 item 4: a proxy's MCP policy at the edge. A tool call the
//! policy refuses gets 403 with a JSON-RPC error and never reaches the
//! backend; an allowed one passes, its SSE stream unbuffered.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::sse::{Event, Sse};
use axum::response::IntoResponse;
use axum::routing::post;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::harness::{eventually, Portcullis, Redis};

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// An MCP backend stand-in: counts every request and answers POST /mcp
/// with three SSE events 300 ms apart, each carrying when it was written.
async fn counting_sse_backend() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new()
        .route(
            "/mcp",
            post(|| async {
                let s = futures::stream::unfold(0u32, |i| async move {
                    if i >= 3 {
                        return None;
                    }
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    Some((
                        Ok::<_, std::convert::Infallible>(Event::default().data(format!("{i} {}", now_ms()))),
                        i + 1,
                    ))
                });
                ([("X-Accel-Buffering", "no")], Sse::new(s)).into_response()
            }),
        )
        .layer(axum::middleware::from_fn(move |req, next: axum::middleware::Next| {
            let c = counter.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                next.run(req).await
            }
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hits)
}

async fn token(p: &Portcullis, scope: &str) -> String {
    let body = json!({"username": "alice", "scope": scope, "aud": ["https://pol.test/mcp"]});
    let (s, v) = p.admin("POST", "/api/v1/oauth/test-token", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

async fn call(p: &Portcullis, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = reqwest::Client::new()
        .post(p.http("/mcp"))
        .header("Host", "pol.test")
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_everything"}}));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_tool_call_never_reaches_the_backend_and_an_allowed_one_streams() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (port, hits) = counting_sse_backend().await;
    p.create_proxy(json!({
        "hostname": "pol.test", "target_url": format!("http://127.0.0.1:{port}"), "enable_https": false,
        "auth_enabled": true, "resource_endpoint": "/mcp", "resource_scopes": ["mcp:read", "mcp:admin"],
        "mcp_policy": [
            {"method": "tools/call", "name": "delete_*", "allow_scopes": ["mcp:admin"]},
            {"method": "tools/call", "name": "run_*", "allow_scopes": []},
        ],
    }))
    .await;
    let reader = token(&p, "mcp:read").await;
    let admin = token(&p, "mcp:read mcp:admin").await;
    let named = [("Mcp-Method", "tools/call"), ("Mcp-Name", "delete_everything")];

    // the snapshot has the proxy once a policy refusal answers
    let refused = eventually(Duration::from_secs(5), || async {
        let r = call(&p, &reader, &named).await;
        (r.status() == 403).then_some(r)
    })
    .await
    .expect("the policy never refused the call");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], -32003);
    assert!(body["error"]["message"].as_str().unwrap().contains("mcp:admin"), "{body}");
    // without the headers the call cannot be judged: refused too
    assert_eq!(call(&p, &admin, &[]).await.status(), 403);
    assert_eq!(call(&p, &admin, &[("Mcp-Method", "tools/call")]).await.status(), 403);
    // a rule allowing nobody
    let run = [("Mcp-Method", "tools/call"), ("Mcp-Name", "run_command")];
    assert_eq!(call(&p, &admin, &run).await.status(), 403);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a refused request reached the backend");

    // allowed: the admin scope may delete; the stream arrives event by event
    let r = call(&p, &admin, &named).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("x-accel-buffering").map(|v| v.to_str().unwrap()), Some("no"));
    let mut stream = r.bytes_stream();
    let (mut buf, mut seen) = (String::new(), 0);
    while let Some(chunk) = stream.next().await {
        let arrived = now_ms();
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(i) = buf.find("\n\n") {
            let ev: String = buf.drain(..i + 2).collect();
            let sent: u128 = ev.trim().trim_start_matches("data: ").split(' ').nth(1).unwrap().parse().unwrap();
            assert!(arrived - sent < 250, "event {ev:?} held back {} ms", arrived - sent);
            seen += 1;
        }
    }
    assert_eq!(seen, 3);
    // a call no rule names passes for any valid token
    let other = call(&p, &reader, &[("Mcp-Method", "tools/call"), ("Mcp-Name", "list_things")]).await;
    assert_eq!(other.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // a bad policy is refused with the field named
    let (s, v) = p
        .admin(
            "PUT",
            "/api/v1/proxy/targets/pol.test",
            Some(json!({"mcp_policy": [{"method": "tools call", "allow_scopes": []}]})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["field"], "mcp_policy[0].method", "{v}");
}

/// The value of one sample line (`name{labels} value`) in `text`, 0 when absent.
fn sample(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_traffic_is_counted_per_method_and_policy_named_tool_with_bounded_labels() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (port, hits) = counting_sse_backend().await;
    p.create_proxy(json!({
        "hostname": "pol.test", "target_url": format!("http://127.0.0.1:{port}"), "enable_https": false,
        "auth_enabled": true, "resource_endpoint": "/mcp", "resource_scopes": ["mcp:read", "mcp:admin"],
        "mcp_policy": [{"method": "tools/call", "name": "delete_*", "allow_scopes": ["mcp:admin"]}],
    }))
    .await;
    let reader = token(&p, "mcp:read").await;
    let named = [("Mcp-Method", "tools/call"), ("Mcp-Name", "delete_everything")];
    let refused = eventually(Duration::from_secs(5), || async {
        (call(&p, &reader, &named).await.status() == 403).then_some(())
    })
    .await;
    assert!(refused.is_some(), "the policy never refused the call");
    // invented tool and method names: allowed (no rule), but they add no series
    for i in 0..25 {
        let name = format!("made_up_{i}");
        let r = call(&p, &reader, &[("Mcp-Method", "tools/call"), ("Mcp-Name", name.as_str())]).await;
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
    }
    let r = call(&p, &reader, &[("Mcp-Method", "x/evil")]).await;
    let _ = r.bytes().await;
    assert_eq!(hits.load(Ordering::SeqCst), 26);
    let text = p.metrics().await;
    let series: Vec<&str> = text.lines().filter(|l| l.starts_with("portcullis_mcp_requests_total{")).collect();
    assert!(series.iter().all(|l| !l.contains("made_up")), "{series:?}");
    let labels = |m: &str, t: &str, c: &str| {
        format!("portcullis_mcp_requests_total{{host=\"pol.test\",method=\"{m}\",status_class=\"{c}\",tool=\"{t}\"}}")
    };
    assert!(sample(&text, &labels("tools/call", "delete_*", "4xx")) >= 1.0, "{series:?}");
    assert_eq!(sample(&text, &labels("tools/call", "other", "2xx")), 25.0, "{series:?}");
    assert!(
        series.len() <= 4,
        "one series per method, policy-named tool and status class: {series:?}"
    );
    let count = r#"portcullis_mcp_request_duration_seconds_count{host="pol.test",method="tools/call",tool="other"}"#;
    assert_eq!(sample(&text, count), 25.0, "{text}");
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed (the prometheus package; scripts/test.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, text.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
}

/// What a raw-socket backend received: each request's head and body bytes.
type Received = Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// An HTTP/1.1 backend on a raw socket recording every request head and
/// body exactly (Content-Length framing, as pingora forwards a read body)
/// and answering `200 ok`.
async fn recording_backend() -> (u16, Received) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Received = Arc::default();
    let record = got.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = crate::harness::raw::find(&buf, b"\r\n\r\n") else {
                        let mut chunk = [0u8; 8192];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let mut chunk = [0u8; 8192];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    record.lock().unwrap().push((head, body));
                    buf.drain(..end + 4 + len);
                    if sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, got)
}

async fn post_body(p: &Portcullis, token: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> reqwest::StatusCode {
    let mut rb = reqwest::Client::new()
        .post(p.http("/mcp"))
        .header("Host", "insp.test")
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let _ = r.bytes().await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_clients_are_judged_by_their_body_which_is_forwarded_intact() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (port, got) = recording_backend().await;
    p.create_proxy(json!({
        "hostname": "insp.test", "target_url": format!("http://127.0.0.1:{port}"), "enable_https": false,
        "auth_enabled": true, "resource_endpoint": "/mcp", "resource_scopes": ["mcp:read", "mcp:admin"],
        "mcp_policy": [{"method": "tools/call", "name": "delete_*", "allow_scopes": ["mcp:admin"]}],
        "mcp_inspect_body": true,
    }))
    .await;
    let (s, v) = p.admin("GET", "/api/v1/proxy/targets/insp.test", None).await;
    assert_eq!((s, &v["mcp_inspect_body"]), (200, &json!(true)), "{v}");
    let body = |name: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{name}","arguments":{{"note":"ünïcode \u2603"}}}}}}"#)
            .into_bytes()
    };
    let reader = {
        let body = json!({"username": "alice", "scope": "mcp:read", "aud": ["https://insp.test/mcp"]});
        let (s, v) = p.admin("POST", "/api/v1/oauth/test-token", Some(body)).await;
        assert_eq!(s, 201, "{v}");
        v["access_token"].as_str().unwrap().to_string()
    };
    // a 2025-* client (no Mcp-Method): the body decides; a refused call reaches nothing
    let refused = eventually(Duration::from_secs(5), || async {
        (post_body(&p, &reader, body("delete_all"), &[]).await == 403).then_some(())
    })
    .await;
    assert!(refused.is_some(), "the body was never judged");
    assert!(got.lock().unwrap().is_empty(), "a refused call reached the backend");
    // allowed: the backend gets the very bytes sent
    let sent = body("list_things");
    assert_eq!(post_body(&p, &reader, sent.clone(), &[]).await, 200);
    {
        let seen = got.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1, sent, "the body was changed on the way");
    }
    // a batch with one refused element, non-JSON, an empty batch, a call naming nothing, an oversized body
    let batch = format!(
        "[{},{}]",
        String::from_utf8(body("list_x")).unwrap(),
        String::from_utf8(body("delete_x")).unwrap()
    );
    let mut big = String::from(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_x","arguments":{"pad":""#);
    big.push_str(&"a".repeat(70 * 1024));
    big.push_str(r#""}}}"#);
    for refused in [
        batch.into_bytes(),
        b"not json at all".to_vec(),
        b"[]".to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#.to_vec(),
        big.into_bytes(),
    ] {
        assert_eq!(post_body(&p, &reader, refused, &[]).await, 403);
    }
    assert_eq!(got.lock().unwrap().len(), 1, "a refused body reached the backend");
    // a 2026-07-28 client: the headers decide, the body is not read
    let named = [("Mcp-Method", "tools/call"), ("Mcp-Name", "delete_all")];
    assert_eq!(post_body(&p, &reader, body("delete_all"), &named).await, 403);
    let named = [("Mcp-Method", "tools/call"), ("Mcp-Name", "list_y")];
    assert_eq!(post_body(&p, &reader, body("list_y"), &named).await, 200);
    assert_eq!(got.lock().unwrap().len(), 2);
}
