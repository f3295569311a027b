//! Header rules for the upstream request and the response: the normalized
//! path joined to the target's, Host, forwarding headers set by us (inbound
//! copies, any `X-Auth-*` and, by default, any name with `_` stripped),
//! identity and custom headers, the request id.
//!
//! What we add goes out as header lines (`name: value\r\n`) written after
//! the message's own headers (the vendored pingora's
//! `upstream_request_header_lines` and `response_header_lines`), not as
//! header map inserts: on every request, inserting the seven forwarding
//! headers into pingora's two header maps and reading them back out was the
//! largest part of what portcullis adds to a proxied request. Every value
//! written is a `HeaderValue` (no CR, LF or NUL) or an address we format, and
//! the names are fixed or validated, so a line cannot be split or injected.
//! Our names go out in lower case (as over HTTP/2); the client's and the
//! upstream's keep the case they were sent in.

use std::io::Write;
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

/// Appends the header line `name: value\r\n`.
fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// True when `list` (a proxy's custom headers) sets `name`.
fn sets(list: &[(HeaderName, HeaderValue)], name: &HeaderName) -> bool {
    list.iter().any(|(k, _)| k == name)
}

/// Rewrites `req` (a copy of the downstream request) for the chosen upstream
/// and writes what we add into `ctx.upstream_lines`.
pub fn upstream_request(session: &Session, req: &mut RequestHeader, ctx: &mut Ctx, ids: UpstreamIds) -> Result<()> {
    let Some(u) = ctx.upstream.as_deref() else { return Ok(()) };
    target_path(req, ctx.path.as_deref(), &u.base_path)?;
    let entry = ctx.entry.as_deref();
    let prefix = entry.map_or("x-auth-", |e| e.auth_prefix_lower.as_str());
    let allow_underscores = entry.is_some_and(|e| e.proxy.allow_underscores_in_headers);
    let custom = entry.map_or(&[][..], |e| &e.request_headers[..]);
    let new_trace = ids.traceparent.is_some();
    // One pass over the names: what the client may not send, what we set
    // (the request id always, `traceparent` when we start a new trace) and
    // what a custom header of the proxy replaces.
    let strip = |k: &HeaderName| {
        dropped(k.as_str(), prefix, allow_underscores) || *k == REQUEST_ID || (new_trace && *k == TRACEPARENT) || sets(custom, k)
    };
    for k in names_where(&req.headers, strip) {
        req.remove_header(&k);
    }
    if let Some(hash) = entry.and_then(|e| e.source_token.as_deref()) {
        let carriers: Vec<HeaderName> = crate::services::source_token::carriers(&req.headers, hash).collect();
        for k in carriers {
            req.remove_header(&k);
        }
    }
    let inbound_host = req.headers.get(http::header::HOST).cloned();
    // HTTP/2 requests carry the host as the URI authority instead of a Host header.
    let authority = match inbound_host {
        Some(_) => None,
        None => session
            .req_header()
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    let preserve = entry.is_some_and(|e| e.proxy.preserve_host_header);
    if !(preserve && inbound_host.is_some()) {
        let preserved = if preserve { authority.clone() } else { None };
        req.insert_header(http::header::HOST, preserved.unwrap_or_else(|| u.authority_value.clone()))?;
    }
    let out = &mut ctx.upstream_lines;
    out.clear();
    out.reserve(384);
    if !sets(custom, &REQUEST_ID) {
        line(out, REQUEST_ID.as_str().as_bytes(), ids.request_id.as_bytes());
    }
    if let Some(parent) = ids.traceparent.filter(|_| !sets(custom, &TRACEPARENT)) {
        line(out, TRACEPARENT.as_str().as_bytes(), parent.as_bytes());
    }
    if let Some(ip) = ctx.client_ip {
        let ip = ip_text(ip);
        line(out, b"x-forwarded-for", ip.as_bytes());
        line(out, b"x-real-ip", ip.as_bytes());
    }
    line(out, b"x-forwarded-proto", if ctx.tls { b"https" } else { b"http" });
    if let Some(v) = ctx.forwarded_host.as_ref().or(inbound_host.as_ref()).or(authority.as_ref()) {
        line(out, b"x-forwarded-host", v.as_bytes());
    }
    if let (Some(e), Some(pass)) = (entry, ctx.pass) {
        if !pass.token {
            req.remove_header(&http::header::AUTHORIZATION);
        }
        if req.headers.contains_key(http::header::COOKIE) {
            strip_cookie(req, &e.proxy.auth_cookie_name)?;
        }
        if let (Some(id), true) = (&ctx.identity, pass.identity_headers) {
            identity_headers(out, &e.auth_prefix_lower, id);
        }
    }
    for (k, v) in custom {
        line(out, k.as_str().as_bytes(), v.as_bytes());
    }
    Ok(())
}

/// Points the request at the normalized path (the one the decisions were
/// made on, never the raw one) under the target's base path. A raw path that
/// is not UTF-8 is left as received: pingora refuses one in an HTTP/1 request
/// line (400) before any hook runs, and `dispatch` lets one through only when
/// it is already normal.
fn target_path(req: &mut RequestHeader, normalized: Option<&str>, base_path: &str) -> Result<()> {
    if !req.raw_path_is_utf8() {
        return Ok(());
    }
    if base_path.is_empty() && req.uri.authority().is_none() && normalized.is_none() {
        return Ok(());
    }
    let path = normalized.unwrap_or(req.uri.path());
    let joined = match req.uri.query() {
        Some(q) => format!("{base_path}{path}?{q}"),
        None => format!("{base_path}{path}"),
    };
    req.set_uri(joined.parse::<http::Uri>().or_err(InvalidHTTPHeader, "joined upstream path")?);
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

/// Writes the proxy's `custom_response_headers` and the request id as lines
/// into `out` for the response, after removing any the upstream sent under
/// the same names (ours replace them). The request id is the data plane's:
/// a custom header of that name does not replace it.
pub fn downstream_response(
    resp: &mut ResponseHeader,
    custom: &[(HeaderName, HeaderValue)],
    request_id: Option<&HeaderValue>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.reserve(128);
    let ours = |k: &HeaderName| sets(custom, k) || (request_id.is_some() && *k == REQUEST_ID);
    for k in names_where(&resp.headers, ours) {
        resp.remove_header(&k);
    }
    for (k, v) in custom {
        if request_id.is_none() || *k != REQUEST_ID {
            line(out, k.as_str().as_bytes(), v.as_bytes());
        }
    }
    if let Some(id) = request_id {
        line(out, REQUEST_ID.as_str().as_bytes(), id.as_bytes());
    }
}

/// The names in `map` that `matching` accepts, copied out so the caller can
/// remove them (the usual message has none, and an empty `Vec` allocates
/// nothing).
fn names_where(map: &HeaderMap, matching: impl Fn(&HeaderName) -> bool) -> Vec<HeaderName> {
    map.keys().filter(|k| matching(k)).cloned().collect()
}

/// The client address as text. IPv4 is formatted by hand into a stack
/// buffer: this runs on every request, and `to_string` goes through the
/// formatting machinery and an allocation.
fn ip_text(ip: IpAddr) -> IpText {
    let mut t = IpText { buf: [0; 45], len: 0 };
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    t.push(b'.');
                }
                if octet >= 100 {
                    t.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    t.push(b'0' + octet / 10 % 10);
                }
                t.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            let mut w = &mut t.buf[..];
            // 45 bytes hold the longest IPv6 text form.
            if write!(w, "{v6}").is_ok() {
                t.len = 45 - w.len();
            }
        }
    }
    t
}

/// An address's text form, on the stack.
struct IpText {
    buf: [u8; 45],
    len: usize,
}

impl IpText {
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Writes the identity headers (values prepared when the token was
/// verified; an empty e-mail is left out).
fn identity_headers(out: &mut Vec<u8>, prefix_lower: &str, id: &crate::auth::Identity) {
    const SUFFIX: [&str; 4] = ["user-id", "user", "email", "scopes"];
    for (value, suffix) in id.header_values.iter().zip(SUFFIX) {
        let Some(v) = value else { continue };
        out.extend_from_slice(prefix_lower.as_bytes());
        line(out, suffix.as_bytes(), v.as_bytes());
    }
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
        req.insert_header(
            http::header::COOKIE,
            HeaderValue::from_str(&kept.join("; ")).or_err(InvalidHTTPHeader, "cookie header")?,
        )?;
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
    fn ip_texts_match_display() {
        for a in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.10.100.199",
            "192.168.0.9",
            "2001:db8::1",
            "1111:2222:3333:4444:5555:6666:7777:8888",
            "::ffff:255.255.255.255",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(ip_text(ip).as_bytes(), ip.to_string().as_bytes(), "{a}");
        }
    }

    #[test]
    fn our_response_headers_replace_the_upstreams_and_the_request_id_wins() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header("X-Served-By", "upstream").unwrap();
        resp.append_header("X-Request-Id", "from-upstream").unwrap();
        resp.append_header("Content-Type", "text/plain").unwrap();
        let custom = [
            (HeaderName::from_static("x-served-by"), HeaderValue::from_static("edge")),
            (REQUEST_ID, HeaderValue::from_static("custom-id")),
        ];
        let id = HeaderValue::from_static("abc123");
        let mut out = b"stale".to_vec();
        downstream_response(&mut resp, &custom, Some(&id), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "x-served-by: edge\r\nx-request-id: abc123\r\n");
        let left: Vec<&str> = resp.headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-type"]);
        let mut wire = Vec::new();
        resp.header_to_h1_wire(&mut wire);
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "Content-Type: text/plain\r\n",
            "the case map follows the removals"
        );
    }
}
