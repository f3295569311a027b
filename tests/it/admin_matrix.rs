//! The authorization matrix (issue 13, acceptance): every admin API
//! endpoint and verb, called by {admin token, owner user token, other user
//! token, no credential, OAuth token with `user`, OAuth token with `mcp`}
//! on objects owned by {admin, owner, other}, must
//! answer the status written in ONE table below. The test fails on any cell
//! that differs, when the router (src/admin) has a path or a method without
//! a row, and when a row names a path the router lacks.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::admin_api::make_cert;
use crate::harness::{Portcullis, Redis};

/// Whose object a row acts on; `-` rows act on no particular object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Obj {
    None,
    Admin,
    Owner,
    Other,
}
use Obj::{Admin, None as Nil, Other, Owner};

/// Status per caller: admin token, owner user token, other user token, no
/// credential, OAuth token with scope `user`, OAuth token with scope `mcp`.
type Cells = [u16; 6];

/// One row: method, path pattern (as in the router, `{x}` filled per object), object, body, statuses.
type Row = (&'static str, &'static str, Obj, Option<fn(&str) -> Value>, Cells);

/// Reads of one object: the admin and its owner see it; an OAuth `user` token owns nothing.
const READ_OWN: [Cells; 3] = [
    [200, 404, 404, 401, 404, 403],
    [200, 200, 404, 401, 404, 403],
    [200, 404, 200, 401, 404, 403],
];
/// Deletes of one object: as reads, but an OAuth `user` token may only read.
const DELETE_OWN: [Cells; 3] = [
    [200, 404, 404, 401, 403, 403],
    [200, 200, 404, 401, 403, 403],
    [200, 404, 200, 401, 403, 403],
];

fn none(_: &str) -> Value {
    json!({})
}
fn bogus(_: &str) -> Value {
    json!({"bogus": true})
}
fn enabled(_: &str) -> Value {
    json!({"enabled": true})
}
fn new_proxy(c: &str) -> Value {
    json!({"hostname": format!("new-{c}.test"), "target_url": "http://192.0.2.1", "enable_https": false})
}
fn new_route(c: &str) -> Value {
    json!({"route_id": format!("new-{c}"), "path_pattern": format!("/new-{c}"), "target_type": "url", "target_value": "http://192.0.2.1",
        "scope": "proxy", "proxy_hostnames": [format!("{c}.test")]})
}
fn new_global_route(c: &str) -> Value {
    json!({"route_id": format!("global-{c}"), "path_pattern": format!("/global-{c}"), "target_type": "url", "target_value": "http://192.0.2.1"})
}
fn upload_for_owner_host(c: &str) -> Value {
    let (cert, key) = make_cert(&["owner.test"], -1, 30);
    json!({"cert_name": format!("for-owner-by-{c}"), "certificate_pem": cert, "private_key_pem": key})
}
fn new_token(c: &str) -> Value {
    json!({"name": format!("made-by-{c}")})
}
fn new_generated(c: &str) -> Value {
    json!({"name": format!("generated-for-{c}")})
}
fn new_order(c: &str) -> Value {
    json!({"cert_name": format!("order-{c}"), "domain": format!("order-{c}.test")})
}
fn new_multi(c: &str) -> Value {
    json!({"cert_name": format!("multi-{c}"), "domains": [format!("m1-{c}.test"), format!("m2-{c}.test")]})
}
fn new_upload(c: &str) -> Value {
    let (cert, key) = make_cert(&[&format!("up-{c}.test")], -1, 30);
    json!({"cert_name": format!("up-{c}"), "certificate_pem": cert, "private_key_pem": key})
}
fn new_service(c: &str) -> Value {
    json!({"service_name": format!("svc-{c}"), "target_url": "http://192.0.2.1"})
}
fn port_443(_: &str) -> Value {
    json!({"port": 443})
}
fn new_resource(c: &str) -> Value {
    json!({"uri": format!("https://{c}.test/new")})
}
fn email(_: &str) -> Value {
    json!({"cert_email": "ops@example.com"})
}
fn a_token(_: &str) -> Value {
    json!({"token": "not-a-token"})
}
fn mcp_initialize(_: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "matrix", "version": "0"}}})
}
fn test_token(_: &str) -> Value {
    json!({"username": "m", "scope": "user"})
}

/// THE table. Callers: [admin, owner, other, none, OAuth `user`, OAuth `mcp`]. Per-object rows are
/// listed for objects of the admin, the owner and the other user.
fn table() -> Vec<Row> {
    let mut t: Vec<Row> = vec![
        // tokens
        ("GET", "/api/v1/tokens/", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("POST", "/api/v1/tokens/", Nil, Some(new_token), [201, 403, 403, 401, 403, 403]),
        (
            "POST",
            "/api/v1/tokens/generate",
            Nil,
            Some(new_generated),
            [201, 403, 403, 401, 403, 403],
        ),
        ("GET", "/api/v1/tokens/info", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("PUT", "/api/v1/tokens/email", Nil, Some(email), [409, 200, 200, 401, 403, 403]),
        ("GET", "/api/v1/tokens/{name}/reveal", Admin, None, [200, 403, 403, 401, 403, 403]),
        ("GET", "/api/v1/tokens/{name}/reveal", Owner, None, [200, 403, 403, 401, 403, 403]),
        ("GET", "/api/v1/tokens/{name}/reveal", Other, None, [200, 403, 403, 401, 403, 403]),
        // proxies
        ("GET", "/api/v1/proxy/targets/", Nil, None, [200, 200, 200, 401, 200, 403]),
        (
            "POST",
            "/api/v1/proxy/targets/",
            Nil,
            Some(new_proxy),
            [201, 201, 201, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/{hostname}",
            Admin,
            Some(enabled),
            [200, 404, 404, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/{hostname}",
            Owner,
            Some(enabled),
            [200, 200, 404, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/{hostname}",
            Other,
            Some(enabled),
            [200, 404, 200, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/cert/generate",
            Admin,
            Some(bogus),
            [422, 404, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/cert/generate",
            Owner,
            Some(bogus),
            [422, 422, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/cert/generate",
            Other,
            Some(bogus),
            [422, 404, 422, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/cert/attach",
            Admin,
            Some(bogus),
            [422, 404, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/cert/attach",
            Owner,
            Some(bogus),
            [422, 422, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/cert/attach",
            Other,
            Some(bogus),
            [422, 404, 422, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/auth",
            Admin,
            Some(none),
            [200, 404, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/auth",
            Owner,
            Some(none),
            [200, 200, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/auth",
            Other,
            Some(none),
            [200, 404, 200, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/{hostname}/auth",
            Admin,
            Some(none),
            [200, 404, 404, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/{hostname}/auth",
            Owner,
            Some(none),
            [200, 200, 404, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/{hostname}/auth",
            Other,
            Some(none),
            [200, 404, 200, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/proxy/targets/{hostname}/auth",
            Admin,
            None,
            [200, 404, 404, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/proxy/targets/{hostname}/auth",
            Owner,
            None,
            [200, 200, 404, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/proxy/targets/{hostname}/auth",
            Other,
            None,
            [200, 404, 200, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/mcp",
            Admin,
            Some(none),
            [200, 404, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/mcp",
            Owner,
            Some(none),
            [200, 200, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/proxy/targets/{hostname}/mcp",
            Other,
            Some(none),
            [200, 404, 200, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/{hostname}/mcp",
            Admin,
            Some(none),
            [200, 404, 404, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/{hostname}/mcp",
            Owner,
            Some(none),
            [200, 200, 404, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/proxy/targets/{hostname}/mcp",
            Other,
            Some(none),
            [200, 404, 200, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/proxy/targets/{hostname}/mcp",
            Admin,
            None,
            [200, 404, 404, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/proxy/targets/{hostname}/mcp",
            Owner,
            None,
            [200, 200, 404, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/proxy/targets/{hostname}/mcp",
            Other,
            None,
            [200, 404, 200, 401, 403, 403],
        ),
        // routes
        ("GET", "/api/v1/routes/", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("POST", "/api/v1/routes/", Nil, Some(new_route), [201, 201, 201, 401, 403, 403]),
        (
            "POST",
            "/api/v1/routes/",
            Nil,
            Some(new_global_route),
            [201, 403, 403, 401, 403, 403],
        ),
        ("GET", "/api/v1/routes/formatted", Nil, None, [200, 200, 200, 401, 200, 403]),
        (
            "PUT",
            "/api/v1/routes/{route_id}",
            Admin,
            Some(enabled),
            [200, 404, 404, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/routes/{route_id}",
            Owner,
            Some(enabled),
            [200, 200, 404, 401, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/routes/{route_id}",
            Other,
            Some(enabled),
            [200, 404, 200, 401, 403, 403],
        ),
        // certificates
        ("GET", "/api/v1/certificates/", Nil, None, [200, 200, 200, 401, 200, 403]),
        (
            "POST",
            "/api/v1/certificates/",
            Nil,
            Some(new_order),
            [202, 202, 202, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/certificates/multi-domain",
            Nil,
            Some(new_multi),
            [202, 202, 202, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/certificates/upload",
            Nil,
            Some(new_upload),
            [201, 201, 201, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/certificates/upload",
            Nil,
            Some(upload_for_owner_host),
            [201, 201, 403, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/certificates/{cert_name}/renew",
            Admin,
            None,
            [409, 404, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/certificates/{cert_name}/renew",
            Owner,
            None,
            [409, 409, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/certificates/{cert_name}/renew",
            Other,
            None,
            [409, 404, 409, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/certificates/{cert_name}/to-production",
            Admin,
            None,
            [409, 404, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/certificates/{cert_name}/to-production",
            Owner,
            None,
            [409, 409, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/certificates/{cert_name}/to-production",
            Other,
            None,
            [409, 404, 409, 401, 403, 403],
        ),
        // external services (the admin's; users see none)
        ("GET", "/api/v1/services/external", Nil, None, [200, 200, 200, 401, 200, 403]),
        (
            "POST",
            "/api/v1/services/external",
            Nil,
            Some(new_service),
            [201, 403, 403, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/services/external/{name}",
            Nil,
            None,
            [200, 403, 403, 401, 403, 403],
        ),
        ("GET", "/api/v1/services/external/{name}", Nil, None, [200, 404, 404, 401, 404, 403]),
        (
            "PUT",
            "/api/v1/services/external/{name}",
            Nil,
            Some(none),
            [200, 403, 403, 401, 403, 403],
        ),
        // Docker services: each owner's own (isolation against a real engine:
        // tests/it/services_access.rs); here the layering on a missing one,
        // with no engine reachable (DOCKER_HOST names no socket).
        ("GET", "/api/v1/services/", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("POST", "/api/v1/services/", Nil, Some(bogus), [422, 422, 422, 401, 403, 403]),
        ("GET", "/api/v1/services/unified", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("POST", "/api/v1/services/cleanup", Nil, None, [503, 403, 403, 401, 403, 403]),
        ("GET", "/api/v1/services/ports", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("GET", "/api/v1/services/ports/available", Nil, None, [200, 200, 200, 401, 200, 403]),
        (
            "POST",
            "/api/v1/services/ports/check",
            Nil,
            Some(port_443),
            [200, 200, 200, 401, 403, 403],
        ),
        ("GET", "/api/v1/services/{name}", Nil, None, [404, 404, 404, 401, 404, 403]),
        ("PUT", "/api/v1/services/{name}", Nil, Some(none), [404, 404, 404, 401, 403, 403]),
        ("DELETE", "/api/v1/services/{name}", Nil, None, [404, 404, 404, 401, 403, 403]),
        ("POST", "/api/v1/services/{name}/start", Nil, None, [404, 404, 404, 401, 403, 403]),
        ("POST", "/api/v1/services/{name}/stop", Nil, None, [404, 404, 404, 401, 403, 403]),
        ("POST", "/api/v1/services/{name}/restart", Nil, None, [404, 404, 404, 401, 403, 403]),
        ("GET", "/api/v1/services/{name}/logs", Nil, None, [404, 404, 404, 401, 404, 403]),
        ("GET", "/api/v1/services/{name}/stats", Nil, None, [404, 404, 404, 401, 404, 403]),
        ("POST", "/api/v1/services/{name}/proxy", Nil, None, [404, 404, 404, 401, 403, 403]),
        ("GET", "/api/v1/services/{name}/ports", Nil, None, [404, 404, 404, 401, 404, 403]),
        ("POST", "/api/v1/services/{name}/ports", Nil, None, [404, 404, 404, 401, 403, 403]),
        (
            "PUT",
            "/api/v1/services/{name}/ports/{port_name}",
            Nil,
            Some(none),
            [404, 404, 404, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/services/{name}/ports/{port_name}",
            Nil,
            None,
            [404, 404, 404, 401, 403, 403],
        ),
        // resource registry
        ("GET", "/api/v1/resources/", Nil, None, [200, 200, 200, 401, 200, 403]),
        (
            "POST",
            "/api/v1/resources/",
            Nil,
            Some(new_resource),
            [201, 201, 201, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/resources/auto-register",
            Nil,
            Some(none),
            [200, 200, 200, 401, 403, 403],
        ),
        ("PUT", "/api/v1/resources/{uri}", Admin, Some(none), [200, 404, 404, 401, 403, 403]),
        ("PUT", "/api/v1/resources/{uri}", Owner, Some(none), [200, 200, 404, 401, 403, 403]),
        ("PUT", "/api/v1/resources/{uri}", Other, Some(none), [200, 404, 200, 401, 403, 403]),
        (
            "POST",
            "/api/v1/resources/{uri}/validate-token",
            Admin,
            Some(a_token),
            [200, 404, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/resources/{uri}/validate-token",
            Owner,
            Some(a_token),
            [200, 200, 404, 401, 403, 403],
        ),
        (
            "POST",
            "/api/v1/resources/{uri}/validate-token",
            Other,
            Some(a_token),
            [200, 404, 200, 401, 403, 403],
        ),
        // OAuth server administration: the admin's alone
        ("GET", "/api/v1/oauth/clients/", Nil, None, [200, 403, 403, 401, 403, 403]),
        (
            "GET",
            "/api/v1/oauth/clients/{client_id}",
            Nil,
            None,
            [404, 403, 403, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/oauth/clients/{client_id}",
            Nil,
            None,
            [404, 403, 403, 401, 403, 403],
        ),
        (
            "PATCH",
            "/api/v1/oauth/clients/{client_id}",
            Nil,
            Some(none),
            [404, 403, 403, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/oauth/clients/{client_id}/consents",
            Nil,
            None,
            [200, 403, 403, 401, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/oauth/clients/{client_id}/consents/{user_id}",
            Nil,
            None,
            [404, 403, 403, 401, 403, 403],
        ),
        ("GET", "/api/v1/oauth/consents", Nil, None, [200, 403, 403, 401, 403, 403]),
        (
            "GET",
            "/api/v1/oauth/clients/{client_id}/tokens",
            Nil,
            None,
            [200, 403, 403, 401, 403, 403],
        ),
        ("GET", "/api/v1/oauth/tokens", Nil, None, [200, 403, 403, 401, 403, 403]),
        ("GET", "/api/v1/oauth/tokens/{jti}", Nil, None, [404, 403, 403, 401, 403, 403]),
        ("DELETE", "/api/v1/oauth/tokens/{jti}", Nil, None, [404, 403, 403, 401, 403, 403]),
        ("GET", "/api/v1/oauth/sessions", Nil, None, [200, 403, 403, 401, 403, 403]),
        (
            "DELETE",
            "/api/v1/oauth/sessions/{session_id}",
            Nil,
            None,
            [200, 403, 403, 401, 403, 403],
        ),
        ("POST", "/api/v1/oauth/keys/rotate", Nil, None, [200, 403, 403, 401, 403, 403]),
        ("GET", "/api/v1/oauth/metrics", Nil, None, [200, 403, 403, 401, 403, 403]),
        ("GET", "/api/v1/oauth/health", Nil, None, [200, 403, 403, 401, 403, 403]),
        (
            "POST",
            "/api/v1/oauth/test-token",
            Nil,
            Some(test_token),
            [201, 403, 403, 401, 403, 403],
        ),
        ("GET", "/api/v1/oauth/proxies", Nil, None, [200, 403, 403, 401, 403, 403]),
        // request logs: everyone with admin or user scope reads (a user only its own hosts' records)
        ("GET", "/api/v1/logs/", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("GET", "/api/v1/logs/search", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("GET", "/api/v1/logs/ip/{ip}", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("GET", "/api/v1/logs/client/{client_id}", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("GET", "/api/v1/logs/errors", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("GET", "/api/v1/logs/events", Nil, None, [200, 200, 200, 401, 200, 403]),
        ("GET", "/api/v1/logs/follow", Nil, None, [200, 200, 200, 401, 200, 403]),
        (
            "GET",
            "/api/v1/oauth/proxies/{hostname}/sessions",
            Owner,
            None,
            [200, 403, 403, 401, 403, 403],
        ),
        // the MCP endpoint: API tokens as through REST; OAuth tokens for the admin API's
        // audience are not for /mcp (401); DELETE names no session here, and GET
        // without a session has no stream to open (405)
        ("POST", "/mcp", Nil, Some(mcp_initialize), [200, 200, 200, 401, 401, 401]),
        ("GET", "/mcp", Nil, None, [405, 405, 405, 401, 401, 401]),
        ("DELETE", "/mcp", Nil, None, [400, 400, 400, 401, 401, 401]),
    ];
    // Reads of one object: the admin and its owner see it, anyone else gets 404.
    for (path, objs) in [
        ("/api/v1/tokens/{name}", [Admin, Owner, Other]),
        ("/api/v1/proxy/targets/{hostname}", [Admin, Owner, Other]),
        ("/api/v1/proxy/targets/{hostname}/auth", [Admin, Owner, Other]),
        ("/api/v1/proxy/targets/{hostname}/mcp", [Admin, Owner, Other]),
        ("/api/v1/routes/{route_id}", [Admin, Owner, Other]),
        ("/api/v1/certificates/{cert_name}", [Admin, Owner, Other]),
        ("/api/v1/certificates/{cert_name}/status", [Admin, Owner, Other]),
        ("/api/v1/resources/{uri}", [Admin, Owner, Other]),
    ] {
        for (o, cells) in objs.into_iter().zip(READ_OWN) {
            t.push(("GET", path, o, None, cells));
        }
    }
    // Deletes (run last; each deleted object is made again before the next cell).
    for (path, objs) in [
        ("/api/v1/proxy/targets/{hostname}", [Admin, Owner, Other]),
        ("/api/v1/routes/{route_id}", [Admin, Owner, Other]),
        ("/api/v1/certificates/{cert_name}", [Admin, Owner, Other]),
        ("/api/v1/resources/{uri}", [Admin, Owner, Other]),
        ("/api/v1/tokens/{name}", [Admin, Owner, Other]),
    ] {
        for (o, cells) in objs.into_iter().zip(DELETE_OWN) {
            t.push(("DELETE", path, o, None, cells));
        }
    }
    t
}

/// Routes served by the control plane that are not the admin API: public,
/// or the OAuth protocol (its own tests). Each must exist in the router.
const NOT_ADMIN_API: [&str; 22] = [
    "/health",
    "/api/v1/openapi.json",
    "/.well-known/oauth-protected-resource/mcp",
    "/metrics",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/{*rest}",
    "/.well-known/openid-configuration",
    "/jwks",
    "/authorize",
    "/callback",
    "/token",
    "/introspect",
    "/revoke",
    "/verify",
    "/register",
    "/register/{client_id}",
    "/device/code",
    "/device/token",
    "/device",
    "/_portcullis/login",
    "/_portcullis/callback",
    "/consent",
];

/// Every route path the control plane router serves, trailing `/` dropped.
fn router_paths() -> BTreeSet<String> {
    crate::harness::router::router_paths().iter().map(|p| norm(p)).collect()
}

fn norm(p: &str) -> String {
    crate::harness::router::norm(p)
}

/// Names of the objects each owner has, for filling path parameters.
struct Names {
    token: &'static str,
}

fn owner_name(o: Obj) -> &'static str {
    match o {
        Admin => "admin",
        Owner => "owner",
        Other => "other",
        Nil => "none",
    }
}

fn fill(pattern: &str, o: Obj, names: &BTreeMap<&'static str, Names>) -> String {
    let n = owner_name(o);
    let uri = format!("https%3A%2F%2F{n}.test%2Fmcp");
    pattern
        .replace("/services/external/{name}", "/services/external/svc")
        .replace("{name}", names.get(n).map_or("nobody", |x| x.token))
        .replace("{hostname}", &format!("{n}.test"))
        .replace("{route_id}", &format!("{n}-route"))
        .replace("{cert_name}", &format!("{n}-cert"))
        .replace("{uri}", &uri)
        .replace("{client_id}", "no-such-client")
        .replace("{ip}", "192.0.2.1")
        .replace("{jti}", "no-such-jti")
        .replace("{user_id}", "no-such-user")
        .replace("{session_id}", "no-such-session")
        .replace("{port_name}", "http")
        .replace("{*rest}", "x")
}

struct World {
    p: Portcullis,
    tokens: BTreeMap<&'static str, String>,
}

impl World {
    fn token(&self, who: &str) -> Option<&str> {
        self.tokens.get(who).map(String::as_str)
    }

    /// Makes `o`'s objects again where missing (after a delete), and the
    /// owner's and other's tokens (importing the same values).
    async fn ensure(&self, o: Obj) {
        for who in ["owner", "other"] {
            let (s, _) = self.p.call("GET", "/api/v1/tokens/info", self.token(who), None).await;
            if s == 401 {
                let (s, v) = self
                    .p
                    .admin(
                        "POST",
                        "/api/v1/tokens/",
                        Some(json!({"name": who, "scope": "user", "token": self.tokens[who]})),
                    )
                    .await;
                assert_eq!(s, 201, "re-creating {who}: {v}");
            }
        }
        if o == Nil {
            let _ = self
                .p
                .admin(
                    "POST",
                    "/api/v1/services/external",
                    Some(json!({"service_name": "svc", "target_url": "http://192.0.2.1"})),
                )
                .await;
            return;
        }
        let n = owner_name(o);
        let tok = self.token(n);
        let host = format!("{n}.test");
        let calls = [
            (
                "/api/v1/proxy/targets/",
                json!({"hostname": host, "target_url": "http://192.0.2.1", "enable_https": false}),
            ),
            (
                "/api/v1/routes/",
                json!({"route_id": format!("{n}-route"), "path_pattern": format!("/{n}"), "target_type": "url",
                    "target_value": "http://192.0.2.1", "scope": "proxy", "proxy_hostnames": [host]}),
            ),
            ("/api/v1/resources/", json!({"uri": format!("https://{host}/mcp")})),
        ];
        for (path, body) in calls {
            let (s, v) = self.p.call("POST", path, tok, Some(body)).await;
            assert!(s == 201 || s == 409, "setting up {path} for {n}: {s} {v}");
        }
        let (s, _) = self.p.call("GET", &format!("/api/v1/certificates/{n}-cert"), tok, None).await;
        if s == 404 {
            let (c, k) = make_cert(&[&host], -1, 30);
            let (s, v) = self
                .p
                .call(
                    "POST",
                    "/api/v1/certificates/upload",
                    tok,
                    Some(json!({"cert_name": format!("{n}-cert"), "certificate_pem": c, "private_key_pem": k})),
                )
                .await;
            assert_eq!(s, 201, "{v}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_authorization_matrix_holds_for_every_endpoint() {
    let redis = Redis::start();
    let acme = "http://127.0.0.1:9/directory";
    let no_engine = "unix:///nonexistent/portcullis-matrix/docker.sock";
    let p = Portcullis::start_with(
        &redis,
        &[("ACME_DIRECTORY_URL", acme), ("ACME_STAGING_URL", acme), ("DOCKER_HOST", no_engine)],
    )
    .await;
    let mut tokens = BTreeMap::new();
    tokens.insert("admin", p.admin_token.clone());
    for (who, scope) in [("owner", "user"), ("other", "user"), ("ops", "admin")] {
        let (s, v) = p.admin("POST", "/api/v1/tokens/", Some(json!({"name": who, "scope": scope}))).await;
        assert_eq!(s, 201, "{v}");
        tokens.insert(who, v["token"].as_str().unwrap().to_string());
    }
    // OAuth access tokens for this issuer, minted by the admin: scope `user` (reads only) and `mcp`.
    for (who, scope) in [("oauth-user", "user"), ("oauth-mcp", "mcp")] {
        let (s, v) = p
            .admin("POST", "/api/v1/oauth/test-token", Some(json!({"username": who, "scope": scope})))
            .await;
        assert_eq!(s, 201, "{v}");
        tokens.insert(who, v["access_token"].as_str().unwrap().to_string());
    }
    let mut names = BTreeMap::new();
    names.insert("admin", Names { token: "ops" });
    names.insert("owner", Names { token: "owner" });
    names.insert("other", Names { token: "other" });
    let w = World { p, tokens };
    for o in [Nil, Admin, Owner, Other] {
        w.ensure(o).await;
    }

    // Every router path has rows (or is listed as not the admin API), and every row's path exists.
    let table = table();
    let routed = router_paths();
    let rows: BTreeSet<String> = table.iter().map(|r| norm(r.1)).collect();
    let listed: BTreeSet<String> = rows.iter().cloned().chain(NOT_ADMIN_API.iter().map(|p| norm(p))).collect();
    let missing: Vec<&String> = routed.difference(&listed).collect();
    assert!(missing.is_empty(), "router paths without a row in the matrix: {missing:?}");
    let stale: Vec<&String> = rows.difference(&routed).collect();
    assert!(stale.is_empty(), "matrix rows for paths the router lacks: {stale:?}");
    // ...and every method the router answers on an admin path has a row.
    let mut methods: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for r in &table {
        methods.entry(norm(r.1)).or_default().insert(r.0);
    }
    for (path, have) in &methods {
        let concrete = fill(path, Owner, &names);
        for m in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let (s, _) = w.p.call(m, &concrete, None, None).await;
            let routed = s != 405;
            assert_eq!(
                routed,
                have.contains(m),
                "{m} {path}: router answers {s}, matrix row {}",
                have.contains(m)
            );
        }
    }

    // The cells, callers in the order OAuth mcp, OAuth user, none, other, owner, admin.
    let callers = [
        ("admin", 0),
        ("owner", 1),
        ("other", 2),
        ("none", 3),
        ("oauth-user", 4),
        ("oauth-mcp", 5),
    ];
    let mut diffs = Vec::new();
    for (method, pattern, obj, body, cells) in &table {
        for (who, col) in callers.iter().rev() {
            w.ensure(*obj).await;
            let path = fill(pattern, *obj, &names);
            let b = body.map(|f| f(who));
            let (s, v) = if path.ends_with("/follow") {
                // an event stream never ends: its status is the answer
                let mut rb = w.p.client.get(w.p.api(&path));
                if let Some(t) = w.token(who) {
                    rb = rb.bearer_auth(t);
                }
                (rb.send().await.unwrap().status().as_u16(), Value::Null)
            } else {
                w.p.call(method, &path, w.token(who), b).await
            };
            if s != cells[*col] {
                diffs.push(format!(
                    "{method} {pattern} [{obj:?}'s] by {who}: got {s}, table says {} ({v})",
                    cells[*col]
                ));
            }
        }
    }
    assert!(diffs.is_empty(), "{} cells differ:\n{}", diffs.len(), diffs.join("\n"));
}
