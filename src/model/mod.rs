//! The domain records users manage (proxies, routes, tokens, certificates)
//! and the validation every front end (REST, CLI, MCP) relies on.

mod cert;
mod proxy;
mod route;
mod token;

pub use cert::{CertInfo, Certificate};
pub use proxy::{AuthMode, Proxy, RouteMode, MASKED};
pub use route::{Route, RouteScope, TargetType, MAX_PRIORITY};
pub use token::{Token, TokenScope, TokenView};

use thiserror::Error;

/// Input that fails validation; `field` names the offending field.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The JSON field at fault.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ValidationError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// True for a DNS hostname: 1-253 chars, labels of letters, digits and hyphens,
/// no leading/trailing hyphen. Lowercase only: callers lowercase first.
pub fn valid_hostname(h: &str) -> bool {
    if h.is_empty() || h.len() > 253 {
        return false;
    }
    h.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// True for a name usable as part of a store key (tokens, certificates, routes, services).
pub fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 128 && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks that `url` is an absolute http(s) URL with a host.
pub fn validate_http_url(field: &str, url: &str) -> Result<url::Url, ValidationError> {
    let parsed = url::Url::parse(url).map_err(|e| ValidationError::new(field, format!("not a valid URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ValidationError::new(field, "scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(field, "URL has no host"));
    }
    Ok(parsed)
}

/// Current time as RFC 3339 text, the format of every `*_at` field.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
