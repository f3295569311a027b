//! Framing headers never come from a proxy's stored header rules (issue 13
//! item 6), end to end: a record stored before the API refused them, with
//! `Content-Length: 0` and `Transfer-Encoding: chunked` among its
//! `custom_headers`, must not change how the upstream reads the request;
//! the raw-socket backend shows the bytes it received.

use std::time::Duration;

use serde_json::json;

use crate::harness::raw::RawBackend;
use crate::harness::{eventually, Portcullis, Redis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_framing_headers_never_reach_the_upstream() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = RawBackend::start().await;
    p.create_proxy(json!({"hostname": "frame.test", "target_url": b.url(), "enable_https": false, "custom_headers": {"X-Team": "a"}}))
        .await;
    let (s, mut rec) = p.admin("GET", "/api/v1/proxy/targets/frame.test", None).await;
    assert_eq!(s, 200, "{rec}");
    // As an older version (or a hand edit) may have stored them.
    rec["custom_headers"] = json!({"X-Team": "a", "Content-Length": "0", "Transfer-Encoding": "chunked", "Host": "evil.example"});
    rec["custom_response_headers"] = json!({"Transfer-Encoding": "chunked", "X-Frame-Options": "DENY"});
    redis.cli(&["SET", "proxy:frame.test", &rec.to_string()]);
    redis.cli(&[
        "PUBLISH",
        "portcullis:changes",
        r#"{"kind":"proxy","id":"frame.test","op":"update"}"#,
    ]);

    let client = reqwest::Client::new();
    let answer = eventually(Duration::from_secs(10), || async {
        let r = client
            .post(p.http("/upload"))
            .header("Host", "frame.test")
            .body("hello")
            .send()
            .await
            .ok()?;
        let frame = r.headers().get("x-frame-options").is_some();
        let te = r.headers().get("transfer-encoding").map(|v| v.to_str().unwrap_or("").to_string());
        let (status, body) = (r.status().as_u16(), r.text().await.ok()?);
        // the rebuilt snapshot is in place once the response rule shows
        frame.then_some((status, te, body))
    })
    .await;
    let (status, te, body) = answer.expect("the stored record was never served");
    assert_eq!((status, body.as_str()), (200, "raw-ok"));
    assert_eq!(te, None, "a stored Transfer-Encoding reached the client");

    let heads = b.seen();
    let head = heads
        .iter()
        .rev()
        .find(|h| h.starts_with("POST /upload"))
        .expect("the upload reached the backend");
    let lower = head.to_ascii_lowercase();
    let lines: Vec<&str> = lower.lines().collect();
    let count = |name: &str| lines.iter().filter(|l| l.starts_with(name)).count();
    assert_eq!(count("content-length:"), 1, "{head}");
    assert!(lines.contains(&"content-length: 5"), "the body's own length: {head}");
    assert_eq!(count("transfer-encoding:"), 0, "{head}");
    assert!(lines.contains(&"host: frame.test"), "{head}");
    assert!(lines.contains(&"x-team: a"), "harmless rules still apply: {head}");
}
