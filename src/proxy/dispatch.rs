//! Per-request decisions: request checks (Host, Content-Length, path),
//! host lookup, enabled/scheme checks, built-in and stored routes, auth.

use std::borrow::Cow;
use std::net::Ipv6Addr;

use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::builtin::{self, LOGIN_PREFIX};
use super::forwarded;
use super::path;
use super::respond::Reply;
use super::{Ctx, Edge};
use crate::auth::{self, Outcome, RequestInfo};

/// HTTP-01 answers live under this path on every host; nothing shadows it.
const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// What to do with a request.
pub enum Decision {
    /// Forward to `ctx.upstream`.
    Proxy,
    /// Answer directly.
    Respond(Reply),
    /// The token's signing key is not in this snapshot: refresh, then decide again.
    RefreshKeys,
}

/// The Host header as received (or the HTTP/2 authority), port included:
/// the value for preserve_host and X-Forwarded-Host. Borrowed, no copy.
pub fn raw_host(req: &RequestHeader) -> &str {
    req.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .unwrap_or_default()
}

/// The proxy lookup key: lowercased, port and trailing dot stripped.
/// Borrowed when the Host header already has that form (the usual case),
/// so the request path allocates nothing for it.
pub fn host_key(raw: &str) -> Cow<'_, str> {
    let host = if raw.starts_with('[') {
        raw.find(']').map_or(raw, |i| &raw[..=i])
    } else {
        raw.bytes().position(|b| b == b':').map_or(raw, |i| &raw[..i])
    };
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// A redirect to the same path on `scheme`; the Location holds the stored
/// hostname and the normalized path, never the Host as sent.
fn redirect(scheme: &str, host: &str, port: u16, default_port: u16, path: &str, query: Option<&str>) -> Reply {
    let authority = if port == default_port {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Reply::redirect(308, format!("{scheme}://{authority}{path}{query}"))
}

/// A 400 with the usual JSON error body.
fn bad_request(message: &str) -> Reply {
    Reply::json(
        400,
        vec![],
        serde_json::json!({"error": "bad_request", "message": message}).to_string(),
    )
}

/// Bytes of a host name: ASCII letters, digits, `-`, `.` and `_`.
const HOST_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_';
        c += 1;
    }
    t
};

/// True when `s` is a valid `host[:port]`: a DNS name, IPv4 address or
/// bracketed IPv6 address, and an optional decimal port up to 65535. The
/// value is echoed into `WWW-Authenticate` and metadata, so nothing else may
/// pass. Every request's Host goes through this: one pass over the bytes
/// with a table, no search for `:` first.
pub fn valid_authority(s: &str) -> bool {
    let b = s.as_bytes();
    let (host_ok, port) = match s.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, after)) => (ip.parse::<Ipv6Addr>().is_ok(), after.as_bytes()),
            None => return false,
        },
        None => {
            let end = b.iter().position(|&c| !HOST_BYTE[usize::from(c)]).unwrap_or(b.len());
            (end > 0 && end <= 253, &b[end..])
        }
    };
    host_ok
        && match port {
            [] => true,
            [b':', digits @ ..] => {
                (1..=5).contains(&digits.len())
                    && digits.iter().all(u8::is_ascii_digit)
                    && digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= 65535
            }
            _ => false,
        }
}

/// The request's Host, checked (RFC 9112 §3.2: a missing, repeated or
/// invalid Host is a 400).
fn checked_host(req: &RequestHeader) -> Result<&str, &'static str> {
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(h), None) => h.to_str().map_err(|_| "the Host header is not a valid host[:port]")?,
        (Some(_), Some(_)) => return Err("more than one Host header"),
        (None, _) => req.uri.authority().map(|a| a.as_str()).ok_or("the request has no Host header")?,
    };
    if valid_authority(host) {
        Ok(host)
    } else {
        Err("the Host header is not a valid host[:port]")
    }
}

/// Refuses a Content-Length that is not one decimal number up to 2^63-1:
/// upstreams parse lengths as signed 64-bit numbers, and two parsers that
/// disagree on a length disagree on where the next request starts.
fn checked_content_length(req: &RequestHeader) -> Result<(), &'static str> {
    for v in req.headers.get_all(http::header::CONTENT_LENGTH) {
        let b = v.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 19
            && b.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(b).ok().and_then(|d| d.parse::<i64>().ok()).is_some();
        if !ok {
            return Err("the Content-Length is not a number up to 2^63-1");
        }
    }
    Ok(())
}

/// Who the client is and how it reached the edge: the peer (after a PROXY
/// protocol header, the address it names) and the listener, unless the peer
/// is a trusted balancer, whose `X-Forwarded-*` then say it.
fn client_of(edge: &Edge, session: &Session, ctx: &mut Ctx) {
    ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    ctx.forwarded_host = None;
    ctx.client_ip = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_canonical());
    if let Some(peer) = ctx.client_ip.filter(|ip| edge.config.is_trusted_proxy(*ip)) {
        let f = forwarded::from_trusted(&session.req_header().headers, peer, |ip| edge.config.is_trusted_proxy(ip));
        ctx.client_ip = Some(f.client);
        ctx.tls = f.https.unwrap_or(ctx.tls);
        ctx.forwarded_host = f.host;
    }
}

/// Decides how to serve the request and fills `ctx`; `refreshed` is set on
/// the second attempt after a key refresh. The request path is normalized
/// here, once; every later decision and the upstream request use that form.
pub fn decide(edge: &Edge, session: &Session, ctx: &mut Ctx, refreshed: bool) -> Decision {
    client_of(edge, session, ctx);
    ctx.path = None;
    let req = session.req_header();
    let raw = match checked_host(req).and_then(|h| checked_content_length(req).map(|()| h)) {
        Ok(h) => h,
        Err(msg) => return Decision::Respond(bad_request(msg)),
    };
    let path = match path::normalize(req.uri.path()) {
        // A non-UTF-8 target is forwarded as received: only when it is already normal.
        Ok(Cow::Owned(_)) if !req.raw_path_is_utf8() => return Decision::Respond(bad_request(path::BadPath::Forbidden.message())),
        Ok(p) => p,
        Err(e) => return Decision::Respond(bad_request(e.message())),
    };
    let decision = decide_path(edge, session, ctx, refreshed, raw, &path);
    if let (Decision::Proxy, Cow::Owned(p)) = (&decision, path) {
        ctx.path = Some(p);
    }
    decision
}

fn decide_path(edge: &Edge, session: &Session, ctx: &mut Ctx, refreshed: bool, raw: &str, path: &str) -> Decision {
    let req = session.req_header();
    let host = host_key(raw);
    let snap = edge.handle.load();
    if let Some(token) = path.strip_prefix(ACME_CHALLENGE_PREFIX) {
        return Decision::Respond(match snap.challenges.get(token) {
            Some(answer) => Reply::text(200, answer.clone()),
            None => Reply::text(404, "404 Not Found: unknown ACME challenge\n".to_string()),
        });
    }
    let Some(entry) = snap.proxies.get(host.as_ref()) else {
        return Decision::Respond(Reply::text(
            404,
            format!("404 Not Found: no proxy is configured for host {host:?}\n"),
        ));
    };
    let p = &entry.proxy;
    if p.hostname == "localhost" && !ctx.client_ip.is_some_and(|ip| ip.is_loopback()) {
        return Decision::Respond(Reply::json(
            403,
            vec![],
            serde_json::json!({"error": "forbidden", "message": "the localhost proxy answers loopback clients only"}).to_string(),
        ));
    }
    if !p.enabled {
        return Decision::Respond(Reply::text(
            503,
            format!("503 Service Unavailable: proxy {} is disabled\n", p.hostname),
        ));
    }
    if let Some(why) = &entry.unavailable {
        return Decision::Respond(Reply::text(503, why.clone()));
    }
    if let Some(hash) = &entry.source_token {
        if !crate::services::source_token::presented(&req.headers, hash) {
            return Decision::Respond(Reply::json(401, vec![], crate::services::source_token::REFUSAL.to_string()));
        }
    }
    let query = req.uri.query();
    if ctx.tls && !p.enable_https {
        return Decision::Respond(if p.enable_http {
            redirect("http", &p.hostname, edge.config.http_port, 80, path, query)
        } else {
            Reply::text(404, format!("404 Not Found: {} is not served over HTTPS\n", p.hostname))
        });
    }
    if !ctx.tls && !p.enable_http {
        return Decision::Respond(if p.enable_https {
            redirect("https", &p.hostname, edge.config.https_port, 443, path, query)
        } else {
            Reply::text(404, format!("404 Not Found: {} is not served over HTTP\n", p.hostname))
        });
    }
    let auth_host = builtin::is_auth_host(p, &edge.config.base_domain);
    if auth_host && !builtin::auth_host_serves(path) {
        return Decision::Respond(Reply::json(
            404,
            vec![],
            serde_json::json!({"error": "not_found", "message": "the authorization server host serves only the OAuth, metadata, login and /mcp paths"})
                .to_string(),
        ));
    }
    if path.starts_with(LOGIN_PREFIX) || ((auth_host || p.oauth_endpoints) && builtin::is_oauth_endpoint(path)) {
        ctx.entry = Some(entry.clone());
        return to_control(&snap.control, ctx);
    }
    let info = RequestInfo {
        method: req.method.as_str(),
        path,
        query,
        tls: ctx.tls,
        raw_host: raw,
        headers: &req.headers,
    };
    if auth::metadata::serves_metadata(p) && auth::metadata::is_metadata_path(p, path) {
        let doc = auth::metadata::document(p, &info, &snap.auth.issuer).to_string();
        if p.resource_override_backend {
            return Decision::Respond(Reply::json(200, vec![("Access-Control-Allow-Origin", "*".into())], doc));
        }
        ctx.metadata_fallback = Some(bytes::Bytes::from(doc));
    }
    let route = entry.match_route(req.method.as_str(), path);
    ctx.log.set_route(route);
    ctx.mcp = auth::mcp_metrics::McpCall::of(p, info.method, path, info.headers);
    match auth::check(&snap.auth, p, route.map(|r| &r.route), &info) {
        Outcome::Skip => {}
        Outcome::Allow { identity, pass } => {
            ctx.identity = identity;
            ctx.pass = Some(pass);
        }
        Outcome::Deny(denial) => return Decision::Respond(denial.into()),
        Outcome::UnknownKey if !refreshed => return Decision::RefreshKeys,
        Outcome::UnknownKey => return Decision::Respond(auth::unknown_key(p, &info).into()),
    }
    let scopes = ctx.identity.as_ref().map_or("", |i| i.claims.scope.as_str());
    if auth::mcp_policy::needs_body(p, info.method, path, info.headers) {
        ctx.mcp_body_scopes = Some(scopes.to_string());
    } else if let Some(why) = auth::mcp_policy::refusal(p, info.method, path, info.headers, scopes) {
        return Decision::Respond(Reply::json(403, vec![], auth::mcp_policy::error_body(&why)));
    }
    let target = match route {
        Some(r) => &r.upstream,
        None => &entry.target,
    };
    ctx.entry = Some(entry.clone());
    match target {
        Ok(u) => {
            if let Some(reply) = control_plane_guard(&snap.control, u, path) {
                return Decision::Respond(reply);
            }
            ctx.upstream = Some(u.clone());
            Decision::Proxy
        }
        Err(reason) => {
            tracing::warn!(host = %p.hostname, reason = %reason, "no usable upstream");
            Decision::Respond(Reply::text(502, "502 Bad Gateway: the upstream is not available\n".to_string()))
        }
    }
}

/// Sends the request to the control plane (login and OAuth endpoints).
fn to_control(control: &Result<std::sync::Arc<crate::snapshot::Upstream>, String>, ctx: &mut Ctx) -> Decision {
    match control {
        Ok(u) => {
            ctx.upstream = Some(u.clone());
            Decision::Proxy
        }
        Err(e) => {
            tracing::warn!(error = %e, "control plane address unresolved");
            Decision::Respond(Reply::text(
                502,
                "502 Bad Gateway: the login service is not available\n".to_string(),
            ))
        }
    }
}

/// What the control plane must not show through the data plane: `/metrics`
/// (every hostname with its traffic) is never served, and `/health` answers
/// a bare status (store type and uptime only on the control plane's own listener).
fn control_plane_guard(
    control: &Result<std::sync::Arc<crate::snapshot::Upstream>, String>,
    upstream: &crate::snapshot::Upstream,
    path: &str,
) -> Option<Reply> {
    let control = control.as_ref().ok()?;
    if upstream.addr != control.addr {
        return None;
    }
    match path {
        "/metrics" => Some(Reply::json(
            404,
            vec![],
            serde_json::json!({"error": "not_found", "message": "metrics are served on the control plane's listener only"}).to_string(),
        )),
        "/health" => Some(Reply::json(200, vec![], serde_json::json!({"status": "healthy"}).to_string())),
        _ => None,
    }
}
