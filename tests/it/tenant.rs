//! Tenant isolation (issue 13): a user-scope token can never touch traffic,
//! TLS or other owners' objects beyond the hostnames it owns. Each test
//! drives the real admin API and the real data plane with two user tokens
//! and the admin token.

use std::time::Duration;

use serde_json::{json, Value};

use crate::admin_api::{assert_error, make_cert, make_token};
use crate::harness::{backend, eventually, Portcullis, Redis};

/// A Redis URL on a closed port, for the embedded store.
const NO_REDIS: &str = "redis://127.0.0.1:9/0";

/// One running instance on either store backend (the store's temp dir and
/// Redis live as long as it does).
pub struct Instance {
    pub p: Portcullis,
    _redis: Option<Redis>,
    _dir: Option<tempfile::TempDir>,
}

/// Starts Portcullis on `store` (`redis` or `embedded`) with `extra` env.
pub async fn instance(store: &str, extra: &[(&str, &str)]) -> Instance {
    let acme = "http://127.0.0.1:9/directory";
    let mut env: Vec<(&str, &str)> = vec![("ACME_DIRECTORY_URL", acme), ("ACME_STAGING_URL", acme)];
    env.extend_from_slice(extra);
    if store == "embedded" {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json").to_str().unwrap().to_string();
        env.push(("STORE", "embedded"));
        env.push(("STORE_PATH", &path));
        let p = Portcullis::start_env(NO_REDIS, &env).await;
        return Instance {
            p,
            _redis: None,
            _dir: Some(dir),
        };
    }
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &env).await;
    Instance {
        p,
        _redis: Some(redis),
        _dir: None,
    }
}

/// `POST` with `token`; (status, body).
async fn post(p: &Portcullis, token: &str, path: &str, body: Value) -> (u16, Value) {
    p.call("POST", path, Some(token), Some(body)).await
}

/// Creates a plain-HTTP proxy owned by `token`; anything but 201 fails.
async fn proxy(p: &Portcullis, token: &str, host: &str, target: &str, extra: Value) {
    let mut body = json!({"hostname": host, "target_url": target, "enable_https": false});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (s, v) = post(p, token, "/api/v1/proxy/targets/", body).await;
    assert_eq!(s, 201, "{host}: {v}");
}

/// (status, JSON-or-text body) of `GET path` on the data plane for `host`.
async fn through(p: &Portcullis, host: &str, path: &str) -> (u16, Value) {
    let r = p.client.get(p.http(path)).header("Host", host).send().await.unwrap();
    let s = r.status().as_u16();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

/// Waits until `host` + `path` answers from `backend`; returns whether it did.
async fn reaches(p: &Portcullis, host: &str, path: &str, backend: &str) -> bool {
    eventually(Duration::from_secs(5), || async {
        (through(p, host, path).await.1["backend"] == backend).then_some(())
    })
    .await
    .is_some()
}

/// Asserts a 403 whose message contains `needle`.
fn forbidden(got: &(u16, Value), needle: &str) {
    assert_error(got, 403, None);
    let m = got.1["message"].as_str().unwrap_or_default();
    assert!(m.contains(needle), "403 message {m:?} does not mention {needle:?}");
}

async fn global_routes_are_admin_only_and_user_routes_block_nobody(store: &str) {
    let i = instance(store, &[("USER_TARGET_ALLOW_NETWORKS", "127.0.0.0/8")]).await;
    let p = &i.p;
    let admin = p.admin_token.clone();
    let alice = make_token(p, "alice", "user").await;
    let bob = make_token(p, "bob", "user").await;
    let (a, b, c) = (
        backend::start("ADMIN").await,
        backend::start("ALICE").await,
        backend::start("BOB").await,
    );
    proxy(p, &admin, "admin.test", &a.url(), json!({})).await;
    proxy(p, &alice, "alice.test", &a.url(), json!({})).await;
    proxy(p, &bob, "bob.test", &c.url(), json!({})).await;

    // A user's global route (or one on another's proxy) would take every host's traffic.
    for path in ["/", "/token", "/api/v1/tokens/"] {
        let got = post(
            p,
            &alice,
            "/api/v1/routes/",
            json!({"path_pattern": path, "target_type": "url", "target_value": b.url(), "priority": 1000}),
        )
        .await;
        forbidden(&got, "only the admin creates global routes");
    }
    let got = post(
        p,
        &alice,
        "/api/v1/routes/",
        json!({"path_pattern": "/", "target_type": "url", "target_value": b.url(),
        "priority": 1000, "scope": "proxy", "proxy_hostnames": ["alice.test", "bob.test"]}),
    )
    .await;
    forbidden(&got, "bob.test is not a proxy you own");

    // Her own route on her own proxy works, and blocks nobody else's path+priority.
    let (s, v) = post(
        p,
        &alice,
        "/api/v1/routes/",
        json!({"route_id": "alice-x", "path_pattern": "/x", "target_type": "url",
        "target_value": b.url(), "priority": 500, "scope": "proxy", "proxy_hostnames": ["alice.test"]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = post(
        p,
        &admin,
        "/api/v1/routes/",
        json!({"route_id": "admin-x", "path_pattern": "/x", "target_type": "url",
        "target_value": a.url(), "priority": 500}),
    )
    .await;
    assert_eq!(s, 201, "the admin's global route is not blocked by a user's: {v}");
    let (s, v) = post(
        p,
        &bob,
        "/api/v1/routes/",
        json!({"route_id": "bob-x", "path_pattern": "/x", "target_type": "url",
        "target_value": c.url(), "priority": 500, "scope": "proxy", "proxy_hostnames": ["bob.test"]}),
    )
    .await;
    assert_eq!(s, 201, "bob's route is not blocked by alice's: {v}");
    // ...but on her own proxy the pair is hers.
    let got = post(
        p,
        &alice,
        "/api/v1/routes/",
        json!({"route_id": "alice-x2", "path_pattern": "/x", "target_type": "url",
        "target_value": b.url(), "priority": 500, "scope": "proxy", "proxy_hostnames": ["alice.test"]}),
    )
    .await;
    assert_error(&got, 409, None);
    // Updating her route to global is refused the same way.
    let got = p
        .call("PUT", "/api/v1/routes/alice-x", Some(&alice), Some(json!({"scope": "global"})))
        .await;
    forbidden(&got, "only the admin creates global routes");

    // The data plane: each proxy's /x goes where its owner (or the admin) said.
    assert!(reaches(p, "alice.test", "/x", "ALICE").await, "alice's own route");
    assert!(reaches(p, "bob.test", "/x", "BOB").await, "bob's own route");
    assert!(reaches(p, "admin.test", "/x", "ADMIN").await, "the admin's global route");
    assert!(reaches(p, "admin.test", "/", "ADMIN").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_global_routes_are_admin_only_and_user_routes_block_nobody_redis() {
    global_routes_are_admin_only_and_user_routes_block_nobody("redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_global_routes_are_admin_only_and_user_routes_block_nobody_embedded() {
    global_routes_are_admin_only_and_user_routes_block_nobody("embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_hostname_routes_never_reach_another_owners_protected_proxy() {
    let i = instance("redis", &[("USER_TARGET_ALLOW_NETWORKS", "127.0.0.0/8")]).await;
    let p = &i.p;
    let alice = make_token(p, "alice", "user").await;
    let bob = make_token(p, "bob", "user").await;
    let (a, b) = (backend::start("ALICE").await, backend::start("BOB-SECRET").await);
    let home = backend::start("ALICE-HOME").await;
    proxy(p, &alice, "alice.test", &home.url(), json!({})).await;
    proxy(p, &bob, "bob.test", &b.url(), json!({"auth_enabled": true})).await;
    let protected = eventually(Duration::from_secs(5), || async {
        (through(p, "bob.test", "/").await.0 == 401).then_some(())
    })
    .await;
    assert!(protected.is_some(), "bob's proxy needs a token");

    // Naming another owner's proxy as a target is refused.
    let got = post(
        p,
        &alice,
        "/api/v1/routes/",
        json!({"path_pattern": "/steal", "target_type": "hostname", "target_value": "bob.test",
        "scope": "proxy", "proxy_hostnames": ["alice.test"]}),
    )
    .await;
    forbidden(&got, "bob.test is not a proxy you own");

    // A route to her own proxy whose hostname she then gives up and bob takes,
    // with auth on: the data plane must not carry her requests past bob's auth.
    proxy(p, &alice, "spare.test", &a.url(), json!({})).await;
    let (s, v) = post(
        p,
        &alice,
        "/api/v1/routes/",
        json!({"path_pattern": "/via", "target_type": "hostname", "target_value": "spare.test",
        "scope": "proxy", "proxy_hostnames": ["alice.test"]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert!(reaches(p, "alice.test", "/via", "ALICE").await, "her own hostname route works");
    let (s, v) = p.call("DELETE", "/api/v1/proxy/targets/spare.test", Some(&alice), None).await;
    assert_eq!(s, 200, "{v}");
    proxy(p, &bob, "spare.test", &b.url(), json!({"auth_enabled": true})).await;
    let bobs = eventually(Duration::from_secs(5), || async {
        (through(p, "spare.test", "/").await.0 == 401).then_some(())
    })
    .await;
    assert!(bobs.is_some(), "bob's spare.test is served, with auth");
    let (s, v) = through(p, "alice.test", "/via").await;
    assert!(s == 502 && v["backend"] != "BOB-SECRET", "{s} {v}");
    // The admin's routes are not limited by ownership, but still never skip a target's auth.
    proxy(p, &p.admin_token, "open.test", &a.url(), json!({})).await;
    let (s, v) = post(
        p,
        &p.admin_token,
        "/api/v1/routes/",
        json!({"path_pattern": "/admin-via", "target_type": "hostname",
        "target_value": "bob.test", "scope": "proxy", "proxy_hostnames": ["open.test"]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    // until the route is in the snapshot, /admin-via reaches open.test's own backend
    let (s, v) = eventually(Duration::from_secs(5), || async {
        let (s, v) = through(p, "open.test", "/admin-via").await;
        (s == 502 || v["backend"] == "BOB-SECRET").then_some((s, v))
    })
    .await
    .expect("the admin's route is applied");
    assert!(s == 502 && v["backend"] != "BOB-SECRET", "{s} {v}");
}

/// Handshakes with `sni` on `port`; returns the leaf's serial (hex).
fn served_serial(port: u16, sni: &str) -> String {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let s = b.build().configure().unwrap().verify_hostname(false).connect(sni, tcp).unwrap();
    let cert = s.ssl().peer_certificate().unwrap();
    cert.serial_number().to_bn().unwrap().to_hex_str().unwrap().to_string()
}

/// The serial of a PEM certificate.
fn serial_of(pem: &str) -> String {
    let c = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    c.serial_number().to_bn().unwrap().to_hex_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_certificates_serve_and_name_only_their_owners_hostnames() {
    let i = instance("redis", &[("USER_TARGET_ALLOW_NETWORKS", "127.0.0.0/8")]).await;
    let p = &i.p;
    let admin = p.admin_token.clone();
    let alice = make_token(p, "alice", "user").await;
    let bob = make_token(p, "bob", "user").await;
    let a = backend::start("A").await;
    proxy(p, &bob, "bob.test", &a.url(), json!({})).await;
    let port = p.https_port;
    let serial_for = |sni: &'static str| async move { tokio::task::spawn_blocking(move || served_serial(port, sni)).await.unwrap() };

    // Uploads and ACME orders naming bob's hostname are refused for alice.
    let (c, k) = make_cert(&["bob.test"], -1, 30);
    let got = post(
        p,
        &alice,
        "/api/v1/certificates/upload",
        json!({"cert_name": "evil", "certificate_pem": c, "private_key_pem": k}),
    )
    .await;
    forbidden(&got, "bob.test");
    let got = post(
        p,
        &alice,
        "/api/v1/certificates/",
        json!({"cert_name": "evil2", "domain": "bob.test"}),
    )
    .await;
    forbidden(&got, "bob.test");
    let got = post(
        p,
        &alice,
        "/api/v1/certificates/multi-domain",
        json!({"cert_name": "evil3", "domains": ["a.test", "bob.test"]}),
    )
    .await;
    forbidden(&got, "bob.test");
    // A wildcard uploaded before bob's subdomain existed is never served for it.
    let (wc, wk) = make_cert(&["*.wild.test"], -1, 30);
    let (s, v) = post(
        p,
        &alice,
        "/api/v1/certificates/upload",
        json!({"cert_name": "wild", "certificate_pem": wc, "private_key_pem": wk}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    proxy(p, &bob, "x.wild.test", &a.url(), json!({})).await;
    // ... while her own hostname under it gets it once she has that proxy.
    proxy(p, &alice, "mine.wild.test", &a.url(), json!({})).await;
    let wild = serial_of(&wc);
    let mine = eventually(Duration::from_secs(5), || async {
        (serial_for("mine.wild.test").await == wild).then_some(())
    })
    .await;
    assert!(mine.is_some(), "alice's wildcard serves her own hostname");
    assert_ne!(serial_for("x.wild.test").await, wild, "alice's wildcard served bob's hostname");
    // The admin may install any certificate.
    let (ac, ak) = make_cert(&["bob.test"], -1, 30);
    let (s, v) = post(
        p,
        &admin,
        "/api/v1/certificates/upload",
        json!({"cert_name": "admin-bob", "certificate_pem": ac, "private_key_pem": ak}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let admins = serial_of(&ac);
    assert!(eventually(Duration::from_secs(5), || async {
        (serial_for("bob.test").await == admins).then_some(())
    })
    .await
    .is_some());

    // cert_name: another owner's certificate is refused on create and update
    // (422, as for an absent one: the reference is checked at write time) and attach (404).
    let (bc, bk) = make_cert(&["bob.test"], -1, 30);
    let (s, v) = post(
        p,
        &bob,
        "/api/v1/certificates/upload",
        json!({"cert_name": "bobs", "certificate_pem": bc, "private_key_pem": bk}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let got = post(
        p,
        &alice,
        "/api/v1/proxy/targets/",
        json!({"hostname": "take.test", "target_url": a.url(), "cert_name": "bobs"}),
    )
    .await;
    assert_error(&got, 422, Some("cert_name"));
    let got = p
        .call(
            "PUT",
            "/api/v1/proxy/targets/mine.wild.test",
            Some(&alice),
            Some(json!({"cert_name": "bobs"})),
        )
        .await;
    assert_error(&got, 422, Some("cert_name"));
    let got = post(
        p,
        &alice,
        "/api/v1/proxy/targets/mine.wild.test/cert/attach",
        json!({"cert_name": "bobs"}),
    )
    .await;
    assert_error(&got, 404, None);

    // Proxy certificate names do not collide (`col.example.test` vs `col-example.test`),
    // and an order's status is its orderer's.
    let (s, v) = post(
        p,
        &alice,
        "/api/v1/proxy/targets/",
        json!({"hostname": "col.example.test", "target_url": a.url()}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = post(
        p,
        &bob,
        "/api/v1/proxy/targets/",
        json!({"hostname": "col-example.test", "target_url": a.url()}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = p
        .call("GET", "/api/v1/certificates/proxy-col-example-test/status", Some(&alice), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["domains"], json!(["col.example.test"]));
    assert!(v.get("owner_token_hash").is_none(), "{v}");
    let (s, v) = p
        .call("GET", "/api/v1/certificates/proxy-col--example-test/status", Some(&bob), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["domains"], json!(["col-example.test"]));
    let got = p
        .call("GET", "/api/v1/certificates/proxy-col-example-test/status", Some(&bob), None)
        .await;
    assert_error(&got, 404, None);
    let (s, _) = p.admin("GET", "/api/v1/certificates/proxy-col-example-test/status", None).await;
    assert_eq!(s, 200, "the admin reads every status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_custom_headers_refuse_framing_forwarding_and_identity_names() {
    let i = instance("redis", &[]).await;
    let p = &i.p;
    let a = backend::start("A").await;
    let admin = p.admin_token.clone();
    for (field, name) in [
        ("custom_headers", "Content-Length"),
        ("custom_headers", "transfer_encoding"),
        ("custom_headers", "Connection"),
        ("custom_headers", "TE"),
        ("custom_headers", "Host"),
        ("custom_headers", "X-Forwarded-Host"),
        ("custom_headers", "x_forwarded_for"),
        ("custom_headers", "Forwarded"),
        ("custom_headers", "X-Real-IP"),
        ("custom_headers", "Authorization"),
        ("custom_headers", "X-Auth-User"),
        ("custom_headers", "X-Ident-Email"),
        ("custom_response_headers", "Transfer-Encoding"),
        ("custom_response_headers", "Keep-Alive"),
        ("custom_response_headers", "Upgrade"),
        ("custom_response_headers", "Trailer"),
    ] {
        let body = json!({"hostname": "h.test", "target_url": a.url(), "enable_https": false, "auth_header_prefix": "X-Ident-", field: {name: "1"}});
        let got = post(p, &admin, "/api/v1/proxy/targets/", body).await;
        assert_error(&got, 422, Some(field));
        assert!(got.1["message"].as_str().unwrap().contains(name), "{name}: {}", got.1);
    }
    // Same on update; harmless names pass.
    proxy(p, &admin, "h.test", &a.url(), json!({"custom_headers": {"X-Team": "a"}})).await;
    let got = p
        .admin(
            "PUT",
            "/api/v1/proxy/targets/h.test",
            Some(json!({"custom_headers": {"Content-Length": "0"}})),
        )
        .await;
    assert_error(&got, 422, Some("custom_headers"));
    assert!(reaches(p, "h.test", "/", "A").await);
    let (_, v) = through(p, "h.test", "/").await;
    assert_eq!(v["headers"]["x-team"], json!(["a"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_user_targets_hostnames_urls_and_sizes_are_bounded() {
    let i = instance("redis", &[]).await;
    let p = &i.p;
    let admin = p.admin_token.clone();
    let alice = make_token(p, "alice", "user").await;
    let a = backend::start("A").await;
    let api = format!("http://127.0.0.1:{}", p.api_port);

    // Targets on this machine are the admin's unless USER_TARGET_ALLOW_NETWORKS says so.
    for target in [
        a.url(),
        "http://localhost:1".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://0.0.0.0:80".to_string(),
        "http://[::1]:80".to_string(),
        api.clone(),
    ] {
        let got = post(
            p,
            &alice,
            "/api/v1/proxy/targets/",
            json!({"hostname": "t.test", "target_url": target, "enable_https": false}),
        )
        .await;
        forbidden(&got, "not allowed as a target");
    }
    let (s, v) = post(
        p,
        &admin,
        "/api/v1/proxy/targets/",
        json!({"hostname": "adm.test", "target_url": a.url(), "enable_https": false}),
    )
    .await;
    assert_eq!(s, 201, "the admin keeps loopback targets: {v}");
    // Per-proxy OAuth scope lists are the admin's to set.
    let got = post(
        p,
        &alice,
        "/api/v1/proxy/targets/",
        json!({"hostname": "s.test", "target_url": "http://192.0.2.1", "enable_https": false, "oauth_admin_users": ["*"]}),
    )
    .await;
    forbidden(&got, "only the admin sets per-proxy OAuth scope lists");
    proxy(p, &alice, "s.test", "http://192.0.2.1", json!({})).await;
    let got = p
        .call(
            "PUT",
            "/api/v1/proxy/targets/s.test",
            Some(&alice),
            Some(json!({"oauth_user_users": ["alice"]})),
        )
        .await;
    forbidden(&got, "oauth_user_users");
    // So is serving the authorization server's endpoints on a proxy host.
    let got = p
        .call(
            "PUT",
            "/api/v1/proxy/targets/s.test",
            Some(&alice),
            Some(json!({"oauth_endpoints": true})),
        )
        .await;
    forbidden(&got, "oauth_endpoints: only the admin");
    let (s, v) = p
        .call("PUT", "/api/v1/proxy/targets/s.test", Some(&alice), Some(json!({"enabled": false})))
        .await;
    assert_eq!(s, 200, "other fields stay hers to change: {v}");
    let (s, v) = p
        .admin("PUT", "/api/v1/proxy/targets/s.test", Some(json!({"oauth_mcp_users": ["alice"]})))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = p
        .call("PUT", "/api/v1/proxy/targets/s.test", Some(&alice), Some(json!({"enabled": true})))
        .await;
    assert_eq!(s, 200, "a list the admin set does not block her edits: {v}");
    // IP-address hostnames are the admin's.
    let got = post(
        p,
        &alice,
        "/api/v1/proxy/targets/",
        json!({"hostname": "127.0.0.1", "target_url": "http://192.0.2.1", "enable_https": false}),
    )
    .await;
    forbidden(&got, "IP address");
    // Credentials and control characters in URLs are refused for everyone.
    for target in [
        "http://user:pass@192.0.2.1/",
        "http://192.0.2.1/a\r\nX-Evil: 1",
        "http://192.0.2.1/\t",
    ] {
        for tok in [&admin, &alice] {
            let got = post(
                p,
                tok,
                "/api/v1/proxy/targets/",
                json!({"hostname": "u.test", "target_url": target, "enable_https": false}),
            )
            .await;
            assert_error(&got, 422, Some("target_url"));
        }
    }
    // A stored user proxy on loopback (e.g. from before this rule) is not served either.
    proxy(p, &alice, "mine.test", "http://192.0.2.1:9", json!({})).await;
    let r = p.call("GET", "/api/v1/proxy/targets/mine.test", Some(&alice), None).await.1;
    let mut rec = r.clone();
    rec["target_url"] = json!(a.url());
    let redis = i._redis.as_ref().unwrap();
    redis.cli(&["SET", "proxy:mine.test", &rec.to_string()]);
    redis.cli(&[
        "PUBLISH",
        "portcullis:changes",
        r#"{"kind":"proxy","id":"mine.test","op":"update"}"#,
    ]);
    assert!(reaches(p, "adm.test", "/", "A").await);
    let served = eventually(Duration::from_secs(3), || async {
        (through(p, "mine.test", "/").await.1["backend"] == "A").then_some(())
    })
    .await;
    assert!(served.is_none(), "a user proxy was served from loopback");
    assert_eq!(through(p, "mine.test", "/").await.0, 502);

    // Even with loopback allowed, the control plane stays the admin's.
    let j = instance("redis", &[("USER_TARGET_ALLOW_NETWORKS", "127.0.0.0/8, ::1/128")]).await;
    let q = &j.p;
    let carol = make_token(q, "carol", "user").await;
    proxy(q, &carol, "ok.test", &a.url(), json!({})).await;
    let api = format!("http://127.0.0.1:{}", q.api_port);
    let got = post(
        q,
        &carol,
        "/api/v1/proxy/targets/",
        json!({"hostname": "cp.test", "target_url": api, "enable_https": false}),
    )
    .await;
    forbidden(&got, "control plane");
    let got = post(
        q,
        &carol,
        "/api/v1/routes/",
        json!({"path_pattern": "/cp", "target_type": "port", "target_value": q.api_port.to_string(),
        "scope": "proxy", "proxy_hostnames": ["ok.test"]}),
    )
    .await;
    forbidden(&got, "control plane");
    let got = post(
        q,
        &carol,
        "/api/v1/routes/",
        json!({"path_pattern": "/md", "target_type": "url", "target_value": "http://169.254.169.254/",
        "scope": "proxy", "proxy_hostnames": ["ok.test"]}),
    )
    .await;
    forbidden(&got, "not allowed as a target");
    let got = post(
        q,
        &carol,
        "/api/v1/routes/",
        json!({"path_pattern": "/svc", "target_type": "service", "target_value": "internal",
        "scope": "proxy", "proxy_hostnames": ["ok.test"]}),
    )
    .await;
    forbidden(&got, "service");

    // Users do not see the admin's external services.
    let (s, v) = post(
        q,
        &q.admin_token,
        "/api/v1/services/external",
        json!({"service_name": "internal", "target_url": "http://10.0.0.5:8080"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = q.call("GET", "/api/v1/services/external", Some(&carol), None).await;
    assert_eq!((s, v), (200, json!([])));
    let (_, v) = q.admin("GET", "/api/v1/services/external", None).await;
    let names: Vec<&str> = v.as_array().unwrap().iter().filter_map(|s| s["service_name"].as_str()).collect();
    assert!(names.contains(&"internal"), "{v}");

    // Documented size limits answer 422 naming the field, 413 for a huge body.
    let long = "x".repeat(5000);
    let route = |extra: Value| {
        let mut r = json!({"path_pattern": "/l", "target_type": "url", "target_value": "http://192.0.2.1", "scope": "proxy", "proxy_hostnames": ["ok.test"]});
        r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        r
    };
    for (body, field) in [
        (route(json!({"description": long})), "description"),
        (route(json!({"path_pattern": format!("/{long}")})), "path_pattern"),
        (
            route(json!({"proxy_hostnames": (0..101).map(|n| format!("h{n}.test")).collect::<Vec<_>>()})),
            "proxy_hostnames",
        ),
    ] {
        assert_error(&post(q, &carol, "/api/v1/routes/", body).await, 422, Some(field));
    }
    let got = q
        .call(
            "PUT",
            "/api/v1/proxy/targets/ok.test",
            Some(&carol),
            Some(json!({"custom_headers": {"X-Big": long}})),
        )
        .await;
    assert_error(&got, 422, Some("custom_headers"));
    let got = q
        .call(
            "PUT",
            "/api/v1/proxy/targets/ok.test",
            Some(&carol),
            Some(json!({"auth_required_users": vec!["u"; 101]})),
        )
        .await;
    assert_error(&got, 422, Some("auth_required_users"));
    let huge = json!({"hostname": "big.test", "target_url": "http://192.0.2.1", "description": "y".repeat(3 * 1024 * 1024)});
    assert_error(&post(q, &carol, "/api/v1/proxy/targets/", huge).await, 413, None);
}

/// Creates an HTTPS proxy as the admin; returns the create response's `certificate`.
async fn https_proxy(p: &Portcullis, host: &str, extra: Value) -> Value {
    let mut body = json!({"hostname": host, "target_url": "http://192.0.2.1"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (s, v) = p.admin("POST", "/api/v1/proxy/targets/", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    v["certificate"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_automatic_certificates_skip_names_no_public_ca_validates_and_can_be_off() {
    let i = instance("redis", &[]).await;
    let p = &i.p;
    for (host, why) in [
        ("app.test", ".test"),
        ("192.0.2.10", "IP address"),
        ("intranet", "single-label"),
        ("svc.internal", ".internal"),
        ("printer.local", ".local"),
        ("dev.localhost", ".localhost"),
    ] {
        let c = https_proxy(p, host, json!({})).await;
        assert_eq!(c["status"], "skipped", "{host}: {c}");
        assert!(c["message"].as_str().unwrap().contains(why), "{host}: {c}");
        let (s, st) = p.admin("GET", c["status_url"].as_str().unwrap(), None).await;
        assert_eq!((s, st["status"].as_str()), (200, Some("skipped")), "{host}: {st}");
    }
    let c = https_proxy(p, "quiet.example.org", json!({"acme_auto": false})).await;
    assert_eq!(c["status"], "skipped", "{c}");
    assert!(c["message"].as_str().unwrap().contains("acme_auto"), "{c}");
    // A public name is ordered, and the answer says from where and how to follow it.
    let c = https_proxy(p, "app.example.org", json!({"staging": true})).await;
    assert_eq!(c["status"], "pending", "{c}");
    assert_eq!(c["cert_name"], "proxy-app-example-org");
    assert_eq!(c["directory"], "staging");
    assert_eq!(c["status_url"], "/api/v1/certificates/proxy-app-example-org/status");
    // No certificate section when HTTPS is off or a certificate is named.
    let (_, v) = p
        .admin(
            "POST",
            "/api/v1/proxy/targets/",
            Some(json!({"hostname": "plain.example.org", "target_url": "http://192.0.2.1", "enable_https": false})),
        )
        .await;
    assert!(v.get("certificate").is_none(), "{v}");

    // ACME_AUTO=false turns automatic orders off for the instance.
    let j = instance("redis", &[("ACME_AUTO", "false")]).await;
    let c = https_proxy(&j.p, "app.example.org", json!({})).await;
    assert_eq!(c["status"], "skipped", "{c}");
    assert!(c["message"].as_str().unwrap().contains("ACME_AUTO=false"), "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_a_finished_acme_order_never_overwrites_a_certificate_replaced_meanwhile() {
    let redis = Redis::start();
    let http = crate::harness::free_port();
    let pebble = crate::harness::pebble::Pebble::start(http, 0);
    let http_s = http.to_string();
    let mut env: Vec<(&str, String)> = pebble.env();
    env.push(("HTTP_PORT", http_s));
    // the order waits 4 s before its first poll: the upload below lands first
    env.push(("ACME_POLL_INITIAL_WAIT", "4".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = Portcullis::start_with(&redis, &env).await;
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/",
            Some(json!({"cert_name": "race", "domain": "race.example.org"})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let (c, k) = make_cert(&["race.example.org"], -1, 30);
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "race", "certificate_pem": c, "private_key_pem": k})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let uploaded = v["fingerprint_sha256"].clone();
    let done = eventually(Duration::from_secs(90), || async {
        let (_, v) = p.admin("GET", "/api/v1/certificates/race/status", None).await;
        (v["status"] == "failed" || v["status"] == "issued").then_some(v)
    })
    .await
    .expect("the order ends");
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["message"].as_str().unwrap().contains("replaced"), "{done}");
    let (_, now) = p.admin("GET", "/api/v1/certificates/race", None).await;
    assert_eq!(now["fingerprint_sha256"], uploaded, "the uploaded certificate was overwritten");
    assert_eq!(now["source"], "upload");
}
