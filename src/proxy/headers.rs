//! Header rules for the upstream request: path join, Host, forwarding headers
//! set by us (inbound copies and any `X-Auth-*` stripped), custom headers.

use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use super::Ctx;

/// Headers a client may never set for the upstream: we set the forwarding
/// ones ourselves, and identity headers come only from our auth.
const FORGEABLE: [&str; 6] = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip", "forwarded"];

fn client_ip(session: &Session) -> Option<String> {
    session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string())
}

/// Rewrites `req` (a copy of the downstream request) for the chosen upstream.
pub fn upstream_request(session: &Session, req: &mut RequestHeader, ctx: &Ctx) -> Result<()> {
    let Some(u) = &ctx.upstream else { return Ok(()) };
    if !u.base_path.is_empty() || req.uri.authority().is_some() {
        let pq = req.uri.path_and_query().map_or("/", |x| x.as_str());
        let joined = format!("{}{}", u.base_path, pq);
        let uri = joined.parse::<http::Uri>().or_err(InvalidHTTPHeader, "joined upstream path")?;
        req.set_uri(uri);
    }
    let prefix = ctx.entry.as_ref().map(|e| e.proxy.auth_header_prefix.to_ascii_lowercase());
    let strip: Vec<http::HeaderName> = req
        .headers
        .keys()
        .filter(|k| {
            let n = k.as_str();
            FORGEABLE.contains(&n) || n.starts_with("x-auth-") || prefix.as_deref().is_some_and(|p| n.starts_with(p))
        })
        .cloned()
        .collect();
    for k in strip {
        req.remove_header(&k);
    }
    let preserve = ctx.entry.as_ref().is_some_and(|e| e.proxy.preserve_host_header);
    let host = if preserve && !ctx.raw_host.is_empty() { ctx.raw_host.clone() } else { u.authority.clone() };
    req.insert_header(http::header::HOST, host)?;
    if let Some(ip) = client_ip(session) {
        req.insert_header("X-Forwarded-For", ip.clone())?;
        req.insert_header("X-Real-IP", ip)?;
    }
    req.insert_header("X-Forwarded-Proto", if ctx.tls { "https" } else { "http" })?;
    if !ctx.raw_host.is_empty() {
        req.insert_header("X-Forwarded-Host", ctx.raw_host.clone())?;
    }
    if let Some(e) = &ctx.entry {
        let p = &e.proxy;
        if ctx.auth_applied {
            if !p.auth_pass_token {
                req.remove_header(&http::header::AUTHORIZATION);
            }
            strip_cookie(req, &p.auth_cookie_name)?;
        }
        if let (Some(id), true) = (&ctx.identity, p.auth_pass_headers) {
            let pre = &p.auth_header_prefix;
            for (name, value) in [("User-Id", &id.sub), ("User", &id.username), ("Email", id.email.as_ref().unwrap_or(&String::new())), ("Scopes", &id.scope)] {
                if let Ok(v) = http::HeaderValue::from_str(value) {
                    req.insert_header(format!("{pre}{name}"), v)?;
                }
            }
        }
        for (k, v) in &e.request_headers {
            req.insert_header(k.clone(), v.clone())?;
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
