//! Admin API tests (issue 2): every endpoint, token secrecy, the store's key
//! schema. Shared helpers for the other `admin_*` modules live here too.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::harness::{eventually, Portcullis, Redis, ADMIN_TOKEN};

// ---------------------------------------------------------------- helpers

/// Starts portcullis for an admin test; ACME points at a closed local port
/// so no test reaches the internet or depends on issuance.
/// Every backend here is on loopback, which user-scope owners may reach only
/// through `USER_TARGET_ALLOW_NETWORKS`: these tests allow 127.0.0.0/8.
pub async fn start(redis: &Redis) -> Portcullis {
    let acme = "http://127.0.0.1:9/directory";
    Portcullis::start_with(
        redis,
        &[
            ("ACME_DIRECTORY_URL", acme),
            ("ACME_STAGING_URL", acme),
            ("USER_TARGET_ALLOW_NETWORKS", "127.0.0.0/8"),
        ],
    )
    .await
}

/// Asserts an error answer: `status`, a JSON object with string `error` and
/// `message`, and (when given) `field` naming the offending field.
pub fn assert_error(got: &(u16, Value), status: u16, field: Option<&str>) {
    let (s, v) = got;
    assert_eq!(*s, status, "expected {status}, got {s}: {v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "no \"error\" string in {v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "no \"message\" string in {v}");
    if let Some(f) = field {
        assert_eq!(v["field"].as_str(), Some(f), "wrong or missing \"field\" in {v}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(f),
            "message does not name {f}: {v}"
        );
    }
}

/// Sends a raw body (for malformed JSON); returns (status, JSON or text).
pub async fn call_raw(p: &Portcullis, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut rb = p
        .client
        .request(method.parse().unwrap(), p.api(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A client that never follows redirects.
pub fn no_redirect_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `sha256:<hex>` of a token value, as the store keys it.
pub fn sha(token: &str) -> String {
    format!("sha256:{}", hex::encode(openssl::sha::sha256(token.as_bytes())))
}

/// Creates a token with `scope` as the admin; returns its value.
pub async fn make_token(p: &Portcullis, name: &str, scope: &str) -> String {
    let (s, v) = p
        .admin("POST", "/api/v1/tokens/", Some(json!({"name": name, "scope": scope})))
        .await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().expect("token value at creation").to_string()
}

/// True when some key or value in the dump contains `needle`.
pub fn dump_contains(dump: &[(String, String)], needle: &str) -> bool {
    dump.iter().any(|(k, v)| k.contains(needle) || v.contains(needle))
}

/// True when Redis has `key`.
pub fn has_key(redis: &Redis, key: &str) -> bool {
    redis.cli(&["EXISTS", key]).trim() == "1"
}

/// Members of a Redis set, sorted.
pub fn set_members(redis: &Redis, key: &str) -> Vec<String> {
    let mut m: Vec<String> = redis
        .cli(&["SMEMBERS", key])
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    m.sort();
    m
}

/// A self-signed certificate for `domains` (SANs; CN is the first), valid
/// from `from_days` to `until_days` relative to now; returns (cert PEM, PKCS#8 key PEM).
pub fn make_cert(domains: &[&str], from_days: i64, until_days: i64) -> (String, String) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509Builder, X509NameBuilder};

    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, domains[0]).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand::random::<u32>() | 1).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now + from_days * 86_400).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + until_days * 86_400).unwrap()).unwrap();
    let mut san = SubjectAlternativeName::new();
    for d in domains {
        san.dns(d);
    }
    let san = san.build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    (
        String::from_utf8(cert.to_pem().unwrap()).unwrap(),
        String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
    )
}

/// A middle line of a PEM's base64 body (to look for it in the store).
pub fn pem_body_line(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).nth(3).unwrap().to_string()
}

/// A subscriber on the store's change channel, started before the writes it checks.
pub struct Events {
    rx: tokio::sync::mpsc::UnboundedReceiver<Value>,
    task: tokio::task::JoinHandle<()>,
}

impl Events {
    /// Subscribes to `portcullis:changes` on `redis` (returns once subscribed).
    pub async fn subscribe(redis: &Redis) -> Events {
        let client = redis::Client::open(redis.url()).unwrap();
        let mut ps = client.get_async_pubsub().await.unwrap();
        ps.subscribe("portcullis:changes").await.unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut s = ps.into_on_message();
            while let Some(m) = s.next().await {
                let payload: String = m.get_payload().unwrap_or_default();
                let v = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Events { rx, task }
    }

    /// The next event within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.rx.recv()).await.ok().flatten()
    }

    /// Exactly one event `{kind, id, op}` arrives, and nothing else within 300 ms.
    pub async fn expect_one(&mut self, kind: &str, op: &str, id: &str) {
        let e = self
            .next(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no change event for {kind} {op} {id}"));
        assert_eq!(
            (e["kind"].as_str(), e["op"].as_str(), e["id"].as_str()),
            (Some(kind), Some(op), Some(id)),
            "unexpected event {e}"
        );
        self.expect_none().await;
    }

    /// No event within 300 ms.
    pub async fn expect_none(&mut self) {
        if let Some(e) = self.next(Duration::from_millis(300)).await {
            panic!("unexpected extra change event {e}");
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_health_metrics_and_collections_with_and_without_slash() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let c = no_redirect_client();

    let r = c.get(p.api("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["redis"], "ok", "{v}");
    assert_eq!(v["status"], "healthy", "{v}");

    // Make at least one API request first, then the counter must be exposed.
    let _ = p.admin("GET", "/api/v1/tokens/", None).await;
    let r = c.get(p.api("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("portcullis_api_requests_total"),
        "metrics lack the API counter:\n{text}"
    );

    for path in [
        "/api/v1/tokens",
        "/api/v1/proxy/targets",
        "/api/v1/routes",
        "/api/v1/certificates",
        "/api/v1/services/external",
    ] {
        for p2 in [path.to_string(), format!("{path}/")] {
            let r = c.get(p.api(&p2)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
            assert_eq!(r.status(), 200, "GET {p2}");
            let v: Value = r.json().await.unwrap();
            assert!(v.is_array(), "GET {p2} is not a list: {v}");
        }
    }
    // Writes to a collection also work without the trailing slash.
    let r = c
        .post(p.api("/api/v1/proxy/targets"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"hostname": "noslash.test", "target_url": "http://127.0.0.1:9", "enable_https": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(p.api("/api/v1/routes"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"path_pattern": "/ns", "target_type": "port", "target_value": "9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(p.api("/api/v1/tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "noslash"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // An unknown endpoint is a JSON 404.
    assert_error(&p.admin("GET", "/api/v1/nothing-here", None).await, 404, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_health_reports_redis_down_as_503() {
    let mut redis = Redis::start();
    let p = start(&redis).await;
    redis.kill();
    let got = eventually(Duration::from_secs(20), || async {
        let r = p.client.get(p.api("/health")).send().await.ok()?;
        let s = r.status().as_u16();
        let v: Value = r.json().await.ok()?;
        (s == 503).then_some(v)
    })
    .await
    .expect("/health never answered 503 with Redis down");
    assert_ne!(got["redis"], "ok", "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_endpoints_and_secrecy() {
    let redis = Redis::start();
    let p = start(&redis).await;

    // POST /tokens/ generates a value.
    let (s, created) = p
        .admin(
            "POST",
            "/api/v1/tokens/",
            Some(json!({"name": "ci-bot", "cert_email": "ci@example.com"})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let value = created["token"].as_str().unwrap().to_string();
    let body = value
        .strip_prefix("pcl_")
        .unwrap_or_else(|| panic!("token {value} lacks the pcl_ prefix"));
    assert!(body.len() >= 43, "token too short: {value}");
    assert_eq!(created["name"], "ci-bot");
    assert_eq!(created["cert_email"], "ci@example.com");
    assert_eq!(created["scope"], "user");
    assert_eq!(created["hash"], sha(&value));

    // POST /tokens/generate makes another, different one, ignoring a supplied value.
    let (s, gen) = p
        .admin(
            "POST",
            "/api/v1/tokens/generate",
            Some(json!({"name": "gen-1", "token": "pcl_supplied_value_that_is_long_enough_000000"})),
        )
        .await;
    assert_eq!(s, 201, "{gen}");
    let gen_value = gen["token"].as_str().unwrap().to_string();
    assert!(gen_value.starts_with("pcl_") && gen_value.len() >= 47, "{gen_value}");
    assert_ne!(gen_value, value);
    assert_ne!(gen_value, "pcl_supplied_value_that_is_long_enough_000000");

    // Duplicate name: 409.
    assert_error(
        &p.admin("POST", "/api/v1/tokens/", Some(json!({"name": "ci-bot"}))).await,
        409,
        None,
    );

    // Lists and shows never carry the value.
    let (s, list) = p.admin("GET", "/api/v1/tokens/", None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"ci-bot") && names.contains(&"gen-1"), "{list}");
    let (s, shown) = p.admin("GET", "/api/v1/tokens/ci-bot", None).await;
    assert_eq!(s, 200);
    assert_eq!(shown["hash"], sha(&value));
    assert!(shown.get("token").is_none(), "show leaks the value: {shown}");
    let (s, info) = p.call("GET", "/api/v1/tokens/info", Some(&value), None).await;
    assert_eq!(s, 200);
    assert_eq!(info["name"], "ci-bot");
    let (s, admin_info) = p.admin("GET", "/api/v1/tokens/info", None).await;
    assert_eq!(s, 200);
    assert_eq!(admin_info["scope"], "admin");
    for text in [list.to_string(), shown.to_string(), info.to_string(), admin_info.to_string()] {
        assert!(!text.contains(&value) && !text.contains(&gen_value), "a token value leaked: {text}");
        assert!(!text.contains(ADMIN_TOKEN), "the admin token leaked: {text}");
    }

    // Keys: token:{name} and token:hash:{hash} -> name; no plain value anywhere.
    assert!(has_key(&redis, "token:ci-bot"));
    assert_eq!(redis.cli(&["GET", &format!("token:hash:{}", sha(&value))]).trim(), "ci-bot");
    let dump = redis.dump();
    for secret in [&value, &gen_value, &ADMIN_TOKEN.to_string(), &body.to_string()] {
        assert!(!dump_contains(&dump, secret), "the plain token {secret} is in Redis");
    }

    // Reveal: admin only.
    let (s, rev) = p.admin("GET", "/api/v1/tokens/ci-bot/reveal", None).await;
    assert_eq!(s, 200, "{rev}");
    assert_eq!(rev["token"], value.as_str());
    assert_error(&p.call("GET", "/api/v1/tokens/ci-bot/reveal", Some(&value), None).await, 403, None);
    assert_error(&p.admin("GET", "/api/v1/tokens/nope/reveal", None).await, 404, None);

    // PUT /tokens/email sets the caller's own e-mail.
    let (s, upd) = p
        .call(
            "PUT",
            "/api/v1/tokens/email",
            Some(&value),
            Some(json!({"cert_email": "new@example.com"})),
        )
        .await;
    assert_eq!(s, 200, "{upd}");
    assert_eq!(upd["cert_email"], "new@example.com");
    assert!(upd.get("token").is_none());
    let (_, shown) = p.admin("GET", "/api/v1/tokens/ci-bot", None).await;
    assert_eq!(shown["cert_email"], "new@example.com");
    assert_error(
        &p.call(
            "PUT",
            "/api/v1/tokens/email",
            Some(&value),
            Some(json!({"cert_email": "not-an-email"})),
        )
        .await,
        422,
        Some("cert_email"),
    );

    // The new token authenticates; after DELETE it no longer does and its keys are gone.
    let (s, _) = p.call("GET", "/api/v1/proxy/targets/", Some(&gen_value), None).await;
    assert_eq!(s, 200);
    let (s, del) = p.admin("DELETE", "/api/v1/tokens/gen-1", None).await;
    assert_eq!(s, 200, "{del}");
    assert_error(&p.call("GET", "/api/v1/proxy/targets/", Some(&gen_value), None).await, 401, None);
    assert_error(&p.admin("GET", "/api/v1/tokens/gen-1", None).await, 404, None);
    assert_error(&p.admin("DELETE", "/api/v1/tokens/gen-1", None).await, 404, None);
    assert!(!has_key(&redis, "token:gen-1"));
    assert!(!has_key(&redis, &format!("token:hash:{}", sha(&gen_value))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_proxy_endpoints() {
    let redis = Redis::start();
    let p = start(&redis).await;
    // `cert_name` must name a certificate the caller may use
    let (c, k) = make_cert(&["api.example.test"], -1, 30);
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "api-cert", "certificate_pem": c, "private_key_pem": k})),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let full = json!({
        "hostname": "API.Example.test",
        "target_url": "http://127.0.0.1:8080",
        "cert_name": "api-cert",
        "enabled": true,
        "enable_http": true,
        "enable_https": false,
        "preserve_host_header": false,
        "custom_headers": {"X-Custom": "value"},
        "custom_response_headers": {"X-Response": "value"},
        "auth_enabled": true,
        "auth_proxy": "auth.example.test",
        "auth_mode": "redirect",
        "auth_required_users": ["alice", "bob"],
        "auth_required_emails": ["*@example.com"],
        "auth_required_groups": null,
        "auth_allowed_scopes": ["mcp:read"],
        "auth_allowed_audiences": ["https://api.example.test"],
        "auth_pass_headers": true,
        "auth_cookie_name": "unified_auth_token",
        "auth_header_prefix": "X-Auth-",
        "auth_excluded_paths": ["/public"],
        "route_mode": "selective",
        "enabled_routes": ["r1"],
        "disabled_routes": [],
        "resource_endpoint": "/mcp",
        "resource_scopes": ["mcp:read", "mcp:write"],
        "resource_stateful": true,
        "resource_versions": ["2025-06-18"],
        "resource_server_info": {"name": "x"},
        "resource_override_backend": false,
        "resource_bearer_methods": ["header"],
        "resource_documentation_suffix": "/docs",
        "resource_custom_metadata": {"k": "v"}
    });
    let (s, created) = p.admin("POST", "/api/v1/proxy/targets/", Some(full.clone())).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["hostname"], "api.example.test", "hostname is lowercased");
    assert_eq!(created["owner_token_hash"], sha(ADMIN_TOKEN));
    assert_eq!(created["created_by"], "ADMIN_TOKEN");
    assert!(created["created_at"].as_str().is_some_and(|t| !t.is_empty()));
    for (k, v) in full.as_object().unwrap() {
        if k != "hostname" {
            assert_eq!(&created[k], v, "field {k} not stored as sent");
        }
    }

    // Defaults for a minimal proxy.
    let (s, min) = p
        .admin(
            "POST",
            "/api/v1/proxy/targets/",
            Some(json!({"hostname": "min.test", "target_url": "https://backend.test", "cert_name": "api-cert"})),
        )
        .await;
    assert_eq!(s, 201, "{min}");
    assert_eq!(min["enabled"], true);
    assert_eq!(min["enable_https"], true);
    assert_eq!(min["auth_enabled"], false);
    assert_eq!(min["auth_mode"], "forward");
    assert_eq!(min["route_mode"], "all");

    // Key schema and owner index.
    let stored: Value = serde_json::from_str(&redis.cli(&["GET", "proxy:api.example.test"])).unwrap();
    assert_eq!(stored["target_url"], "http://127.0.0.1:8080");
    assert!(set_members(&redis, &format!("owner:{}", sha(ADMIN_TOKEN))).contains(&"proxy:api.example.test".to_string()));

    // GET one (case-insensitive) and list.
    let (s, one) = p.admin("GET", "/api/v1/proxy/targets/API.example.test", None).await;
    assert_eq!(s, 200);
    assert_eq!(one, created);
    let (s, list) = p.admin("GET", "/api/v1/proxy/targets/", None).await;
    assert_eq!(s, 200);
    let hosts: Vec<&str> = list.as_array().unwrap().iter().map(|x| x["hostname"].as_str().unwrap()).collect();
    for h in ["api.example.test", "min.test", "localhost"] {
        assert!(hosts.contains(&h), "{h} missing from {hosts:?}");
    }

    // PUT is a partial update; naming identity or ownership is refused (422), not ignored.
    for (k, v) in [
        ("hostname", "evil.test"),
        ("owner_token_hash", "sha256:00"),
        ("created_by", "x"),
        ("created_at", "x"),
    ] {
        let mut body = json!({"target_url": "http://127.0.0.1:9090", "enabled": false});
        body[k] = json!(v);
        let got = p.admin("PUT", "/api/v1/proxy/targets/api.example.test", Some(body)).await;
        assert_error(&got, 422, Some(k));
    }
    let (s, upd) = p
        .admin(
            "PUT",
            "/api/v1/proxy/targets/api.example.test",
            Some(json!({"target_url": "http://127.0.0.1:9090", "enabled": false})),
        )
        .await;
    assert_eq!(s, 200, "{upd}");
    assert_eq!(upd["target_url"], "http://127.0.0.1:9090");
    assert_eq!(upd["enabled"], false);
    assert_eq!(upd["hostname"], "api.example.test");
    assert_eq!(upd["owner_token_hash"], sha(ADMIN_TOKEN));
    assert_eq!(upd["created_by"], "ADMIN_TOKEN");
    assert_eq!(upd["custom_headers"], json!({"X-Custom": "value"}), "untouched fields are kept");
    assert!(!has_key(&redis, "proxy:evil.test"));
    let (_, again) = p.admin("GET", "/api/v1/proxy/targets/api.example.test", None).await;
    assert_eq!(again, upd);
    assert_error(
        &p.admin("PUT", "/api/v1/proxy/targets/nope.test", Some(json!({"enabled": false})))
            .await,
        404,
        None,
    );

    // DELETE.
    let (s, del) = p.admin("DELETE", "/api/v1/proxy/targets/api.example.test", None).await;
    assert_eq!(s, 200, "{del}");
    assert!(!has_key(&redis, "proxy:api.example.test"));
    assert!(!set_members(&redis, &format!("owner:{}", sha(ADMIN_TOKEN))).contains(&"proxy:api.example.test".to_string()));
    assert_error(&p.admin("GET", "/api/v1/proxy/targets/api.example.test", None).await, 404, None);
    assert_error(&p.admin("DELETE", "/api/v1/proxy/targets/api.example.test", None).await, 404, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_route_endpoints() {
    let redis = Redis::start();
    let p = start(&redis).await;

    // What routes name must exist when they are written: a service, proxies.
    for h in ["app.test", "other.test"] {
        p.create_proxy(json!({"hostname": h, "target_url": "http://127.0.0.1:9", "enable_https": false}))
            .await;
    }
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/external",
            Some(json!({"service_name": "auth", "target_url": "http://127.0.0.1:9"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, r1) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(
                json!({"route_id": "api-v1", "path_pattern": "/api/v1/", "target_type": "service", "target_value": "auth",
                        "priority": 90, "methods": ["get", "POST"], "description": "api", "enabled": true, "scope": "global"}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{r1}");
    assert_eq!(r1["route_id"], "api-v1");
    assert_eq!(r1["methods"], json!(["GET", "POST"]));
    assert_eq!(r1["owner_token_hash"], sha(ADMIN_TOKEN));

    // All four target types, a regex, a proxy scope, a generated id.
    let (s, r2) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(json!({"path_pattern": "/port", "target_type": "port", "target_value": "8080", "priority": 10})),
        )
        .await;
    assert_eq!(s, 201, "{r2}");
    let id2 = r2["route_id"].as_str().unwrap().to_string();
    assert!(id2.starts_with("port-"), "generated id {id2}");
    let (s, r3) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(
                json!({"route_id": "by-host", "path_pattern": "^/h/[0-9]+$", "is_regex": true, "target_type": "hostname",
                        "target_value": "Other.Test", "scope": "proxy", "proxy_hostnames": ["App.Test"]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{r3}");
    assert_eq!(r3["target_value"], "other.test");
    assert_eq!(r3["proxy_hostnames"], json!(["app.test"]));
    assert_eq!(r3["priority"], 50, "default priority");
    let (s, r4) = p
        .admin("POST", "/api/v1/routes/", Some(json!({"route_id": "to-url", "path_pattern": "/u", "target_type": "url", "target_value": "https://example.test/x", "priority": 1000})))
        .await;
    assert_eq!(s, 201, "{r4}");
    let (s, r5) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(json!({"route_id": "zero", "path_pattern": "/z", "target_type": "port", "target_value": "1", "priority": 0})),
        )
        .await;
    assert_eq!(s, 201, "{r5}");

    // Key schema.
    for k in [
        "route:api-v1",
        "route:priority:90:api-v1",
        "route:unique:/api/v1/:90",
        "route:to-url",
        "route:priority:1000:to-url",
        "route:unique:/u:1000",
    ] {
        assert!(has_key(&redis, k), "missing key {k}; keys: {:?}", redis.dump_keys());
    }
    assert_eq!(redis.cli(&["GET", "route:unique:/api/v1/:90"]).trim(), "api-v1");
    assert!(has_key(&redis, &format!("route:priority:10:{id2}")));
    assert!(set_members(&redis, &format!("owner:{}", sha(ADMIN_TOKEN))).contains(&"route:api-v1".to_string()));

    // List: highest priority first.
    let (s, list) = p.admin("GET", "/api/v1/routes/", None).await;
    assert_eq!(s, 200);
    let prios: Vec<i64> = list.as_array().unwrap().iter().map(|r| r["priority"].as_i64().unwrap()).collect();
    assert!(prios.windows(2).all(|w| w[0] >= w[1]), "not sorted by priority: {prios:?}");
    let mine: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["route_id"].as_str().unwrap().starts_with("oauth-"))
        .collect();
    assert_eq!(mine.len(), 5, "{list}");
    assert_eq!(mine[0]["route_id"], "to-url");

    // Formatted: a text table naming every route.
    let r = p
        .client
        .get(p.api("/api/v1/routes/formatted"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for id in ["api-v1", "by-host", "to-url", "zero", id2.as_str()] {
        assert!(text.contains(id), "formatted table lacks {id}:\n{text}");
    }
    assert!(text.contains("/api/v1/") && text.contains("90"), "{text}");

    // GET one.
    let (s, one) = p.admin("GET", "/api/v1/routes/api-v1", None).await;
    assert_eq!(s, 200);
    assert_eq!(one, r1);

    // route_id is fixed at creation: naming it in an update is refused (422), not ignored.
    let got = p
        .admin(
            "PUT",
            "/api/v1/routes/api-v1",
            Some(json!({"priority": 95, "path_pattern": "/api/v2/", "route_id": "renamed"})),
        )
        .await;
    assert_error(&got, 422, Some("route_id"));
    // PUT moves the indexes when path or priority change.
    let (s, upd) = p
        .admin(
            "PUT",
            "/api/v1/routes/api-v1",
            Some(json!({"priority": 95, "path_pattern": "/api/v2/"})),
        )
        .await;
    assert_eq!(s, 200, "{upd}");
    assert_eq!(upd["priority"], 95);
    assert_eq!(upd["route_id"], "api-v1", "route_id is immutable");
    assert_eq!(upd["target_value"], "auth", "untouched fields are kept");
    assert!(!has_key(&redis, "route:priority:90:api-v1") && !has_key(&redis, "route:unique:/api/v1/:90"));
    assert!(has_key(&redis, "route:priority:95:api-v1") && has_key(&redis, "route:unique:/api/v2/:95"));
    assert!(!has_key(&redis, "route:renamed"));
    // The freed path+priority can be taken again.
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(json!({"route_id": "reuse", "path_pattern": "/api/v1/", "priority": 90, "target_type": "port", "target_value": "81"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // A PUT that changes nothing about the indexes keeps them.
    let (s, v) = p.admin("PUT", "/api/v1/routes/api-v1", Some(json!({"enabled": false}))).await;
    assert_eq!(s, 200, "{v}");
    assert!(has_key(&redis, "route:priority:95:api-v1") && has_key(&redis, "route:unique:/api/v2/:95"));
    assert_error(
        &p.admin("PUT", "/api/v1/routes/nope", Some(json!({"enabled": false}))).await,
        404,
        None,
    );

    // DELETE removes the record and both indexes.
    let (s, v) = p.admin("DELETE", "/api/v1/routes/api-v1", None).await;
    assert_eq!(s, 200, "{v}");
    for k in ["route:api-v1", "route:priority:95:api-v1", "route:unique:/api/v2/:95"] {
        assert!(!has_key(&redis, k), "{k} survived the delete");
    }
    assert!(!set_members(&redis, &format!("owner:{}", sha(ADMIN_TOKEN))).contains(&"route:api-v1".to_string()));
    assert_error(&p.admin("GET", "/api/v1/routes/api-v1", None).await, 404, None);
    assert_error(&p.admin("DELETE", "/api/v1/routes/api-v1", None).await, 404, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_certificate_endpoints() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let (cert, key) = make_cert(&["www.example.test", "Api.Example.test", "*.wild.example.test"], -1, 30);

    let (s, up) = p
        .admin(
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "site", "certificate_pem": cert, "private_key_pem": key, "email": "ops@example.com"})),
        )
        .await;
    assert_eq!(s, 201, "{up}");
    let mut domains: Vec<String> = up["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    domains.sort();
    assert_eq!(
        domains,
        ["*.wild.example.test", "api.example.test", "www.example.test"],
        "domains come from the SANs"
    );
    assert_eq!(up["status"], "active");
    assert_eq!(up["email"], "ops@example.com");
    assert_eq!(up["owner_token_hash"], sha(ADMIN_TOKEN));
    assert!(up["fullchain_pem"].as_str().unwrap().contains("BEGIN CERTIFICATE"));
    assert!(up["expires_at"].as_str().is_some_and(|t| !t.is_empty()));
    let text = up.to_string();
    assert!(
        !text.contains("PRIVATE KEY") && up.get("private_key_pem").is_none() && up.get("private_key_encrypted").is_none(),
        "key leaked: {up}"
    );

    // Keys: cert:{name}, cert:domain:{domain} -> name; the key is not stored in the clear.
    assert!(has_key(&redis, "cert:site"));
    for d in &domains {
        assert_eq!(redis.cli(&["GET", &format!("cert:domain:{d}")]).trim(), "site", "cert:domain:{d}");
    }
    assert!(
        !dump_contains(&redis.dump(), &pem_body_line(&key)),
        "the private key is stored in the clear"
    );

    // The alias fullchain_pem works too.
    let (cert2, key2) = make_cert(&["other.example.test"], -1, 10);
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/upload",
            Some(json!({"cert_name": "other", "fullchain_pem": cert2, "private_key_pem": key2})),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // List and show, without keys.
    let (s, list) = p.admin("GET", "/api/v1/certificates/", None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["cert_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["other", "site"]);
    assert!(!list.to_string().contains("PRIVATE KEY"));
    let (s, one) = p.admin("GET", "/api/v1/certificates/site", None).await;
    assert_eq!(s, 200);
    assert_eq!(one["domains"], up["domains"]);
    assert!(!one.to_string().contains("PRIVATE KEY"));
    assert_error(&p.admin("GET", "/api/v1/certificates/nope", None).await, 404, None);

    // Bad uploads: 422 naming the field, store unchanged.
    let before = redis.dump();
    let (_, wrong_key) = make_cert(&["www.example.test"], -1, 30);
    let (expired, expired_key) = make_cert(&["old.example.test"], -30, -1);
    let bad = [
        (
            json!({"cert_name": "bad", "certificate_pem": cert, "private_key_pem": wrong_key}),
            "private_key_pem",
        ),
        (
            json!({"cert_name": "bad", "certificate_pem": "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", "private_key_pem": key}),
            "certificate_pem",
        ),
        (
            json!({"cert_name": "bad", "certificate_pem": "not a pem at all", "private_key_pem": key}),
            "certificate_pem",
        ),
        (
            json!({"cert_name": "bad", "certificate_pem": cert, "private_key_pem": "not a key"}),
            "private_key_pem",
        ),
        (
            json!({"cert_name": "bad", "certificate_pem": expired, "private_key_pem": expired_key}),
            "certificate_pem",
        ),
        (
            json!({"cert_name": "bad name!", "certificate_pem": cert, "private_key_pem": key}),
            "cert_name",
        ),
    ];
    for (body, field) in bad {
        let got = p.admin("POST", "/api/v1/certificates/upload", Some(body)).await;
        assert_error(&got, 422, Some(field));
    }
    assert_eq!(redis.dump(), before, "a rejected upload changed the store");

    // DELETE removes the record and its domain index.
    let (s, v) = p.admin("DELETE", "/api/v1/certificates/site", None).await;
    assert_eq!(s, 200, "{v}");
    assert!(!has_key(&redis, "cert:site"));
    for d in &domains {
        assert!(!has_key(&redis, &format!("cert:domain:{d}")), "cert:domain:{d} survived");
    }
    assert!(has_key(&redis, "cert:domain:other.example.test"));
    assert!(!set_members(&redis, &format!("owner:{}", sha(ADMIN_TOKEN))).contains(&"cert:site".to_string()));
    assert_error(&p.admin("GET", "/api/v1/certificates/site", None).await, 404, None);
    assert_error(&p.admin("DELETE", "/api/v1/certificates/site", None).await, 404, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_external_services() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/external",
            Some(json!({"service_name": "auth", "target_url": "http://127.0.0.1:7000"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/external/",
            Some(json!({"service_name": "gw", "target_url": "https://gw.example.test"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(redis.cli(&["GET", "service:url:auth"]).trim(), "http://127.0.0.1:7000");
    let (s, list) = p.admin("GET", "/api/v1/services/external/", None).await;
    assert_eq!(s, 200);
    let brief: Vec<Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!([s["service_name"], s["service_type"], s["target_url"]]))
        .collect();
    assert_eq!(
        brief,
        vec![
            json!(["api", "internal", format!("http://127.0.0.1:{}", p.api_port)]),
            json!(["auth", "external", "http://127.0.0.1:7000"]),
            json!(["gw", "external", "https://gw.example.test"]),
        ],
        "the built-in api service is listed with the registered ones"
    );

    let before = redis.dump();
    assert_error(
        &p.admin(
            "POST",
            "/api/v1/services/external",
            Some(json!({"service_name": "x", "target_url": "not a url"})),
        )
        .await,
        422,
        Some("target_url"),
    );
    assert_error(
        &p.admin(
            "POST",
            "/api/v1/services/external",
            Some(json!({"service_name": "bad name", "target_url": "http://x.test"})),
        )
        .await,
        422,
        Some("service_name"),
    );
    let user = make_token(&p, "svc-user", "user").await;
    let before_user = redis.dump();
    assert_error(
        &p.call(
            "POST",
            "/api/v1/services/external",
            Some(&user),
            Some(json!({"service_name": "u", "target_url": "http://x.test"})),
        )
        .await,
        403,
        None,
    );
    assert_error(
        &p.call("DELETE", "/api/v1/services/external/auth", Some(&user), None).await,
        403,
        None,
    );
    assert_eq!(redis.dump(), before_user);
    assert_eq!(before.len() + 2, before_user.len(), "only the user token's two keys were added");

    let (s, v) = p.admin("DELETE", "/api/v1/services/external/auth", None).await;
    assert_eq!(s, 200, "{v}");
    assert!(!has_key(&redis, "service:url:auth"));
    assert_error(&p.admin("DELETE", "/api/v1/services/external/auth", None).await, 404, None);
}
