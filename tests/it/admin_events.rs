//! Change events (issue 2): every successful write publishes exactly one
//! event on `portcullis:changes`, a rejected write none.

use serde_json::json;

use crate::admin_api::{make_cert, start, Events};
use crate::harness::{Redis, ADMIN_TOKEN};

/// A write that must be refused: method, path, token, body, expected status.
type Refused<'a> = (&'a str, &'a str, Option<&'a str>, Option<serde_json::Value>, u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_each_write_publishes_exactly_one_change_event() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let mut ev = Events::subscribe(&redis).await;
    ev.expect_none().await;

    // Tokens.
    let (s, v) = p.admin("POST", "/api/v1/tokens/", Some(json!({"name": "erin"}))).await;
    assert_eq!(s, 201, "{v}");
    let erin = v["token"].as_str().unwrap().to_string();
    ev.expect_one("token", "create", "erin").await;
    let (s, v) = p.admin("POST", "/api/v1/tokens/generate", Some(json!({"name": "frank"}))).await;
    assert_eq!(s, 201, "{v}");
    ev.expect_one("token", "create", "frank").await;
    let (s, v) = p
        .call(
            "PUT",
            "/api/v1/tokens/email",
            Some(&erin),
            Some(json!({"cert_email": "erin@example.com"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    ev.expect_one("token", "update", "erin").await;

    // Reads publish nothing.
    for path in [
        "/api/v1/tokens/",
        "/api/v1/tokens/erin",
        "/api/v1/tokens/erin/reveal",
        "/api/v1/tokens/info",
        "/api/v1/proxy/targets/",
        "/api/v1/routes/",
        "/api/v1/routes/formatted",
        "/api/v1/certificates/",
    ] {
        let (s, _) = p.admin("GET", path, None).await;
        assert_eq!(s, 200, "GET {path}");
    }
    ev.expect_none().await;

    // Proxies.
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/proxy/targets/",
            Some(json!({"hostname": "Ev.Test", "target_url": "http://127.0.0.1:1", "enable_https": false})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ev.expect_one("proxy", "create", "ev.test").await;
    let (s, v) = p
        .admin("PUT", "/api/v1/proxy/targets/ev.test", Some(json!({"enabled": false})))
        .await;
    assert_eq!(s, 200, "{v}");
    ev.expect_one("proxy", "update", "ev.test").await;
    let (s, v) = p.admin("DELETE", "/api/v1/proxy/targets/ev.test", None).await;
    assert_eq!(s, 200, "{v}");
    ev.expect_one("proxy", "delete", "ev.test").await;

    // Routes, including a PUT that moves the indexes.
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(json!({"route_id": "ev-r", "path_pattern": "/ev", "target_type": "port", "target_value": "1"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ev.expect_one("route", "create", "ev-r").await;
    let (s, v) = p
        .admin("PUT", "/api/v1/routes/ev-r", Some(json!({"priority": 99, "path_pattern": "/ev2"})))
        .await;
    assert_eq!(s, 200, "{v}");
    ev.expect_one("route", "update", "ev-r").await;
    let (s, v) = p.admin("DELETE", "/api/v1/routes/ev-r", None).await;
    assert_eq!(s, 200, "{v}");
    ev.expect_one("route", "delete", "ev-r").await;

    // Certificates: create, replace (update), delete.
    let (c, k) = make_cert(&["ev.example.test", "www.ev.example.test"], -1, 30);
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "ev-cert", "certificate_pem": c, "private_key_pem": k})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ev.expect_one("cert", "create", "ev-cert").await;
    let (c2, k2) = make_cert(&["ev.example.test"], -1, 60);
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "ev-cert", "certificate_pem": c2, "private_key_pem": k2})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ev.expect_one("cert", "update", "ev-cert").await;
    assert_eq!(
        redis.cli(&["EXISTS", "cert:domain:www.ev.example.test"]).trim(),
        "0",
        "a replaced certificate's dropped domain is unindexed"
    );
    let (s, v) = p.admin("DELETE", "/api/v1/certificates/ev-cert", None).await;
    assert_eq!(s, 200, "{v}");
    ev.expect_one("cert", "delete", "ev-cert").await;

    // Services.
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/external",
            Some(json!({"service_name": "svc", "target_url": "http://127.0.0.1:1"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ev.expect_one("service", "update", "svc").await;
    let (s, v) = p.admin("DELETE", "/api/v1/services/external/svc", None).await;
    assert_eq!(s, 200, "{v}");
    ev.expect_one("service", "delete", "svc").await;

    // A cascade delete of a token that owns a proxy, two routes and a cert is ONE event.
    let (s, v) = p
        .call(
            "POST",
            "/api/v1/proxy/targets/",
            Some(&erin),
            Some(json!({"hostname": "erin.test", "target_url": "http://127.0.0.1:1", "enable_https": false})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ev.expect_one("proxy", "create", "erin.test").await;
    for id in ["e1", "e2"] {
        let (s, v) = p
            .call(
                "POST",
                "/api/v1/routes/",
                Some(&erin),
                Some(
                    json!({"route_id": id, "path_pattern": format!("/{id}"), "target_type": "port", "target_value": "1",
                    "scope": "proxy", "proxy_hostnames": ["erin.test"]}),
                ),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        ev.expect_one("route", "create", id).await;
    }
    let (c, k) = make_cert(&["erin.example.test"], -1, 30);
    let (s, v) = p
        .call(
            "POST",
            "/api/v1/certificates/upload",
            Some(&erin),
            Some(json!({"cert_name": "erin-cert", "certificate_pem": c, "private_key_pem": k})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ev.expect_one("cert", "create", "erin-cert").await;
    let (s, v) = p.admin("DELETE", "/api/v1/tokens/erin", None).await;
    assert_eq!(s, 200, "{v}");
    ev.expect_one("token", "delete", "erin").await;
    let (s, v) = p.admin("DELETE", "/api/v1/tokens/frank", None).await;
    assert_eq!(s, 200, "{v}");
    ev.expect_one("token", "delete", "frank").await;

    // Rejected writes publish nothing: each is refused with its own status,
    // then a sentinel write's event must be the very next one (pub/sub keeps
    // the order of publishes, so no timing window is needed).
    let (c, k) = ("junk", "junk");
    let rejected: [Refused<'_>; 7] = [
        (
            "POST",
            "/api/v1/proxy/targets/",
            Some(ADMIN_TOKEN),
            Some(json!({"hostname": "bad host", "target_url": "http://127.0.0.1:1"})),
            422,
        ),
        (
            "POST",
            "/api/v1/proxy/targets/",
            Some(ADMIN_TOKEN),
            Some(json!({"hostname": "localhost", "target_url": "http://127.0.0.1:1"})),
            409,
        ),
        (
            "POST",
            "/api/v1/routes/",
            Some(ADMIN_TOKEN),
            Some(json!({"path_pattern": "/x", "target_type": "port", "target_value": "1", "priority": 1001})),
            422,
        ),
        ("DELETE", "/api/v1/routes/nope", Some(ADMIN_TOKEN), None, 404),
        ("DELETE", "/api/v1/tokens/erin", Some(ADMIN_TOKEN), None, 404),
        ("DELETE", "/api/v1/proxy/targets/localhost", None, None, 401),
        (
            "POST",
            "/api/v1/certificates/upload",
            Some(ADMIN_TOKEN),
            Some(json!({"cert_name": "x", "certificate_pem": c, "private_key_pem": k})),
            422,
        ),
    ];
    for (method, path, token, body, want) in rejected {
        let (s, v) = p.call(method, path, token, body).await;
        assert_eq!(s, want, "{method} {path}: {v}");
    }
    let (s, v) = p.admin("POST", "/api/v1/tokens/", Some(json!({"name": "sentinel"}))).await;
    assert_eq!(s, 201, "{v}");
    ev.expect_one("token", "create", "sentinel").await;
}
