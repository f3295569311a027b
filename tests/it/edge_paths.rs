//! Edge hardening of the request path (issue 14 items 1, 2, 5, 6 and the
//! built-in routes of issue 13), through the real data plane: requests are
//! written as raw bytes (an HTTP client would resolve `..` before sending),
//! and the backend records the bytes it receives.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::raw::RawBackend;
use crate::harness::{eventually, free_port, Portcullis, Proc, Redis};

/// A response read from a raw socket.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    /// The value of header `name` (case-insensitive), if present.
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Writes `request` as-is to `port` and reads the answer until the server closes.
async fn raw(port: u16, request: &str) -> Answer {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// `METHOD target` on `host` with `Connection: close` and extra header lines.
async fn req(p: &Portcullis, method: &str, host: &str, target: &str, extra: &str) -> Answer {
    raw(
        p.http_port,
        &format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"),
    )
    .await
}

/// Waits until `host` answers `target` with `want`.
async fn wait_for(p: &Portcullis, host: &str, target: &str, want: u16) {
    let ok = eventually(Duration::from_secs(10), || async {
        (req(p, "GET", host, target, "").await.status == want).then_some(())
    })
    .await;
    assert!(ok.is_some(), "{host}{target} never answered {want}");
}

/// Python's http.server on a folder holding `secret.txt`: a backend that
/// resolves `..` and `%2e%2e` itself, as nginx, Apache and Tomcat do.
fn python_file_server(dir: &std::path::Path) -> (Proc, u16) {
    std::fs::write(dir.join("secret.txt"), "TOP-SECRET\n").unwrap();
    std::fs::create_dir_all(dir.join("public")).unwrap();
    std::fs::write(dir.join("public").join("page.txt"), "public page\n").unwrap();
    let port = free_port();
    let log = dir.join("http.log");
    let child = std::process::Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
        .arg(dir)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 must be installed");
    (Proc::from_child(child, log), port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_and_encodings_never_pass_an_auth_exemption() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = RawBackend::start().await;
    p.create_proxy(
        json!({"hostname": "guard.test", "target_url": b.url(), "enable_https": false, "auth_enabled": true,
        "resource_endpoint": "/mcp", "resource_override_backend": true, "auth_excluded_paths": ["/public"]}),
    )
    .await;
    wait_for(&p, "guard.test", "/x", 401).await;
    let preflight = "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n";
    let denied = [
        ("GET", "guard.test", "/.well-known/../secret.txt", ""),
        ("GET", "guard.test", "/.well-known/%2e%2e/secret.txt", ""),
        ("GET", "guard.test", "/.well-known/%2E%2E/secret.txt", ""),
        ("GET", "guard.test", "/.well-known/other", ""),
        ("GET", "guard.test", "/public/../secret", ""),
        ("GET", "guard.test", "/public/%2e%2e/secret", ""),
        ("GET", "guard.test", "/publicx/page", ""),
        ("GET", "guard.test", "//secret", ""),
        ("OPTIONS", "guard.test", "/secret", ""),
        ("OPTIONS", "guard.test", "/secret", preflight),
    ];
    for (method, host, target, extra) in denied {
        let a = req(&p, method, host, target, extra).await;
        assert_eq!(a.status, 401, "{method} {host}{target}: {}", a.head);
    }
    let refused = [
        "/..",
        "/%2e%2e/secret",
        "/public/../../secret",
        "/a%2Fb",
        "/a%2fb",
        "/a%5Cb",
        "/a%00b",
        "/a%zz",
        "/public/..;/secret",
    ];
    for target in refused {
        let a = req(&p, "GET", "guard.test", target, "").await;
        assert_eq!(a.status, 400, "{target}: {}", a.head);
        let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
        assert_eq!(v["error"], "bad_request", "{target}: {}", a.body);
    }
    assert!(b.seen().is_empty(), "refused requests reached the backend: {:?}", b.lines());

    // A CORS preflight passes only where the proxy allows it; a plain OPTIONS never does.
    p.create_proxy(
        json!({"hostname": "cors.test", "target_url": b.url(), "enable_https": false, "auth_enabled": true,
        "auth_allow_cors_preflight": true}),
    )
    .await;
    wait_for(&p, "cors.test", "/x", 401).await;
    assert_eq!(req(&p, "OPTIONS", "cors.test", "/secret", "").await.status, 401);
    assert!(b.seen().is_empty(), "{:?}", b.lines());

    // Exempt paths pass, and the backend gets the normalized path the decision was made on.
    let passed = [
        ("GET", "guard.test", "/public", ""),
        ("GET", "guard.test", "/public/page", ""),
        ("GET", "guard.test", "/public/./a/../page?q=%2e%2e", ""),
        ("GET", "guard.test", "/public/%70age", ""),
        ("OPTIONS", "cors.test", "/secret", preflight),
    ];
    for (method, host, target, extra) in passed {
        let a = req(&p, method, host, target, extra).await;
        assert_eq!(a.status, 200, "{method} {host}{target}: {}", a.head);
    }
    assert_eq!(
        b.lines(),
        [
            "GET /public HTTP/1.1",
            "GET /public/page HTTP/1.1",
            "GET /public/page?q=%2e%2e HTTP/1.1",
            "GET /public/page HTTP/1.1",
            "OPTIONS /secret HTTP/1.1",
        ]
    );
    // The metadata document stays public, in its normalized form too.
    let a = req(&p, "GET", "guard.test", "/.well-known/./oauth-protected-resource/mcp", "").await;
    assert_eq!(a.status, 200, "{}", a.head);
    assert!(a.body.contains("\"resource\":\"http://guard.test/mcp\""), "{}", a.body);

    // A backend that resolves `..` itself never gets to.
    let dir = tempfile::tempdir().unwrap();
    let (_py, py_port) = python_file_server(dir.path());
    p.create_proxy(
        json!({"hostname": "files.test", "target_url": format!("http://127.0.0.1:{py_port}"), "enable_https": false,
        "auth_enabled": true, "auth_excluded_paths": ["/public"]}),
    )
    .await;
    wait_for(&p, "files.test", "/public/page.txt", 200).await;
    for target in [
        "/.well-known/../secret.txt",
        "/.well-known/%2e%2e/secret.txt",
        "/public/../secret.txt",
        "/public/%2e%2e/secret.txt",
    ] {
        let a = req(&p, "GET", "files.test", target, "").await;
        assert_eq!(a.status, 401, "{target}: {}", a.head);
        assert!(!a.body.contains("TOP-SECRET"), "{target} leaked the file");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_with_underscores_never_forge_identity_or_addresses() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = RawBackend::start().await;
    p.create_proxy(json!({"hostname": "strict.test", "target_url": b.url(), "enable_https": false}))
        .await;
    wait_for(&p, "strict.test", "/", 200).await;
    let forged = "X_Auth_User: root\r\nX-Auth_Scopes: admin\r\nX_Forwarded_For: 6.6.6.6\r\nX-Real_IP: 6.6.6.6\r\nX_Forwarded_Host: evil\r\nX_Who_User: root\r\nX_App_Token: t\r\n";
    // Nothing forged passes, with or without underscores allowed.
    let clean = |head: &str| {
        for name in [
            "x_auth_user",
            "x-auth_scopes",
            "x_forwarded_for",
            "x-real_ip",
            "x_forwarded_host",
            "x_who_user",
        ] {
            assert!(!head.contains(name), "{name} reached the backend:\n{head}");
        }
        assert!(head.contains("x-forwarded-for: 127.0.0.1\r\n"), "{head}");
        assert!(
            !head.contains("6.6.6.6") && !head.contains("root") && !head.contains("evil"),
            "{head}"
        );
    };
    let before = b.seen().len();
    assert_eq!(req(&p, "GET", "strict.test", "/h", forged).await.status, 200);
    let strict = b.seen()[before].to_ascii_lowercase();
    clean(&strict);
    assert!(!strict.contains("x_app_token"), "underscores are dropped by default:\n{strict}");
    p.create_proxy(json!({"hostname": "loose.test", "target_url": b.url(), "enable_https": false,
        "allow_underscores_in_headers": true, "auth_header_prefix": "X-Who-"}))
        .await;
    wait_for(&p, "loose.test", "/", 200).await;
    let before = b.seen().len();
    assert_eq!(req(&p, "GET", "loose.test", "/h", forged).await.status, 200);
    let loose = b.seen()[before].to_ascii_lowercase();
    clean(&loose);
    assert!(loose.contains("x_app_token: t\r\n"), "allowed per proxy:\n{loose}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_lengths_and_built_header_values_are_checked() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = RawBackend::start().await;
    p.create_proxy(
        json!({"hostname": "api.test", "target_url": b.url(), "enable_https": false, "auth_enabled": true,
        "resource_endpoint": "/mcp"}),
    )
    .await;
    p.create_proxy(json!({"hostname": "open.test", "target_url": b.url(), "enable_https": false}))
        .await;
    wait_for(&p, "api.test", "/mcp", 401).await;
    wait_for(&p, "open.test", "/", 200).await;
    let before = b.seen().len();
    let bad = [
        // no Host at all (HTTP/1.1)
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_string(),
        // junk in the port, which was copied into WWW-Authenticate
        "GET /mcp HTTP/1.1\r\nHost: api.test:1\", resource_metadata=\"https://evil.example/x\r\nConnection: close\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\nHost: open.test:99999\r\nConnection: close\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\nHost: open.test:\r\nConnection: close\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\nHost: open test\r\nConnection: close\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\nHost: open.test\r\nHost: api.test\r\nConnection: close\r\n\r\n".to_string(),
        "POST / HTTP/1.1\r\nHost: open.test\r\nContent-Length: 18446744073709551615\r\nConnection: close\r\n\r\nx".to_string(),
        "POST / HTTP/1.1\r\nHost: open.test\r\nContent-Length: 9223372036854775808\r\nConnection: close\r\n\r\nx".to_string(),
    ];
    for r in &bad {
        let a = raw(p.http_port, r).await;
        assert_eq!(a.status, 400, "{r:?}: {}", a.head);
        assert!(!a.head.contains("evil.example"), "{}", a.head);
    }
    assert_eq!(b.seen().len(), before, "refused requests reached the backend: {:?}", b.lines());
    // The values we build name the stored host or a checked Host.
    let a = req(&p, "GET", "api.test:8080", "/mcp", "").await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.header("www-authenticate").unwrap(),
        "Bearer realm=\"api.test\", resource_metadata=\"http://api.test:8080/.well-known/oauth-protected-resource/mcp\""
    );
    let a = raw(
        p.http_port,
        "POST / HTTP/1.1\r\nHost: open.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_endpoints_are_built_in_only_where_they_belong() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = RawBackend::start().await;
    p.create_proxy(json!({"hostname": "app.test", "target_url": b.url(), "enable_https": false}))
        .await;
    p.create_proxy(json!({"hostname": "locked.test", "target_url": b.url(), "enable_https": false, "auth_enabled": true}))
        .await;
    wait_for(&p, "app.test", "/", 200).await;
    wait_for(&p, "locked.test", "/", 401).await;
    // An application's own OAuth-looking paths reach its backend.
    let before = b.seen().len();
    for target in [
        "/register",
        "/token",
        "/callback",
        "/authorize",
        "/jwks",
        "/.well-known/openid-configuration",
    ] {
        let a = req(&p, "POST", "app.test", target, "Content-Length: 0\r\n").await;
        assert_eq!((a.status, a.body.as_str()), (200, "raw-ok"), "{target}");
    }
    assert_eq!(b.seen().len(), before + 6);
    // No stored route is special any more: none is created at start-up.
    let (_, routes) = p.admin("GET", "/api/v1/routes/", None).await;
    assert_eq!(routes, json!([]), "start-up stored routes");

    p.create_proxy(json!({"hostname": "optin.test", "target_url": b.url(), "enable_https": false, "oauth_endpoints": true}))
        .await;
    wait_for(&p, "optin.test", "/", 200).await;
    // The authorization server's host and proxies that opt in serve the built-in endpoints.
    for host in ["auth.localhost", "optin.test"] {
        let a = req(&p, "GET", host, "/jwks", "").await;
        assert_eq!(a.status, 200, "{host}: {}", a.head);
        assert!(a.body.contains("\"keys\""), "{host}: {}", a.body);
        let a = req(&p, "GET", host, "/.well-known/oauth-authorization-server", "").await;
        assert!(a.body.contains("\"token_endpoint\""), "{host}: {}", a.body);
    }
    // They are public there; a stored route named like one is an ordinary route.
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(
                json!({"route_id": "oauth-token", "path_pattern": "/private", "target_type": "url", "target_value": b.url(),
            "priority": 95, "scope": "proxy", "proxy_hostnames": ["locked.test"]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(json!({"route_id": "pub", "path_pattern": "/pub", "target_type": "url", "target_value": b.url(), "builtin": true})),
        )
        .await;
    assert_eq!(s, 422, "the built-in flag is not an API field: {v}");
    let ok = eventually(Duration::from_secs(5), || async {
        let (_, v) = p.admin("GET", "/api/v1/routes/", None).await;
        (v.as_array().map(Vec::len) == Some(1)).then_some(())
    })
    .await;
    assert!(ok.is_some());
    let before = b.seen().len();
    let a = req(&p, "GET", "locked.test", "/private", "").await;
    assert_eq!(a.status, 401, "a route id gives no exemption: {}", a.head);
    assert_eq!(b.seen().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_stays_behind_its_own_listener() {
    let redis = Redis::start();
    // The PROXY protocol listener stands in for a load balancer that forwards an outside client.
    let p = Portcullis::start_with(&redis, &[("TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    // From loopback, the localhost proxy reaches the control plane; /health is bare.
    let a = req(&p, "GET", "localhost", "/health", "").await;
    assert_eq!(a.status, 200, "{}", a.head);
    let v: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v, json!({"status": "healthy"}));
    let (s, full) = p.call("GET", "/health", None, None).await;
    assert_eq!(s, 200);
    assert!(full.get("uptime_seconds").is_some(), "details stay on the control plane: {full}");
    let a = req(
        &p,
        "GET",
        "localhost",
        "/api/v1/tokens/",
        &format!("Authorization: Bearer {}\r\n", p.admin_token),
    )
    .await;
    assert_eq!(a.status, 200, "loopback clients keep the admin API: {}", a.head);
    for (host, target) in [
        ("localhost", "/metrics"),
        ("auth.localhost", "/metrics"),
        ("auth.localhost", "/health"),
        ("auth.localhost", "/api/v1/tokens/"),
        ("auth.localhost", "/"),
        ("localhost", "/./metrics"),
    ] {
        let a = req(&p, "GET", host, target, "").await;
        assert_eq!(a.status, 404, "{host}{target}: {}", a.head);
        assert!(!a.body.contains("portcullis_requests_total"), "{host}{target}");
    }
    let a = req(&p, "GET", "auth.localhost", "/.well-known/oauth-authorization-server", "").await;
    assert_eq!(a.status, 200, "{}", a.head);

    // A client from outside never reaches the localhost proxy.
    let a = raw(
        p.pp_port,
        "PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\nGET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.head);
    let a = raw(
        p.pp_port,
        "PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\nGET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: auth.localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 200, "the authorization server is public: {}", a.head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_an_https_proxy_names_the_https_resource() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = RawBackend::start().await;
    p.create_proxy(
        json!({"hostname": "sec.test", "target_url": b.url(), "auth_enabled": true, "resource_endpoint": "/mcp",
        "resource_override_backend": true}),
    )
    .await;
    wait_for(&p, "sec.test", "/mcp", 401).await;
    let a = req(&p, "GET", &format!("sec.test:{}", p.http_port), "/mcp", "").await;
    assert_eq!(
        a.header("www-authenticate").unwrap(),
        "Bearer realm=\"sec.test\", resource_metadata=\"https://sec.test/.well-known/oauth-protected-resource/mcp\""
    );
    let a = req(&p, "GET", "sec.test", "/.well-known/oauth-protected-resource/mcp", "").await;
    assert_eq!(a.status, 200, "{}", a.head);
    let doc: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(doc["resource"], "https://sec.test/mcp");
    // A token for that resource passes.
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/oauth/test-token",
            Some(json!({"username": "alice", "scope": "mcp", "aud": ["https://sec.test/mcp"]})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let t = v["access_token"].as_str().unwrap();
    let a = req(&p, "GET", "sec.test", "/mcp", &format!("Authorization: Bearer {t}\r\n")).await;
    assert_eq!(a.status, 200, "{}", a.head);
}
