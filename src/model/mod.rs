//! The domain records users manage (proxies, routes, tokens, certificates)
//! and the validation every front end (REST, CLI, MCP) relies on.

mod cert;
mod claims;
mod mcp_policy;
pub mod patch;
mod proxy;
mod proxy_request;
mod resource;
mod resource_request;
mod route;
mod route_request;
mod token;
mod token_request;

pub use cert::{CertInfo, Certificate};
pub use claims::{AccessClaims, LEEWAY_SECS};
pub use mcp_policy::McpRule;
pub use proxy::{reserved_header, AuthMode, Proxy, RouteMode, MASKED};
pub use proxy_request::{AutoCertOptions, ProxyKey, ProxyPatch, ProxySpec, ProxyUpdate};
pub use resource::Resource;
pub use resource_request::{
    ProxyAuthSettings, ProxyAuthUpdate, ProxyResourceSettings, ProxyResourceUpdate, ResourceKey, ResourcePatch, ResourceSpec,
    ResourceTokenCheck, ResourceUpdate, TokenCheck,
};
pub use route::{Route, RouteScope, TargetType, MAX_PRIORITY};
pub use route_request::{RouteKey, RoutePatch, RouteSpec, RouteUpdate};
pub use token::{Token, TokenScope, TokenView};
pub use token_request::{TokenEmail, TokenKey, TokenSpec};

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

/// Longest URL accepted anywhere (targets, services).
pub const MAX_URL_LEN: usize = 2048;

/// Checks that `url` is an absolute http(s) URL with a host, at most
/// [`MAX_URL_LEN`] long, without credentials (`user:pass@` would be stored
/// and shown in clear) and without control characters (the URL parser drops
/// tabs and line breaks silently, so they are refused before parsing).
pub fn validate_http_url(field: &str, url: &str) -> Result<url::Url, ValidationError> {
    if url.len() > MAX_URL_LEN {
        return Err(ValidationError::new(field, format!("longer than {MAX_URL_LEN} characters")));
    }
    if let Some(c) = url.chars().find(|c| c.is_control()) {
        return Err(ValidationError::new(field, format!("contains the control character {c:?}")));
    }
    let parsed = url::Url::parse(url).map_err(|e| ValidationError::new(field, format!("not a valid URL: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ValidationError::new(
            field,
            "a URL with credentials (user:password@) is not accepted; use custom_headers for upstream auth",
        ));
    }
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ValidationError::new(field, "scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(field, "URL has no host"));
    }
    Ok(parsed)
}

/// True when certificate name `san` (maybe a wildcard `*.parent`) covers `host`.
pub fn cert_covers(san: &str, host: &str) -> bool {
    san == host
        || san
            .strip_prefix("*.")
            .is_some_and(|parent| host.split_once('.').is_some_and(|(_, p)| p == parent))
}

/// Most entries of a list or map field (headers, user lists, hostnames).
pub const MAX_ENTRIES: usize = 100;
/// Longest single entry of a list field, header name or short string.
pub const MAX_ENTRY_LEN: usize = 256;
/// Longest header value, path pattern or description.
pub const MAX_TEXT_LEN: usize = 4096;

/// Checks the size limits of a list field (README, "Limits").
pub fn check_list_size(field: &str, items: &[String]) -> Result<(), ValidationError> {
    if items.len() > MAX_ENTRIES {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_ENTRIES} entries (got {})", items.len()),
        ));
    }
    if let Some(long) = items.iter().find(|s| s.len() > MAX_ENTRY_LEN) {
        return Err(ValidationError::new(
            field,
            format!("entries are at most {MAX_ENTRY_LEN} characters ({} given)", long.len()),
        ));
    }
    Ok(())
}

/// Checks the length of a free-text field.
pub fn check_text_len(field: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.len() > max {
        return Err(ValidationError::new(field, format!("at most {max} characters ({} given)", s.len())));
    }
    Ok(())
}

/// Current time as RFC 3339 text, the format of every `*_at` field.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
