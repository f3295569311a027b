//! How the answer to a request goes back: as JSON (or one SSE event) when
//! the handler has nothing to say before its result, and as an SSE stream
//! when it does (progress, log messages, questions to the client), ending
//! with the result. The handler runs as its own task so that the stream
//! can carry its messages while it works; the task is aborted when the
//! answer it feeds is dropped, so a client that hangs up stops the work it
//! started, as when the handler ran inside the request (a task of the
//! tasks extension runs apart and is not affected).

use std::convert::Infallible;
use std::future::Future;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::peer::Out;
use super::protocol::{self, code, RpcError};

/// How the client wants a response to a request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// One `text/event-stream` event.
    Sse,
}

/// One SSE event carrying a JSON-RPC message.
fn event(body: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {body}\n\n"))
}

/// A complete response to a request, as JSON or as a one-event SSE stream.
pub fn respond(fmt: Format, status: StatusCode, body: Value, extra: Option<(&'static str, String)>) -> Response {
    let mut resp = match fmt {
        Format::Json => (status, axum::Json(body)).into_response(),
        Format::Sse => sse(status, Body::from(event(&body))),
    };
    if let Some((name, value)) = extra {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

fn sse(status: StatusCode, body: Body) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// Aborts a handler's task when dropped with the response it feeds.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The error a handler's `Done` carries, for request `id` if it has none.
fn with_request_id(e: RpcError, id: &Value) -> RpcError {
    if e.id.is_null() {
        e.with_id(id)
    } else {
        e
    }
}

/// Runs `work` (given the stream's sender when the client accepts SSE)
/// and answers request `id` with its result. A JSON-RPC error of status
/// 200 travels in the body; any other is the caller's to send (before a
/// stream starts; once it has, every error is an event).
pub async fn run<F, Fut>(fmt: Format, sse_ok: bool, id: Value, work: F) -> Result<Response, RpcError>
where
    F: FnOnce(Option<mpsc::UnboundedSender<Out>>) -> Fut,
    Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = work(sse_ok.then(|| tx.clone()));
    let task = AbortOnDrop(
        tokio::spawn(async move {
            let outcome = handler.await;
            let _ = tx.send(Out::Done(outcome));
        })
        .abort_handle(),
    );
    match rx.recv().await {
        Some(Out::Done(Ok(result))) => Ok(respond(fmt, StatusCode::OK, protocol::result(&id, result), None)),
        Some(Out::Done(Err(e))) if e.status == StatusCode::OK => Ok(respond(fmt, StatusCode::OK, with_request_id(e, &id).body(), None)),
        Some(Out::Done(Err(e))) => Err(with_request_id(e, &id)),
        Some(Out::Message(first)) => Ok(stream(first, rx, id, task)),
        None => Err(RpcError::new(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL, "the request failed").with_id(&id)),
    }
}

/// The SSE stream of a handler that spoke before its result: `first`, then
/// everything it sends, ending with the response.
fn stream(first: Value, rx: mpsc::UnboundedReceiver<Out>, id: Value, task: AbortOnDrop) -> Response {
    let events = futures::stream::unfold((Some(first), rx, false, task), move |(first, mut rx, finished, task)| {
        let id = id.clone();
        async move {
            if finished {
                return None;
            }
            let out = match first {
                Some(m) => Out::Message(m),
                None => rx.recv().await?,
            };
            let (body, done) = match out {
                Out::Message(m) => (m, false),
                Out::Done(Ok(result)) => (protocol::result(&id, result), true),
                Out::Done(Err(e)) => (with_request_id(e, &id).body(), true),
            };
            Some((Ok::<_, Infallible>(event(&body)), (None, rx, done, task)))
        }
    });
    sse(StatusCode::OK, Body::from_stream(events))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use tokio::sync::oneshot;

    use super::*;

    /// Says when the future holding it is dropped.
    struct Dropped(Option<oneshot::Sender<()>>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }

    #[tokio::test]
    async fn a_client_that_hangs_up_stops_the_handler() {
        let (told, dropped) = oneshot::channel();
        let resp = run(Format::Sse, true, json!(1), move |tx| async move {
            let _guard = Dropped(Some(told));
            if let Some(tx) = tx {
                let _ = tx.send(Out::Message(json!({"jsonrpc": "2.0", "method": "notifications/message"})));
            }
            std::future::pending::<()>().await;
            Ok(Value::Null)
        })
        .await
        .expect("a stream");
        drop(resp);
        tokio::time::timeout(Duration::from_secs(5), dropped)
            .await
            .expect("the handler was not stopped")
            .expect("the guard reports");
    }
}
