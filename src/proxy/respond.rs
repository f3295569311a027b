//! Responses the data plane writes itself (errors, redirects).

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

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

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: String) -> Self {
        Self {
            status,
            headers: vec![("Location", location)],
            body: Bytes::new(),
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
