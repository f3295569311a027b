//! ACME tests (issue 4) against a real ACME server (Pebble).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::pebble::Pebble;
use crate::harness::{backend, eventually, free_port, Portcullis, Redis};

/// Starts Pebble and a portcullis whose HTTP port Pebble validates against.
async fn setup(redis: &Redis, nonce_reject: u32, extra: &[(&str, &str)]) -> (Pebble, Portcullis) {
    let http = free_port();
    let pebble = Pebble::start(http, nonce_reject);
    let http_s = http.to_string();
    let mut env: Vec<(&str, String)> = pebble.env();
    env.push(("HTTP_PORT", http_s));
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = Portcullis::start_with(redis, &env_ref).await;
    (pebble, p)
}

/// Polls the status endpoint until a terminal state.
async fn wait_status(p: &Portcullis, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (s, v) = p.admin("GET", &format!("/api/v1/certificates/{name}/status"), None).await;
        if s == 200 && (v["status"] == "issued" || v["status"] == "failed") {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no terminal status for {name}: {v}\n{}",
            p.proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Handshakes with SNI `name`, verifying the chain against `root_pem`; returns the serial.
fn verified_serial(port: u16, name: &str, root_pem: &str) -> Result<String, String> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    let store = b.cert_store_mut();
    for c in openssl::x509::X509::stack_from_pem(root_pem.as_bytes()).unwrap() {
        store.add_cert(c).unwrap();
    }
    let conn = b.build();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let s = conn.connect(name, tcp).map_err(|e| e.to_string())?;
    let cert = s.ssl().peer_certificate().ok_or("no certificate")?;
    Ok(cert.serial_number().to_bn().unwrap().to_hex_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_single_and_multi_domain_certificates_and_serves_them() {
    let redis = Redis::start();
    let (pebble, p) = setup(&redis, 0, &[]).await;
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/",
            Some(json!({"cert_name": "one", "domain": "one.test", "email": "ops@example.com"})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/multi-domain",
            Some(json!({"cert_name": "three", "domains": ["a.multi.test", "b.multi.test", "c.multi.test"], "key_type": "ecdsa"})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let (s, _) = p
        .admin(
            "POST",
            "/api/v1/certificates/",
            Some(json!({"cert_name": "one", "domain": "one.test"})),
        )
        .await;
    assert_eq!(s, 409, "a second order for the same name while one runs");
    assert_eq!(wait_status(&p, "one").await["status"], "issued");
    assert_eq!(wait_status(&p, "three").await["status"], "issued");
    let (_, cert) = p.admin("GET", "/api/v1/certificates/three", None).await;
    assert_eq!(cert["domains"], json!(["a.multi.test", "b.multi.test", "c.multi.test"]));
    assert_eq!(cert["source"], "acme");
    assert!(cert.get("private_key_encrypted").is_none() && cert.get("private_key_pem").is_none());
    assert!(
        redis.dump_keys().iter().all(|k| !k.starts_with("acme:challenge:")),
        "challenge answers cleaned up"
    );

    let root = pebble.issuing_root().await;
    let port = p.https_port;
    for name in ["one.test", "a.multi.test", "b.multi.test", "c.multi.test"] {
        let root = root.clone();
        let served = eventually(Duration::from_secs(3), || {
            let root = root.clone();
            async move {
                tokio::task::spawn_blocking(move || verified_serial(port, name, &root))
                    .await
                    .unwrap()
                    .ok()
            }
        })
        .await;
        assert!(served.is_some(), "{name} not served with a certificate chaining to Pebble's root");
    }

    // a proxy with HTTPS and no certificate gets one issued and attached
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": "auto.example.org", "target_url": a.url()})).await;
    assert_eq!(wait_status(&p, "proxy-auto-example-org").await["status"], "issued");
    let attached = eventually(Duration::from_secs(5), || async {
        let (_, v) = p.admin("GET", "/api/v1/proxy/targets/auto.example.org", None).await;
        (v["cert_name"] == "proxy-auto-example-org").then_some(())
    })
    .await;
    assert!(attached.is_some());
    let root2 = root.clone();
    let ok = eventually(Duration::from_secs(3), || {
        let root = root2.clone();
        async move {
            tokio::task::spawn_blocking(move || verified_serial(port, "auto.example.org", &root))
                .await
                .unwrap()
                .ok()
        }
    })
    .await;
    assert!(ok.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_by_threshold_with_a_new_serial_and_no_failed_handshake() {
    let redis = Redis::start();
    let (pebble, p) = setup(&redis, 0, &[("RENEWAL_CHECK_INTERVAL", "2"), ("RENEWAL_THRESHOLD_DAYS", "36500")]).await;
    let (s, _) = p
        .admin(
            "POST",
            "/api/v1/certificates/",
            Some(json!({"cert_name": "ren", "domain": "ren.test"})),
        )
        .await;
    assert_eq!(s, 202);
    assert_eq!(wait_status(&p, "ren").await["status"], "issued");
    let (_, first) = p.admin("GET", "/api/v1/certificates/ren", None).await;
    let first_serial = first["serial"].as_str().unwrap().to_string();
    let root = pebble.issuing_root().await;
    let port = p.https_port;
    let hammer = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut serials = std::collections::BTreeSet::new();
        while t.elapsed() < Duration::from_secs(60) {
            let s = verified_serial(port, "ren.test", &root).unwrap_or_else(|e| panic!("handshake failed during renewal: {e}"));
            serials.insert(s);
            if serials.len() >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        serials
    });
    let serials = hammer.await.unwrap();
    assert!(serials.len() >= 2, "no renewal within 60 s: {serials:?}");
    let (_, now) = p.admin("GET", "/api/v1/certificates/ren", None).await;
    assert_ne!(now["serial"].as_str().unwrap(), first_serial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_validation_and_bad_input_leave_no_certificate() {
    let redis = Redis::start();
    let (pebble, p) = setup(&redis, 0, &[]).await;
    // Pebble resolves bad.test to an address where nobody answers HTTP-01
    pebble.set_a_record("bad.test", "127.0.0.2").await;
    let (s, _) = p
        .admin(
            "POST",
            "/api/v1/certificates/",
            Some(json!({"cert_name": "bad", "domain": "bad.test"})),
        )
        .await;
    assert_eq!(s, 202);
    let st = wait_status(&p, "bad").await;
    assert_eq!(st["status"], "failed");
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.contains("urn:ietf:params:acme:error:connection") && msg.contains("bad.test"),
        "the ACME error text: {st}"
    );
    assert_eq!(p.admin("GET", "/api/v1/certificates/bad", None).await.0, 404);

    for (body, needle) in [
        (json!({"cert_name": "w", "domain": "*.wild.test"}), "HTTP-01 cannot issue wildcard"),
        (json!({"cert_name": "w", "domain": "not a name"}), "not a valid domain"),
        (json!({"cert_name": "w", "domains": ["x.test"]}), "domain"),
    ] {
        let before = redis.dump();
        let (s, v) = p.admin("POST", "/api/v1/certificates/", Some(body)).await;
        assert_eq!(s, 422, "{v}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{v}");
        assert_eq!(redis.dump(), before);
    }
    let many: Vec<String> = (0..101).map(|i| format!("n{i}.test")).collect();
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/multi-domain",
            Some(json!({"cert_name": "many", "domains": many})),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("domains")));
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/certificates/multi-domain",
            Some(json!({"cert_name": "dup", "domains": ["d.test", "D.test"]})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["message"].as_str().unwrap().contains("twice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_directory_ends_as_failed_with_the_reason() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (s, _) = p
        .admin(
            "POST",
            "/api/v1/certificates/",
            Some(json!({"cert_name": "nodir", "domain": "nodir.test"})),
        )
        .await;
    assert_eq!(s, 202);
    let st = wait_status(&p, "nodir").await;
    assert_eq!(st["status"], "failed");
    assert!(!st["message"].as_str().unwrap().is_empty());
    assert!(redis.dump_keys().iter().all(|k| k != "cert:nodir"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_despite_pebble_rejecting_nonces() {
    let redis = Redis::start();
    let (_pebble, p) = setup(&redis, 15, &[]).await;
    let (s, _) = p
        .admin(
            "POST",
            "/api/v1/certificates/",
            Some(json!({"cert_name": "nonce", "domain": "nonce.test"})),
        )
        .await;
    assert_eq!(s, 202);
    let st = wait_status(&p, "nonce").await;
    assert_eq!(st["status"], "issued", "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_that_did_not_start_the_order_answers_the_challenge() {
    let redis = Redis::start();
    // Pebble validates against instance B's HTTP port; the order starts on A.
    let (pebble, b) = setup(&redis, 0, &[]).await;
    let mut env: Vec<(&str, String)> = pebble.env();
    env.retain(|(k, _)| *k != "HTTP_PORT");
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = Portcullis::start_with(&redis, &env_ref).await;
    let (s, _) = a
        .admin(
            "POST",
            "/api/v1/certificates/",
            Some(json!({"cert_name": "shared", "domain": "shared.test"})),
        )
        .await;
    assert_eq!(s, 202);
    assert_eq!(wait_status(&a, "shared").await["status"], "issued");
    // Pebble validates only at its configured httpPort, which is B's HTTP
    // port; A listens elsewhere. An issued certificate therefore means B's
    // data plane answered the challenge of an order that A started (and
    // whose token B learned from the store, not from its own order).
    assert_ne!(a.http_port, b.http_port);
    assert_eq!(pebble.http_port, b.http_port, "Pebble validates against B");
}
