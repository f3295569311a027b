//! The admin API over HTTP: builds URLs from path segments (percent-encoded),
//! sends the bearer token, and turns non-2xx answers into [`CliError::Api`].

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::Value;
use url::Url;

use super::error::{CliError, CliResult};

/// A client of one admin API with one token.
pub struct Api {
    base: Url,
    token: String,
    http: reqwest::Client,
}

/// Parses a base URL (`--api-url`, an OAuth issuer): absolute `http://` or
/// `https://` (the admin API listens on plain HTTP, but may sit behind TLS).
pub fn parse_base(raw: &str) -> CliResult<Url> {
    let bad = |reason: &str| CliError::BadUrl {
        url: raw.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("expected an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    Ok(url)
}

/// `base` with `segments` appended, each percent-encoded as one path segment.
pub fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Refuses segments that would not reach the endpoint they name: `.` and
/// `..` (dropped by every URL parser, so the request would go to the parent
/// path) and an empty segment before the last (the collection instead of
/// one of its members). A final `""` is the trailing slash of a collection.
pub fn check_segments(segments: &[&str]) -> CliResult<()> {
    let last = segments.len().saturating_sub(1);
    match segments
        .iter()
        .enumerate()
        .find(|(i, s)| matches!(**s, "." | "..") || (s.is_empty() && *i != last))
    {
        Some((_, bad)) => Err(CliError::BadName((*bad).to_string())),
        None => Ok(()),
    }
}

/// The innermost cause of an error: for a refused connection this is the
/// OS message rather than reqwest's generic "error sending request".
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Builds the error for a non-2xx answer from its status and body.
pub fn api_error(status: u16, body: &str) -> CliError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |k: &str| parsed.as_ref().and_then(|v| v.get(k)).and_then(Value::as_str).map(str::to_string);
    match (field("message"), field("error")) {
        (Some(message), code) => CliError::Api {
            status,
            code: code.unwrap_or_default(),
            message,
        },
        (None, Some(code)) => CliError::Api {
            status,
            message: code.clone(),
            code,
        },
        (None, None) => {
            let text: String = body.trim().chars().take(200).collect();
            let message = if text.is_empty() {
                format!("HTTP {status} with an empty body")
            } else {
                format!("HTTP {status}: {text}")
            };
            CliError::Api {
                status,
                code: String::new(),
                message,
            }
        }
    }
}

/// The HTTP client every CLI request uses (rustls with the system's roots).
pub fn client() -> CliResult<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("portcullis-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CliError::Runtime(root_cause(&e)))
}

/// Why a request got no answer, in one line.
pub fn send_failure(e: &reqwest::Error, hint: &str) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() && !hint.is_empty() {
        format!("{} ({hint})", root_cause(e))
    } else {
        root_cause(e)
    }
}

impl Api {
    /// A client of the admin API at `api_url` calling with `token`.
    pub fn new(api_url: &str, token: &str) -> CliResult<Self> {
        let token = Some(token.trim()).filter(|t| !t.is_empty()).ok_or(CliError::MissingToken)?;
        if reqwest::header::HeaderValue::from_str(token).is_err() {
            return Err(CliError::UnsendableToken);
        }
        let base = parse_base(api_url)?;
        Ok(Self {
            base,
            token: token.to_string(),
            http: client()?,
        })
    }

    /// The same API, called with another bearer token.
    pub fn as_token(&self, token: &str) -> Self {
        Self {
            base: self.base.clone(),
            token: token.to_string(),
            http: self.http.clone(),
        }
    }

    async fn send(&self, method: Method, segments: &[&str], body: Option<&Value>) -> CliResult<Response> {
        self.send_query(method, segments, &[], body).await
    }

    /// Like `send`, with query parameters.
    async fn send_query(&self, method: Method, segments: &[&str], query: &[(&str, String)], body: Option<&Value>) -> CliResult<Response> {
        check_segments(segments)?;
        let mut path = vec!["api", "v1"];
        path.extend_from_slice(segments);
        let mut url = endpoint(&self.base, &path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| CliError::Unreachable {
            url: self.base.as_str().trim_end_matches('/').to_string(),
            reason: send_failure(&e, "is `portcullis serve` running? set API_URL or --api-url"),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        Err(api_error(status.as_u16(), &text))
    }

    async fn json(&self, method: Method, segments: &[&str], body: Option<&Value>) -> CliResult<Value> {
        Self::parse(self.send(method, segments, body).await?).await
    }

    async fn parse(resp: Response) -> CliResult<Value> {
        let bytes = resp.bytes().await.map_err(|e| CliError::Protocol(root_cause(&e)))?;
        serde_json::from_slice(&bytes).map_err(|e| CliError::Protocol(format!("the body is not JSON ({e})")))
    }

    // Every method takes path segments under `/api/v1/`; a trailing "" adds a slash.

    /// `GET`, expecting JSON.
    pub async fn get(&self, segments: &[&str]) -> CliResult<Value> {
        self.json(Method::GET, segments, None).await
    }

    /// `GET` with query parameters, expecting JSON.
    pub async fn get_query(&self, segments: &[&str], query: &[(&str, String)]) -> CliResult<Value> {
        Self::parse(self.send_query(Method::GET, segments, query, None).await?).await
    }

    /// `GET` with query parameters, the response left open (an event stream).
    pub async fn stream(&self, segments: &[&str], query: &[(&str, String)]) -> CliResult<Response> {
        self.send_query(Method::GET, segments, query, None).await
    }

    /// `GET`, expecting text.
    pub async fn get_text(&self, segments: &[&str]) -> CliResult<String> {
        let resp = self.send(Method::GET, segments, None).await?;
        resp.text().await.map_err(|e| CliError::Protocol(root_cause(&e)))
    }

    /// `POST` a JSON body.
    pub async fn post(&self, segments: &[&str], body: &Value) -> CliResult<Value> {
        self.json(Method::POST, segments, Some(body)).await
    }

    /// `PUT` a JSON body.
    pub async fn put(&self, segments: &[&str], body: &Value) -> CliResult<Value> {
        self.json(Method::PUT, segments, Some(body)).await
    }

    /// `DELETE`.
    pub async fn delete(&self, segments: &[&str]) -> CliResult<Value> {
        self.json(Method::DELETE, segments, None).await
    }

    /// `DELETE` with query parameters (options of the delete).
    pub async fn delete_query(&self, segments: &[&str], query: &[(&str, String)]) -> CliResult<Value> {
        Self::parse(self.send_query(Method::DELETE, segments, query, None).await?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_append_encoded_segments() {
        let base = parse_base("http://127.0.0.1:9000").unwrap();
        assert_eq!(
            endpoint(&base, &["api", "v1", "tokens", ""]).as_str(),
            "http://127.0.0.1:9000/api/v1/tokens/"
        );
        assert_eq!(
            endpoint(&base, &["api", "v1", "routes", "a/b c"]).as_str(),
            "http://127.0.0.1:9000/api/v1/routes/a%2Fb%20c"
        );
        let prefixed = parse_base("http://h:1/admin/").unwrap();
        assert_eq!(endpoint(&prefixed, &["api", "v1"]).as_str(), "http://h:1/admin/api/v1");
    }

    #[test]
    fn dot_and_empty_names_are_refused_before_any_request() {
        assert!(check_segments(&["tokens", ""]).is_ok());
        assert!(check_segments(&["proxy", "targets", "a..b", "auth"]).is_ok());
        for bad in [".", ".."] {
            let e = check_segments(&["proxy", "targets", bad, "auth"]).err();
            assert!(matches!(&e, Some(CliError::BadName(n)) if n == bad), "{e:?}");
        }
        assert!(check_segments(&["proxy", "targets", "", "auth"]).is_err());
        assert!(check_segments(&["proxy", "targets", ".."]).is_err());
    }

    #[test]
    fn http_and_https_urls_are_accepted() {
        assert!(parse_base("https://auth.example.com").is_ok());
        assert!(parse_base("http://[::1]:9000").is_ok());
        assert!(parse_base("127.0.0.1:9000").is_err());
        assert!(parse_base("ftp://h").is_err());
        assert!(parse_base("http://").is_err());
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_named_as_such() {
        let e = Api::new("http://127.0.0.1:9000", "abc\u{7f}def").err();
        assert!(matches!(e, Some(CliError::UnsendableToken)), "{e:?}");
        assert!(Api::new("http://127.0.0.1:9000", "pc_abcdef").is_ok());
    }

    #[test]
    fn api_errors_use_the_server_message() {
        let e = api_error(422, r#"{"error":"validation_error","message":"hostname: bad","field":"hostname"}"#);
        assert!(matches!(&e, CliError::Api { status: 422, code, message } if code == "validation_error" && message == "hostname: bad"));
        assert_eq!(api_error(502, "Bad Gateway").to_string(), "HTTP 502: Bad Gateway");
        assert_eq!(api_error(500, "").to_string(), "HTTP 500 with an empty body");
    }
}
