//! The client as one request's handler sees it: what the handler may send
//! back before its result (progress and log notifications on the
//! response's SSE stream) and what it may ask the client
//! (`sampling/createMessage`, `elicitation/create`, `roots/list`).
//!
//! Asking works in each revision's way. In a dated-revision session the
//! request goes out on the POST's SSE stream and the client answers with a
//! later POST; the waiting call lives in this process ([`PENDING`]): a
//! session's in-flight call is answered on the instance that holds its
//! stream, which is the one the client is connected to. In `2026-07-28`
//! the server never sends requests; the handler ends with an
//! `InputRequiredResult` (SEP-2322) instead and the client retries the call
//! with `inputResponses` and the sealed `requestState` (`input_state`).
//! [`Peer::ask_all`] hides the difference from handlers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use once_cell::sync::Lazy;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};

use futures::future::BoxFuture;

use super::input_state::{self, Binding};
use super::protocol::{code, RpcError};
use super::tasks::{self, Support};

/// How long a handler waits for the client's answer to its request.
const ASK_TIMEOUT: Duration = Duration::from_secs(60);

/// Most server-to-client requests awaiting an answer in this process: each
/// holds a handler task, so their number is bounded.
const MAX_PENDING: usize = 1024;

/// Log levels of `logging/setLevel` and `notifications/message`, least
/// severe first (RFC 5424 order).
pub const LEVELS: [&str; 8] = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

/// The rank of a level name in [`LEVELS`].
pub fn level_rank(level: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == level)
}

/// What a handler sends before its result, and the result itself.
pub enum Out {
    /// A notification or a server-to-client request, as JSON-RPC.
    Message(Value),
    /// The JSON-RPC response that ends the exchange (or its error).
    Done(Result<Value, RpcError>),
    /// Close the client's stream now; what follows is kept for it to
    /// resume with `GET /mcp` and `Last-Event-ID` (SEP-1699). Ignored on a
    /// stream that cannot be resumed, whose messages would be lost.
    Close,
}

/// Why asking the client failed.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The client did not declare the capability the request needs
    /// (`MissingRequiredClientCapabilityError`).
    #[error("the client did not declare the {0} capability")]
    Capability(&'static str),
    /// There is no stream to send it on (the client accepts JSON only).
    #[error("the client accepts no event stream, so it cannot be asked")]
    NoStream,
    /// The client answered with a JSON-RPC error.
    #[error("the client refused: {}", refusal(.0))]
    Refused(Value),
    /// No answer in time, or too many requests in flight.
    #[error("the client did not answer in time")]
    NoAnswer,
}

/// The message of the client's JSON-RPC error `e`, for [`AskError::Refused`].
fn refusal(e: &Value) -> &str {
    e.get("message").and_then(Value::as_str).unwrap_or("error")
}

/// The JSON-RPC error for a capability the client has not declared: `-32021`
/// with `data.requiredCapabilities`, HTTP 400.
pub fn missing_capability(capability: &str) -> RpcError {
    RpcError::bad(
        code::MISSING_CAPABILITY,
        format!("this request needs the client capability {capability:?}, which the client did not declare"),
    )
    .with_data(json!({"requiredCapabilities": {capability: {}}}))
}

/// The capability a server-to-client request needs.
pub fn capability_of(method: &str) -> &'static str {
    match method {
        "sampling/createMessage" => "sampling",
        "elicitation/create" => "elicitation",
        "roots/list" => "roots",
        _ => "experimental",
    }
}

/// Server-to-client requests awaiting their answer, by session and request id.
type Waiters = HashMap<(String, String), oneshot::Sender<Result<Value, Value>>>;
static PENDING: Lazy<Mutex<Waiters>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// Hands the client's answer (`outcome`) to the handler waiting for request
/// `id` of session `session`; false when none waits here.
pub fn answer(session: &str, id: &Value, outcome: Result<Value, Value>) -> bool {
    let Some(id) = id.as_str() else {
        return false;
    };
    let waiter = PENDING
        .lock()
        .ok()
        .and_then(|mut p| p.remove(&(session.to_string(), id.to_string())));
    waiter.is_some_and(|w| w.send(outcome).is_ok())
}

/// Removes a waiter when its handler stops waiting (answered, timed out or dropped).
struct Waiting((String, String));

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Ok(mut p) = PENDING.lock() {
            p.remove(&self.0);
        }
    }
}

/// What a handler's questions to the client became.
pub enum Asked {
    /// Every answer, by the handler's key.
    Answers(Map<String, Value>),
    /// `2026-07-28`: the `InputRequiredResult` to return instead of a
    /// result; the client asks the user or model and calls again.
    InputRequired(Value),
}

/// How the client is asked (see the module documentation).
#[derive(Clone)]
enum Mode {
    /// On the response stream of a dated-revision session.
    Stream,
    /// With `InputRequiredResult`: the answers given so far (those sealed
    /// in `requestState` and those in `inputResponses`), and what a new
    /// `requestState` is bound to.
    Input {
        answers: Map<String, Value>,
        resumed: bool,
        binding: Box<Binding>,
    },
    /// Inside a task (`tasks`): through `tasks/get` and `tasks/update`.
    Task(tasks::Handle),
}

/// The client, for one request.
#[derive(Clone)]
pub struct Peer {
    /// The response stream; `None` when the client takes JSON only.
    tx: Option<mpsc::UnboundedSender<Out>>,
    /// The session whose later POSTs answer our requests (dated revisions).
    session: Option<String>,
    /// How questions reach the client.
    mode: Mode,
    /// `_meta.progressToken` of the request.
    progress_token: Option<Value>,
    /// The least severe level the client wants logged; `None`: no logs.
    log_level: Option<usize>,
    /// The client's declared capabilities.
    capabilities: Value,
    /// Owner id of the caller (`Caller::hash`): whose tasks it starts.
    owner: String,
    /// The revision the client speaks.
    version: String,
}

impl Peer {
    /// The client of a request with `params` in `session` of revision
    /// `version`, with its capabilities and log level, talking over `tx`
    /// (if it accepts a stream).
    pub fn new(
        tx: Option<mpsc::UnboundedSender<Out>>,
        session: Option<String>,
        params: &Map<String, Value>,
        capabilities: Value,
        log_level: Option<&str>,
        version: &str,
    ) -> Self {
        let progress_token = params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
            .cloned();
        Self {
            tx,
            session,
            mode: Mode::Stream,
            progress_token,
            log_level: log_level.and_then(level_rank),
            capabilities,
            owner: String::new(),
            version: version.to_string(),
        }
    }

    /// The revision the client speaks.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A `2026-07-28` client: its questions are answered through
    /// `InputRequiredResult` rounds. A `requestState` that was not sealed
    /// by us for this caller and request, or that expired, is `-32602`;
    /// `inputResponses` must be an object. `owner` is the caller's owner id.
    pub fn stateless(
        tx: Option<mpsc::UnboundedSender<Out>>,
        params: &Map<String, Value>,
        capabilities: Value,
        log_level: Option<&str>,
        binding: Binding,
        owner: &str,
    ) -> Result<Self, RpcError> {
        let invalid = |m: &str| RpcError::new(StatusCode::OK, code::INVALID_PARAMS, m.to_string());
        let (mut answers, resumed) = match params.get("requestState") {
            None => (Map::new(), false),
            Some(Value::String(state)) => (
                binding
                    .open(state)
                    .ok_or_else(|| invalid("requestState is not valid for this request"))?,
                true,
            ),
            Some(_) => return Err(invalid("requestState must be a string")),
        };
        match params.get("inputResponses") {
            None => {}
            Some(Value::Object(given)) => {
                // answers are objects (results); anything else is asked again
                answers.extend(given.iter().filter(|(_, v)| v.is_object()).map(|(k, v)| (k.clone(), v.clone())));
            }
            Some(_) => return Err(invalid("inputResponses must be an object")),
        }
        let mut peer = Self::new(tx, None, params, capabilities, log_level, super::protocol::STATELESS);
        peer.owner = owner.to_string();
        peer.mode = Mode::Input {
            answers,
            resumed,
            binding: Box::new(binding),
        };
        Ok(peer)
    }

    /// True when the request came back with a valid `requestState` of ours.
    pub fn resumed(&self) -> bool {
        matches!(self.mode, Mode::Input { resumed: true, .. })
    }

    /// Asks the client each `(key, method, params)` and returns the answers
    /// by key: in a session one after another on the stream; in
    /// `2026-07-28` from the answers the client has given, or else an
    /// `InputRequiredResult` asking for the missing ones. A question whose
    /// capability the client did not declare is `-32021`.
    pub async fn ask_all(&self, questions: Vec<(&str, &str, Value)>) -> Result<Asked, RpcError> {
        if let Some((_, method, _)) = questions.iter().find(|(_, m, _)| !self.has_capability(capability_of(m))) {
            return Err(missing_capability(capability_of(method)));
        }
        match &self.mode {
            Mode::Stream => {
                let mut answers = Map::new();
                for (key, method, params) in questions {
                    let answer = self.ask(method, params).await.map_err(|e| ask_error(&e))?;
                    answers.insert(key.to_string(), answer);
                }
                Ok(Asked::Answers(answers))
            }
            Mode::Input { answers, binding, .. } => {
                let missing: Map<String, Value> = questions
                    .into_iter()
                    .filter(|(k, _, _)| !answers.contains_key(*k))
                    .map(|(k, m, p)| (k.to_string(), json!({"method": m, "params": p})))
                    .collect();
                if missing.is_empty() {
                    return Ok(Asked::Answers(answers.clone()));
                }
                let state = binding.seal(answers).map_err(|e| {
                    tracing::error!(error = %e, "cannot seal an MCP requestState");
                    RpcError::new(StatusCode::OK, code::INTERNAL, "cannot build the request state")
                })?;
                Ok(Asked::InputRequired(input_state::input_required(missing, state)))
            }
            Mode::Task(handle) => {
                let asked = questions
                    .into_iter()
                    .map(|(k, m, p)| (k.to_string(), json!({"method": m, "params": p})))
                    .collect();
                Ok(Asked::Answers(handle.ask(asked).await?))
            }
        }
    }

    /// `tasks/get`, `tasks/update` or `tasks/cancel` of this client
    /// (`2026-07-28` only); `None` for any other method.
    pub fn task_request(&self, method: &str, params: &Map<String, Value>) -> Option<Result<Value, RpcError>> {
        match self.mode {
            Mode::Input { .. } => tasks::dispatch(method, params, &self.owner, &self.capabilities),
            _ => None,
        }
    }

    /// Runs `work` for a tool with task `support`: as a task (answering
    /// with its `CreateTaskResult`) when this `2026-07-28` request's
    /// client declared the tasks extension; else inline, or `-32021`
    /// when the tool only runs as a task. Inside the task the client is
    /// asked through `tasks/get` and `tasks/update`.
    pub async fn run_as_task(
        &self,
        support: Support,
        work: impl FnOnce(Peer) -> BoxFuture<'static, Result<Value, RpcError>>,
    ) -> Result<Value, RpcError> {
        let stateless = matches!(self.mode, Mode::Input { .. });
        if stateless && tasks::declared(&self.capabilities) {
            let mut inner = self.clone();
            inner.tx = None;
            inner.progress_token = None;
            return tasks::spawn(&self.owner, move |handle| {
                inner.mode = Mode::Task(handle);
                work(inner)
            });
        }
        if support == Support::Required {
            return Err(tasks::missing_extension());
        }
        work(self.clone()).await
    }

    /// A client that can be told nothing and asked nothing (unit tests, JSON-only calls).
    #[cfg(test)]
    pub fn silent() -> Self {
        Self::new(None, None, &Map::new(), json!({}), None, "2025-11-25")
    }

    /// True when the client declared `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.get(capability).is_some_and(|c| !c.is_null())
    }

    /// Sends a notification on the response stream (dropped without one).
    pub fn notify(&self, method: &str, params: Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Out::Message(json!({"jsonrpc": "2.0", "method": method, "params": params})));
        }
    }

    /// Closes the response stream before the result (SEP-1699 polling):
    /// the client reconnects and gets the rest (`replay`).
    pub fn close_stream(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Out::Close);
        }
    }

    /// `notifications/progress`, when the request asked for progress.
    pub fn progress(&self, progress: u64, total: u64, message: &str) {
        if let Some(token) = &self.progress_token {
            self.notify(
                "notifications/progress",
                json!({"progressToken": token, "progress": progress, "total": total, "message": message}),
            );
        }
    }

    /// `notifications/message` at `level`, when the client asked for
    /// that level or a less severe one (never without a level).
    pub fn log(&self, level: &str, logger: &str, data: Value) {
        let wanted = matches!((self.log_level, level_rank(level)), (Some(min), Some(l)) if l >= min);
        if wanted {
            self.notify("notifications/message", json!({"level": level, "logger": logger, "data": data}));
        }
    }

    /// Sends request `method` to the client on the response stream and
    /// waits for its answer (a later POST in the same session).
    pub async fn ask(&self, method: &str, params: Value) -> Result<Value, AskError> {
        let needed = capability_of(method);
        if !self.has_capability(needed) {
            return Err(AskError::Capability(needed));
        }
        let (Some(tx), Some(session)) = (&self.tx, &self.session) else {
            return Err(AskError::NoStream);
        };
        let id = format!("srv-{}", hex::encode(rand::random::<[u8; 8]>()));
        let key = (session.clone(), id.clone());
        let (done, answered) = oneshot::channel();
        {
            let Ok(mut p) = PENDING.lock() else {
                return Err(AskError::NoAnswer);
            };
            if p.len() >= MAX_PENDING {
                return Err(AskError::NoAnswer);
            }
            p.insert(key.clone(), done);
        }
        let _waiting = Waiting(key);
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if tx.send(Out::Message(request)).is_err() {
            return Err(AskError::NoStream);
        }
        match tokio::time::timeout(ASK_TIMEOUT, answered).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(error))) => Err(AskError::Refused(error)),
            _ => Err(AskError::NoAnswer),
        }
    }
}

/// The error a handler gives when a request cannot be served as asked
/// (used where a JSON-RPC error, not a tool result, is right).
pub fn ask_error(e: &AskError) -> RpcError {
    match e {
        AskError::Capability(c) => missing_capability(c),
        other => RpcError::new(StatusCode::OK, code::INTERNAL, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ask_errors_read_as_sentences() {
        let refused = AskError::Refused(json!({"code": -1, "message": "no thanks"}));
        assert_eq!(refused.to_string(), "the client refused: no thanks");
        assert_eq!(AskError::Refused(json!({})).to_string(), "the client refused: error");
        assert_eq!(
            AskError::Capability("roots").to_string(),
            "the client did not declare the roots capability"
        );
    }

    fn streamed(caps: Value, level: Option<&str>, params: Value) -> (Peer, mpsc::UnboundedReceiver<Out>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let params = params.as_object().cloned().unwrap_or_default();
        (Peer::new(Some(tx), Some("s1".into()), &params, caps, level, "2025-11-25"), rx)
    }

    fn sent(rx: &mut mpsc::UnboundedReceiver<Out>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(Out::Message(m)) = rx.try_recv() {
            out.push(m);
        }
        out
    }

    #[test]
    fn logs_only_at_or_above_the_level_the_client_set() {
        let (p, mut rx) = streamed(json!({}), Some("warning"), json!({}));
        p.log("info", "t", json!("quiet"));
        p.log("error", "t", json!("loud"));
        let got = sent(&mut rx);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["params"]["data"], "loud");
        let (p, mut rx) = streamed(json!({}), None, json!({}));
        p.log("emergency", "t", json!("x"));
        assert!(sent(&mut rx).is_empty(), "no level set: no logs");
    }

    #[test]
    fn progress_goes_out_only_with_a_token() {
        let (p, mut rx) = streamed(json!({}), None, json!({"_meta": {"progressToken": "t1"}}));
        p.progress(50, 100, "half");
        assert_eq!(sent(&mut rx)[0]["params"]["progressToken"], "t1");
        let (p, mut rx) = streamed(json!({}), None, json!({}));
        p.progress(50, 100, "half");
        assert!(sent(&mut rx).is_empty());
    }

    #[tokio::test]
    async fn a_request_is_answered_by_a_later_message_of_the_session() {
        let (p, mut rx) = streamed(json!({"sampling": {}}), None, json!({}));
        let asking = tokio::spawn(async move { p.ask("sampling/createMessage", json!({"maxTokens": 1})).await });
        let request = loop {
            if let Some(Out::Message(m)) = rx.recv().await {
                break m;
            }
        };
        assert_eq!(request["method"], "sampling/createMessage");
        assert!(
            !answer("other-session", &request["id"], Ok(json!({}))),
            "another session cannot answer"
        );
        assert!(answer("s1", &request["id"], Ok(json!({"content": "hi"}))));
        assert_eq!(asking.await.unwrap().unwrap()["content"], "hi");
        assert!(!answer("s1", &request["id"], Ok(json!({}))), "answered once");
    }

    #[tokio::test]
    async fn asking_needs_the_capability_and_a_stream() {
        let (p, _rx) = streamed(json!({}), None, json!({}));
        assert!(matches!(
            p.ask("elicitation/create", json!({})).await,
            Err(AskError::Capability("elicitation"))
        ));
        let p = Peer::new(None, None, &Map::new(), json!({"roots": {}}), None, "2025-11-25");
        assert!(matches!(p.ask("roots/list", json!({})).await, Err(AskError::NoStream)));
        assert_eq!(
            missing_capability("sampling").body()["error"]["data"]["requiredCapabilities"],
            json!({"sampling": {}})
        );
    }
}
