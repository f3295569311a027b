//! Form and query parameters as OAuth reads them: repeated parameters kept
//! (`resource`), single-valued ones refused when repeated, client
//! credentials from HTTP Basic or the body.

use axum::http::HeaderMap;
use base64::Engine;

use super::{OAuthError, OAuthResult};

/// Decoded `application/x-www-form-urlencoded` pairs.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a query string or form body.
    pub fn parse(raw: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    /// A single-valued parameter; repeated → `invalid_request`.
    pub fn get(&self, name: &str) -> OAuthResult<Option<&str>> {
        let mut it = self.0.iter().filter(|(k, _)| k == name);
        let first = it.next().map(|(_, v)| v.as_str());
        if it.next().is_some() {
            return Err(OAuthError::invalid_request(format!("parameter {name} was given more than once")));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }

    /// A required single-valued parameter.
    pub fn require(&self, name: &str) -> OAuthResult<&str> {
        self.get(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }

    /// Every value of a repeatable parameter.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Space-separated scope list.
    pub fn scopes(&self) -> OAuthResult<Vec<String>> {
        Ok(self
            .get("scope")?
            .map(|s| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default())
    }
}

/// Client credentials: HTTP Basic (RFC 6749 §2.3.1, form-decoded) or body parameters.
pub fn client_credentials(headers: &HeaderMap, p: &Params) -> OAuthResult<(String, Option<String>)> {
    if let Some(h) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(b64) = h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
            let text = String::from_utf8(raw).map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) = text
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let dec = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            return Ok((dec(id), Some(dec(secret))));
        }
    }
    let id = p
        .get("client_id")?
        .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
    Ok((id.to_string(), p.get("client_secret")?.map(String::from)))
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let h = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}
