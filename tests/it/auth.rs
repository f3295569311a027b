//! ForwardAuth and protected resources (issue 6), with real tokens minted by
//! the running authorization server's signing code.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{backend, eventually, get_as as req, Portcullis, Redis};

async fn token(p: &Portcullis, body: Value) -> (String, String) {
    let (s, v) = p.admin("POST", "/api/v1/oauth/test-token", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["jti"].as_str().unwrap().to_string(),
    )
}

/// Mints a token with `claims` and sends it once to `host``path`.
async fn with_token(p: &Portcullis, host: &str, path: &str, claims: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let (t, _) = token(p, claims).await;
    req(p, host, path, &[("Authorization", &format!("Bearer {t}"))]).await
}

fn www(h: &reqwest::header::HeaderMap) -> String {
    h.get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Portcullis logging in through `gh`, its issuer being its own control plane.
async fn start_with_github(redis: &Redis, gh: &crate::harness::github::GithubFixture, more: &[(&str, &str)]) -> Portcullis {
    let env = gh.env();
    let api_port = crate::harness::free_port().to_string();
    let issuer = format!("http://127.0.0.1:{api_port}");
    let mut extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.push(("API_PORT", &api_port));
    extra.push(("OAUTH_ISSUER", &issuer));
    extra.extend_from_slice(more);
    Portcullis::start_with(redis, &extra).await
}

async fn wait_status(p: &Portcullis, host: &str, path: &str, headers: &[(&str, &str)], want: u16) {
    let ok = eventually(Duration::from_secs(5), || async {
        (req(p, host, path, headers).await.0 == want).then_some(())
    })
    .await;
    assert!(
        ok.is_some(),
        "{host}{path} never answered {want}: {:?}",
        req(p, host, path, headers).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_mode_checks_tokens_audience_scopes_and_allowlists() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = backend::start("B").await;
    p.create_proxy(json!({"hostname": "api.test", "target_url": b.url(), "enable_https": false, "auth_enabled": true,
        "resource_endpoint": "/mcp", "resource_scopes": ["mcp:read"], "resource_override_backend": true, "auth_required_users": ["alice", "carol"],
        "auth_required_emails": ["*@example.com"], "auth_allowed_scopes": ["mcp:read", "mcp:write"], "auth_excluded_paths": ["/public"]})).await;
    let aud = "https://api.test/mcp";
    let (good, good_jti) = token(
        &p,
        json!({"username": "alice", "email": "alice@example.com", "scope": "mcp:read", "aud": [aud]}),
    )
    .await;
    wait_status(&p, "api.test", "/x", &[], 401).await;

    // no token: 401 with resource_metadata
    let (s, h, _) = req(&p, "api.test", "/x", &[]).await;
    assert_eq!(s, 401);
    let w = www(&h);
    assert!(
        w.contains("resource_metadata=\"http://api.test/.well-known/oauth-protected-resource/mcp\"") && !w.contains("error="),
        "{w}"
    );
    assert_eq!(h["access-control-expose-headers"], "WWW-Authenticate");
    // excluded and always-public paths
    assert_eq!(req(&p, "api.test", "/public/page", &[]).await.0, 200);
    let (s, _, v) = req(&p, "api.test", "/.well-known/oauth-protected-resource/mcp", &[]).await;
    assert_eq!(s, 200);
    assert_eq!(v["resource"], "http://api.test/mcp");
    assert_eq!(v["scopes_supported"], json!(["mcp:read"]));
    assert_eq!(v["authorization_servers"][0], "https://auth.localhost");
    // valid token: identity headers, no token passthrough, forged X-Auth-* replaced
    let bearer = format!("Bearer {good}");
    let (s, _, v) = req(&p, "api.test", "/x", &[("Authorization", &bearer), ("X-Auth-User", "root")]).await;
    assert_eq!(s, 200, "{v}");
    let hv = &v["headers"];
    assert_eq!(hv["x-auth-user"], json!(["alice"]));
    assert_eq!(hv["x-auth-email"], json!(["alice@example.com"]));
    assert_eq!(hv["x-auth-scopes"], json!(["mcp:read"]));
    assert_eq!(hv["x-auth-user-id"], json!(["test:alice"]));
    assert!(hv.get("authorization").is_none(), "token passed upstream: {hv}");
    // refused tokens: (claims, status, what WWW-Authenticate names; allowlist refusals send none)
    let alice = |extra: Value| {
        let mut c = json!({"username": "alice", "email": "alice@example.com", "scope": "mcp:read", "aud": [aud]});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    let refused = [
        (alice(json!({"aud": ["https://else.test"]})), 401, "error=\"invalid_token\""),
        // a missing scope names what is needed
        (
            alice(json!({"scope": "user"})),
            403,
            "error=\"insufficient_scope\", scope=\"mcp:read mcp:write\"",
        ),
        // user and e-mail allowlists
        (
            json!({"username": "bob", "email": "bob@example.com", "scope": "mcp:read", "aud": [aud]}),
            403,
            "",
        ),
        (
            json!({"username": "carol", "email": "carol@elsewhere.org", "scope": "mcp:read", "aud": [aud]}),
            403,
            "",
        ),
        (alice(json!({"expires_in": -120})), 401, "invalid_token"),
    ];
    for (claims, want, named) in refused {
        let (s, h, _) = with_token(&p, "api.test", "/x", claims.clone()).await;
        assert_eq!(s, want, "{claims}");
        let w = www(&h);
        assert!(
            named.is_empty() || (w.contains(named) && w.contains("resource_metadata=")),
            "{claims}: {w}"
        );
    }
    // garbage
    assert_eq!(req(&p, "api.test", "/x", &[("Authorization", "Bearer a.b.c")]).await.0, 401);
    // revoked via the admin API
    let (s, _) = p.admin("DELETE", &format!("/api/v1/oauth/tokens/{good_jti}"), None).await;
    assert_eq!(s, 200);
    wait_status(&p, "api.test", "/x", &[("Authorization", &bearer)], 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_instance_is_refused_by_another_within_a_second() {
    let redis = Redis::start();
    let (a, b) = (Portcullis::start(&redis).await, Portcullis::start(&redis).await);
    let be = backend::start("B").await;
    a.create_proxy(json!({"hostname": "rev.test", "target_url": be.url(), "enable_https": false, "auth_enabled": true}))
        .await;
    let (t, jti) = token(&a, json!({"username": "alice", "aud": ["https://rev.test"]})).await;
    let bearer = format!("Bearer {t}");
    wait_status(&b, "rev.test", "/", &[("Authorization", &bearer)], 200).await;
    let (s, _) = a.admin("DELETE", &format!("/api/v1/oauth/tokens/{jti}"), None).await;
    assert_eq!(s, 200);
    let refused = eventually(Duration::from_secs(1), || async {
        (req(&b, "rev.test", "/", &[("Authorization", &bearer)]).await.0 == 401).then_some(())
    })
    .await;
    assert!(refused.is_some(), "instance B still accepts a token revoked on A");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_route_overrides_and_websocket_refusal() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = backend::start("B").await;
    p.create_proxy(
        json!({"hostname": "pass.test", "target_url": b.url(), "enable_https": false, "auth_enabled": true, "auth_mode": "passthrough"}),
    )
    .await;
    p.create_proxy(json!({"hostname": "open.test", "target_url": b.url(), "enable_https": false}))
        .await;
    p.create_proxy(json!({"hostname": "ws.test", "target_url": b.url(), "enable_https": false, "auth_enabled": true}))
        .await;
    let (s, _) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(json!({"path_pattern": "/admin", "target_type": "url", "target_value": b.url(),
        "scope": "proxy", "proxy_hostnames": ["open.test"], "auth_required": true, "auth_scopes": ["admin"]})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(json!({"path_pattern": "/free", "target_type": "url", "target_value": b.url(),
        "scope": "proxy", "proxy_hostnames": ["ws.test"], "auth_required": false})),
        )
        .await;
    assert_eq!(s, 201);
    wait_status(&p, "open.test", "/admin", &[], 401).await;
    // passthrough: forwarded without a token, identity only with one
    let (s, _, v) = req(&p, "pass.test", "/", &[("X-Auth-User", "forged")]).await;
    assert_eq!(s, 200);
    assert!(v["headers"].get("x-auth-user").is_none());
    let (_, _, v) = with_token(&p, "pass.test", "/", json!({"username": "dora", "aud": ["https://pass.test"]})).await;
    assert_eq!(v["headers"]["x-auth-user"], json!(["dora"]));
    // route requiring auth and scopes on an open proxy
    assert_eq!(req(&p, "open.test", "/other", &[]).await.0, 200);
    for (scope, want) in [("user", 403), ("admin", 200)] {
        let claims = json!({"username": "dora", "scope": scope, "aud": ["https://open.test"]});
        assert_eq!(with_token(&p, "open.test", "/admin", claims).await.0, want, "scope {scope}");
    }
    // route skipping auth on a protected proxy
    assert_eq!(req(&p, "ws.test", "/free", &[]).await.0, 200);
    // a WebSocket upgrade without a token is refused before reaching the backend
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut r = format!("ws://127.0.0.1:{}/ws", p.http_port).into_client_request().unwrap();
    r.headers_mut().insert("Host", "ws.test".parse().unwrap());
    match tokio_tungstenite::connect_async(r).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("websocket without a token was not refused: {:?}", other.map(|(_, r)| r.status())),
    }
    let (t, _) = token(&p, json!({"username": "dora", "aud": ["https://ws.test"]})).await;
    let mut r = format!("ws://127.0.0.1:{}/ws", p.http_port).into_client_request().unwrap();
    r.headers_mut().insert("Host", "ws.test".parse().unwrap());
    r.headers_mut().insert("Authorization", format!("Bearer {t}").parse().unwrap());
    // With the token the upgrade completes and the backend's echo comes back.
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, resp) = tokio_tungstenite::connect_async(r).await.expect("authenticated upgrade");
    assert_eq!(resp.status().as_u16(), 101);
    ws.send(Message::Text("hello through auth".into())).await.unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    match echo {
        Ok(Some(Ok(Message::Text(t)))) => assert_eq!(t.as_str(), "hello through auth"),
        other => panic!("no echo over the authenticated WebSocket: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_prefers_the_backend_unless_overridden_and_the_registry_checks_tokens() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = backend::start("B").await;
    // the echo backend answers every path, so with override off its answer wins
    p.create_proxy(json!({"hostname": "own.test", "target_url": b.url(), "enable_https": false, "resource_endpoint": "/mcp"}))
        .await;
    p.create_proxy(json!({"hostname": "ours.test", "target_url": b.url(), "enable_https": false, "resource_endpoint": "/mcp", "resource_override_backend": true})).await;
    let dead = crate::harness::free_port();
    p.create_proxy(json!({"hostname": "dead.test", "target_url": format!("http://127.0.0.1:{dead}"), "enable_https": false, "resource_endpoint": "/mcp"})).await;
    wait_status(&p, "ours.test", "/.well-known/oauth-protected-resource", &[], 200).await;
    let (_, _, v) = req(&p, "own.test", "/.well-known/oauth-protected-resource/mcp", &[]).await;
    assert_eq!(v["backend"], "B", "the backend's own metadata wins");
    let (_, h, v) = req(&p, "ours.test", "/.well-known/oauth-protected-resource/mcp", &[]).await;
    assert_eq!(v["resource"], "http://ours.test/mcp");
    assert_eq!(h["access-control-allow-origin"], "*");
    let (s, _, v) = req(&p, "dead.test", "/.well-known/oauth-protected-resource", &[]).await;
    assert_eq!(
        (s, v["resource"].as_str()),
        (200, Some("http://dead.test/mcp")),
        "ours when the backend has none"
    );

    // registry: proxies with resource settings, not those that only require a login or nothing
    p.create_proxy(json!({"hostname": "login-only.test", "target_url": b.url(), "enable_https": false, "auth_enabled": true}))
        .await;
    p.create_proxy(json!({"hostname": "plain.test", "target_url": b.url(), "enable_https": false}))
        .await;
    let (s, v) = p.admin("POST", "/api/v1/resources/auto-register", None).await;
    assert_eq!(s, 200, "{v}");
    let uris: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap()).collect();
    assert!(uris.contains(&"https://ours.test/mcp"), "{v}");
    assert!(
        !uris.iter().any(|u| u.contains("login-only.test") || u.contains("plain.test")),
        "{v}"
    );
    let enc = "https%3A%2F%2Fours.test%2Fmcp";
    let (s, v) = p.admin("GET", &format!("/api/v1/resources/{enc}"), None).await;
    assert_eq!((s, v["proxy_target"].as_str()), (200, Some("ours.test")));
    let (t, _) = token(&p, json!({"username": "eve", "aud": ["https://ours.test/mcp"]})).await;
    let (_, v) = p
        .admin(
            "POST",
            &format!("/api/v1/resources/{enc}/validate-token"),
            Some(json!({"token": t})),
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");
    let (t, _) = token(&p, json!({"username": "eve", "aud": ["https://else.test"]})).await;
    let (_, v) = p
        .admin(
            "POST",
            &format!("/api/v1/resources/{enc}/validate-token"),
            Some(json!({"token": t})),
        )
        .await;
    assert_eq!(v["valid"], false);
    // the /auth and /mcp sub-resources of a proxy
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/proxy/targets/own.test/auth",
            Some(json!({"auth_mode": "redirect", "auth_required_users": ["*"]})),
        )
        .await;
    assert_eq!(
        (s, v["auth_enabled"].as_bool(), v["auth_mode"].as_str()),
        (200, Some(true), Some("redirect")),
        "{v}"
    );
    let (s, v) = p.admin("DELETE", "/api/v1/proxy/targets/own.test/auth", None).await;
    assert_eq!((s, v["auth_enabled"].as_bool()), (200, Some(false)));
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/proxy/targets/own.test/mcp",
            Some(json!({"endpoint": "/rpc", "scopes": ["mcp:read"], "override_backend": true})),
        )
        .await;
    assert_eq!((s, v["resource_endpoint"].as_str()), (200, Some("/rpc")), "{v}");
    let (s, v) = p
        .admin("POST", "/api/v1/proxy/targets/own.test/auth", Some(json!({"bogus": 1})))
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("bogus")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_mode_logs_browsers_in_and_sets_a_session_cookie() {
    use crate::harness::github::GithubFixture;
    let redis = Redis::start();
    let gh = GithubFixture::start().await;
    let p = start_with_github(&redis, &gh, &[("OAUTH_ALLOWED_GITHUB_USERS", "alice,bob")]).await;
    let b = backend::start("B").await;
    p.create_proxy(
        json!({"hostname": "web.test", "target_url": b.url(), "enable_https": false, "auth_enabled": true, "auth_mode": "redirect",
        "auth_required_users": ["alice"]}),
    )
    .await;
    wait_status(&p, "web.test", "/page", &[("Accept", "text/html")], 302).await;
    // API clients still get 401 in redirect mode
    assert_eq!(req(&p, "web.test", "/page", &[("Accept", "application/json")]).await.0, 401);

    // a browser: follows redirects manually, keeping the Host header for the proxy's own URLs
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let http_base = format!("127.0.0.1:{}", p.http_port);
    let browse = |user: &'static str| {
        let client = client.clone();
        let http_base = http_base.clone();
        gh.next_user(user, None);
        async move {
            let mut url = format!("http://{http_base}/page?x=1");
            let mut host = "web.test".to_string();
            let mut cookie: Option<String> = None;
            for _ in 0..10 {
                let mut rb = client.get(&url).header("Accept", "text/html");
                if host == "web.test" {
                    rb = rb.header("Host", "web.test");
                    // The last cookie the proxy host set, as set: the login's state
                    // cookie at its callback, then the session cookie.
                    if let Some(c) = &cookie {
                        rb = rb.header("Cookie", c.clone());
                    }
                }
                let r = rb.send().await.unwrap();
                if let Some(sc) = r.headers().get("set-cookie") {
                    let sc = sc.to_str().unwrap().to_string();
                    assert!(sc.contains("HttpOnly") && sc.contains("SameSite=Lax"), "{sc}");
                    cookie = sc.split(';').next().map(String::from);
                }
                if !r.status().is_redirection() {
                    let s = r.status().as_u16();
                    return (s, r.text().await.unwrap(), cookie);
                }
                let loc = r.headers()["location"].to_str().unwrap().to_string();
                if loc.starts_with('/') {
                    url = format!("http://{http_base}{loc}");
                    host = "web.test".into();
                } else {
                    let u = url::Url::parse(&loc).unwrap();
                    if u.host_str() == Some("web.test") {
                        url = format!("http://{http_base}{}?{}", u.path(), u.query().unwrap_or(""));
                        host = "web.test".into();
                    } else {
                        url = loc;
                        host = u.host_str().unwrap().to_string();
                    }
                }
            }
            panic!("redirect loop");
        }
    };
    let (s, body, cookie) = browse("alice").await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["uri"], "/page?x=1", "returned to where the browser started");
    assert_eq!(v["headers"]["x-auth-user"], json!(["alice"]));
    assert_eq!(
        v["headers"]["x-auth-email"],
        json!(["alice@users.example"]),
        "e-mail from /user/emails"
    );
    assert!(
        v["headers"].get("cookie").is_none(),
        "the session cookie is not passed upstream: {v}"
    );
    assert!(cookie.is_some());
    // bob may log in globally but not on this proxy
    let (s, body, _) = browse("bob").await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("access_denied"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_mode_over_https_sets_a_host_prefixed_secure_cookie() {
    use crate::harness::github::GithubFixture;
    let redis = Redis::start();
    let gh = GithubFixture::start().await;
    let p = start_with_github(&redis, &gh, &[]).await;
    let b = backend::start("B").await;
    p.create_proxy(
        json!({"hostname": "secure.test", "target_url": b.url(), "enable_http": false, "auth_enabled": true, "auth_mode": "redirect"}),
    )
    .await;
    gh.next_user("erin", Some("erin@example.com"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .resolve("secure.test", format!("127.0.0.1:{}", p.https_port).parse().unwrap())
        .build()
        .unwrap();
    let start = format!("https://secure.test:{}/app?y=2", p.https_port);
    let ready = eventually(Duration::from_secs(5), || {
        let (client, start) = (client.clone(), start.clone());
        async move { (client.get(&start).header("Accept", "text/html").send().await.ok()?.status() == 302).then_some(()) }
    })
    .await;
    assert!(ready.is_some());
    let (mut url, mut cookie, mut set_cookie) = (start.clone(), None::<String>, None::<String>);
    let mut last = None;
    for _ in 0..10 {
        let mut rb = client.get(&url).header("Accept", "text/html");
        if let (Some(c), true) = (&cookie, url.starts_with("https://secure.test")) {
            rb = rb.header("Cookie", c.clone());
        }
        let r = rb.send().await.unwrap();
        if let Some(sc) = r.headers().get("set-cookie") {
            let sc = sc.to_str().unwrap().to_string();
            cookie = sc.split(';').next().map(String::from);
            set_cookie = Some(sc);
        }
        if !r.status().is_redirection() {
            last = Some((r.status().as_u16(), r.text().await.unwrap()));
            break;
        }
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        url = if loc.starts_with('/') {
            format!("https://secure.test:{}{loc}", p.https_port)
        } else {
            loc
        };
    }
    let (s, body) = last.expect("the login finished");
    assert_eq!(s, 200, "{body}");
    let sc = set_cookie.expect("a session cookie was set");
    for attr in ["__Host-unified_auth_token=", "Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(sc.contains(attr), "missing {attr} in {sc}");
    }
    assert!(!sc.contains("Domain="), "__Host- cookies carry no Domain: {sc}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["uri"], "/app?y=2");
    assert_eq!(v["headers"]["x-auth-user"], json!(["erin"]));
    assert_eq!(v["headers"]["x-forwarded-proto"], json!(["https"]));
}
