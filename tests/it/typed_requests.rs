//! Typed requests refuse what they cannot honour (issue 15): fields fixed at
//! creation, unknown fields and references to missing objects are 422s
//! naming the field, never a success that ignores them.

use serde_json::json;

use crate::admin_api::assert_error;
use crate::harness::{Portcullis, Redis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_requests_refuse_fixed_unknown_and_dangling_fields() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let base = json!({"hostname": "typed.test", "target_url": "http://127.0.0.1:1", "enable_https": false});
    // Ownership is the server's to set, on create too.
    for k in ["owner_token_hash", "created_by", "created_at"] {
        let mut b = base.clone();
        b[k] = json!("x");
        assert_error(&p.admin("POST", "/api/v1/proxy/targets/", Some(b)).await, 422, Some(k));
    }
    let mut b = base.clone();
    b["cert_name"] = json!("no-such-cert");
    assert_error(&p.admin("POST", "/api/v1/proxy/targets/", Some(b)).await, 422, Some("cert_name"));
    p.create_proxy(base.clone()).await;

    let path = "/api/v1/proxy/targets/typed.test";
    for (k, v) in [
        ("hostname", json!("typed.test")),
        ("created_by", json!(null)),
        ("colour", json!("red")),
    ] {
        let got = p.admin("PUT", path, Some(json!({ "enabled": false, k: v }))).await;
        assert_error(&got, 422, Some(k));
    }
    assert_error(
        &p.admin("PUT", path, Some(json!({"cert_name": "no-such-cert"}))).await,
        422,
        Some("cert_name"),
    );
    assert_error(&p.admin("PUT", path, Some(json!({"enabled": "yes"}))).await, 422, Some("enabled"));
    // None of it changed anything.
    let (s, v) = p.admin("GET", path, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["enabled"], true, "{v}");
    assert_eq!(v["cert_name"], json!(null), "{v}");
    // `null` clears an optional field; a named field changes, the rest stays.
    let (s, v) = p
        .admin("PUT", path, Some(json!({"auth_required_users": ["a"], "enabled": false})))
        .await;
    assert_eq!(
        (s, &v["auth_required_users"], &v["enabled"]),
        (200, &json!(["a"]), &json!(false)),
        "{v}"
    );
    let (s, v) = p.admin("PUT", path, Some(json!({"auth_required_users": null}))).await;
    assert_eq!(
        (s, &v["auth_required_users"], &v["enabled"]),
        (200, &json!(null), &json!(false)),
        "{v}"
    );
}
