//! Bad input to the admin API (issue 2): the right 4xx, `{"error", "message"}`
//! naming the field, the store unchanged and no change event published.

use serde_json::{json, Value};

use crate::admin_api::{assert_error, call_raw, make_cert, start, Events};
use crate::harness::{Redis, ADMIN_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bad_input_is_rejected_and_leaves_the_store_unchanged() {
    let redis = Redis::start();
    let p = start(&redis).await;

    // Existing objects for the duplicate and update cases.
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/proxy/targets/",
            Some(json!({"hostname": "taken.test", "target_url": "http://127.0.0.1:1", "enable_https": false})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for (id, path, prio) in [("r-a", "/a", 10), ("r-b", "/b", 20)] {
        let (s, v) = p
            .admin(
                "POST",
                "/api/v1/routes/",
                Some(json!({"route_id": id, "path_pattern": path, "priority": prio, "target_type": "port", "target_value": "8080"})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = p.admin("POST", "/api/v1/tokens/", Some(json!({"name": "existing"}))).await;
    assert_eq!(s, 201, "{v}");
    let (cert, key) = make_cert(&["ok.example.test"], -1, 30);
    let (_, other_key) = make_cert(&["ok.example.test"], -1, 30);
    let (expired, expired_key) = make_cert(&["old.example.test"], -20, -2);

    let mut events = Events::subscribe(&redis).await;
    let before = redis.dump();
    let route = |extra: Value| {
        let mut base = json!({"path_pattern": "/new", "target_type": "port", "target_value": "8080"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        Some(base)
    };
    let proxy = |extra: Value| {
        let mut base = json!({"hostname": "new.test", "target_url": "http://127.0.0.1:1"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        Some(base)
    };

    // Malformed JSON and non-object bodies: 400.
    for (path, method) in [
        ("/api/v1/proxy/targets/", "POST"),
        ("/api/v1/routes/", "POST"),
        ("/api/v1/tokens/", "POST"),
        ("/api/v1/certificates/upload", "POST"),
        ("/api/v1/proxy/targets/taken.test", "PUT"),
        ("/api/v1/routes/r-a", "PUT"),
        ("/api/v1/tokens/email", "PUT"),
    ] {
        for body in ["{\"hostname\": ", "not json", "[1, 2]", ""] {
            let got = call_raw(&p, method, path, Some(ADMIN_TOKEN), body).await;
            assert_error(&got, 400, None);
        }
    }

    // 422 naming the field.
    let cases: Vec<(&str, &str, Option<Value>, &str)> = vec![
        ("POST", "/api/v1/routes/", route(json!({"target_type": "socket"})), "target_type"),
        (
            "POST",
            "/api/v1/routes/",
            route(json!({"path_pattern": "([a-z", "is_regex": true})),
            "path_pattern",
        ),
        (
            "POST",
            "/api/v1/routes/",
            route(json!({"path_pattern": "no-slash"})),
            "path_pattern",
        ),
        ("POST", "/api/v1/routes/", route(json!({"priority": 1001})), "priority"),
        ("POST", "/api/v1/routes/", route(json!({"priority": -1})), "priority"),
        ("POST", "/api/v1/routes/", route(json!({"priority": "high"})), "priority"),
        (
            "POST",
            "/api/v1/routes/",
            route(json!({"target_type": "url", "target_value": "http//no-scheme"})),
            "target_value",
        ),
        (
            "POST",
            "/api/v1/routes/",
            route(json!({"target_type": "url", "target_value": "http://"})),
            "target_value",
        ),
        (
            "POST",
            "/api/v1/routes/",
            route(json!({"target_type": "port", "target_value": "70000"})),
            "target_value",
        ),
        (
            "POST",
            "/api/v1/routes/",
            route(json!({"target_type": "hostname", "target_value": "bad host!"})),
            "target_value",
        ),
        ("POST", "/api/v1/routes/", route(json!({"methods": ["FETCH"]})), "methods"),
        ("POST", "/api/v1/routes/", route(json!({"scope": "proxy"})), "proxy_hostnames"),
        ("POST", "/api/v1/routes/", route(json!({"scope": "planet"})), "scope"),
        ("POST", "/api/v1/routes/", route(json!({"route_id": "bad id/x"})), "route_id"),
        ("POST", "/api/v1/routes/", route(json!({"colour": "blue"})), "colour"),
        (
            "POST",
            "/api/v1/routes/",
            Some(json!({"target_type": "port", "target_value": "1"})),
            "path_pattern",
        ),
        (
            "POST",
            "/api/v1/proxy/targets/",
            proxy(json!({"hostname": "bad_host!"})),
            "hostname",
        ),
        (
            "POST",
            "/api/v1/proxy/targets/",
            proxy(json!({"hostname": "-lead.test"})),
            "hostname",
        ),
        ("POST", "/api/v1/proxy/targets/", proxy(json!({"hostname": "a..b"})), "hostname"),
        (
            "POST",
            "/api/v1/proxy/targets/",
            proxy(json!({"hostname": "host.test:8080"})),
            "hostname",
        ),
        (
            "POST",
            "/api/v1/proxy/targets/",
            proxy(json!({"target_url": "not a url"})),
            "target_url",
        ),
        (
            "POST",
            "/api/v1/proxy/targets/",
            proxy(json!({"target_url": "ftp://files.test"})),
            "target_url",
        ),
        (
            "POST",
            "/api/v1/proxy/targets/",
            proxy(json!({"auth_mode": "sometimes"})),
            "auth_mode",
        ),
        (
            "POST",
            "/api/v1/proxy/targets/",
            proxy(json!({"custom_headers": {"Bad Header": "x"}})),
            "custom_headers",
        ),
        (
            "POST",
            "/api/v1/proxy/targets/",
            proxy(json!({"enable_http": false, "enable_https": false})),
            "enable_http",
        ),
        ("POST", "/api/v1/proxy/targets/", proxy(json!({"enabled": "yes"})), "enabled"),
        ("POST", "/api/v1/proxy/targets/", proxy(json!({"frobnicate": true})), "frobnicate"),
        (
            "POST",
            "/api/v1/proxy/targets/",
            Some(json!({"hostname": "new.test"})),
            "target_url",
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/taken.test",
            Some(json!({"target_url": "::nope::"})),
            "target_url",
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/taken.test",
            Some(json!({"frobnicate": 1})),
            "frobnicate",
        ),
        ("PUT", "/api/v1/routes/r-a", Some(json!({"priority": 1001})), "priority"),
        (
            "PUT",
            "/api/v1/routes/r-a",
            Some(json!({"path_pattern": "(", "is_regex": true})),
            "path_pattern",
        ),
        ("PUT", "/api/v1/routes/r-a", Some(json!({"target_type": "socket"})), "target_type"),
        ("PUT", "/api/v1/routes/r-a", Some(json!({"colour": "blue"})), "colour"),
        ("POST", "/api/v1/tokens/", Some(json!({"name": "bad name"})), "name"),
        ("POST", "/api/v1/tokens/", Some(json!({"name": "t", "scope": "root"})), "scope"),
        (
            "POST",
            "/api/v1/tokens/",
            Some(json!({"name": "t", "cert_email": "nope"})),
            "cert_email",
        ),
        ("POST", "/api/v1/tokens/", Some(json!({"name": "t", "colour": "blue"})), "colour"),
        ("POST", "/api/v1/tokens/", Some(json!({"name": "t", "token": "short"})), "token"),
        (
            "POST",
            "/api/v1/tokens/generate",
            Some(json!({"name": "t", "colour": "blue"})),
            "colour",
        ),
        (
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "c", "certificate_pem": "garbage", "private_key_pem": key})),
            "certificate_pem",
        ),
        (
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "c", "certificate_pem": cert, "private_key_pem": other_key})),
            "private_key_pem",
        ),
        (
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "c", "certificate_pem": cert, "private_key_pem": "garbage"})),
            "private_key_pem",
        ),
        (
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "c", "certificate_pem": expired, "private_key_pem": expired_key})),
            "certificate_pem",
        ),
        (
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "c", "certificate_pem": cert, "private_key_pem": key, "colour": 1})),
            "colour",
        ),
        (
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "c", "private_key_pem": key})),
            "certificate_pem",
        ),
        (
            "POST",
            "/api/v1/services/external",
            Some(json!({"service_name": "s", "target_url": "nope"})),
            "target_url",
        ),
    ];
    for (method, path, body, field) in cases {
        let got = p.admin(method, path, body.clone()).await;
        assert!(got.0 == 422, "{method} {path} {body:?}: expected 422, got {got:?}");
        assert_error(&got, 422, Some(field));
    }

    // 409: duplicates.
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/proxy/targets/",
            json!({"hostname": "taken.test", "target_url": "http://127.0.0.1:2"}),
        ),
        (
            "POST",
            "/api/v1/proxy/targets/",
            json!({"hostname": "TAKEN.test", "target_url": "http://127.0.0.1:2"}),
        ),
        (
            "POST",
            "/api/v1/routes/",
            json!({"path_pattern": "/a", "priority": 10, "target_type": "url", "target_value": "http://x.test"}),
        ),
        (
            "POST",
            "/api/v1/routes/",
            json!({"route_id": "r-a", "path_pattern": "/other", "target_type": "port", "target_value": "1"}),
        ),
        ("PUT", "/api/v1/routes/r-b", json!({"path_pattern": "/a", "priority": 10})),
        ("POST", "/api/v1/tokens/", json!({"name": "existing"})),
        ("POST", "/api/v1/tokens/generate", json!({"name": "existing"})),
    ] {
        let got = p.admin(method, path, Some(body)).await;
        assert_error(&got, 409, None);
    }

    // 404 for writes to missing objects.
    assert_error(
        &p.admin("PUT", "/api/v1/proxy/targets/missing.test", Some(json!({"enabled": false})))
            .await,
        404,
        None,
    );
    assert_error(&p.admin("DELETE", "/api/v1/routes/missing", None).await, 404, None);
    assert_error(&p.admin("DELETE", "/api/v1/certificates/missing", None).await, 404, None);
    assert_error(&p.admin("DELETE", "/api/v1/tokens/missing", None).await, 404, None);

    // 401 with a wrong token on a write.
    assert_error(
        &p.call(
            "POST",
            "/api/v1/proxy/targets/",
            Some("wrong-token-0000000000000"),
            proxy(json!({})),
        )
        .await,
        401,
        None,
    );
    assert_error(&p.call("POST", "/api/v1/proxy/targets/", None, proxy(json!({}))).await, 401, None);

    assert_eq!(redis.dump(), before, "a rejected write changed the store");
    events.expect_none().await;

    // The same objects are still exactly as created and usable.
    let (s, v) = p.admin("GET", "/api/v1/routes/r-a", None).await;
    assert_eq!((s, v["priority"].as_i64(), v["path_pattern"].as_str()), (200, Some(10), Some("/a")));
    let (s, v) = p.admin("POST", "/api/v1/routes/", route(json!({"priority": 1000}))).await;
    assert_eq!(s, 201, "{v}");
    events.expect_one("route", "create", v["route_id"].as_str().unwrap()).await;
}
