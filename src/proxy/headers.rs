//! Header rules for the upstream request: path join, Host, forwarding headers
//! set by us (inbound copies and any `X-Auth-*` stripped), custom headers.

use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use super::Ctx;

/// Headers a client may never set for the upstream: we set the forwarding
/// ones ourselves, and identity headers come only from our auth.
const FORGEABLE: [&str; 6] = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip", "forwarded"];

/// Rewrites `req` (a copy of the downstream request) for the chosen upstream.
/// The common path allocates little: inbound forgeable headers are looked
/// for before anything is collected, constant values are static, and the
/// client address is rendered once for both headers that carry it.
pub fn upstream_request(session: &Session, req: &mut RequestHeader, ctx: &Ctx) -> Result<()> {
    let Some(u) = &ctx.upstream else { return Ok(()) };
    if !u.base_path.is_empty() || req.uri.authority().is_some() {
        let pq = req.uri.path_and_query().map_or("/", |x| x.as_str());
        let joined = format!("{}{}", u.base_path, pq);
        let uri = joined.parse::<http::Uri>().or_err(InvalidHTTPHeader, "joined upstream path")?;
        req.set_uri(uri);
    }
    let prefix = ctx.entry.as_ref().map_or("x-auth-", |e| e.auth_prefix_lower.as_str());
    let forgeable = |n: &str| FORGEABLE.contains(&n) || n.starts_with("x-auth-") || n.starts_with(prefix);
    if req.headers.keys().any(|k| forgeable(k.as_str())) {
        let strip: Vec<http::HeaderName> = req.headers.keys().filter(|k| forgeable(k.as_str())).cloned().collect();
        for k in strip {
            req.remove_header(&k);
        }
    }
    let inbound_host = session.req_header().headers.get(http::header::HOST).cloned();
    let preserve = ctx.entry.as_ref().is_some_and(|e| e.proxy.preserve_host_header);
    match (&inbound_host, preserve) {
        (Some(_), true) => {}
        (None, true) if !ctx.raw_host.is_empty() => req.insert_header(http::header::HOST, ctx.raw_host.as_str())?,
        _ => req.insert_header(http::header::HOST, u.authority.as_str())?,
    }
    if let Some(ip) = session.client_addr().and_then(|a| a.as_inet()) {
        let v = http::HeaderValue::from_str(&ip.ip().to_string()).or_err(InvalidHTTPHeader, "client address")?;
        req.insert_header("X-Forwarded-For", v.clone())?;
        req.insert_header("X-Real-IP", v)?;
    }
    let proto = http::HeaderValue::from_static(if ctx.tls { "https" } else { "http" });
    req.insert_header("X-Forwarded-Proto", proto)?;
    match inbound_host {
        Some(h) => req.insert_header("X-Forwarded-Host", h)?,
        None if !ctx.raw_host.is_empty() => req.insert_header("X-Forwarded-Host", ctx.raw_host.as_str())?,
        None => {}
    }
    if let Some(e) = &ctx.entry {
        let p = &e.proxy;
        if ctx.auth_applied {
            if !p.auth_pass_token {
                req.remove_header(&http::header::AUTHORIZATION);
            }
            if req.headers.contains_key(http::header::COOKIE) {
                strip_cookie(req, &p.auth_cookie_name)?;
            }
        }
        if let (Some(id), true) = (&ctx.identity, p.auth_pass_headers) {
            identity_headers(req, &p.auth_header_prefix, id)?;
        }
        for (k, v) in &e.request_headers {
            req.insert_header(k.clone(), v.clone())?;
        }
    }
    Ok(())
}

/// Adds the identity headers; the default prefix uses static names (no allocation).
fn identity_headers(req: &mut RequestHeader, prefix: &str, id: &crate::auth::Identity) -> Result<()> {
    let values = [Some(id.sub.as_str()), Some(id.username.as_str()), id.email.as_deref().filter(|e| !e.is_empty()), Some(id.scope.as_str())];
    const DEFAULT: [&str; 4] = ["X-Auth-User-Id", "X-Auth-User", "X-Auth-Email", "X-Auth-Scopes"];
    const SUFFIX: [&str; 4] = ["User-Id", "User", "Email", "Scopes"];
    for ((value, default), suffix) in values.into_iter().zip(DEFAULT).zip(SUFFIX) {
        let Some(Ok(v)) = value.map(http::HeaderValue::from_str) else { continue };
        if prefix == "X-Auth-" {
            req.insert_header(default, v)?;
        } else {
            req.insert_header(format!("{prefix}{suffix}"), v)?;
        }
    }
    Ok(())
}

/// Removes our session cookie (plain and `__Host-`) from the Cookie header.
fn strip_cookie(req: &mut RequestHeader, name: &str) -> Result<()> {
    let host_name = format!("__Host-{name}");
    let kept: Vec<String> = req
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .filter(|c| c.split_once('=').is_none_or(|(k, _)| k != name && k != host_name))
        .map(String::from)
        .collect();
    req.remove_header(&http::header::COOKIE);
    if !kept.is_empty() {
        req.insert_header(http::header::COOKIE, kept.join("; "))?;
    }
    Ok(())
}
