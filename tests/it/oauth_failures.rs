//! How the OAuth endpoints fail (issues 13, 14, 19): no login provider, an
//! oversized body and a store outage each get a named RFC 6749 error with a
//! 503 or 413, never a 500, and `portcullis login` stops at once with the
//! server's reason.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{Portcullis, Redis};

async fn post(url: String, body: Vec<u8>, content_type: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_login_provider_logins_fail_at_once_with_the_reason() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let reason = "no login provider: set GITHUB_CLIENT_ID or OIDC_ISSUER";

    let (s, v) = post(
        p.api("/device/code"),
        b"client_id=portcullis-cli".to_vec(),
        "application/x-www-form-urlencoded",
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (503, Some("temporarily_unavailable")), "{v}");
    assert_eq!(v["error_description"], reason);

    // The browser login of a proxy, through the data plane: 503 named, not 500.
    p.create_proxy(json!({"hostname": "login.test", "target_url": "http://127.0.0.1:9", "enable_https": false, "auth_enabled": true, "auth_mode": "redirect"}))
        .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let got = crate::harness::eventually(Duration::from_secs(10), || async {
        let r = client
            .get(p.http("/_portcullis/login?rd=/"))
            .header("Host", "login.test")
            .send()
            .await
            .ok()?;
        let s = r.status().as_u16();
        (s != 404).then_some((s, r.text().await.ok()?))
    })
    .await;
    let (s, body) = got.expect("login.test never answered its login path");
    assert_eq!(s, 503, "{body}");
    assert!(body.contains(reason), "{body}");

    // The CLI gives up at once with the server's reason instead of polling.
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["login", "--issuer", &p.api("")])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", tempfile::tempdir().unwrap().path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(reason), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_as_oauth_errors_and_the_admin_api_keeps_its_own_limit() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let big = vec![b'a'; 100 * 1024];
    for ep in [
        "/token",
        "/register",
        "/revoke",
        "/introspect",
        "/device/code",
        "/consent",
        "/device/token",
    ] {
        let ct = if ep == "/register" {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let (s, v) = post(p.api(ep), big.clone(), ct).await;
        assert_eq!((s, v["error"].as_str()), (413, Some("invalid_request")), "{ep}: {v}");
        assert_eq!(v["error_description"], "request body over 64 KiB", "{ep}");
    }
    // Just under the limit is read (and refused for what it says, not its size).
    let (s, v) = post(p.api("/token"), vec![b'a'; 60 * 1024], "application/x-www-form-urlencoded").await;
    assert!(s == 400 || s == 401, "{s} {v}");
    // The OAuth limit is the OAuth endpoints' alone: the admin API reads a
    // 100 KiB body (and answers about its content).
    let r = reqwest::Client::new()
        .post(p.api("/api/v1/proxy/targets/"))
        .bearer_auth(&p.admin_token)
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status().as_u16(), 413);
    assert!(r.status().is_client_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_503_not_500() {
    let mut redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (s, reg) = post(
        p.api("/register"),
        serde_json::to_vec(
            &json!({"redirect_uris": ["http://127.0.0.1:5555/cb"], "token_endpoint_auth_method": "none", "client_name": "outage"}),
        )
        .unwrap(),
        "application/json",
    )
    .await;
    assert_eq!(s, 201, "{reg}");
    let client_id = reg["client_id"].as_str().unwrap().to_string();
    redis.kill();
    let form = format!("grant_type=refresh_token&refresh_token=abc&client_id={client_id}").into_bytes();
    let (s, v) = post(p.api("/token"), form, "application/x-www-form-urlencoded").await;
    assert_eq!((s, v["error"].as_str()), (503, Some("temporarily_unavailable")), "{v}");
    let (s, v) = post(
        p.api("/register"),
        serde_json::to_vec(&json!({"redirect_uris": ["http://127.0.0.1:5555/cb"], "token_endpoint_auth_method": "none"})).unwrap(),
        "application/json",
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (503, Some("temporarily_unavailable")), "{v}");
    assert!(!v.to_string().contains("127.0.0.1:"), "the store's address leaked: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_registration_has_documented_size_limits() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let register = |doc: Value| post(p.api("/register"), serde_json::to_vec(&doc).unwrap(), "application/json");
    let uris = |n: usize| -> Vec<String> { (0..n).map(|i| format!("http://127.0.0.1:5555/cb{i}")).collect() };

    // At the limits: 20 redirect URIs, a 200-character name, 2000-character values.
    let long_uri = format!("http://127.0.0.1:5555/{}", "a".repeat(2000 - 22));
    let mut at = uris(19);
    at.push(long_uri.clone());
    let (s, v) = register(
        json!({"redirect_uris": at, "client_name": "n".repeat(200), "client_uri": format!("https://x.example/{}", "c".repeat(2000 - 18))}),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    let refused = [
        (json!({"redirect_uris": uris(21)}), "invalid_redirect_uri"),
        (json!({"redirect_uris": [format!("{long_uri}a")]}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": uris(1), "client_name": "n".repeat(201)}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": uris(1), "client_name": "evil\r\nname"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": uris(1), "client_name": 7}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": uris(1), "tos_uri": "t".repeat(2001)}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": uris(1), "contacts": ["c".repeat(2001)]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": uris(1), "x": (0..20).map(|i| format!("{i}{}", "v".repeat(1000))).collect::<Vec<_>>()}),
            "invalid_client_metadata",
        ),
    ];
    for (doc, code) in refused {
        let (s, v) = register(doc.clone()).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some(code)),
            "{}: {v}",
            &doc.to_string()[..80.min(doc.to_string().len())]
        );
    }
}
