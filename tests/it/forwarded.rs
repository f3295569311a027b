//! `X-Forwarded-*` and trusted balancers (issue 14): from anyone, the
//! headers are replaced; from a peer in `TRUSTED_PROXIES` they name the
//! client, the scheme and the public host, so behind a TLS-terminating
//! balancer redirects and protected-resource metadata say `https`.

use std::time::Duration;

use serde_json::json;

use crate::harness::{backend, eventually, get_as as get, Portcullis, Redis};

/// The headers a client behind a TLS-terminating balancer arrives with.
const FORWARDED: [(&str, &str); 3] = [
    ("X-Forwarded-For", "6.6.6.6, 203.0.113.7"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "public.example"),
];

async fn setup(trusted: &str) -> (Redis, Portcullis, backend::Backend) {
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &[("TRUSTED_PROXIES", trusted)]).await;
    let b = backend::start("B").await;
    p.create_proxy(json!({"hostname": "plain.test", "target_url": b.url()})).await;
    p.create_proxy(json!({"hostname": "tls-only.test", "target_url": b.url(), "enable_http": false}))
        .await;
    p.create_proxy(json!({"hostname": "mcp.test", "target_url": b.url(), "auth_enabled": true, "resource_endpoint": "/mcp", "resource_override_backend": true}))
        .await;
    let ready = eventually(Duration::from_secs(10), || async {
        (get(&p, "plain.test", "/", &[]).await.0 == 200 && get(&p, "mcp.test", "/mcp", &[]).await.0 == 401).then_some(())
    })
    .await;
    assert!(ready.is_some());
    (redis, p, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_of_an_untrusted_peer_are_replaced() {
    // 10.0.0.0/8 is trusted, the test client on 127.0.0.1 is not.
    let (_r, p, _b) = setup("10.0.0.0/8").await;
    let (s, _, v) = get(&p, "plain.test", "/", &FORWARDED).await;
    assert_eq!(s, 200, "{v}");
    let h = &v["headers"];
    assert_eq!(h["x-forwarded-for"], json!(["127.0.0.1"]), "{v}");
    assert_eq!(h["x-real-ip"], json!(["127.0.0.1"]));
    assert_eq!(h["x-forwarded-proto"], json!(["http"]));
    assert_eq!(h["x-forwarded-host"], json!(["plain.test"]));
    // A claimed https does not lift the HTTPS-only proxy's redirect.
    let (s, hd, _) = get(&p, "tls-only.test", "/x", &FORWARDED).await;
    assert_eq!(s, 308);
    assert!(hd["location"].to_str().unwrap().starts_with("https://tls-only.test"), "{hd:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_tls_terminating_balancer_is_believed() {
    let (_r, p, _b) = setup("127.0.0.1/32").await;
    let (s, _, v) = get(&p, "plain.test", "/", &FORWARDED).await;
    assert_eq!(s, 200, "{v}");
    let h = &v["headers"];
    // The rightmost untrusted address is the client; the forged 6.6.6.6 is not.
    assert_eq!(h["x-forwarded-for"], json!(["203.0.113.7"]), "{v}");
    assert_eq!(h["x-real-ip"], json!(["203.0.113.7"]));
    assert_eq!(h["x-forwarded-proto"], json!(["https"]));
    assert_eq!(h["x-forwarded-host"], json!(["public.example"]));

    // The balancer terminated TLS: the HTTPS-only proxy serves, no redirect loop.
    let (s, _, v) = get(&p, "tls-only.test", "/x", &FORWARDED).await;
    assert_eq!((s, &v["backend"]), (200, &json!("B")), "{v}");

    // The protected resource is the https one, in the challenge and the metadata.
    let (s, hd, _) = get(&p, "mcp.test", "/mcp", &FORWARDED).await;
    assert_eq!(s, 401);
    let www = hd["www-authenticate"].to_str().unwrap();
    assert!(
        www.contains("resource_metadata=\"https://mcp.test/.well-known/oauth-protected-resource/mcp\""),
        "{www}"
    );
    let (s, _, doc) = get(&p, "mcp.test", "/.well-known/oauth-protected-resource/mcp", &FORWARDED).await;
    assert_eq!(s, 200, "{doc}");
    assert_eq!(doc["resource"], "https://mcp.test/mcp", "{doc}");

    // The localhost proxy answers the balancer's clients only when they are loopback themselves.
    let (s, _, _) = get(&p, "localhost", "/health", &FORWARDED).await;
    assert_eq!(s, 403);
    let (s, _, _) = get(&p, "localhost", "/health", &[("X-Forwarded-For", "127.0.0.1")]).await;
    assert_eq!(s, 200);
}
