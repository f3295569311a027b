//! Admin API authorization (issue 2): bearer tokens, admin vs user scope,
//! ownership (others' objects are 404), cascade delete of a token.

use serde_json::{json, Value};

use crate::admin_api::{assert_error, has_key, make_cert, make_token, set_members, sha, start};
use crate::harness::{Redis, ADMIN_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_auth_missing_or_wrong_token_is_401() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let before = redis.dump();

    let endpoints: [(&str, &str, Option<Value>); 12] = [
        ("GET", "/api/v1/tokens/", None),
        ("POST", "/api/v1/tokens/", Some(json!({"name": "x"}))),
        ("GET", "/api/v1/tokens/info", None),
        ("GET", "/api/v1/proxy/targets/", None),
        (
            "POST",
            "/api/v1/proxy/targets/",
            Some(json!({"hostname": "x.test", "target_url": "http://127.0.0.1:1"})),
        ),
        ("GET", "/api/v1/proxy/targets/localhost", None),
        ("DELETE", "/api/v1/proxy/targets/localhost", None),
        ("GET", "/api/v1/routes/", None),
        ("GET", "/api/v1/routes/formatted", None),
        (
            "POST",
            "/api/v1/routes/",
            Some(json!({"path_pattern": "/x", "target_type": "port", "target_value": "1"})),
        ),
        ("GET", "/api/v1/certificates/", None),
        ("GET", "/api/v1/services/external", None),
    ];
    let wrong = format!("{ADMIN_TOKEN}x");
    for (method, path, body) in endpoints {
        let got = p.call(method, path, None, body.clone()).await;
        assert_error(&got, 401, None);
        let got = p.call(method, path, Some(&wrong), body.clone()).await;
        assert_error(&got, 401, None);
        let got = p
            .call(method, path, Some("pcl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), body.clone())
            .await;
        assert_error(&got, 401, None);
        // Not a bearer scheme.
        let r = p
            .client
            .request(method.parse().unwrap(), p.api(path))
            .header("Authorization", format!("Basic {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} with Basic auth");
        assert!(r.headers().get("www-authenticate").is_some(), "401 without WWW-Authenticate");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    }
    assert_eq!(redis.dump(), before, "an unauthenticated request changed the store");

    // /health needs no token.
    let r = p.client.get(p.api("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_non_admin_token_sees_and_changes_only_its_own() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let alice = make_token(&p, "alice", "user").await;
    let bob = make_token(&p, "bob", "user").await;

    // Objects of the admin, alice and bob.
    for (tok, host) in [
        (ADMIN_TOKEN, "admin.test"),
        (alice.as_str(), "alice.test"),
        (bob.as_str(), "bob.test"),
    ] {
        let (s, v) = p
            .call(
                "POST",
                "/api/v1/proxy/targets/",
                Some(tok),
                Some(json!({"hostname": host, "target_url": "http://127.0.0.1:1", "enable_https": false})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let id = host.replace(".test", "-route");
        let (s, v) = p
            .call(
                "POST",
                "/api/v1/routes/",
                Some(tok),
                Some(
                    json!({"route_id": id, "path_pattern": format!("/{id}"), "target_type": "port", "target_value": "1",
                    "scope": "proxy", "proxy_hostnames": [host]}),
                ),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let name = host.replace(".test", "-cert");
        let (c, k) = make_cert(&[&format!("www.{host}")], -1, 30);
        let (s, v) = p
            .call(
                "POST",
                "/api/v1/certificates/upload",
                Some(tok),
                Some(json!({"cert_name": name, "certificate_pem": c, "private_key_pem": k})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (_, ap) = p.call("GET", "/api/v1/proxy/targets/alice.test", Some(&alice), None).await;
    assert_eq!(ap["owner_token_hash"], sha(&alice));
    assert_eq!(ap["created_by"], "alice");

    // Lists: alice sees only hers; the admin sees everything.
    // start-up defaults (OAuth routes, the auth.{BASE_DOMAIN} proxy) are left out
    let names = |v: &Value, k: &str| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|x| x[k].as_str().unwrap().to_string())
            .filter(|n| !n.starts_with("oauth-") && n != "auth.localhost")
            .collect();
        n.sort();
        n
    };
    let (_, v) = p.call("GET", "/api/v1/proxy/targets/", Some(&alice), None).await;
    assert_eq!(names(&v, "hostname"), ["alice.test"]);
    let (_, v) = p.call("GET", "/api/v1/routes/", Some(&alice), None).await;
    assert_eq!(names(&v, "route_id"), ["alice-route"]);
    let (_, v) = p.call("GET", "/api/v1/certificates/", Some(&alice), None).await;
    assert_eq!(names(&v, "cert_name"), ["alice-cert"]);
    let (_, v) = p.call("GET", "/api/v1/tokens/", Some(&alice), None).await;
    assert_eq!(names(&v, "name"), ["alice"]);
    let r = p
        .client
        .get(p.api("/api/v1/routes/formatted"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("alice-route") && !text.contains("bob-route") && !text.contains("admin-route"),
        "{text}"
    );
    let (_, v) = p.admin("GET", "/api/v1/proxy/targets/", None).await;
    assert_eq!(names(&v, "hostname"), ["admin.test", "alice.test", "bob.test", "localhost"]);
    let (_, v) = p.admin("GET", "/api/v1/routes/", None).await;
    assert_eq!(names(&v, "route_id"), ["admin-route", "alice-route", "bob-route"]);
    let (_, v) = p.admin("GET", "/api/v1/certificates/", None).await;
    assert_eq!(names(&v, "cert_name"), ["admin-cert", "alice-cert", "bob-cert"]);
    let (_, v) = p.admin("GET", "/api/v1/tokens/", None).await;
    assert_eq!(names(&v, "name"), ["alice", "bob"]);

    // Others' objects are 404 to alice for GET, PUT and DELETE; nothing changes.
    let before = redis.dump();
    for other in ["admin", "bob"] {
        let host = format!("{other}.test");
        let route = format!("{other}-route");
        let cert = format!("{other}-cert");
        for (m, path, body) in [
            ("GET", format!("/api/v1/proxy/targets/{host}"), None),
            ("PUT", format!("/api/v1/proxy/targets/{host}"), Some(json!({"enabled": false}))),
            ("DELETE", format!("/api/v1/proxy/targets/{host}"), None),
            ("GET", format!("/api/v1/routes/{route}"), None),
            ("PUT", format!("/api/v1/routes/{route}"), Some(json!({"enabled": false}))),
            ("DELETE", format!("/api/v1/routes/{route}"), None),
            ("GET", format!("/api/v1/certificates/{cert}"), None),
            ("DELETE", format!("/api/v1/certificates/{cert}"), None),
        ] {
            let got = p.call(m, &path, Some(&alice), body).await;
            assert_error(&got, 404, None);
        }
    }
    for (m, path) in [
        ("GET", "/api/v1/proxy/targets/localhost"),
        ("DELETE", "/api/v1/proxy/targets/localhost"),
        ("GET", "/api/v1/tokens/bob"),
        ("DELETE", "/api/v1/tokens/bob"),
    ] {
        assert_error(&p.call(m, path, Some(&alice), None).await, 404, None);
    }
    // Taking someone else's hostname, or certificate name, is refused without revealing it.
    let (c, k) = make_cert(&["www.alice.test"], -1, 30);
    let got = p
        .call(
            "POST",
            "/api/v1/certificates/upload",
            Some(&alice),
            Some(json!({"cert_name": "bob-cert", "certificate_pem": c, "private_key_pem": k})),
        )
        .await;
    assert_error(&got, 409, None);
    let got = p
        .call(
            "POST",
            "/api/v1/proxy/targets/",
            Some(&alice),
            Some(json!({"hostname": "bob.test", "target_url": "http://127.0.0.1:2"})),
        )
        .await;
    assert_error(&got, 409, None);

    // Token management is admin-only.
    assert_error(
        &p.call(
            "POST",
            "/api/v1/tokens/",
            Some(&alice),
            Some(json!({"name": "mallory", "scope": "admin"})),
        )
        .await,
        403,
        None,
    );
    assert_error(
        &p.call("POST", "/api/v1/tokens/generate", Some(&alice), Some(json!({"name": "mallory"})))
            .await,
        403,
        None,
    );
    assert_error(&p.call("GET", "/api/v1/tokens/alice/reveal", Some(&alice), None).await, 403, None);
    assert_error(&p.call("GET", "/api/v1/tokens/bob/reveal", Some(&alice), None).await, 403, None);
    assert_eq!(redis.dump(), before, "a refused request changed the store");

    // Her own objects she may change; the admin may change anyone's.
    let (s, v) = p
        .call(
            "PUT",
            "/api/v1/proxy/targets/alice.test",
            Some(&alice),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["owner_token_hash"], sha(&alice), "ownership kept");
    let (s, v) = p
        .call("PUT", "/api/v1/routes/alice-route", Some(&alice), Some(json!({"priority": 7})))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = p.call("GET", "/api/v1/tokens/alice", Some(&alice), None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = p.call("GET", "/api/v1/tokens/info", Some(&alice), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "alice");
    let (s, v) = p
        .admin("PUT", "/api/v1/proxy/targets/bob.test", Some(json!({"enabled": false})))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["owner_token_hash"], sha(&bob), "an admin edit keeps the owner");
    let (s, v) = p.call("DELETE", "/api/v1/certificates/alice-cert", Some(&alice), None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = p.admin("DELETE", "/api/v1/routes/bob-route", None).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cascade_delete_removes_owned_objects_and_indexes() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let carol = make_token(&p, "carol", "user").await;
    let dave = make_token(&p, "dave", "user").await;
    let owner_key = format!("owner:{}", sha(&carol));

    for (tok, prefix) in [(carol.as_str(), "c"), (dave.as_str(), "d")] {
        for i in 0..2 {
            let (s, v) = p
                .call(
                    "POST",
                    "/api/v1/proxy/targets/",
                    Some(tok),
                    Some(json!({"hostname": format!("{prefix}{i}.test"), "target_url": "http://127.0.0.1:1", "enable_https": false})),
                )
                .await;
            assert_eq!(s, 201, "{v}");
            let (s, v) = p
                .call(
                    "POST",
                    "/api/v1/routes/",
                    Some(tok),
                    Some(json!({"route_id": format!("{prefix}-r{i}"), "path_pattern": format!("/{prefix}/{i}"), "priority": 100 + i, "target_type": "port", "target_value": "1",
                        "scope": "proxy", "proxy_hostnames": [format!("{prefix}{i}.test")]})),
                )
                .await;
            assert_eq!(s, 201, "{v}");
        }
        let (c, k) = make_cert(&[&format!("{prefix}.example.test"), &format!("www.{prefix}.example.test")], -1, 30);
        let (s, v) = p
            .call(
                "POST",
                "/api/v1/certificates/upload",
                Some(tok),
                Some(json!({"cert_name": format!("{prefix}-cert"), "certificate_pem": c, "private_key_pem": k})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let carol_keys = [
        "proxy:c0.test",
        "proxy:c1.test",
        "route:c-r0",
        "route:c-r1",
        "route:priority:100:c-r0",
        "route:priority:101:c-r1",
        "route:unique-host:c0.test:/c/0:100",
        "route:unique-host:c1.test:/c/1:101",
        "cert:c-cert",
        "cert:domain:c.example.test",
        "cert:domain:www.c.example.test",
        "token:carol",
    ];
    for k in carol_keys {
        assert!(has_key(&redis, k), "{k} missing before the delete");
    }
    assert!(has_key(&redis, &format!("token:hash:{}", sha(&carol))));
    assert_eq!(
        set_members(&redis, &owner_key),
        ["cert:c-cert", "proxy:c0.test", "proxy:c1.test", "route:c-r0", "route:c-r1"]
    );
    let dave_keys: Vec<String> = [
        "proxy:d0.test",
        "proxy:d1.test",
        "route:d-r0",
        "route:d-r1",
        "route:priority:100:d-r0",
        "route:priority:101:d-r1",
        "route:unique-host:d0.test:/d/0:100",
        "route:unique-host:d1.test:/d/1:101",
        "cert:d-cert",
        "cert:domain:d.example.test",
        "cert:domain:www.d.example.test",
        "token:dave",
    ]
    .iter()
    .map(|k| k.to_string())
    .chain([format!("token:hash:{}", sha(&dave)), format!("owner:{}", sha(&dave))])
    .collect();
    let dave_before: Vec<(String, String)> = redis.dump().into_iter().filter(|(k, _)| dave_keys.contains(k)).collect();
    assert_eq!(dave_before.len(), dave_keys.len(), "{dave_before:?}");

    // The admin deletes carol.
    let (s, v) = p.admin("DELETE", "/api/v1/tokens/carol", None).await;
    assert_eq!(s, 200, "{v}");
    let mut report = v["deleted"].clone();
    for k in ["proxies", "routes", "certificates"] {
        let mut a: Vec<String> = report[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        a.sort();
        report[k] = json!(a);
    }
    assert_eq!(
        report,
        json!({"proxies": ["c0.test", "c1.test"], "routes": ["c-r0", "c-r1"], "certificates": ["c-cert"]})
    );

    for k in carol_keys {
        assert!(!has_key(&redis, k), "{k} survived the cascade");
    }
    assert!(!has_key(&redis, &format!("token:hash:{}", sha(&carol))));
    assert!(!has_key(&redis, &owner_key));
    let carol_hash = sha(&carol);
    let carol_ids = [
        "c0.test",
        "c1.test",
        "c-r0",
        "c-r1",
        "c-cert",
        "c.example.test",
        "carol",
        carol_hash.as_str(),
    ];
    let leftovers: Vec<String> = redis
        .dump_keys()
        .into_iter()
        .filter(|k| {
            carol_ids
                .iter()
                .any(|id| k.ends_with(&format!(":{id}")) || k.contains(&format!(":{id}:")))
        })
        .collect();
    assert!(leftovers.is_empty(), "dangling keys: {leftovers:?}");
    let dave_after: Vec<(String, String)> = redis
        .dump()
        .into_iter()
        .filter(|(k, _)| dave_before.iter().any(|(dk, _)| dk == k))
        .collect();
    assert_eq!(dave_after, dave_before, "the cascade touched another token's objects");

    // The API agrees, and carol no longer authenticates.
    assert_error(&p.call("GET", "/api/v1/proxy/targets/", Some(&carol), None).await, 401, None);
    assert_error(&p.admin("GET", "/api/v1/proxy/targets/c0.test", None).await, 404, None);
    assert_error(&p.admin("GET", "/api/v1/routes/c-r0", None).await, 404, None);
    assert_error(&p.admin("GET", "/api/v1/certificates/c-cert", None).await, 404, None);
    // The freed hostname and its path+priority can be taken again.
    let (s, v) = p
        .call(
            "POST",
            "/api/v1/proxy/targets/",
            Some(&dave),
            Some(json!({"hostname": "c0.test", "target_url": "http://127.0.0.1:1", "enable_https": false})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = p
        .call(
            "POST",
            "/api/v1/routes/",
            Some(&dave),
            Some(
                json!({"route_id": "again", "path_pattern": "/c/0", "priority": 100, "target_type": "port", "target_value": "1",
                "scope": "proxy", "proxy_hostnames": ["c0.test"]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // A user token may delete itself, with what it owns.
    let (s, v) = p.call("DELETE", "/api/v1/tokens/dave", Some(&dave), None).await;
    assert_eq!(s, 200, "{v}");
    let schema = ["proxy:", "route:", "token:", "cert:", "owner:"];
    let is_default =
        |k: &str| k.contains("oauth-") || k == "proxy:auth.localhost" || (k.starts_with("route:unique:^/") && k.ends_with(":95"));
    let left: Vec<String> = redis
        .dump_keys()
        .into_iter()
        .filter(|k| schema.iter().any(|p| k.starts_with(p)) && !k.starts_with("cert:status:") && !is_default(k))
        .collect();
    assert_eq!(
        left,
        [format!("owner:{}", sha(ADMIN_TOKEN)), "proxy:localhost".to_string()],
        "only the admin's default proxy remains"
    );
}
