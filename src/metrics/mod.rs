//! Prometheus metrics: one registry for the control and data planes,
//! exposed as text on the control plane's `/metrics`.

use once_cell::sync::Lazy;
use prometheus::{
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge, Encoder, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, TextEncoder,
};

/// Admin API requests by method, matched route and status.
pub static API_REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_api_requests_total",
        "Control plane requests",
        &["method", "route", "status"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Status class labels, indexed by `status / 100 - 1` (index 5: no response).
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// Index into [`STATUS_CLASSES`] for a status code (0 = none written).
pub fn status_class(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100 - 1),
        _ => 5,
    }
}

/// Data plane requests by proxy host and status class.
pub static PROXY_REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!("portcullis_requests_total", "Data plane requests", &["host", "status_class"])
        .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Upstream response time (first byte of the response header), by host.
pub static UPSTREAM_SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec!(
        "portcullis_upstream_response_seconds",
        "Time from sending the request upstream to its response header",
        &["host"],
        vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Downstream requests in flight.
pub static ACTIVE_REQUESTS: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!("portcullis_active_downstream_requests", "Downstream requests being served")
        .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// TLS handshakes by outcome (`ok`, `default_cert`, `failed`).
pub static TLS_HANDSHAKES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_tls_handshakes_total",
        "TLS certificate selections by outcome",
        &["outcome"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Snapshot rebuilds by result.
pub static SNAPSHOT_REBUILDS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!("portcullis_snapshot_rebuilds_total", "Routing snapshot rebuilds", &["result"])
        .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Unix time of the snapshot in use (age = now - this).
pub static SNAPSHOT_TIMESTAMP: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "portcullis_snapshot_built_timestamp_seconds",
        "Unix time the routing snapshot in use was built"
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Change events received from the store.
pub static CHANGE_EVENTS: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter!("portcullis_change_events_total", "Change events received").unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Client-caused failures of the data plane, by kind: `head_timeout` (a
/// request head or idle keep-alive deadline passed mid-head), `head_too_large`
/// (431), `bad_head` (400), `closed` (the client closed or reset mid-head),
/// `aborted` (the client went away or stalled during a request's body or
/// response).
/// Logged at debug level only: they are the clients' doing, not ours.
pub static CLIENT_ERRORS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_client_errors_total",
        "Requests the client broke off or got wrong (logged at debug level)",
        &["kind"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Counts a request head the client broke off or got wrong (pingora's
/// `request_head_error` hook) under its [`CLIENT_ERRORS`] kind.
pub fn client_head_error(e: &pingora::Error) {
    let kind = match e.etype() {
        pingora::ErrorType::ReadTimedout => "head_timeout",
        pingora::ErrorType::HTTPStatus(431) => "head_too_large",
        pingora::ErrorType::InvalidHTTPHeader => "bad_head",
        _ => "closed",
    };
    CLIENT_ERRORS.with_label_values(&[kind]).inc();
}

/// The [`CLIENT_ERRORS`] kinds; `tls_handshake` (a failed or abandoned TLS
/// handshake, counted by the vendored pingora-core) is brought up to date
/// on each scrape.
pub const CLIENT_ERROR_KINDS: [&str; 6] = ["head_timeout", "head_too_large", "bad_head", "closed", "aborted", "tls_handshake"];

/// Connections closed at once, by reason: `per_ip_limit`
/// (`MAX_CONNECTIONS_PER_IP`), `untrusted_proxy` (a PROXY listener peer not in
/// `TRUSTED_PROXIES`), `bad_proxy_header`.
pub static CONNECTIONS_REFUSED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_connections_refused_total",
        "Data plane connections closed before any request",
        &["reason"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// The [`CONNECTIONS_REFUSED`] reasons.
pub const REFUSAL_REASONS: [&str; 3] = ["per_ip_limit", "untrusted_proxy", "bad_proxy_header"];

/// Signing key refreshes asked for by tokens with an unknown `kid`, by
/// result: `changed` (new keys swapped in), `unchanged`, `failed`, and
/// `skipped` (answered 401 at once: a refresh ran less than the refresh
/// interval ago).
pub static KEY_REFRESHES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_key_refreshes_total",
        "Signing key refreshes asked for by unknown key ids",
        &["result"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Registers process metrics and touches every metric so they appear at zero.
pub fn init() {
    #[cfg(target_os = "linux")]
    {
        let _ = prometheus::register(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
    }
    Lazy::force(&API_REQUESTS);
    Lazy::force(&PROXY_REQUESTS);
    Lazy::force(&UPSTREAM_SECONDS);
    Lazy::force(&ACTIVE_REQUESTS);
    for outcome in ["ok", "default_cert", "failed"] {
        TLS_HANDSHAKES.with_label_values(&[outcome]);
    }
    for result in ["ok", "failed"] {
        SNAPSHOT_REBUILDS.with_label_values(&[result]);
    }
    Lazy::force(&SNAPSHOT_TIMESTAMP);
    Lazy::force(&CHANGE_EVENTS);
    for kind in CLIENT_ERROR_KINDS {
        CLIENT_ERRORS.with_label_values(&[kind]);
    }
    for reason in REFUSAL_REASONS {
        CONNECTIONS_REFUSED.with_label_values(&[reason]);
    }
    for result in ["changed", "unchanged", "failed", "skipped"] {
        KEY_REFRESHES.with_label_values(&[result]);
    }
}

/// The registry in Prometheus text format.
pub fn render() -> String {
    let handshakes = pingora::services::listening::DOWNSTREAM_HANDSHAKE_ERRORS.load(std::sync::atomic::Ordering::Relaxed);
    let counted = CLIENT_ERRORS.with_label_values(&["tls_handshake"]);
    counted.inc_by(handshakes.saturating_sub(counted.get()));
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&prometheus::gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}
