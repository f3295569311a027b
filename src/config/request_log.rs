//! Settings of the per-request records: the access log on stdout, the
//! request-log store and its retention, and the process log's format.

use std::time::Duration;

use super::{boolean, raw, ConfigError};

/// `ACCESS_LOG`: one JSON line per request on stdout, or none.
pub const ACCESS_LOG: &str = "ACCESS_LOG";
/// `REQUEST_LOG`: `false` keeps request records out of the store.
pub const REQUEST_LOG: &str = "REQUEST_LOG";
/// `LOG_RETENTION_HOURS`: how long request records are kept (default 72).
pub const LOG_RETENTION_HOURS: &str = "LOG_RETENTION_HOURS";
/// `LOG_FORMAT`: `text` or `json` for the process log on stderr.
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// What becomes of each request's record.
#[derive(Clone, Copy, Debug)]
pub struct RequestLogConfig {
    /// Print the JSON access log line on stdout.
    pub access_log: bool,
    /// Write the record to the request-log store (Redis or segment files).
    pub store: bool,
    /// Records older than this are removed (expiry, stream trimming, old segments).
    pub retention: Duration,
    /// The process log is JSON lines instead of text.
    pub json_process_log: bool,
}

/// Reads the request-log variables. Retention may be fractional
/// (`0.001` hours) so that tests can watch records expire.
pub fn request_log_config() -> Result<RequestLogConfig, ConfigError> {
    let access_log = match raw(ACCESS_LOG).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("json") => true,
        Some("off") => false,
        Some(other) => {
            return Err(ConfigError {
                var: ACCESS_LOG,
                value: other.to_string(),
                reason: "expected json or off".into(),
            })
        }
    };
    let json_process_log = match raw(LOG_FORMAT).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(ConfigError {
                var: LOG_FORMAT,
                value: other.to_string(),
                reason: "expected text or json".into(),
            })
        }
    };
    let hours = match raw(LOG_RETENTION_HOURS) {
        None => 72.0,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(h) if h.is_finite() && h > 0.0 && h <= 24.0 * 365.0 => h,
            _ => {
                return Err(ConfigError {
                    var: LOG_RETENTION_HOURS,
                    value: v,
                    reason: "expected a number of hours above 0 and at most 8760".into(),
                })
            }
        },
    };
    Ok(RequestLogConfig {
        access_log,
        store: boolean(REQUEST_LOG, true)?,
        retention: Duration::from_secs_f64(hours * 3600.0),
        json_process_log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_defaults_to_72_hours() {
        // Only reads variables the test environment does not set.
        if std::env::var(LOG_RETENTION_HOURS).is_err() {
            let c = request_log_config().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.retention, Duration::from_secs(72 * 3600));
        }
    }
}
