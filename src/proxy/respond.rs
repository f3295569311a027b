//! Responses the data plane writes itself (errors, redirects).

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use serde_json::json;

use crate::auth::Denial;

/// A complete response to write without contacting an upstream.
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Reply {
    /// A short plain-text response.
    pub fn text(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: Bytes::from(body),
        }
    }

    /// A JSON response with extra headers.
    pub fn json(status: u16, headers: Vec<(&'static str, String)>, body: String) -> Self {
        let mut h = vec![("Content-Type", "application/json".to_string())];
        h.extend(headers);
        Self {
            status,
            headers: h,
            body: Bytes::from(body),
        }
    }

    /// The same reply with one more header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: String) -> Self {
        Self {
            status,
            headers: vec![("Location", location)],
            body: Bytes::new(),
        }
    }
}

impl From<Denial> for Reply {
    /// The answer to a request `auth::check` refused: a JSON error, with the
    /// `WWW-Authenticate` challenge readable by browser clients (CORS) for a
    /// 401 or an insufficient scope.
    fn from(d: Denial) -> Self {
        let status = d.status();
        let challenge = |c: String| {
            vec![
                ("WWW-Authenticate", c),
                ("Access-Control-Allow-Origin", "*".into()),
                ("Access-Control-Expose-Headers", "WWW-Authenticate".into()),
            ]
        };
        match d {
            Denial::Unauthorized {
                challenge: c,
                error,
                message,
            } => Reply::json(status, challenge(c), json!({"error": error, "message": message}).to_string()),
            Denial::InsufficientScope { challenge: c, message } => Reply::json(
                status,
                challenge(c),
                json!({"error": "insufficient_scope", "message": message}).to_string(),
            ),
            Denial::Forbidden { message } => Reply::json(status, vec![], json!({"error": "access_denied", "message": message}).to_string()),
            Denial::Login { location } => Reply::redirect(status, location),
        }
    }
}

/// Writes `r` and tells pingora the request is answered.
pub async fn send(session: &mut Session, r: Reply) -> Result<bool> {
    let mut resp = ResponseHeader::build(r.status, Some(r.headers.len() + 2))?;
    for (k, v) in r.headers {
        resp.insert_header(k, v)?;
    }
    resp.insert_header("Content-Length", r.body.len().to_string())?;
    let empty = r.body.is_empty();
    session.write_response_header(Box::new(resp), empty).await?;
    if !empty {
        session.write_response_body(Some(r.body), true).await?;
    }
    Ok(true)
}
