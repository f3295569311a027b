//! The batching writer: a bounded queue filled by the request path, drained
//! every [`BATCH_WINDOW`] by a background service that prints the access log
//! and writes the batch to the request-log store in one pipelined call. A
//! full queue drops records and counts them; the request never waits.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use once_cell::sync::Lazy;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prometheus::{register_int_counter, register_int_counter_vec, IntCounter, IntCounterVec};
use tokio::sync::mpsc;

use super::capture::Finished;
use super::json_line::Lines;
use super::record::{redact_query, truncate, Record, MAX_TEXT};
use super::store::LogStore;
use crate::config::Config;

/// The reference's batching window: one store write per window at most.
pub const BATCH_WINDOW: Duration = Duration::from_millis(100);

/// Records waiting for the writer before new ones are dropped: at 100 ms
/// windows, room for 160 000 requests a second.
const QUEUE_CAPACITY: usize = 16_384;

/// Most records in one store write (a longer queue is written in several).
const MAX_BATCH: usize = 2_048;

/// Recent records kept in memory for `follow` on the embedded store.
const RECENT_CAPACITY: usize = 4_096;

/// What the writer receives.
pub enum Item {
    /// A request that went through the data plane.
    Request(Box<Finished>),
    /// An OAuth flow event (already a record).
    Event(Box<Record>),
}

/// The queue's sending side, set once by [`RequestLogService::new`] when the
/// access log or the store is on; `None` means nothing is recorded at all.
static QUEUE: OnceLock<mpsc::Sender<Item>> = OnceLock::new();

/// The latest records written, for `follow` on the embedded store (Redis
/// followers read `stream:requests`, so nothing is kept for them).
static RECENT: Lazy<Mutex<VecDeque<Record>>> = Lazy::new(|| Mutex::new(VecDeque::with_capacity(RECENT_CAPACITY)));

/// Records dropped because the queue was full.
pub static DROPPED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter!(
        "portcullis_request_log_dropped_total",
        "Request log records dropped because the writer's queue was full"
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Records written, and batches that failed, by outcome.
pub static WRITTEN: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_request_log_records_total",
        "Request log records handled by the writer, by outcome (stored, failed)",
        &["outcome"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Registers the writer's metrics at zero.
pub fn init_metrics() {
    Lazy::force(&DROPPED);
    for outcome in ["stored", "failed"] {
        WRITTEN.with_label_values(&[outcome]);
    }
}

/// True when requests are recorded (access log or store).
pub fn enabled() -> bool {
    QUEUE.get().is_some()
}

/// Queues an item; drops and counts it when the queue is full or closed.
pub fn submit(item: Item) {
    if let Some(q) = QUEUE.get() {
        if q.try_send(item).is_err() {
            DROPPED.inc();
        }
    }
}

/// Records with `ts` above `after` among the latest written, oldest first.
pub fn recent_after(after: i64) -> Vec<Record> {
    let recent = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    recent.iter().filter(|r| r.ts > after).cloned().collect()
}

/// RFC 3339 (UTC, microseconds) of a record timestamp.
pub fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp_micros(ts)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Milliseconds of a duration as a float with microsecond precision.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// The Host as sent, reduced to a lookup form (lowercase, no port); a
/// value with characters no hostname has becomes `invalid`, since hostnames
/// become parts of index keys.
fn host_of(raw: &str) -> String {
    let host = if raw.starts_with('[') {
        raw.find(']').map_or(raw, |i| &raw[..=i])
    } else {
        raw.split(':').next().unwrap_or_default()
    };
    let host = truncate(host.trim_end_matches('.'), 253);
    if host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b)) {
        host.to_ascii_lowercase()
    } else {
        "invalid".into()
    }
}

/// Texts the writer would otherwise format for every record, kept from
/// the record before: in a batch most records share the second of their
/// timestamp, the client and the upstream.
#[derive(Default)]
struct Recent {
    second: Option<i64>,
    /// RFC 3339 of `second` up to and including the decimal point.
    prefix: String,
    ip: Option<(IpAddr, String)>,
    upstream: Option<(SocketAddr, String)>,
}

impl Recent {
    /// [`rfc3339`] of `ts`, formatting the date and time once per second.
    fn timestamp(&mut self, ts: i64) -> String {
        let second = ts.div_euclid(1_000_000);
        if self.second != Some(second) {
            let full = rfc3339(second * 1_000_000);
            self.prefix = full[..full.len() - "000000Z".len()].to_string();
            self.second = Some(second);
        }
        let mut digits = [b'0'; 6];
        let mut micros = ts.rem_euclid(1_000_000);
        for d in digits.iter_mut().rev() {
            *d = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        let mut out = String::with_capacity(self.prefix.len() + 7);
        out.push_str(&self.prefix);
        out.extend(digits.iter().map(|&d| char::from(d)));
        out.push('Z');
        out
    }

    fn ip(&mut self, ip: IpAddr) -> String {
        match &self.ip {
            Some((last, text)) if *last == ip => text.clone(),
            _ => self.ip.insert((ip, ip.to_string())).1.clone(),
        }
    }

    fn upstream(&mut self, addr: SocketAddr) -> String {
        match &self.upstream {
            Some((last, text)) if *last == addr => text.clone(),
            _ => self.upstream.insert((addr, addr.to_string())).1.clone(),
        }
    }
}

/// A header value as text: ids are ASCII, so the checked conversion nearly
/// always succeeds and skips `from_utf8_lossy`'s chunk-by-chunk scan.
fn text_of(v: &http::HeaderValue) -> String {
    match std::str::from_utf8(v.as_bytes()) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
    }
}

/// Builds the stored record of a finished request (off the request path).
fn record_of(f: Finished, recent: &mut Recent) -> Record {
    let host = match (&f.entry, &f.raw_host) {
        (Some(e), _) => e.proxy.hostname.clone(),
        (None, Some(h)) => host_of(&String::from_utf8_lossy(h.as_bytes())),
        (None, None) => host_of(f.uri.host().unwrap_or_default()),
    };
    let claims = f.identity.as_ref().map(|i| &i.claims);
    Record {
        ts: f.ts,
        timestamp: recent.timestamp(f.ts),
        kind: "request".into(),
        request_id: f.request_id.as_ref().map(text_of),
        trace_id: f.trace_id.as_ref().map(text_of),
        client_ip: f.client_ip.map(|ip| recent.ip(ip)).unwrap_or_default(),
        method: f.method.as_str().to_string(),
        path: truncate(f.uri.path(), MAX_TEXT).to_string(),
        query: f.uri.query().map(redact_query),
        status: f.status,
        bytes_in: f.bytes_in,
        bytes_out: f.bytes_out,
        upstream: f.upstream.map(|a| recent.upstream(a)),
        upstream_ms: f.upstream_took.map(millis),
        duration_ms: millis(f.took),
        route_id: f.route.map(|r| r.route.route_id.clone()),
        proxy: f.entry.as_ref().map(|e| e.proxy.hostname.clone()),
        user: claims.map(|c| c.preferred_username.clone()).filter(|u| !u.is_empty()),
        client_id: claims.map(|c| c.client_id.clone()).filter(|c| !c.is_empty()),
        scopes: claims.map(|c| c.scope.clone()).filter(|s| !s.is_empty()),
        tls_version: f.tls_version.map(|v| v.into_owned()),
        sni: f.sni.map(|s| s.to_string()),
        event: None,
        reason: f.error.map(|(source, kind)| format!("{source} {kind}")),
        host,
    }
}

/// The background service that drains the queue.
pub struct RequestLogService {
    config: std::sync::Arc<Config>,
    queue: Mutex<Option<mpsc::Receiver<Item>>>,
}

impl RequestLogService {
    /// Creates the queue (the request path starts recording) and the service
    /// that drains it; `None` when both the access log and the store are off.
    pub fn new(config: std::sync::Arc<Config>) -> Option<Self> {
        let c = &config.request_log;
        if !c.access_log && !c.store {
            return None;
        }
        init_metrics();
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        QUEUE.set(tx).ok()?;
        Some(RequestLogService {
            config,
            queue: Mutex::new(Some(rx)),
        })
    }
}

/// Prints the access log lines of a batch with one write.
fn print_access_log(lines: &Lines) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(lines.as_bytes()).and_then(|()| out.flush());
}

/// Keeps the batch in the in-memory tail for `follow`.
fn remember(batch: &[Record]) {
    let mut recent = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    for r in batch {
        if recent.len() == RECENT_CAPACITY {
            recent.pop_front();
        }
        recent.push_back(r.clone());
    }
}

#[async_trait]
impl BackgroundService for RequestLogService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut rx) = self.queue.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let c = self.config.request_log;
        let store = if c.store {
            loop {
                match LogStore::open(&self.config).await {
                    Ok(s) => break Some(s),
                    Err(e) => tracing::warn!(error = %e, "request log store not reachable yet; retrying"),
                }
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        } else {
            None
        };
        let mut tick = tokio::time::interval(BATCH_WINDOW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut items = Vec::with_capacity(MAX_BATCH);
        let mut recent = Recent::default();
        let mut last_failure_logged: Option<std::time::Instant> = None;
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = shutdown.changed() => true,
            };
            loop {
                items.clear();
                while items.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(i) => items.push(i),
                        Err(_) => break,
                    }
                }
                if items.is_empty() {
                    break;
                }
                let batch: Vec<Record> = items
                    .drain(..)
                    .map(|i| match i {
                        Item::Request(f) => record_of(*f, &mut recent),
                        Item::Event(r) => *r,
                    })
                    .collect();
                let lines = Lines::of(&batch);
                if c.access_log {
                    print_access_log(&lines);
                }
                if let Some(store) = &store {
                    match store.write(&batch, &lines, c.retention).await {
                        Ok(()) => WRITTEN.with_label_values(&["stored"]).inc_by(batch.len() as u64),
                        Err(e) => {
                            WRITTEN.with_label_values(&["failed"]).inc_by(batch.len() as u64);
                            if last_failure_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                                tracing::warn!(error = %e, records = batch.len(), "request log batch not stored");
                                last_failure_logged = Some(std::time::Instant::now());
                            }
                        }
                    }
                    if matches!(store, LogStore::Segments(_)) {
                        remember(&batch);
                    }
                }
                if batch.len() < MAX_BATCH {
                    break;
                }
            }
            if stopping {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_texts_equal_the_formatted_ones() {
        let mut recent = Recent::default();
        for ts in [
            1_765_000_000_000_000,
            1_765_000_000_000_001,
            1_765_000_000_999_999,
            1_765_000_001_000_000,
            1_765_000_000_123_456,
        ] {
            assert_eq!(recent.timestamp(ts), rfc3339(ts), "{ts}");
        }
        let (a, b): (IpAddr, IpAddr) = ("203.0.113.7".parse().unwrap(), "::1".parse().unwrap());
        assert_eq!(
            (recent.ip(a), recent.ip(a), recent.ip(b)),
            (a.to_string(), a.to_string(), b.to_string())
        );
        let (u, v): (SocketAddr, SocketAddr) = ("127.0.0.1:80".parse().unwrap(), "[::1]:8080".parse().unwrap());
        assert_eq!(
            (recent.upstream(u), recent.upstream(v), recent.upstream(v)),
            (u.to_string(), v.to_string(), v.to_string())
        );
    }
}
