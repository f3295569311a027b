//! Every branch of `auth::check`, on real RS256 tokens signed with a key
//! generated here: what it decides, with which challenge and message.

use std::sync::LazyLock;

use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{json, Value};

use super::{check, unknown_key, AuthKeys, Denial, Outcome, Pass, RequestInfo};
use crate::model::{AccessClaims, Proxy, Route};

const ISSUER: &str = "https://auth.test";
const KID: &str = "k1";
const HOST: &str = "api.test";

/// One RSA key pair for the whole module (generation is the slow part).
struct KeyPair {
    encoding: EncodingKey,
    decoding_pem: Vec<u8>,
}

fn pair() -> KeyPair {
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    KeyPair {
        encoding: EncodingKey::from_rsa_pem(&rsa.private_key_to_pem().unwrap()).unwrap(),
        decoding_pem: rsa.public_key_to_pem().unwrap(),
    }
}

static SIGNER: LazyLock<KeyPair> = LazyLock::new(pair);
static OTHER: LazyLock<KeyPair> = LazyLock::new(pair);

fn keys() -> AuthKeys {
    let decoding = DecodingKey::from_rsa_pem(&SIGNER.decoding_pem).unwrap();
    AuthKeys::new(ISSUER.into(), [(KID.to_string(), decoding)].into(), Default::default(), None)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims() -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "github:1".into(),
        aud: vec![format!("https://{HOST}")],
        azp: "client".into(),
        client_id: "client".into(),
        exp: now() + 600,
        iat: now(),
        nbf: now(),
        jti: "jti-1".into(),
        scope: "read write".into(),
        preferred_username: "alice".into(),
        email: Some("alice@example.com".into()),
        groups: vec!["staff".into()],
    }
}

fn sign_with(c: &AccessClaims, key: &EncodingKey, kid: Option<&str>) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&h, c, key).unwrap()
}

fn sign(c: &AccessClaims) -> String {
    sign_with(c, &SIGNER.encoding, Some(KID))
}

/// A proxy with auth on, plus `extra` fields as the API would store them.
fn proxy(extra: Value) -> Proxy {
    let mut v = json!({"hostname": HOST, "target_url": "http://127.0.0.1:9", "auth_enabled": true});
    if let (Some(base), Value::Object(more)) = (v.as_object_mut(), extra) {
        base.extend(more);
    }
    serde_json::from_value(v).unwrap()
}

fn route(extra: Value) -> Route {
    let mut v = json!({"path_pattern": "/", "target_type": "port", "target_value": "9"});
    if let (Some(base), Value::Object(more)) = (v.as_object_mut(), extra) {
        base.extend(more);
    }
    serde_json::from_value(v).unwrap()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    h
}

/// A request head: `GET path` over HTTPS to `HOST` with these headers.
fn req<'a>(path: &'a str, h: &'a HeaderMap) -> RequestInfo<'a> {
    RequestInfo {
        method: "GET",
        path,
        query: None,
        tls: true,
        raw_host: HOST,
        headers: h,
    }
}

fn bearer(token: &str) -> HeaderMap {
    headers(&[("authorization", &format!("Bearer {token}"))])
}

/// Runs the check for `GET /data` with `h` on `p`.
fn run(p: &Proxy, h: &HeaderMap) -> Outcome {
    check(&keys(), p, None, &req("/data", h))
}

fn denial(o: Outcome) -> Denial {
    match o {
        Outcome::Deny(d) => d,
        Outcome::Skip => panic!("skipped, expected a denial"),
        Outcome::Allow { .. } => panic!("allowed, expected a denial"),
        Outcome::UnknownKey => panic!("unknown key, expected a denial"),
    }
}

/// The caller's name of an allowed request (None: allowed without identity).
fn allowed(o: Outcome) -> (Option<String>, Pass) {
    match o {
        Outcome::Allow { identity, pass } => (identity.map(|i| i.claims.preferred_username.clone()), pass),
        Outcome::Skip => panic!("skipped, expected allow"),
        Outcome::Deny(d) => panic!("denied ({d:?}), expected allow"),
        Outcome::UnknownKey => panic!("unknown key, expected allow"),
    }
}

fn assert_invalid_token(o: Outcome, message: &str) {
    match denial(o) {
        Denial::Unauthorized {
            challenge,
            error,
            message: m,
        } => {
            assert_eq!(error, "invalid_token");
            assert!(m.contains(message), "{m:?} should mention {message:?}");
            assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        }
        d => panic!("expected 401 invalid_token, got {d:?}"),
    }
}

fn assert_forbidden(o: Outcome, message: &str) {
    match denial(o) {
        Denial::Forbidden { message: m } => assert!(m.contains(message), "{m:?} should mention {message:?}"),
        d => panic!("expected 403 access_denied, got {d:?}"),
    }
}

fn assert_insufficient_scope(o: Outcome, scopes: &str) {
    let d = denial(o);
    assert_eq!(d.status(), 403);
    match d {
        Denial::InsufficientScope { challenge, message } => {
            assert_eq!(
                challenge,
                format!(
                    "Bearer realm=\"{HOST}\", error=\"insufficient_scope\", scope=\"{scopes}\", resource_metadata=\"https://{HOST}/.well-known/oauth-protected-resource\""
                )
            );
            assert_eq!(message, format!("this resource needs scope {scopes}"));
        }
        d => panic!("expected insufficient_scope, got {d:?}"),
    }
}

#[test]
fn a_valid_token_is_allowed_with_its_identity() {
    let p = proxy(json!({}));
    let (who, pass) = allowed(run(&p, &bearer(&sign(&claims()))));
    assert_eq!(who.as_deref(), Some("alice"));
    assert_eq!(
        pass,
        Pass {
            token: false,
            identity_headers: true
        },
        "defaults: the token is stripped, identity headers are added"
    );
}

#[test]
fn pass_token_and_pass_headers_follow_the_proxy() {
    let p = proxy(json!({"auth_pass_token": true, "auth_pass_headers": false}));
    let (_, pass) = allowed(run(&p, &bearer(&sign(&claims()))));
    assert_eq!(
        pass,
        Pass {
            token: true,
            identity_headers: false
        }
    );
}

#[test]
fn auth_off_or_a_route_override_skips_and_a_route_can_require_it() {
    let none = HeaderMap::new();
    let off = proxy(json!({"auth_enabled": false}));
    assert!(matches!(run(&off, &none), Outcome::Skip));
    let on = proxy(json!({}));
    let open_route = route(json!({"auth_required": false}));
    assert!(matches!(
        check(&keys(), &on, Some(&open_route), &req("/data", &none)),
        Outcome::Skip
    ));
    let closed_route = route(json!({"auth_required": true}));
    let d = denial(check(&keys(), &off, Some(&closed_route), &req("/data", &none)));
    assert_eq!(d.status(), 401);
    let follows = route(json!({}));
    assert!(matches!(check(&keys(), &off, Some(&follows), &req("/data", &none)), Outcome::Skip));
}

#[test]
fn no_token_is_a_401_naming_the_resource_metadata() {
    let d = denial(run(&proxy(json!({})), &HeaderMap::new()));
    assert_eq!(d.status(), 401);
    assert_eq!(
        d,
        Denial::Unauthorized {
            challenge: format!("Bearer realm=\"{HOST}\", resource_metadata=\"https://{HOST}/.well-known/oauth-protected-resource\""),
            error: "unauthorized",
            message: "authentication required".into(),
        }
    );
}

#[test]
fn the_challenge_names_https_for_an_https_proxy_reached_over_http() {
    let h = HeaderMap::new();
    let p = proxy(json!({"resource_endpoint": "/mcp"}));
    let plain = RequestInfo {
        tls: false,
        raw_host: "api.test:8080",
        ..req("/data", &h)
    };
    let Denial::Unauthorized { challenge, .. } = denial(check(&keys(), &p, None, &plain)) else {
        panic!("expected 401")
    };
    assert!(
        challenge.ends_with(&format!(
            "resource_metadata=\"https://{HOST}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{challenge}"
    );
    let http_only = proxy(json!({"enable_https": false}));
    let Denial::Unauthorized { challenge, .. } = denial(check(&keys(), &http_only, None, &plain)) else {
        panic!("expected 401")
    };
    assert!(
        challenge.ends_with("resource_metadata=\"http://api.test:8080/.well-known/oauth-protected-resource\""),
        "{challenge}"
    );
}

#[test]
fn exemptions_skip_the_check() {
    let none = HeaderMap::new();
    let p = proxy(json!({"auth_excluded_paths": ["/public"], "resource_endpoint": "/mcp"}));
    let k = keys();
    for path in [
        "/health",
        "/public",
        "/public/x",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        assert!(matches!(check(&k, &p, None, &req(path, &none)), Outcome::Skip), "{path}");
    }
    for path in [
        "/publicx",
        "/.well-known/other",
        "/.well-known/oauth-protected-resource/other",
        "/health/x",
    ] {
        assert_eq!(denial(check(&k, &p, None, &req(path, &none))).status(), 401, "{path}");
    }
}

#[test]
fn cors_preflights_pass_only_where_the_proxy_allows_them() {
    let h = headers(&[("origin", "https://app.test"), ("access-control-request-method", "POST")]);
    let preflight = |p: &Proxy, h: &HeaderMap| {
        let r = RequestInfo {
            method: "OPTIONS",
            ..req("/data", h)
        };
        check(&keys(), p, None, &r)
    };
    let allows = proxy(json!({"auth_allow_cors_preflight": true}));
    assert!(matches!(preflight(&allows, &h), Outcome::Skip));
    assert_eq!(denial(preflight(&proxy(json!({})), &h)).status(), 401, "not allowed by the proxy");
    let no_method = headers(&[("origin", "https://app.test")]);
    assert_eq!(denial(preflight(&allows, &no_method)).status(), 401, "not a preflight");
}

#[test]
fn the_token_may_come_from_the_session_cookie() {
    let token = sign(&claims());
    let p = proxy(json!({"auth_cookie_name": "sess"}));
    for cookie in [format!("a=b; sess={token}"), format!("__Host-sess={token}")] {
        let (who, _) = allowed(run(&p, &headers(&[("cookie", &cookie)])));
        assert_eq!(who.as_deref(), Some("alice"), "{cookie}");
    }
    let other = headers(&[("cookie", &format!("xsess={token}; sessx=1"))]);
    assert_eq!(denial(run(&p, &other)).status(), 401, "only the proxy's cookie name counts");
}

#[test]
fn bearer_is_case_insensitive_and_other_schemes_are_no_token() {
    let token = sign(&claims());
    let p = proxy(json!({}));
    allowed(run(&p, &headers(&[("authorization", &format!("bEaReR {token}"))])));
    let basic = denial(run(&p, &headers(&[("authorization", "Basic YTpi")])));
    assert!(matches!(basic, Denial::Unauthorized { error: "unauthorized", .. }), "{basic:?}");
    let empty = denial(run(&p, &headers(&[("authorization", "Bearer  ")])));
    assert!(matches!(empty, Denial::Unauthorized { error: "unauthorized", .. }), "{empty:?}");
}

#[test]
fn bad_tokens_are_401_invalid_token() {
    let p = proxy(json!({}));
    assert_invalid_token(run(&p, &bearer("not-a-jwt")), "malformed token");
    assert_invalid_token(run(&p, &bearer(&sign_with(&claims(), &SIGNER.encoding, None))), "token has no kid");
    let expired = AccessClaims {
        exp: now() - 120,
        iat: now() - 700,
        nbf: now() - 700,
        ..claims()
    };
    assert_invalid_token(run(&p, &bearer(&sign(&expired))), "ExpiredSignature");
    let not_yet = AccessClaims {
        nbf: now() + 600,
        ..claims()
    };
    assert_invalid_token(run(&p, &bearer(&sign(&not_yet))), "ImmatureSignature");
    let foreign = AccessClaims {
        iss: "https://evil.test".into(),
        ..claims()
    };
    assert_invalid_token(run(&p, &bearer(&sign(&foreign))), "InvalidIssuer");
    let forged = sign_with(&claims(), &OTHER.encoding, Some(KID));
    assert_invalid_token(run(&p, &bearer(&forged)), "InvalidSignature");
}

#[test]
fn a_token_for_another_resource_is_refused() {
    let p = proxy(json!({}));
    for aud in [
        "https://api.test.evil",
        "https://other.test",
        "https://api.test/elsewhere",
        "http://api.test",
    ] {
        let c = AccessClaims {
            aud: vec![aud.into()],
            ..claims()
        };
        assert_invalid_token(run(&p, &bearer(&sign(&c))), "audience");
    }
    let listed = proxy(json!({"auth_allowed_audiences": ["urn:api"]}));
    let c = AccessClaims {
        aud: vec!["urn:api/".into()],
        ..claims()
    };
    allowed(run(&listed, &bearer(&sign(&c))));
    let as_addressed = AccessClaims {
        aud: vec!["HTTPS://API.TEST/mcp/".into()],
        ..claims()
    };
    allowed(run(&proxy(json!({"resource_endpoint": "/mcp"})), &bearer(&sign(&as_addressed))));
}

#[test]
fn revoked_tokens_are_refused_even_when_cached() {
    let token = sign(&claims());
    let p = proxy(json!({}));
    let mut k = keys();
    allowed(check(&k, &p, None, &req("/data", &bearer(&token))));
    assert!(k.cached(&token).is_some(), "a verified token is remembered");
    k.revoked.insert("jti-1".into());
    assert_invalid_token(check(&k, &p, None, &req("/data", &bearer(&token))), "token revoked");
    let fresh = AuthKeys::new(ISSUER.into(), keys().keys, k.revoked.clone(), None);
    assert_invalid_token(check(&fresh, &p, None, &req("/data", &bearer(&token))), "token revoked");
}

#[test]
fn an_unknown_kid_asks_for_one_refresh_then_is_refused() {
    let token = sign_with(&claims(), &SIGNER.encoding, Some("k-next"));
    let p = proxy(json!({}));
    let k = keys();
    let h = bearer(&token);
    assert!(matches!(check(&k, &p, None, &req("/data", &h)), Outcome::UnknownKey));
    assert_invalid_token(check(&k, &p, None, &req("/data", &h)), "unknown key");
    let d = unknown_key(&p, &req("/data", &h));
    assert_eq!(
        d,
        Denial::Unauthorized {
            challenge: format!(
                "Bearer realm=\"{HOST}\", error=\"invalid_token\", resource_metadata=\"https://{HOST}/.well-known/oauth-protected-resource\""
            ),
            error: "invalid_token",
            message: "unknown signing key".into(),
        }
    );
}

#[test]
fn user_lists_refuse_other_users() {
    let token = sign(&claims());
    assert_forbidden(
        run(&proxy(json!({"auth_required_users": ["bob"]})), &bearer(&token)),
        "user alice may not use api.test",
    );
    allowed(run(&proxy(json!({"auth_required_users": ["ALICE"]})), &bearer(&token)));
    allowed(run(&proxy(json!({"auth_required_users": ["*"]})), &bearer(&token)));
    let global = AuthKeys::new(ISSUER.into(), keys().keys, Default::default(), Some(vec!["bob".into()]));
    let p = proxy(json!({}));
    assert_forbidden(check(&global, &p, None, &req("/data", &bearer(&token))), "may not use");
    let own_list = proxy(json!({"auth_required_users": ["alice"]}));
    allowed(check(&global, &own_list, None, &req("/data", &bearer(&token))));
}

#[test]
fn e_mail_and_group_lists_refuse_outsiders() {
    let token = sign(&claims());
    assert_forbidden(
        run(&proxy(json!({"auth_required_emails": ["*@other.org"]})), &bearer(&token)),
        "e-mail address",
    );
    allowed(run(&proxy(json!({"auth_required_emails": ["*@example.com"]})), &bearer(&token)));
    let no_mail = AccessClaims { email: None, ..claims() };
    assert_forbidden(
        run(&proxy(json!({"auth_required_emails": ["*"]})), &bearer(&sign(&no_mail))),
        "e-mail address",
    );
    assert_forbidden(
        run(&proxy(json!({"auth_required_groups": ["admins"]})), &bearer(&token)),
        "none of your groups",
    );
    allowed(run(&proxy(json!({"auth_required_groups": ["admins", "staff"]})), &bearer(&token)));
}

#[test]
fn scopes_proxy_needs_any_route_needs_all() {
    let token = sign(&claims());
    assert_insufficient_scope(
        run(&proxy(json!({"auth_allowed_scopes": ["admin", "mcp"]})), &bearer(&token)),
        "admin mcp",
    );
    allowed(run(&proxy(json!({"auth_allowed_scopes": ["admin", "write"]})), &bearer(&token)));
    let p = proxy(json!({}));
    let h = bearer(&token);
    let needs = route(json!({"auth_scopes": ["read", "admin"]}));
    assert_insufficient_scope(check(&keys(), &p, Some(&needs), &req("/data", &h)), "read admin");
    let has = route(json!({"auth_scopes": ["read", "write"]}));
    allowed(check(&keys(), &p, Some(&has), &req("/data", &h)));
}

#[test]
fn passthrough_never_refuses_and_drops_what_it_cannot_vouch_for() {
    let p = proxy(json!({"auth_mode": "passthrough", "auth_required_users": ["bob"]}));
    assert_eq!(allowed(run(&p, &HeaderMap::new())).0, None, "no token");
    assert_eq!(allowed(run(&p, &bearer("garbage"))).0, None, "bad token");
    let elsewhere = AccessClaims {
        aud: vec!["https://other.test".into()],
        ..claims()
    };
    assert_eq!(allowed(run(&p, &bearer(&sign(&elsewhere)))).0, None, "wrong audience");
    let (who, pass) = allowed(run(&p, &bearer(&sign(&claims()))));
    assert_eq!(who.as_deref(), Some("alice"), "lists are the backend's business in passthrough");
    assert!(!pass.token);
}

#[test]
fn redirect_mode_sends_browsers_to_the_login_and_apis_get_401() {
    let p = proxy(json!({"auth_mode": "redirect"}));
    let browser = headers(&[("accept", "text/html,application/xhtml+xml")]);
    let r = RequestInfo {
        query: Some("a=1&b=2"),
        ..req("/docs/x", &browser)
    };
    let d = denial(check(&keys(), &p, None, &r));
    assert_eq!(d.status(), 302);
    assert_eq!(
        d,
        Denial::Login {
            location: "/_portcullis/login?rd=%2Fdocs%2Fx%3Fa%3D1%26b%3D2".into()
        }
    );
    let bad = headers(&[("accept", "text/html"), ("authorization", "Bearer garbage")]);
    assert!(matches!(denial(run(&p, &bad)), Denial::Login { .. }), "an invalid token too");
    assert_eq!(denial(run(&p, &headers(&[("accept", "application/json")]))).status(), 401);
}

#[test]
fn the_bearer_token_is_read_from_the_header_bytes() {
    use super::check::token_from;
    let with = |auth: &[u8], cookie: Option<&str>| {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, http::HeaderValue::from_bytes(auth).unwrap());
        if let Some(c) = cookie {
            h.insert(http::header::COOKIE, http::HeaderValue::from_str(c).unwrap());
        }
        h
    };
    let h = with(b"bEaReR  abc.def.ghi ", None);
    assert_eq!(token_from(&h, "sess"), Some("abc.def.ghi"));
    let h = with(b"Basic dXNlcjpwdw==", Some("sess=c00kie"));
    assert_eq!(token_from(&h, "sess"), Some("c00kie"));
    let h = with("Bearer t\u{e9}".as_bytes(), None);
    assert_eq!(
        token_from(&h, "sess"),
        Some("t\u{e9}"),
        "valid UTF-8 reaches verification, which refuses it"
    );
    let h = with(b"Bearer \xff\xfe", Some("__Host-sess=c2"));
    assert_eq!(token_from(&h, "sess"), Some("c2"), "not UTF-8: no bearer token");
    let h = with(b"Bearer   ", None);
    assert_eq!(token_from(&h, "sess"), None);
}
