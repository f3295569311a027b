//! Header rules for the upstream request: the normalized path joined to the
//! target's, Host, forwarding headers set by us (inbound copies, any
//! `X-Auth-*` and, by default, any name with `_` stripped), custom headers.

use std::cell::RefCell;
use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::Session;

use super::Ctx;
use crate::reqlog::capture::{UpstreamIds, REQUEST_ID, TRACEPARENT};

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
pub fn upstream_request(session: &Session, req: &mut RequestHeader, ctx: &Ctx, ids: UpstreamIds) -> Result<()> {
    let Some(u) = &ctx.upstream else { return Ok(()) };
    if !req.raw_path_is_utf8() {
        return upstream_request_slow(session, req, ctx, ids);
    }
    let end_stream = req.send_end_stream();
    // The placeholder allocates nothing (an empty header map), unlike `build_no_case`.
    let placeholder = RequestHeader::from(http::Request::new(()).into_parts().0);
    let mut parts: http::request::Parts = std::mem::replace(req, placeholder).into();
    if !u.base_path.is_empty() || parts.uri.authority().is_some() || ctx.path.is_some() {
        // The normalized path the decisions were made on, never the raw one.
        let path = ctx.path.as_deref().unwrap_or(parts.uri.path());
        let joined = match parts.uri.query() {
            Some(q) => format!("{}{path}?{q}", u.base_path),
            None => format!("{}{path}", u.base_path),
        };
        parts.uri = joined.parse::<http::Uri>().or_err(InvalidHTTPHeader, "joined upstream path")?;
    }
    rewrite(session, &mut parts.headers, ctx, u, ids)?;
    *req = RequestHeader::from(parts);
    if let Some(e) = end_stream {
        req.set_send_end_stream(e);
    }
    Ok(())
}

/// The same rules through pingora's header API (non-UTF-8 raw paths only).
fn upstream_request_slow(session: &Session, req: &mut RequestHeader, ctx: &Ctx, ids: UpstreamIds) -> Result<()> {
    let Some(u) = &ctx.upstream else { return Ok(()) };
    let mut headers = req.headers.clone();
    rewrite(session, &mut headers, ctx, u, ids)?;
    let old: Vec<HeaderName> = req.headers.keys().cloned().collect();
    for k in old {
        req.remove_header(&k);
    }
    for (k, v) in &headers {
        req.append_header(k.clone(), v.clone())?;
    }
    Ok(())
}

/// `_` read as `-`: WSGI, PHP-FPM and Rack map both to the same variable.
fn dash(c: u8) -> u8 {
    if c == b'_' {
        b'-'
    } else {
        c
    }
}

/// `name` starts with `prefix`, `_` and `-` comparing equal (both lower case).
fn starts_with_dashed(name: &[u8], prefix: &[u8]) -> bool {
    name.len() >= prefix.len() && name.iter().zip(prefix).all(|(&a, &b)| dash(a) == dash(b))
}

/// True for a client header the upstream must not get: a forwarding or
/// identity header (`_` and `-` compare equal: WSGI, PHP-FPM and Rack map
/// `X_Auth_User` and `X-Auth-User` to the same variable), or any name with
/// `_` unless the proxy allows them (nginx's `underscores_in_headers off`).
///
/// Runs for every header of every request: a name whose first byte is not
/// that of a listed name (`x`, `f`, the proxy's prefix) skips the list.
fn dropped(name: &str, prefix: &str, allow_underscores: bool) -> bool {
    let (n, p) = (name.as_bytes(), prefix.as_bytes());
    if !allow_underscores && n.contains(&b'_') {
        return true;
    }
    let Some(&first) = n.first() else { return false };
    let first = dash(first);
    if first != b'x' && first != b'f' && p.first().is_some_and(|&q| dash(q) != first) {
        return false;
    }
    FORGEABLE.iter().any(|f| f.len() == n.len() && starts_with_dashed(n, f.as_bytes()))
        || starts_with_dashed(n, b"x-auth-")
        || starts_with_dashed(n, p)
}

/// Applies every header rule to a plain header map, the request's ids included.
fn rewrite(session: &Session, h: &mut HeaderMap, ctx: &Ctx, u: &crate::snapshot::Upstream, ids: UpstreamIds) -> Result<()> {
    let prefix = ctx.entry.as_ref().map_or("x-auth-", |e| e.auth_prefix_lower.as_str());
    let allow_underscores = ctx.entry.as_ref().is_some_and(|e| e.proxy.allow_underscores_in_headers);
    if h.keys().any(|k| dropped(k.as_str(), prefix, allow_underscores)) {
        let strip: Vec<HeaderName> = h
            .keys()
            .filter(|k| dropped(k.as_str(), prefix, allow_underscores))
            .cloned()
            .collect();
        for k in strip {
            h.remove(&k);
        }
    }
    if let Some(hash) = ctx.entry.as_ref().and_then(|e| e.source_token.as_deref()) {
        crate::services::source_token::strip(h, hash);
    }
    let extra = ctx.entry.as_ref().map_or(0, |e| e.request_headers.len()) + if ctx.identity.is_some() { 4 } else { 0 };
    h.reserve(7 + extra);
    h.insert(REQUEST_ID, ids.request_id);
    if let Some(parent) = ids.traceparent {
        h.insert(TRACEPARENT, parent);
    }
    let inbound_host = h.get(http::header::HOST).cloned();
    // HTTP/2 requests carry the host as the URI authority instead of a Host header.
    let authority = match inbound_host {
        Some(_) => None,
        None => session
            .req_header()
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    let preserve = ctx.entry.as_ref().is_some_and(|e| e.proxy.preserve_host_header);
    if !(preserve && inbound_host.is_some()) {
        let preserved = if preserve { authority.clone() } else { None };
        h.insert(http::header::HOST, preserved.unwrap_or_else(|| u.authority_value.clone()));
    }
    if let Some(ip) = ctx.client_ip {
        let v = client_ip_value(ip)?;
        h.insert(X_FORWARDED_FOR, v.clone());
        h.insert(X_REAL_IP, v);
    }
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(if ctx.tls { "https" } else { "http" }));
    if let Some(v) = ctx.forwarded_host.clone().or(inbound_host).or(authority) {
        h.insert(X_FORWARDED_HOST, v);
    }
    if let Some(e) = &ctx.entry {
        let p = &e.proxy;
        if let Some(pass) = ctx.pass {
            if !pass.token {
                h.remove(http::header::AUTHORIZATION);
            }
            if h.contains_key(http::header::COOKIE) {
                strip_cookie(h, &p.auth_cookie_name)?;
            }
            if let (Some(id), true) = (&ctx.identity, pass.identity_headers) {
                identity_headers(h, &e.auth_prefix_lower, id)?;
            }
        }
        for (k, v) in &e.request_headers {
            h.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

/// Adds the proxy's `custom_response_headers` and the request id to the response.
///
/// Like the upstream request, the response is turned into plain `http` parts:
/// pingora's `insert_header` re-parses the name and fills its second,
/// case-preserving map, ≈ 2,000 instructions per header. Without that map the
/// response's header names go out in canonical case for standard headers
/// (`Content-Type`) and lower case for the others (`x-request-id`), as HAProxy
/// and Envoy send them; HTTP header names are case-insensitive.
pub fn downstream_response(resp: &mut ResponseHeader, add: &[(HeaderName, HeaderValue)], request_id: Option<&HeaderValue>) -> Result<()> {
    // A custom reason phrase lives outside the parts; the canonical one needs no copy.
    let reason = resp
        .get_reason_phrase()
        .filter(|r| Some(*r) != resp.status.canonical_reason())
        .map(str::to_owned);
    let placeholder = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let mut parts: http::response::Parts = std::mem::replace(resp, placeholder).into();
    parts.headers.reserve(add.len() + 1);
    for (k, v) in add {
        parts.headers.insert(k.clone(), v.clone());
    }
    if let Some(id) = request_id {
        parts.headers.insert(REQUEST_ID, id.clone());
    }
    *resp = ResponseHeader::from(parts);
    match reason {
        Some(r) => resp.set_reason_phrase(Some(&r)),
        None => Ok(()),
    }
}

thread_local! {
    /// The last client address seen on this thread and its header value.
    /// Requests on a thread mostly come from the same few addresses (a load
    /// balancer, keep-alive clients): the cached value is shared, not
    /// formatted and allocated again, and costs two reference counts.
    static LAST_CLIENT_IP: RefCell<Option<(IpAddr, HeaderValue)>> = const { RefCell::new(None) };
}

/// The client address as a header value, from the per-thread cache when it is
/// the same address as last time.
fn client_ip_value(ip: IpAddr) -> Result<HeaderValue> {
    LAST_CLIENT_IP.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((seen, v)) = last.as_ref() {
            if *seen == ip {
                return Ok(v.clone());
            }
        }
        let v = ip_value(ip)?;
        *last = Some((ip, v.clone()));
        Ok(v)
    })
}

/// The client address as a header value. IPv4 is formatted by hand: this
/// runs on every request, and `to_string` goes through the formatting
/// machinery and an extra allocation.
fn ip_value(ip: IpAddr) -> Result<HeaderValue> {
    match ip {
        IpAddr::V4(v4) => {
            let mut buf = [0u8; 15];
            let mut n = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    buf[n] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    buf[n] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                buf[n] = b'0' + octet % 10;
                n += 1;
            }
            HeaderValue::from_bytes(&buf[..n]).or_err(InvalidHTTPHeader, "client address")
        }
        IpAddr::V6(v6) => HeaderValue::from_str(&v6.to_string()).or_err(InvalidHTTPHeader, "client address"),
    }
}

/// Adds the identity headers (values prepared when the token was verified;
/// an empty e-mail is left out).
fn identity_headers(h: &mut HeaderMap, prefix_lower: &str, id: &crate::auth::Identity) -> Result<()> {
    const DEFAULT: [&str; 4] = ["x-auth-user-id", "x-auth-user", "x-auth-email", "x-auth-scopes"];
    const SUFFIX: [&str; 4] = ["user-id", "user", "email", "scopes"];
    for ((value, default), suffix) in id.header_values.iter().zip(DEFAULT).zip(SUFFIX) {
        let Some(v) = value else { continue };
        let name = if prefix_lower == "x-auth-" {
            HeaderName::from_static(default)
        } else {
            HeaderName::from_bytes(format!("{prefix_lower}{suffix}").as_bytes()).or_err(InvalidHTTPHeader, "identity header name")?
        };
        h.insert(name, v.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscores_and_dashes_compare_equal_in_the_strip_list() {
        for n in [
            "x_forwarded_for",
            "x-forwarded_for",
            "x_auth_user",
            "x-auth_scopes",
            "x_real_ip",
            "my_user_id",
            "x-forwarded-for",
        ] {
            assert!(dropped(n, "my-user-", true), "{n}");
        }
        for n in ["x_custom", "accept_language"] {
            assert!(dropped(n, "x-auth-", false), "{n}");
            assert!(!dropped(n, "x-auth-", true), "{n}");
        }
        assert!(!dropped("x-forwarded-fort", "x-auth-", false));
        assert!(!dropped("accept", "x-auth-", false));
        // The first-byte shortcut: other first bytes are kept, the prefix's own and `_` for `-` are not.
        for n in ["host", "user-agent", "accept-language", "cookie"] {
            assert!(!dropped(n, "my-user-", false), "{n}");
        }
        assert!(dropped("forwarded", "my-user-", true));
        assert!(dropped("_x_id", "-x-", true));
        assert!(dropped("-x-id", "-x-", true));
        assert!(!dropped("-y-id", "-x-", true));
    }

    #[test]
    fn ip_values_match_display() {
        let v4 = [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.10.100.199",
            "192.168.0.9",
        ];
        for a in v4 {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(ip_value(ip).unwrap().to_str().unwrap(), a);
        }
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_value(ip).unwrap().to_str().unwrap(), "2001:db8::1");
    }

    #[test]
    fn the_cached_client_address_follows_the_address() {
        for a in ["10.0.0.1", "10.0.0.1", "10.0.0.2", "::1", "10.0.0.1"] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(client_ip_value(ip).unwrap().to_str().unwrap(), a);
        }
    }
}
