//! Request-log queries: search (and its shorthands by IP, client, errors,
//! OAuth events), statistics and live following. The admin sees every
//! record; any other caller only records of hostnames it owns.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use serde::{Deserialize, Deserializer};
use tokio::sync::OnceCell;

use super::{Caller, ManageError, ManageResult, Manager};
use crate::model::ValidationError;
use crate::reqlog::{Filter, LogError, LogStore, Page, Record, Stats, StatusFilter, TailPos};

/// Records per page when `limit` is not given, and the most one page holds.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// The window when neither `hours` nor `since` is given.
const DEFAULT_HOURS: f64 = 24.0;
/// How often a follower looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// The request-log store of the control plane, opened on first use.
static READER: OnceCell<LogStore> = OnceCell::const_new();

impl From<LogError> for ManageError {
    fn from(e: LogError) -> Self {
        ManageError::Store(e.to_string())
    }
}

/// A number given as a JSON number or as text (query strings carry text).
fn number<'de, D: Deserializer<'de>, T: std::str::FromStr + Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Num(T),
        Text(String),
    }
    match Option::<Either<T>>::deserialize(d)? {
        None => Ok(None),
        Some(Either::Num(n)) => Ok(Some(n)),
        Some(Either::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a valid number"))),
    }
}

/// Filters of a log query (`GET /api/v1/logs/search` and the other views).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Proxy hostname.
    pub host: Option<String>,
    /// Authenticated user.
    pub user: Option<String>,
    /// A status code (`404`) or class (`4xx`, `5xx`).
    pub status: Option<String>,
    /// Request method.
    pub method: Option<String>,
    /// Path prefix.
    pub path: Option<String>,
    /// Client IP address.
    pub ip: Option<String>,
    /// OAuth client id.
    pub client_id: Option<String>,
    /// `request` or `oauth` (OAuth flow events).
    pub kind: Option<String>,
    /// Hours back from now (default 24; at most the retention).
    #[serde(default, deserialize_with = "number")]
    pub hours: Option<f64>,
    /// Oldest time: RFC 3339 or Unix seconds.
    pub since: Option<String>,
    /// Newest time: RFC 3339 or Unix seconds.
    pub until: Option<String>,
    /// Only requests that took at least this many milliseconds.
    #[serde(default, deserialize_with = "number")]
    pub min_ms: Option<f64>,
    /// Text anywhere in the record (case-insensitive).
    pub q: Option<String>,
    /// Records per page (default 100, at most 1000).
    #[serde(default, deserialize_with = "number")]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/logs/events`: statistics over a window.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsRequest {
    /// Hours back from now (default 24).
    #[serde(default, deserialize_with = "number")]
    pub hours: Option<f64>,
    /// Only this hostname.
    pub host: Option<String>,
}

fn invalid(field: &str, msg: impl Into<String>) -> ManageError {
    ManageError::Invalid(ValidationError::new(field, msg))
}

/// A time as µs since the epoch: RFC 3339 or (fractional) Unix seconds.
fn instant(field: &str, v: &str) -> ManageResult<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v.trim()) {
        return Ok(t.timestamp_micros());
    }
    match v.trim().parse::<f64>() {
        Ok(s) if (0.0..1e11).contains(&s) => Ok((s * 1e6) as i64),
        _ => Err(invalid(field, "expected an RFC 3339 time or Unix seconds")),
    }
}

/// A text filter: at most 256 bytes, no control characters.
fn text(field: &str, v: Option<String>) -> ManageResult<Option<String>> {
    match v {
        Some(s) if s.len() > 256 || s.chars().any(char::is_control) => Err(invalid(field, "at most 256 printable characters")),
        Some(s) if s.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// The request-log store, opened once per process.
async fn log_store(m: &Manager) -> ManageResult<&'static LogStore> {
    READER.get_or_try_init(|| LogStore::open(&m.config)).await.map_err(Into::into)
}

/// The hostnames a non-admin caller owns; `None` for the admin (all).
async fn visible_hosts(m: &Manager, caller: &Caller) -> ManageResult<Option<HashSet<String>>> {
    if caller.is_admin() {
        return Ok(None);
    }
    let proxies = m.store.list_proxies().await?;
    Ok(Some(
        proxies
            .into_iter()
            .filter(|p| caller.may_read(&p.owner_token_hash))
            .map(|p| p.hostname)
            .collect(),
    ))
}

/// Validates a query into a filter over the retention window, plus the page size.
async fn filter(m: &Manager, caller: &Caller, r: SearchRequest) -> ManageResult<(Filter, usize)> {
    let now = chrono::Utc::now().timestamp_micros();
    let retention = i64::try_from(m.config.request_log.retention.as_micros()).unwrap_or(i64::MAX);
    let oldest = now - retention;
    let hours = match r.hours {
        Some(h) if !(h.is_finite() && h > 0.0) => return Err(invalid("hours", "must be a positive number")),
        Some(h) => h,
        None => DEFAULT_HOURS,
    };
    let since = match &r.since {
        Some(s) => instant("since", s)?,
        None => now - (hours * 3.6e9).min(i64::MAX as f64) as i64,
    };
    // A minute past now: records of requests that started a moment ago.
    let mut until = match &r.until {
        Some(s) => instant("until", s)?,
        None => now + 60_000_000,
    };
    if let Some(c) = &r.cursor {
        let c: i64 = c
            .trim()
            .parse()
            .map_err(|_| invalid("cursor", "not a cursor from a previous page"))?;
        until = until.min(c - 1);
    }
    let status = match r.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let lower = s.to_ascii_lowercase();
            if let Some(class) = lower
                .strip_suffix("xx")
                .and_then(|d| d.parse::<u16>().ok())
                .filter(|d| (1..=5).contains(d))
            {
                Some(StatusFilter::Class(class))
            } else {
                match s.parse::<u16>() {
                    Ok(c) if (100..=599).contains(&c) => Some(StatusFilter::Code(c)),
                    _ => return Err(invalid("status", "expected a status code (404) or class (4xx)")),
                }
            }
        }
    };
    let ip = match r.ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<IpAddr>()
                .map_err(|_| invalid("ip", "not an IP address"))?
                .to_canonical()
                .to_string(),
        ),
    };
    let method = match text("method", r.method)? {
        Some(m) if m.len() > 16 || !m.bytes().all(|b| b.is_ascii_alphabetic()) => return Err(invalid("method", "not an HTTP method")),
        m => m.map(|m| m.to_ascii_uppercase()),
    };
    let kind = match text("kind", r.kind)?.as_deref() {
        None => None,
        Some(k @ ("request" | "oauth")) => Some(k.to_string()),
        Some(_) => return Err(invalid("kind", "expected request or oauth")),
    };
    let limit = match r.limit {
        Some(0) => return Err(invalid("limit", "must be at least 1")),
        Some(l) => l.min(MAX_LIMIT),
        None => DEFAULT_LIMIT,
    };
    if let Some(m) = r.min_ms.filter(|m| !m.is_finite() || *m < 0.0) {
        return Err(invalid("min_ms", format!("{m} is not a duration in milliseconds")));
    }
    let f = Filter {
        host: text("host", r.host)?.map(|h| h.to_ascii_lowercase()),
        user: text("user", r.user)?,
        client_id: text("client_id", r.client_id)?,
        ip,
        method,
        path: text("path", r.path)?,
        status,
        kind,
        errors_only: false,
        min_ms: r.min_ms,
        text: text("q", r.q)?.map(|t| t.to_lowercase()),
        since: since.max(oldest),
        until,
        allowed_hosts: visible_hosts(m, caller).await?,
    };
    Ok((f, limit))
}

/// `GET /api/v1/logs/search` (and `GET /api/v1/logs/` for the latest).
pub async fn search(m: &Manager, caller: &Caller, r: SearchRequest) -> ManageResult<Page> {
    let (f, limit) = filter(m, caller, r).await?;
    Ok(log_store(m).await?.search(&f, limit).await?)
}

/// `GET /api/v1/logs/errors`: 4xx/5xx responses and failed OAuth steps.
pub async fn errors(m: &Manager, caller: &Caller, r: SearchRequest) -> ManageResult<Page> {
    let (mut f, limit) = filter(m, caller, r).await?;
    f.errors_only = true;
    Ok(log_store(m).await?.search(&f, limit).await?)
}

/// `GET /api/v1/logs/events`: hourly counts, error rates, latency
/// percentiles and unique visitors per host.
pub async fn stats(m: &Manager, caller: &Caller, r: StatsRequest) -> ManageResult<Stats> {
    let window = SearchRequest {
        hours: r.hours,
        host: r.host,
        ..SearchRequest::default()
    };
    let (f, _) = filter(m, caller, window).await?;
    Ok(log_store(m).await?.stats(&f).await?)
}

/// `GET /api/v1/logs/follow`: matching records as they are written.
/// The time window does not apply; the stream ends when the store fails.
pub async fn follow(m: &Manager, caller: &Caller, r: SearchRequest) -> ManageResult<BoxStream<'static, Record>> {
    let (mut f, _) = filter(m, caller, r).await?;
    f.since = 0;
    f.until = i64::MAX;
    let store = log_store(m).await?;
    let start = store.tail_start().await?;
    let stream = futures::stream::unfold((start, Vec::<Record>::new()), move |(mut pos, mut pending)| {
        let f = f.clone();
        async move {
            loop {
                if let Some(r) = pending.pop() {
                    return Some((r, (pos, pending)));
                }
                tokio::time::sleep(FOLLOW_POLL).await;
                let (records, next): (Vec<Record>, TailPos) = store.tail(&pos).await.ok()?;
                pos = next;
                pending = records.into_iter().filter(|r| f.matches(r)).rev().collect();
            }
        }
    });
    Ok(stream.boxed())
}
