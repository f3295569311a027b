//! The immutable routing/TLS snapshot the data plane reads on every request,
//! built from the store and swapped atomically; the data plane never touches
//! the store. A failed build keeps the previous snapshot.

mod build;
pub mod sync;

pub use build::build;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use http::{HeaderName, HeaderValue};
use regex::Regex;

use crate::model::{Proxy, Route};
use crate::tls::CertTable;

/// Where a request goes: a resolved address plus what the upstream expects.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// Resolved socket address.
    pub addr: SocketAddr,
    /// Speak TLS to it.
    pub tls: bool,
    /// Host name for SNI and (unless preserved) the Host header.
    pub host: String,
    /// `host[:port]` as the Host header value.
    pub authority: String,
    /// Path prefix of the target URL, without a trailing slash ("" for none).
    pub base_path: String,
}

/// How a route matches the request path.
#[derive(Debug)]
pub enum Matcher {
    /// Path starts with this prefix.
    Prefix(String),
    /// Path matches this regex.
    Regex(Regex),
}

impl Matcher {
    /// True when `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Regex(r) => r.is_match(path),
        }
    }
}

/// A route ready to match, with its target resolved (or why it could not be).
#[derive(Debug)]
pub struct CompiledRoute {
    /// The stored route.
    pub route: Route,
    /// Path matcher.
    pub matcher: Matcher,
    /// Resolved target, or the reason it is unavailable (answered as 502).
    pub upstream: Result<Upstream, String>,
}

/// One hostname's configuration, precomputed for the hot path.
#[derive(Debug)]
pub struct ProxyEntry {
    /// The stored proxy.
    pub proxy: Proxy,
    /// Resolved `target_url`.
    pub target: Result<Upstream, String>,
    /// Routes that apply to this proxy, highest priority first.
    pub routes: Vec<Arc<CompiledRoute>>,
    /// `custom_headers`, parsed.
    pub request_headers: Vec<(HeaderName, HeaderValue)>,
    /// `custom_response_headers`, parsed.
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// `auth_header_prefix`, lowercased (inbound identity headers to strip).
    pub auth_prefix_lower: String,
    /// Request counters by status class (1xx..5xx, none), resolved once.
    pub requests_by_class: [prometheus::IntCounter; 6],
    /// Upstream response time histogram for this host.
    pub upstream_seconds: prometheus::Histogram,
}

impl ProxyEntry {
    /// The first enabled route matching `method` and `path`.
    pub fn match_route(&self, method: &str, path: &str) -> Option<&Arc<CompiledRoute>> {
        self.routes
            .iter()
            .find(|r| r.route.allows_method(method) && r.matcher.matches(path))
    }
}

/// Everything the data plane needs, immutable once built.
pub struct Snapshot {
    /// Proxies by lowercase hostname.
    pub proxies: HashMap<String, Arc<ProxyEntry>>,
    /// Certificates for SNI selection.
    pub certs: CertTable,
    /// ACME HTTP-01 answers by token.
    pub challenges: HashMap<String, String>,
    /// What the data plane needs to check access tokens locally.
    pub auth: crate::auth::AuthKeys,
    /// The control plane, for the login endpoints of redirect-mode proxies.
    pub control: Result<Upstream, String>,
    /// When it was built.
    pub built_at: SystemTime,
}

/// The shared, atomically swapped current snapshot.
pub type SnapshotHandle = Arc<ArcSwap<Snapshot>>;
