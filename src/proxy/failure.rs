//! Maps proxying failures to a status, a short body and a log line, once.

use bytes::Bytes;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, Session};

/// The status for a failed proxy attempt: unreachable or refused upstreams
/// are 502, an upstream that does not answer in time 504.
pub fn status_for(e: &Error) -> u16 {
    match e.etype() {
        HTTPStatus(code) => *code,
        ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert
        | HandshakeError | SocketError | ConnectProxyFailure | BindError => 502,
        ReadTimedout | WriteTimedout if e.esource() == &ErrorSource::Upstream => 504,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                WriteError | ReadError | ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// Writes the error response (if the client is still there) and logs it.
pub async fn answer(session: &mut Session, e: &Error, host: &str) -> FailToProxy {
    let code = status_for(e);
    if code > 0 {
        let text = match code {
            502 => "502 Bad Gateway: the upstream could not be reached\n",
            504 => "504 Gateway Timeout: the upstream did not answer in time\n",
            400 => "400 Bad Request\n",
            _ => "500 Internal Server Error\n",
        };
        tracing::warn!(host, status = code, error = %e, "proxy request failed");
        if session.response_written().is_none() {
            let _ = session.respond_error_with_body(code, Bytes::from_static(text.as_bytes())).await;
        }
    }
    FailToProxy {
        error_code: code,
        can_reuse_downstream: false,
    }
}
