//! What a log query asks (a filter over records, a time window, a page)
//! and what it answers; shared by both request-log stores.

use std::collections::HashSet;

use serde::Serialize;

use super::record::Record;

/// Status filter: one code, or a class (`4xx` is class 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// Exactly this status.
    Code(u16),
    /// Any status of this hundred.
    Class(u16),
}

/// A query over records; every set field must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Proxy hostname (exact, lowercase).
    pub host: Option<String>,
    /// Authenticated user.
    pub user: Option<String>,
    /// OAuth client id.
    pub client_id: Option<String>,
    /// Client address (canonical text form).
    pub ip: Option<String>,
    /// Method (uppercase).
    pub method: Option<String>,
    /// Path prefix.
    pub path: Option<String>,
    /// Status code or class.
    pub status: Option<StatusFilter>,
    /// `request` or `oauth`.
    pub kind: Option<String>,
    /// Only 4xx/5xx responses and failed OAuth steps.
    pub errors_only: bool,
    /// Only requests that took at least this long.
    pub min_ms: Option<f64>,
    /// Case-insensitive text anywhere in the record (lowercased).
    pub text: Option<String>,
    /// Oldest timestamp (µs, inclusive).
    pub since: i64,
    /// Newest timestamp (µs, inclusive).
    pub until: i64,
    /// For a user-scope caller: the hostnames it owns; `None` for the admin.
    pub allowed_hosts: Option<HashSet<String>>,
}

impl Filter {
    /// True when `r` passes every condition (the time window included).
    pub fn matches(&self, r: &Record) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
        r.ts >= self.since
            && r.ts <= self.until
            && self.allowed_hosts.as_ref().is_none_or(|a| a.contains(&r.host))
            && eq(&self.host, Some(&r.host))
            && eq(&self.user, r.user.as_deref())
            && eq(&self.client_id, r.client_id.as_deref())
            && eq(&self.ip, Some(&r.client_ip))
            && eq(&self.method, Some(&r.method))
            && eq(&self.kind, Some(&r.kind))
            && self.path.as_deref().is_none_or(|p| r.path.starts_with(p))
            && match self.status {
                None => true,
                Some(StatusFilter::Code(c)) => r.status == c,
                Some(StatusFilter::Class(c)) => r.status / 100 == c,
            }
            && (!self.errors_only || r.is_error())
            && self.min_ms.is_none_or(|m| r.duration_ms >= m)
            && self.text.as_deref().is_none_or(|t| contains_text(r, t))
    }
}

/// True when `needle` (lowercase) occurs in one of the record's text fields.
fn contains_text(r: &Record, needle: &str) -> bool {
    let fields = [
        Some(r.path.as_str()),
        r.query.as_deref(),
        Some(r.host.as_str()),
        Some(r.method.as_str()),
        Some(r.client_ip.as_str()),
        r.user.as_deref(),
        r.client_id.as_deref(),
        r.reason.as_deref(),
        r.event.as_deref(),
        r.request_id.as_deref(),
        r.route_id.as_deref(),
        r.upstream.as_deref(),
    ];
    fields.into_iter().flatten().any(|f| f.to_lowercase().contains(needle))
}

/// One page of records, newest first.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Page {
    /// The records.
    pub records: Vec<Record>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Requests and errors in one hour.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct HourCount {
    /// Start of the hour (RFC 3339).
    pub hour: String,
    /// Requests.
    pub requests: u64,
    /// 4xx/5xx responses.
    pub errors: u64,
}

/// Figures of one hostname over the window.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct HostStats {
    /// The hostname.
    pub host: String,
    /// Requests.
    pub requests: u64,
    /// 4xx/5xx responses.
    pub errors: u64,
    /// errors / requests.
    pub error_rate: f64,
    /// Median total duration (ms).
    pub p50_ms: f64,
    /// 95th percentile total duration (ms).
    pub p95_ms: f64,
    /// 99th percentile total duration (ms).
    pub p99_ms: f64,
    /// Distinct client addresses (HyperLogLog estimate on Redis).
    pub unique_ips: u64,
}

/// Statistics over a window: hourly counts and per-host figures.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Start of the window (RFC 3339).
    pub since: String,
    /// Requests in the window.
    pub requests: u64,
    /// Errors in the window.
    pub errors: u64,
    /// errors / requests.
    pub error_rate: f64,
    /// Per hour, oldest first.
    pub hourly: Vec<HourCount>,
    /// Per hostname, busiest first.
    pub hosts: Vec<HostStats>,
}

/// The nearest-rank percentile `p` (0-100) of sorted `samples`; 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// errors / requests, 0 when there were none.
pub fn rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    }
}

/// Sorts hosts busiest first and fills totals and rates.
pub fn finish_stats(mut s: Stats) -> Stats {
    s.hosts
        .sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.host.cmp(&b.host)));
    s.requests = s.hourly.iter().map(|h| h.requests).sum();
    s.errors = s.hourly.iter().map(|h| h.errors).sum();
    s.error_rate = rate(s.errors, s.requests);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn a_user_filter_never_matches_another_owners_host() {
        let r = Record {
            ts: 10,
            host: "theirs.example".into(),
            client_ip: "192.0.2.1".into(),
            status: 200,
            ..Record::default()
        };
        let mut f = Filter {
            since: 0,
            until: i64::MAX,
            ..Filter::default()
        };
        assert!(f.matches(&r));
        f.allowed_hosts = Some(["mine.example".to_string()].into_iter().collect());
        assert!(!f.matches(&r));
    }

    #[test]
    fn status_classes_and_text_match() {
        let r = Record {
            ts: 10,
            host: "a.example".into(),
            client_ip: "192.0.2.1".into(),
            path: "/api/Items".into(),
            status: 404,
            ..Record::default()
        };
        let base = Filter {
            since: 0,
            until: i64::MAX,
            ..Filter::default()
        };
        let with = |f: Filter| f.matches(&r);
        assert!(with(Filter {
            status: Some(StatusFilter::Class(4)),
            ..base.clone()
        }));
        assert!(!with(Filter {
            status: Some(StatusFilter::Class(5)),
            ..base.clone()
        }));
        assert!(with(Filter {
            errors_only: true,
            ..base.clone()
        }));
        assert!(with(Filter {
            text: Some("items".into()),
            ..base.clone()
        }));
        assert!(with(Filter {
            path: Some("/api/".into()),
            ..base.clone()
        }));
        assert!(!with(Filter {
            path: Some("/apx".into()),
            ..base.clone()
        }));
        assert!(!with(Filter { since: 11, ..base }));
    }
}
