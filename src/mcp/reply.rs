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
use super::replay::{self, Owner, Recorder};

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

/// The response (or error) that ends request `id`'s exchange.
fn final_body(outcome: Result<Value, RpcError>, id: &Value) -> Value {
    match outcome {
        Ok(result) => protocol::result(id, result),
        Err(e) => with_request_id(e, id).body(),
    }
}

/// How long work goes on after its stream was closed for the client to
/// resume (SEP-1699): as long as its events are kept.
const CLOSED_WORK_LIMIT: std::time::Duration = replay::KEEP;

/// Runs `work` (given the stream's sender when the client accepts SSE)
/// and answers request `id` with its result. A JSON-RPC error of status
/// 200 travels in the body; any other is the caller's to send (before a
/// stream starts; once it has, every error is an event). With `resume`
/// (a 2025-11-25 session), a stream opens with a priming event and its
/// events are kept for `GET /mcp` with `Last-Event-ID` (`replay`).
pub async fn run<F, Fut>(fmt: Format, sse_ok: bool, id: Value, resume: Option<Owner>, work: F) -> Result<Response, RpcError>
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
    loop {
        return match rx.recv().await {
            Some(Out::Done(Ok(result))) => Ok(respond(fmt, StatusCode::OK, protocol::result(&id, result), None)),
            Some(Out::Done(Err(e))) if e.status == StatusCode::OK => Ok(respond(fmt, StatusCode::OK, with_request_id(e, &id).body(), None)),
            Some(Out::Done(Err(e))) => Err(with_request_id(e, &id)),
            // a stream that cannot be resumed is not closed early
            Some(Out::Close) if resume.is_none() => continue,
            Some(first) => Ok(match resume {
                Some(owner) => resumable(first, rx, id, task, Recorder::open(owner)),
                None => stream(first, rx, id, task),
            }),
            None => Err(RpcError::new(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL, "the request failed").with_id(&id)),
        };
    }
}

/// The SSE stream of a handler that spoke before its result: `first`, then
/// everything it sends, ending with the response.
fn stream(first: Out, rx: mpsc::UnboundedReceiver<Out>, id: Value, task: AbortOnDrop) -> Response {
    let events = futures::stream::unfold((Some(first), rx, false, task), move |(first, mut rx, finished, task)| {
        let id = id.clone();
        async move {
            if finished {
                return None;
            }
            let mut next = first;
            loop {
                let out = match next.take() {
                    Some(o) => o,
                    None => rx.recv().await?,
                };
                let (body, done) = match out {
                    Out::Message(m) => (m, false),
                    Out::Done(outcome) => (final_body(outcome, &id), true),
                    Out::Close => continue,
                };
                return Some((Ok::<_, Infallible>(event(&body)), (None, rx, done, task)));
            }
        }
    });
    sse(StatusCode::OK, Body::from_stream(events))
}

/// Where a resumable stream is.
enum Phase {
    /// The priming event is yet to go.
    Priming,
    /// Events go to the client (and to the buffer).
    Open,
    /// The result went out.
    Ended,
}

/// A resumable stream's state.
struct Live {
    first: Option<Out>,
    rx: mpsc::UnboundedReceiver<Out>,
    id: Value,
    task: AbortOnDrop,
    rec: Recorder,
    phase: Phase,
}

/// The SSE stream of a handler that spoke before its result, resumable:
/// the priming event, then `first` and everything the handler sends, each
/// with its id and kept in the buffer. When the handler closes the stream
/// (`Out::Close`) the response ends and the work goes on apart (at most
/// [`CLOSED_WORK_LIMIT`]), its events kept for the client's `GET`.
fn resumable(first: Out, rx: mpsc::UnboundedReceiver<Out>, id: Value, task: AbortOnDrop, rec: Recorder) -> Response {
    let live = Live {
        first: Some(first),
        rx,
        id,
        task,
        rec,
        phase: Phase::Priming,
    };
    let events = futures::stream::unfold(live, |mut l| async move {
        match l.phase {
            Phase::Ended => return None,
            Phase::Priming => {
                l.phase = Phase::Open;
                let priming = l.rec.priming();
                return Some((Ok::<_, Infallible>(priming), l));
            }
            Phase::Open => {}
        }
        let out = match l.first.take() {
            Some(o) => o,
            None => l.rx.recv().await?,
        };
        let chunk = match out {
            Out::Message(m) => l.rec.push(&m),
            Out::Done(outcome) => {
                l.phase = Phase::Ended;
                let body = final_body(outcome, &l.id);
                l.rec.push(&body)
            }
            Out::Close => {
                tokio::spawn(finish_apart(l.rx, l.id, l.task, l.rec));
                return None;
            }
        };
        Some((Ok(chunk), l))
    });
    sse(StatusCode::OK, Body::from_stream(events))
}

/// The rest of a closed stream's work: its events go to the buffer only.
async fn finish_apart(mut rx: mpsc::UnboundedReceiver<Out>, id: Value, task: AbortOnDrop, mut rec: Recorder) {
    let record = async {
        while let Some(out) = rx.recv().await {
            match out {
                Out::Message(m) => {
                    rec.push(&m);
                }
                Out::Done(outcome) => {
                    rec.push(&final_body(outcome, &id));
                    return;
                }
                Out::Close => {}
            }
        }
    };
    if tokio::time::timeout(CLOSED_WORK_LIMIT, record).await.is_err() {
        tracing::debug!("work of a closed MCP stream stopped after {CLOSED_WORK_LIMIT:?}");
    }
    drop(task);
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
        let resp = run(Format::Sse, true, json!(1), None, move |tx| async move {
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

    #[tokio::test]
    async fn a_closed_stream_primes_then_ends_and_its_result_is_resumed() {
        let owner = Owner {
            session: "reply-test-session".into(),
            owner: "reply-test-owner".into(),
        };
        let resp = run(Format::Json, true, json!(7), Some(owner.clone()), move |tx| async move {
            if let Some(tx) = tx {
                let _ = tx.send(Out::Close);
            }
            Ok(json!({"done": true}))
        })
        .await
        .expect("a stream");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("the body");
        let body = String::from_utf8_lossy(&body).to_string();
        assert!(
            body.starts_with("id: ") && body.contains("retry: ") && body.ends_with("data: \n\n"),
            "{body:?}"
        );
        assert!(!body.contains("done"), "the result is not on the closed stream: {body:?}");
        let primed = body.lines().next().and_then(|l| l.strip_prefix("id: ")).expect("the priming id");
        let mut resumed = replay::resume(primed, &owner).expect("the owner resumes");
        let rest = tokio::time::timeout(Duration::from_secs(5), resumed.next())
            .await
            .expect("in time")
            .expect("the result");
        let rest = String::from_utf8_lossy(&rest).to_string();
        assert!(rest.contains(r#""id":7"#) && rest.contains(r#""done":true"#), "{rest:?}");
        assert!(resumed.next().await.is_none(), "the stream ended with its result");
    }

    #[tokio::test]
    async fn a_stream_that_cannot_be_resumed_is_not_closed_early() {
        let resp = run(Format::Json, true, json!(8), None, move |tx| async move {
            if let Some(tx) = tx {
                let _ = tx.send(Out::Close);
            }
            Ok(json!({"done": true}))
        })
        .await
        .expect("an answer");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("the body");
        assert!(String::from_utf8_lossy(&body).contains(r#""done":true"#));
    }
}
