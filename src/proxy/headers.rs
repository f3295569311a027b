//! Header rules for the upstream request: path join, Host, forwarding headers
//! set by us (inbound copies and any `X-Auth-*` stripped), custom headers.

use http::{HeaderMap, HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use super::Ctx;

/// Headers a client may never set for the upstream: we set the forwarding
/// ones ourselves, and identity headers come only from our auth.
const FORGEABLE: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
    "forwarded",
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Rewrites `req` (a copy of the downstream request) for the chosen upstream.
///
/// The request is turned into plain `http` parts first: pingora's header API
/// re-parses every name and keeps a second, case-preserving map, which made
/// the mandatory forwarding headers the largest cost of a proxied request.
/// Upstream header names therefore go out in canonical (`Host`) or lower case
/// (`x-forwarded-for`), as over HTTP/2. Requests whose raw path is not UTF-8
/// keep pingora's representation and its slower path.
pub fn upstream_request(session: &Session, req: &mut RequestHeader, ctx: &Ctx) -> Result<()> {
    let Some(u) = &ctx.upstream else { return Ok(()) };
    if !req.raw_path_is_utf8() {
        return upstream_request_slow(session, req, ctx);
    }
    let end_stream = req.send_end_stream();
    let taken = std::mem::replace(req, RequestHeader::build_no_case(http::Method::GET, b"/", None)?);
    let mut parts: http::request::Parts = taken.into();
    if !u.base_path.is_empty() || parts.uri.authority().is_some() {
        let pq = parts.uri.path_and_query().map_or("/", |x| x.as_str());
        let joined = format!("{}{}", u.base_path, pq);
        parts.uri = joined.parse::<http::Uri>().or_err(InvalidHTTPHeader, "joined upstream path")?;
    }
    rewrite(session, &mut parts.headers, ctx, u)?;
    *req = RequestHeader::from(parts);
    if let Some(e) = end_stream {
        req.set_send_end_stream(e);
    }
    Ok(())
}

/// The same rules through pingora's header API (non-UTF-8 raw paths only).
fn upstream_request_slow(session: &Session, req: &mut RequestHeader, ctx: &Ctx) -> Result<()> {
    let Some(u) = &ctx.upstream else { return Ok(()) };
    let mut headers = req.headers.clone();
    rewrite(session, &mut headers, ctx, u)?;
    let old: Vec<HeaderName> = req.headers.keys().cloned().collect();
    for k in old {
        req.remove_header(&k);
    }
    for (k, v) in &headers {
        req.append_header(k.clone(), v.clone())?;
    }
    Ok(())
}

/// Applies every header rule to a plain header map.
fn rewrite(session: &Session, h: &mut HeaderMap, ctx: &Ctx, u: &crate::snapshot::Upstream) -> Result<()> {
    let prefix = ctx.entry.as_ref().map_or("x-auth-", |e| e.auth_prefix_lower.as_str());
    let forgeable = |n: &str| FORGEABLE.contains(&n) || n.starts_with("x-auth-") || n.starts_with(prefix);
    if h.keys().any(|k| forgeable(k.as_str())) {
        let strip: Vec<HeaderName> = h.keys().filter(|k| forgeable(k.as_str())).cloned().collect();
        for k in strip {
            h.remove(&k);
        }
    }
    let inbound_host = h.get(http::header::HOST).cloned();
    let preserve = ctx.entry.as_ref().is_some_and(|e| e.proxy.preserve_host_header);
    let value = |s: &str| HeaderValue::from_str(s).or_err(InvalidHTTPHeader, "header value");
    match (&inbound_host, preserve) {
        (Some(_), true) => {}
        (None, true) if !ctx.raw_host.is_empty() => {
            h.insert(http::header::HOST, value(&ctx.raw_host)?);
        }
        _ => {
            h.insert(http::header::HOST, value(&u.authority)?);
        }
    }
    if let Some(ip) = session.client_addr().and_then(|a| a.as_inet()) {
        let v = value(&ip.ip().to_string())?;
        h.insert(X_FORWARDED_FOR, v.clone());
        h.insert(X_REAL_IP, v);
    }
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(if ctx.tls { "https" } else { "http" }));
    match inbound_host {
        Some(v) => {
            h.insert(X_FORWARDED_HOST, v);
        }
        None if !ctx.raw_host.is_empty() => {
            h.insert(X_FORWARDED_HOST, value(&ctx.raw_host)?);
        }
        None => {}
    }
    if let Some(e) = &ctx.entry {
        let p = &e.proxy;
        if ctx.auth_applied {
            if !p.auth_pass_token {
                h.remove(http::header::AUTHORIZATION);
            }
            if h.contains_key(http::header::COOKIE) {
                strip_cookie(h, &p.auth_cookie_name)?;
            }
        }
        if let (Some(id), true) = (&ctx.identity, p.auth_pass_headers) {
            identity_headers(h, &e.auth_prefix_lower, id)?;
        }
        for (k, v) in &e.request_headers {
            h.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

/// Adds the identity headers (empty e-mail left out).
fn identity_headers(h: &mut HeaderMap, prefix_lower: &str, id: &crate::auth::Identity) -> Result<()> {
    let values = [
        Some(id.sub.as_str()),
        Some(id.username.as_str()),
        id.email.as_deref().filter(|e| !e.is_empty()),
        Some(id.scope.as_str()),
    ];
    const DEFAULT: [&str; 4] = ["x-auth-user-id", "x-auth-user", "x-auth-email", "x-auth-scopes"];
    const SUFFIX: [&str; 4] = ["user-id", "user", "email", "scopes"];
    for ((value, default), suffix) in values.into_iter().zip(DEFAULT).zip(SUFFIX) {
        let Some(Ok(v)) = value.map(HeaderValue::from_str) else { continue };
        let name = if prefix_lower == "x-auth-" {
            HeaderName::from_static(default)
        } else {
            HeaderName::from_bytes(format!("{prefix_lower}{suffix}").as_bytes()).or_err(InvalidHTTPHeader, "identity header name")?
        };
        h.insert(name, v);
    }
    Ok(())
}

/// Removes our session cookie (plain and `__Host-`) from the Cookie header.
fn strip_cookie(h: &mut HeaderMap, name: &str) -> Result<()> {
    let host_name = format!("__Host-{name}");
    let kept: Vec<String> = h
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .filter(|c| c.split_once('=').is_none_or(|(k, _)| k != name && k != host_name))
        .map(String::from)
        .collect();
    h.remove(http::header::COOKIE);
    if !kept.is_empty() {
        h.insert(
            http::header::COOKIE,
            HeaderValue::from_str(&kept.join("; ")).or_err(InvalidHTTPHeader, "cookie header")?,
        );
    }
    Ok(())
}
