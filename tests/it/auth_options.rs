//! Per-proxy auth options enforced by the data plane (issue 19: no test had
//! them): `auth_required_groups`, `auth_pass_token`, `auth_pass_headers`,
//! `auth_header_prefix` and `auth_cookie_name`, seen from a backend that
//! echoes the headers it received.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{backend, eventually, Portcullis, Redis};

async fn mint(p: &Portcullis, claims: Value) -> String {
    let (s, v) = p.admin("POST", "/api/v1/oauth/test-token", Some(claims)).await;
    assert_eq!(s, 201, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

async fn get(p: &Portcullis, host: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut rb = reqwest::Client::new().get(p.http("/echo")).header("Host", host);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Waits until `host` enforces auth (a request without a token gets 401).
async fn protected(p: &Portcullis, host: &str) {
    let ok = eventually(Duration::from_secs(10), || async {
        (get(p, host, &[]).await.0 == 401).then_some(())
    })
    .await;
    assert!(ok.is_some(), "{host} never asked for a token");
}

fn names(v: &Value) -> Vec<String> {
    v["headers"].as_object().map(|h| h.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_token_and_header_options_reach_the_backend_as_configured() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = backend::start("B").await;
    let base = json!({"target_url": b.url(), "enable_https": false, "auth_enabled": true});
    let proxy = |host: &str, extra: Value| {
        let mut v = base.clone();
        v["hostname"] = json!(host);
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    p.create_proxy(proxy("groups.test", json!({"auth_required_groups": ["ops"]}))).await;
    p.create_proxy(proxy("passtoken.test", json!({"auth_pass_token": true}))).await;
    p.create_proxy(proxy("noheaders.test", json!({"auth_pass_headers": false}))).await;
    p.create_proxy(proxy("prefix.test", json!({"auth_header_prefix": "X-Id-"}))).await;
    p.create_proxy(proxy("cookie.test", json!({"auth_cookie_name": "my_session"})))
        .await;
    for host in ["groups.test", "passtoken.test", "noheaders.test", "prefix.test", "cookie.test"] {
        protected(&p, host).await;
    }
    // One token for all five proxies: its audience names each of them.
    let aud: Vec<String> = ["groups", "passtoken", "noheaders", "prefix", "cookie"]
        .iter()
        .map(|h| format!("https://{h}.test"))
        .collect();
    let claims = |groups: Value| json!({"username": "alice", "email": "alice@example.com", "scope": "user", "groups": groups, "aud": aud});
    let ops = mint(&p, claims(json!(["ops", "dev"]))).await;
    let dev = mint(&p, claims(json!(["dev"]))).await;
    let bearer = |t: &str| format!("Bearer {t}");

    // auth_required_groups: a member passes, a non-member is refused.
    assert_eq!(get(&p, "groups.test", &[("Authorization", &bearer(&ops))]).await.0, 200);
    assert_eq!(get(&p, "groups.test", &[("Authorization", &bearer(&dev))]).await.0, 403);

    // auth_pass_token: the bearer reaches the backend; by default it does not.
    let (s, v) = get(&p, "passtoken.test", &[("Authorization", &bearer(&ops))]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["headers"]["authorization"], json!([bearer(&ops)]), "{v}");
    let (_, v) = get(&p, "groups.test", &[("Authorization", &bearer(&ops))]).await;
    assert!(v["headers"].get("authorization").is_none(), "token passed by default: {v}");
    assert_eq!(v["headers"]["x-auth-user"], json!(["alice"]), "{v}");

    // auth_pass_headers=false: no identity headers, and forged ones are still stripped.
    let (s, v) = get(&p, "noheaders.test", &[("Authorization", &bearer(&ops)), ("X-Auth-User", "root")]).await;
    assert_eq!(s, 200, "{v}");
    assert!(!names(&v).iter().any(|n| n.starts_with("x-auth-")), "{v}");

    // auth_header_prefix: identity under the proxy's own prefix, forged copies of it stripped.
    let (s, v) = get(&p, "prefix.test", &[("Authorization", &bearer(&ops)), ("X-Id-User", "root")]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["headers"]["x-id-user"], json!(["alice"]), "{v}");
    assert_eq!(v["headers"]["x-id-email"], json!(["alice@example.com"]), "{v}");
    assert!(v["headers"].get("x-auth-user").is_none(), "{v}");

    // auth_cookie_name: the token in that cookie authenticates, and the
    // cookie is not passed on; the default cookie name does not.
    let (s, v) = get(&p, "cookie.test", &[("Cookie", &format!("other=1; my_session={ops}"))]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["headers"]["x-auth-user"], json!(["alice"]), "{v}");
    assert_eq!(v["headers"]["cookie"], json!(["other=1"]), "{v}");
    let (s, _) = get(&p, "cookie.test", &[("Cookie", &format!("unified_auth_token={ops}"))]).await;
    assert_eq!(s, 401);
}
