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
    /// `host[:port]`, the Host header value when the client's is not preserved.
    pub authority_value: HeaderValue,
    /// Path prefix of the target URL, without a trailing slash ("" for none).
    pub base_path: String,
}

/// How a route matches the request path.
#[derive(Debug)]
pub enum Matcher {
    /// Path starts with this prefix.
    Prefix(String),
    /// Path matches this regex.
    Regex {
        /// The compiled pattern.
        regex: Regex,
        /// For patterns anchored with `^`: literals one of which every match
        /// starts with, so most paths are refused with a `starts_with` instead
        /// of a regex search (the default OAuth routes are such patterns).
        prefixes: Option<Vec<Vec<u8>>>,
    },
}

impl Matcher {
    /// A regex matcher, with the literal prefixes of an anchored pattern.
    pub fn regex(regex: Regex) -> Matcher {
        let prefixes = anchored_prefixes(regex.as_str());
        Matcher::Regex { regex, prefixes }
    }

    /// The byte every matching path has right after its leading `/` (its
    /// second byte), when the literal prefix fixes it: a route scan skips
    /// most routes with one byte compare.
    pub fn lead(&self) -> Option<u8> {
        match self {
            Matcher::Prefix(p) => p.as_bytes().get(1).copied(),
            Matcher::Regex { prefixes: Some(ps), .. } => {
                let lead = *ps.first()?.get(1)?;
                ps.iter().all(|p| p.get(1) == Some(&lead)).then_some(lead)
            }
            Matcher::Regex { prefixes: None, .. } => None,
        }
    }

    /// True when `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Regex { regex, prefixes } => {
                prefixes.as_ref().is_none_or(|ps| ps.iter().any(|p| path.as_bytes().starts_with(p))) && regex.is_match(path)
            }
        }
    }
}

/// The literals every match of an `^`-anchored pattern starts with (None when
/// the pattern is unanchored or its prefixes are unbounded or empty).
fn anchored_prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    if !hir.properties().look_set_prefix().contains(regex_syntax::hir::Look::Start) {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(literals.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// A route ready to match, with its target resolved (or why it could not be).
#[derive(Debug)]
pub struct CompiledRoute {
    /// The stored route.
    pub route: Route,
    /// Path matcher.
    pub matcher: Matcher,
    /// Resolved target, or the reason it is unavailable (answered as 502).
    pub upstream: Result<Arc<Upstream>, String>,
}

/// One hostname's configuration, precomputed for the hot path.
#[derive(Debug)]
pub struct ProxyEntry {
    /// The stored proxy.
    pub proxy: Proxy,
    /// Resolved `target_url`.
    pub target: Result<Arc<Upstream>, String>,
    /// Routes that apply to this proxy, highest priority first.
    pub routes: Vec<Arc<CompiledRoute>>,
    /// `Matcher::lead` of each route in `routes` (same order), kept apart so
    /// the scan reads one small array instead of every route.
    pub route_leads: Vec<Option<u8>>,
    /// `custom_headers`, parsed.
    pub request_headers: Vec<(HeaderName, HeaderValue)>,
    /// `custom_response_headers`, parsed.
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// `auth_header_prefix`, lowercased (inbound identity headers to strip).
    pub auth_prefix_lower: String,
    /// Set when the target is a Docker service that is not running: the 503 body.
    pub unavailable: Option<String>,
    /// Set when the target is a service port with a source token: its
    /// hash, which every request must match (`services::source_token`).
    pub source_token: Option<String>,
    /// Request counters by status class (1xx..5xx, none), resolved once.
    pub requests_by_class: [prometheus::IntCounter; 6],
    /// Upstream response time histogram for this host.
    pub upstream_seconds: prometheus::Histogram,
}

impl ProxyEntry {
    /// The first enabled route matching `method` and `path`.
    pub fn match_route(&self, method: &str, path: &str) -> Option<&Arc<CompiledRoute>> {
        let second = path.as_bytes().get(1).copied();
        self.routes
            .iter()
            .zip(&self.route_leads)
            .filter(|(_, lead)| lead.is_none() || **lead == second)
            .map(|(r, _)| r)
            .find(|r| r.matcher.matches(path) && r.route.allows_method(method))
    }
}

/// Everything the data plane needs, immutable once built.
pub struct Snapshot {
    /// Proxies by lowercase hostname.
    pub proxies: FastMap<String, Arc<ProxyEntry>>,
    /// Certificates for SNI selection.
    pub certs: CertTable,
    /// ACME HTTP-01 answers by token.
    pub challenges: HashMap<String, String>,
    /// What the data plane needs to check access tokens locally.
    pub auth: crate::auth::AuthKeys,
    /// The control plane, for the login endpoints of redirect-mode proxies.
    pub control: Result<Arc<Upstream>, String>,
    /// When it was built.
    pub built_at: SystemTime,
}

/// Maps read on every request. foldhash (per-process random seed) instead of
/// SipHash: the keys come from configuration, requests only look them up, and
/// hashing a host name with SipHash was a visible part of a proxied request.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The shared, atomically swapped current snapshot.
pub type SnapshotHandle = Arc<ArcSwap<Snapshot>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str) -> Matcher {
        Matcher::regex(Regex::new(p).unwrap())
    }

    #[test]
    fn anchored_literal_prefixes_are_extracted() {
        assert_eq!(anchored_prefixes("^/authorize$"), Some(vec![b"/authorize".to_vec()]));
        let wk = anchored_prefixes("^/\\.well-known/(oauth-authorization-server|openid-configuration)(/.*)?$").unwrap();
        assert!(!wk.is_empty());
        assert!(wk.iter().all(|p| p.starts_with(b"/.well-known/")));
        assert_eq!(anchored_prefixes("^/a|/b"), None, "only one branch is anchored");
        assert_eq!(anchored_prefixes("/x"), None, "unanchored");
        assert_eq!(anchored_prefixes("(?m)^/x"), None, "line anchor, not text start");
        assert_eq!(anchored_prefixes("^.*foo"), None, "no literal prefix");
    }

    #[test]
    fn lead_bytes_never_exclude_a_match() {
        let prefix = |p: &str| Matcher::Prefix(p.to_string());
        assert_eq!(prefix("/svc-1/").lead(), Some(b's'));
        assert_eq!(prefix("/").lead(), None);
        assert_eq!(m("^/authorize$").lead(), Some(b'a'));
        assert_eq!(m("(?i)^/abc").lead(), None, "case-insensitive: several leads");
        assert_eq!(m("^/(x|yz)?q").lead(), None, "different second bytes");
        assert_eq!(m("/x").lead(), None);
        let matchers = [
            prefix("/svc-1/"),
            prefix("/"),
            prefix(""),
            m("^/authorize$"),
            m("(?i)^/abc"),
            m("^/(x|yz)?q"),
            m("x$"),
        ];
        for path in ["/", "", "/svc-1/a", "/authorize", "/ABC", "/q", "/yzq", "/box", "/s"] {
            for matcher in &matchers {
                if matcher.matches(path) {
                    assert!(
                        matcher.lead().is_none_or(|b| path.as_bytes().get(1) == Some(&b)),
                        "{matcher:?} on {path}"
                    );
                }
            }
        }
    }

    #[test]
    fn prefilter_never_changes_the_regex_answer() {
        let cases: [(&str, &[&str]); 6] = [
            ("^/authorize$", &["/authorize", "/authorizex", "/1k.bin", "/", ""]),
            ("^/register(/[^/]+)?$", &["/register", "/register/abc", "/register/a/b", "/reg"]),
            (
                "^/api/v[0-9]+/internal-1/",
                &["/api/v2/internal-1/x", "/api/v/internal-1/", "/api/vx"],
            ),
            ("(?i)^/abc", &["/ABC", "/abc", "/aBc/d", "/ab"]),
            ("^/a|/b", &["/a", "/x/b", "/c"]),
            ("^/(x|yz)?q", &["/q", "/xq", "/yzq", "/yq"]),
        ];
        for (pattern, paths) in cases {
            let re = Regex::new(pattern).unwrap();
            let matcher = m(pattern);
            for path in paths {
                assert_eq!(matcher.matches(path), re.is_match(path), "{pattern} on {path}");
            }
        }
    }
}
