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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_must_name_existing_proxies_and_services() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    p.create_proxy(json!({"hostname": "there.test", "target_url": "http://127.0.0.1:1", "enable_https": false}))
        .await;
    let route = |extra: serde_json::Value| {
        let mut r = json!({"route_id": "r1", "path_pattern": "/x", "target_type": "url", "target_value": "http://127.0.0.1:1"});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    for (extra, field) in [
        (json!({"target_type": "hostname", "target_value": "absent.test"}), "target_value"),
        (json!({"target_type": "service", "target_value": "no-such-service"}), "target_value"),
        (
            json!({"scope": "proxy", "proxy_hostnames": ["there.test", "absent.test"]}),
            "proxy_hostnames",
        ),
        (json!({"owner_token_hash": "sha256:00"}), "owner_token_hash"),
    ] {
        let got = p.admin("POST", "/api/v1/routes/", Some(route(extra.clone()))).await;
        assert_error(&got, 422, Some(field));
    }
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(route(json!({"target_type": "hostname", "target_value": "there.test"}))),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for (patch, field) in [
        (json!({"target_value": "absent.test"}), "target_value"),
        (json!({"route_id": "r2"}), "route_id"),
        (json!({"scope": "proxy", "proxy_hostnames": ["absent.test"]}), "proxy_hostnames"),
    ] {
        assert_error(&p.admin("PUT", "/api/v1/routes/r1", Some(patch)).await, 422, Some(field));
    }
    let (_, v) = p.admin("GET", "/api/v1/routes/r1", None).await;
    assert_eq!(v["target_value"], "there.test", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_a_proxy_uses_is_not_deleted() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (c, k) = crate::admin_api::make_cert(&["used.test"], -1, 30);
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "used", "certificate_pem": c, "private_key_pem": k})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for h in ["used.test", "also.test"] {
        p.create_proxy(json!({"hostname": h, "target_url": "http://127.0.0.1:1", "cert_name": "used"}))
            .await;
    }
    let got = p.admin("DELETE", "/api/v1/certificates/used", None).await;
    assert_error(&got, 409, None);
    let msg = got.1["message"].as_str().unwrap();
    assert!(msg.contains("used.test") && msg.contains("also.test"), "{msg}");
    let (s, _) = p.admin("GET", "/api/v1/certificates/used", None).await;
    assert_eq!(s, 200, "the certificate is still there");
    // Once no proxy names it, it goes.
    for h in ["used.test", "also.test"] {
        let (s, v) = p.admin("DELETE", &format!("/api/v1/proxy/targets/{h}"), None).await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, v) = p.admin("DELETE", "/api/v1/certificates/used", None).await;
    assert_eq!((s, &v["status"]), (200, &json!("deleted")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minted_token_lifetime_is_bounded_not_a_crash() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    // Found by schemathesis: the claims' time arithmetic overflowed and the connection dropped.
    for ttl in [i64::MAX - 1, i64::MIN] {
        let got = p
            .admin(
                "POST",
                "/api/v1/oauth/test-token",
                Some(json!({"username": "u", "expires_in": ttl})),
            )
            .await;
        assert_error(&got, 422, Some("expires_in"));
    }
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/oauth/test-token",
            Some(json!({"username": "u", "expires_in": -120})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_and_token_requests_refuse_fixed_and_unknown_fields() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    p.create_proxy(json!({"hostname": "res.test", "target_url": "http://127.0.0.1:1", "enable_https": false}))
        .await;
    let uri = "https://res.test/mcp";
    let path = "/api/v1/resources/https%3A%2F%2Fres.test%2Fmcp";
    // Registration: ownership is the server's, unknown fields are refused.
    for (k, v) in [
        ("owner_token_hash", json!("sha256:00")),
        ("created_at", json!("x")),
        ("colour", json!(1)),
    ] {
        let body = json!({"uri": uri, "name": "R", k: v});
        assert_error(&p.admin("POST", "/api/v1/resources/", Some(body)).await, 422, Some(k));
    }
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/resources/",
            Some(json!({"uri": uri, "name": "R", "proxy_target": "res.test"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // An update naming a field fixed at registration was a success that
    // ignored it; now it is a 422 naming the field, and nothing changes.
    for (k, v) in [
        ("uri", json!("https://res.test/other")),
        ("owner_token_hash", json!("sha256:00")),
        ("created_at", json!(null)),
        ("colour", json!("red")),
    ] {
        let got = p.admin("PUT", path, Some(json!({"name": "changed", k: v}))).await;
        assert_error(&got, 422, Some(k));
    }
    let (s, v) = p.admin("GET", path, None).await;
    assert_eq!((s, v["name"].as_str(), v["uri"].as_str()), (200, Some("R"), Some(uri)), "{v}");
    // A named field changes; `null` clears an optional one.
    let (s, v) = p.admin("PUT", path, Some(json!({"name": "N", "proxy_target": null}))).await;
    assert_eq!((s, v["name"].as_str(), &v["proxy_target"]), (200, Some("N"), &json!(null)), "{v}");
    // validate-token takes a token and nothing else.
    let check = format!("{path}/validate-token");
    assert_error(&p.admin("POST", &check, Some(json!({}))).await, 422, Some("token"));
    assert_error(
        &p.admin("POST", &check, Some(json!({"token": "x", "extra": 1}))).await,
        422,
        Some("extra"),
    );
    let (s, v) = p.admin("POST", &check, Some(json!({"token": "x.y.z"}))).await;
    assert_eq!(
        (s, v["valid"].as_bool(), v["resource"].as_str()),
        (200, Some(false), Some(uri)),
        "{v}"
    );
    assert!(v["reason"].is_string() && v.get("sub").is_none(), "{v}");

    // The /auth and /mcp sub-resources change only their own settings.
    let auth = "/api/v1/proxy/targets/res.test/auth";
    for k in ["hostname", "target_url", "auth_allow_cors_preflight"] {
        assert_error(&p.admin("PUT", auth, Some(json!({ k: "x" }))).await, 422, Some(k));
    }
    assert_error(
        &p.admin("PUT", auth, Some(json!({"auth_enabled": "yes"}))).await,
        422,
        Some("auth_enabled"),
    );
    let mcp = "/api/v1/proxy/targets/res.test/mcp";
    assert_error(
        &p.admin("PUT", mcp, Some(json!({"target_url": "x"}))).await,
        422,
        Some("target_url"),
    );
    let (s, v) = p.admin("PUT", mcp, Some(json!({"resource_scopes": ["a"]}))).await;
    assert_eq!(
        (s, v["resource_endpoint"].as_str(), &v["resource_scopes"]),
        (200, Some("/mcp"), &json!(["a"])),
        "the long names are accepted too, the endpoint defaults to /mcp: {v}"
    );
    let (s, v) = p.admin("GET", "/api/v1/proxy/targets/res.test", None).await;
    assert_eq!(
        (s, v["auth_enabled"].as_bool(), v["target_url"].as_str()),
        (200, Some(false), Some("http://127.0.0.1:1")),
        "{v}"
    );

    // Tokens: unknown fields in creation and in the e-mail update are 422s.
    let got = p
        .admin("POST", "/api/v1/tokens/", Some(json!({"name": "t1", "hash": "sha256:00"})))
        .await;
    assert_error(&got, 422, Some("hash"));
    let (s, v) = p.admin("POST", "/api/v1/tokens/generate", Some(json!({"name": "t1"}))).await;
    assert_eq!(s, 201, "{v}");
    let t1 = v["token"].as_str().unwrap().to_string();
    let got = p
        .call(
            "PUT",
            "/api/v1/tokens/email",
            Some(&t1),
            Some(json!({"cert_email": "a@b.test", "name": "t2"})),
        )
        .await;
    assert_error(&got, 422, Some("name"));
    let (s, v) = p.admin("DELETE", "/api/v1/tokens/t1", None).await;
    assert_eq!(
        (s, v["status"].as_str(), v["name"].as_str()),
        (200, Some("deleted"), Some("t1")),
        "{v}"
    );
    assert_eq!(v["deleted"]["proxies"], json!([]), "{v}");
}
