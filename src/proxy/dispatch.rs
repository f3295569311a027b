//! Per-request decisions: host lookup, enabled/scheme checks, route matching.

use std::borrow::Cow;

use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::respond::Reply;
use super::{Ctx, Edge};
use crate::auth::{self, Outcome, RequestInfo};

/// HTTP-01 answers live under this path on every host; nothing shadows it.
const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Login endpoints of proxies in redirect mode, served by the control plane.
const LOGIN_PREFIX: &str = "/_portcullis/";

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
        raw.split(':').next().unwrap_or_default()
    };
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

fn redirect(scheme: &str, host: &str, port: u16, default_port: u16, path_and_query: &str) -> Reply {
    let authority = if port == default_port {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    Reply::redirect(308, format!("{scheme}://{authority}{path_and_query}"))
}

/// Decides how to serve the request and fills `ctx`; `refreshed` is set on
/// the second attempt after a key refresh.
pub fn decide(edge: &Edge, session: &Session, ctx: &mut Ctx, refreshed: bool) -> Decision {
    ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    let req = session.req_header();
    let raw = raw_host(req);
    let host = host_key(raw);
    let snap = edge.handle.load();
    if let Some(token) = req.uri.path().strip_prefix(ACME_CHALLENGE_PREFIX) {
        return Decision::Respond(match snap.challenges.get(token) {
            Some(answer) => Reply::text(200, answer.clone()),
            None => Reply::text(404, "404 Not Found: unknown ACME challenge\n".to_string()),
        });
    }
    let Some(entry) = snap.proxies.get(host.as_ref()) else {
        let shown: String = host.chars().filter(|c| c.is_ascii_graphic()).take(253).collect();
        return Decision::Respond(Reply::text(
            404,
            format!("404 Not Found: no proxy is configured for host {shown:?}\n"),
        ));
    };
    let p = &entry.proxy;
    if !p.enabled {
        return Decision::Respond(Reply::text(
            503,
            format!("503 Service Unavailable: proxy {} is disabled\n", p.hostname),
        ));
    }
    let pq = req.uri.path_and_query().map_or("/", |x| x.as_str());
    if ctx.tls && !p.enable_https {
        return Decision::Respond(if p.enable_http {
            redirect("http", &p.hostname, edge.config.http_port, 80, pq)
        } else {
            Reply::text(404, format!("404 Not Found: {} is not served over HTTPS\n", p.hostname))
        });
    }
    if !ctx.tls && !p.enable_http {
        return Decision::Respond(if p.enable_https {
            redirect("https", &p.hostname, edge.config.https_port, 443, pq)
        } else {
            Reply::text(404, format!("404 Not Found: {} is not served over HTTP\n", p.hostname))
        });
    }
    let path = req.uri.path();
    if path.starts_with(LOGIN_PREFIX) {
        return match &snap.control {
            Ok(u) => {
                ctx.upstream = Some(u.clone());
                ctx.entry = Some(entry.clone());
                Decision::Proxy
            }
            Err(e) => {
                tracing::warn!(error = %e, "control plane address unresolved");
                Decision::Respond(Reply::text(
                    502,
                    "502 Bad Gateway: the login service is not available\n".to_string(),
                ))
            }
        };
    }
    let info = RequestInfo {
        method: req.method.as_str(),
        path,
        path_and_query: pq,
        tls: ctx.tls,
        raw_host: raw,
    };
    if auth::metadata::serves_metadata(p) && auth::metadata::is_metadata_path(p, path) {
        let doc = auth::metadata::document(p, &info, &snap.auth.issuer).to_string();
        if p.resource_override_backend {
            return Decision::Respond(Reply::json(200, vec![("Access-Control-Allow-Origin", "*".into())], doc));
        }
        ctx.metadata_fallback = Some(bytes::Bytes::from(doc));
    }
    let route = entry.match_route(req.method.as_str(), path);
    match auth::check(&snap.auth, p, route.map(|r| &**r), session, &info) {
        Outcome::Skip => {}
        Outcome::Allow(identity) => {
            ctx.identity = identity;
            ctx.auth_applied = true;
        }
        Outcome::Deny(reply) => return Decision::Respond(reply),
        Outcome::UnknownKey if !refreshed => return Decision::RefreshKeys,
        Outcome::UnknownKey => {
            return Decision::Respond(Reply::json(
                401,
                vec![(
                    "WWW-Authenticate",
                    format!(
                        "Bearer realm=\"{}\", error=\"invalid_token\", resource_metadata=\"{}\"",
                        p.hostname,
                        auth::metadata_url(p, &info)
                    ),
                )],
                serde_json::json!({"error": "invalid_token", "message": "unknown signing key"}).to_string(),
            ))
        }
    }
    let target = match route {
        Some(r) => &r.upstream,
        None => &entry.target,
    };
    match target {
        Ok(u) => {
            ctx.upstream = Some(u.clone());
            ctx.entry = Some(entry.clone());
            Decision::Proxy
        }
        Err(reason) => {
            tracing::warn!(host = %p.hostname, reason = %reason, "no usable upstream");
            ctx.entry = Some(entry.clone());
            Decision::Respond(Reply::text(502, "502 Bad Gateway: the upstream is not available\n".to_string()))
        }
    }
}
