//! The route record: a priority-ordered path rule that sends matching
//! requests to a port, a named service, another proxy's target, or a URL.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_list_size, check_text_len, valid_hostname, valid_name, validate_http_url, ValidationError, MAX_TEXT_LEN, MAX_URL_LEN};

/// Highest accepted priority; higher is checked first.
pub const MAX_PRIORITY: i64 = 1000;

/// What `target_value` names.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// `127.0.0.1:<port>` over HTTP.
    Port,
    /// A named service URL from the store (`service:url:{name}`).
    Service,
    /// The `target_url` of the proxy for that hostname.
    Hostname,
    /// Any http(s) URL.
    Url,
}

/// Where a route applies.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteScope {
    /// Every proxy.
    #[default]
    Global,
    /// Only the proxies in `proxy_hostnames`.
    Proxy,
}

pub(super) fn yes() -> bool {
    true
}
pub(super) fn default_priority() -> i64 {
    50
}

/// A route as stored and returned by the API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Stable id; generated from the path when not given.
    #[serde(default)]
    pub route_id: String,
    /// Path prefix, or a regex when `is_regex`.
    pub path_pattern: String,
    /// Kind of target.
    pub target_type: TargetType,
    /// Port, service name, hostname or URL.
    pub target_value: String,
    /// 0..=1000, higher first.
    #[serde(default = "default_priority")]
    pub priority: i64,
    /// Allowed methods; empty means any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// `path_pattern` is a regular expression.
    #[serde(default)]
    pub is_regex: bool,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Disabled routes never match.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Global or proxy scoped.
    #[serde(default)]
    pub scope: RouteScope,
    /// Proxies of a proxy-scoped route.
    #[serde(default)]
    pub proxy_hostnames: Vec<String>,
    /// Auth override for this route: `true` requires a token even when the
    /// proxy's auth is off, `false` skips the check; unset follows the proxy.
    #[serde(default)]
    pub auth_required: Option<bool>,
    /// Scopes a token must carry (all of them) for this route.
    #[serde(default)]
    pub auth_scopes: Option<Vec<String>>,
    /// Hash of the owning token.
    #[serde(default)]
    pub owner_token_hash: String,
    /// Name of the creating token.
    #[serde(default)]
    pub created_by: String,
    /// Creation time.
    #[serde(default)]
    pub created_at: String,
}

const METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];

impl Route {
    /// Normalises and validates; generates `route_id` when empty.
    pub fn validate(&mut self) -> Result<(), ValidationError> {
        if self.path_pattern.is_empty() {
            return Err(ValidationError::new("path_pattern", "must not be empty"));
        }
        check_text_len("path_pattern", &self.path_pattern, MAX_URL_LEN)?;
        if self.path_pattern.chars().any(char::is_control) {
            return Err(ValidationError::new("path_pattern", "must not contain control characters"));
        }
        check_text_len("description", &self.description, MAX_TEXT_LEN)?;
        check_list_size("proxy_hostnames", &self.proxy_hostnames)?;
        check_list_size("auth_scopes", self.auth_scopes.as_deref().unwrap_or_default())?;
        if self.is_regex {
            regex::Regex::new(&self.path_pattern).map_err(|e| ValidationError::new("path_pattern", format!("invalid regex: {e}")))?;
        } else if !self.path_pattern.starts_with('/') {
            return Err(ValidationError::new("path_pattern", "a path prefix must start with '/'"));
        }
        if !(0..=MAX_PRIORITY).contains(&self.priority) {
            return Err(ValidationError::new("priority", format!("must be between 0 and {MAX_PRIORITY}")));
        }
        self.target_value = self.target_value.trim().to_string();
        match self.target_type {
            TargetType::Port => {
                if !matches!(self.target_value.parse::<u16>(), Ok(p) if p > 0) {
                    return Err(ValidationError::new("target_value", "a port target must be a number 1-65535"));
                }
            }
            TargetType::Service => {
                if !valid_name(&self.target_value) {
                    return Err(ValidationError::new("target_value", "a service target must be a service name"));
                }
            }
            TargetType::Hostname => {
                self.target_value = self.target_value.to_ascii_lowercase();
                if !valid_hostname(&self.target_value) {
                    return Err(ValidationError::new("target_value", "a hostname target must be a valid hostname"));
                }
            }
            TargetType::Url => {
                validate_http_url("target_value", &self.target_value)?;
            }
        }
        for m in &mut self.methods {
            *m = m.trim().to_ascii_uppercase();
        }
        self.methods.retain(|m| m != "*");
        if let Some(bad) = self.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(ValidationError::new("methods", format!("unknown method {bad:?}")));
        }
        self.proxy_hostnames = self.proxy_hostnames.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        if let Some(bad) = self.proxy_hostnames.iter().find(|h| !valid_hostname(h)) {
            return Err(ValidationError::new("proxy_hostnames", format!("{bad:?} is not a valid hostname")));
        }
        if self.scope == RouteScope::Proxy && self.proxy_hostnames.is_empty() {
            return Err(ValidationError::new(
                "proxy_hostnames",
                "a proxy-scoped route needs at least one hostname",
            ));
        }
        if self.route_id.is_empty() {
            self.route_id = generated_id(&self.path_pattern);
        }
        if !valid_name(&self.route_id) {
            return Err(ValidationError::new("route_id", "letters, digits, '-', '_' and '.' only"));
        }
        Ok(())
    }

    /// True when this route may serve `method`.
    pub fn allows_method(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }
}

/// `slug-xxxxxxxx`: a readable id from the path plus 8 random hex digits.
fn generated_id(path: &str) -> String {
    let slug: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug = if slug.is_empty() {
        "root".to_string()
    } else {
        slug.chars().take(40).collect()
    };
    format!("{slug}-{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(v: serde_json::Value) -> Result<Route, ValidationError> {
        let mut r: Route = serde_json::from_value(v).expect("shape");
        r.validate().map(|_| r)
    }

    #[test]
    fn generates_ids_and_normalises_methods() {
        let r =
            route(serde_json::json!({"path_pattern": "/api/v1/", "target_type": "port", "target_value": "8080", "methods": ["get", "*"]}))
                .unwrap();
        assert!(r.route_id.starts_with("api-v1-"));
        assert_eq!(r.methods, vec!["GET"]);
    }

    #[test]
    fn rejects_bad_input_naming_the_field() {
        let cases = [
            (
                serde_json::json!({"path_pattern": "([", "is_regex": true, "target_type": "port", "target_value": "1"}),
                "path_pattern",
            ),
            (
                serde_json::json!({"path_pattern": "/", "target_type": "port", "target_value": "70000"}),
                "target_value",
            ),
            (
                serde_json::json!({"path_pattern": "/", "target_type": "url", "target_value": "ftp://x"}),
                "target_value",
            ),
            (
                serde_json::json!({"path_pattern": "/", "target_type": "url", "target_value": "http://x", "priority": 1001}),
                "priority",
            ),
            (
                serde_json::json!({"path_pattern": "/", "target_type": "url", "target_value": "http://x", "scope": "proxy"}),
                "proxy_hostnames",
            ),
            (
                serde_json::json!({"path_pattern": "/", "target_type": "url", "target_value": "http://x", "methods": ["FETCH"]}),
                "methods",
            ),
        ];
        for (v, field) in cases {
            assert_eq!(route(v).unwrap_err().field, field);
        }
    }
}
