//! The request path's part: a few cheap values captured per request, the
//! `X-Request-Id` and `traceparent` headers, and one non-blocking hand-off
//! to the writer when the request ends. Nothing here waits or formats text:
//! strings are built by the writer, off the request path.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::proxy::Session;

use super::writer::{self, Item};
use crate::auth::Identity;
use crate::snapshot::{CompiledRoute, ProxyEntry, Upstream};

/// Header carrying the request id upstream and back to the client.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// W3C Trace Context header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// Longest client-sent request id that is kept (from a trusted peer).
const MAX_REQUEST_ID: usize = 128;

/// The server name a client asked for in its TLS handshake, kept in the
/// connection's digest by the SNI callback (once per connection).
pub struct ServerName(pub Arc<str>);

/// Per-request values the log needs that the rest of the context does not hold.
pub struct Capture {
    started: Instant,
    request_id: Option<HeaderValue>,
    trace_id: Option<HeaderValue>,
    upstream_took: Option<Duration>,
    route: Option<Arc<CompiledRoute>>,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            started: Instant::now(),
            request_id: None,
            trace_id: None,
            upstream_took: None,
            route: None,
        }
    }
}

/// What the proxy decided about a request, borrowed from its context at the end.
pub struct Seen<'a> {
    /// The client as the proxy determined it.
    pub client_ip: Option<IpAddr>,
    /// The proxy serving the host, if any.
    pub entry: Option<&'a Arc<ProxyEntry>>,
    /// The upstream chosen, if any.
    pub upstream: Option<&'a Arc<Upstream>>,
    /// The authenticated caller, if any.
    pub identity: Option<&'a Identity>,
}

/// A finished request, as handed to the writer: cheap clones (`Arc`s and
/// `Bytes`-backed values), turned into a [`super::Record`] by the writer.
pub struct Finished {
    pub(super) ts: i64,
    pub(super) client_ip: Option<IpAddr>,
    pub(super) method: http::Method,
    pub(super) uri: http::Uri,
    pub(super) raw_host: Option<HeaderValue>,
    pub(super) entry: Option<Arc<ProxyEntry>>,
    pub(super) status: u16,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    pub(super) upstream: Option<SocketAddr>,
    pub(super) upstream_took: Option<Duration>,
    pub(super) took: Duration,
    pub(super) route: Option<Arc<CompiledRoute>>,
    pub(super) identity: Option<Identity>,
    pub(super) tls_version: Option<Cow<'static, str>>,
    pub(super) sni: Option<Arc<str>>,
    pub(super) request_id: Option<HeaderValue>,
    pub(super) trace_id: Option<HeaderValue>,
    pub(super) error: Option<(&'static str, &'static str)>,
}

/// The last timestamp handed out: timestamps are unique per instance, so a
/// request's key `req:{ts}:{ip}` and the pagination cursor never collide.
static LAST_TS: AtomicI64 = AtomicI64::new(0);

/// Microseconds since the Unix epoch, strictly increasing within this process.
pub fn unique_ts() -> i64 {
    let now = chrono::Utc::now().timestamp_micros();
    let prev = LAST_TS.fetch_max(now, Ordering::Relaxed);
    if prev < now {
        now
    } else {
        LAST_TS.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The ids a request sends upstream: its request id, and a `traceparent`
/// when the trace starts here (a valid incoming one passes through as sent).
pub struct UpstreamIds {
    /// `X-Request-Id`.
    pub request_id: HeaderValue,
    /// `traceparent`, when this request starts the trace.
    pub traceparent: Option<HeaderValue>,
}

/// Fills `out` with the lowest `out.len()` lowercase hex digits of `n`
/// (most significant first).
fn hex_into(out: &mut [u8], mut n: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for d in out.iter_mut().rev() {
        *d = HEX[(n & 0xf) as usize];
        n >>= 4;
    }
}

/// A new W3C `traceparent` (`00-<32 hex trace id>-<16 hex span id>-01`,
/// random non-zero ids) and its trace id, which is also the request id we
/// start when none is kept. Both values share one buffer: one allocation
/// and no formatting machinery per request (this runs on every request).
fn new_trace() -> (HeaderValue, HeaderValue) {
    let mut buf = *b"00-................................-................-01";
    hex_into(&mut buf[3..35], rand::random::<u128>() | 1);
    hex_into(&mut buf[36..52], u128::from(rand::random::<u64>() | 1));
    let all = Bytes::copy_from_slice(&buf);
    let trace = all.slice(3..35);
    match (HeaderValue::from_maybe_shared(all), HeaderValue::from_maybe_shared(trace)) {
        (Ok(parent), Ok(trace)) => (parent, trace),
        // Unreachable: hex digits and dashes are valid header bytes.
        _ => (
            HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-01"),
            HeaderValue::from_static("1"),
        ),
    }
}

/// A client-sent request id we keep: 1-128 visible characters without
/// separators that could split a log line or a key.
fn acceptable_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= MAX_REQUEST_ID && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:@+=/".contains(c))
}

/// The trace id of a valid W3C `traceparent` (version 00:
/// `00-<32 hex>-<16 hex>-<2 hex>`, ids not all zero).
fn trace_id_of(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    let mut parts = s.split('-');
    let (ver, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    let ok = parts.next().is_none()
        && ver == "00"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|c| c != b'0')
        && parent.bytes().any(|c| c != b'0');
    ok.then_some(trace)
}

impl Capture {
    /// Remembers the route that chose the upstream (for `route_id`).
    pub fn set_route(&mut self, route: Option<&Arc<CompiledRoute>>) {
        self.route = route.cloned();
    }

    /// Remembers how long the upstream took to its response header.
    pub fn upstream_took(&mut self, took: Duration) {
        self.upstream_took = Some(took);
    }

    /// Chooses the request id (the one a trusted peer `peer_trusted` sent,
    /// else the trace id) and the trace id (of a valid incoming
    /// `traceparent`, else new), and returns what the upstream request
    /// carries; the header rules put it in with the others.
    pub fn upstream_ids(&mut self, session: &Session, peer_trusted: bool) -> UpstreamIds {
        let incoming = &session.req_header().headers;
        let continued = incoming
            .get(&TRACEPARENT)
            .and_then(trace_id_of)
            .and_then(|t| HeaderValue::from_str(t).ok());
        let (trace, traceparent) = match continued {
            Some(trace) => (trace, None),
            None => {
                let (parent, trace) = new_trace();
                (trace, Some(parent))
            }
        };
        let kept = if peer_trusted {
            incoming.get(&REQUEST_ID).filter(|v| acceptable_request_id(v))
        } else {
            None
        };
        let request_id = kept.cloned().unwrap_or_else(|| trace.clone());
        self.request_id = Some(request_id.clone());
        self.trace_id = Some(trace);
        UpstreamIds { request_id, traceparent }
    }

    /// The request id of a response the data plane writes itself (no
    /// upstream): chosen as for a proxied request, returned to the client.
    pub fn for_own_reply(&mut self, session: &Session, peer_trusted: bool) -> String {
        let ids = self.upstream_ids(session, peer_trusted);
        String::from_utf8_lossy(ids.request_id.as_bytes()).into_owned()
    }

    /// The request id, returned to the client with the response.
    pub fn request_id(&self) -> Option<&HeaderValue> {
        self.request_id.as_ref()
    }

    /// Hands the finished request to the writer (never waits: a full queue
    /// drops the record and counts it).
    pub fn finish(&mut self, session: &Session, error: Option<&pingora::Error>, seen: Seen<'_>) {
        if !writer::enabled() {
            return;
        }
        let req = session.req_header();
        let tls = session.digest().and_then(|d| d.ssl_digest.as_ref());
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let finished = Finished {
            ts: unique_ts(),
            client_ip: seen.client_ip,
            method: req.method.clone(),
            uri: req.uri.clone(),
            raw_host: if seen.entry.is_none() {
                req.headers.get(http::header::HOST).cloned()
            } else {
                None
            },
            entry: seen.entry.cloned(),
            status,
            bytes_in: session.body_bytes_read() as u64,
            bytes_out: session.body_bytes_sent() as u64,
            upstream: seen.upstream.map(|u| u.addr),
            upstream_took: self.upstream_took,
            took: self.started.elapsed(),
            route: self.route.take(),
            identity: seen.identity.cloned(),
            tls_version: tls.map(|s| s.version.clone()),
            sni: tls.and_then(|s| s.extension.get::<ServerName>()).map(|n| n.0.clone()),
            request_id: self.request_id.take(),
            trace_id: self.trace_id.take(),
            error: error.map(|e| (e.esource().as_str(), e.etype().as_str())),
        };
        writer::submit(Item::Request(Box::new(finished)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_traceparents_are_continued() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(
            trace_id_of(&v("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "garbage",
        ] {
            assert_eq!(trace_id_of(&v(bad)), None, "{bad}");
        }
    }

    #[test]
    fn a_new_trace_is_a_valid_traceparent_around_its_trace_id() {
        let (parent, trace) = new_trace();
        let (again, _) = new_trace();
        assert_ne!(parent, again, "ids are random");
        assert_eq!(trace_id_of(&parent), Some(trace.to_str().unwrap()));
        assert!(parent.to_str().unwrap().ends_with("-01"), "{parent:?}");
        assert_eq!(parent.len(), 55);
    }

    #[test]
    fn request_ids_with_separators_are_not_kept() {
        assert!(acceptable_request_id(&HeaderValue::from_static("req-42_a.b")));
        assert!(!acceptable_request_id(&HeaderValue::from_static("a b")));
        assert!(!acceptable_request_id(&HeaderValue::from_static("a\"}")));
        assert!(!acceptable_request_id(&HeaderValue::from_str(&"x".repeat(129)).unwrap()));
    }

    #[test]
    fn timestamps_never_repeat() {
        let a = unique_ts();
        let b = unique_ts();
        let c = unique_ts();
        assert!(a < b && b < c);
    }
}
