//! Streamable HTTP: `POST /mcp` carries one JSON-RPC message and gets JSON
//! (or one SSE event, as `Accept` allows), or an SSE stream when the
//! handler sends notifications or asks the client something before its
//! result (`reply`); the client's answers to such questions arrive as
//! later POSTs of the session. `DELETE` ends a session; `GET` opens its
//! stream of resource updates (`listen`).
//!
//! Checks run in this order: Host and browser Origin (403), `Accept` and
//! `Content-Type`, the bearer token (401/403), the JSON-RPC body,
//! `MCP-Protocol-Version` (400 when unsupported), `Mcp-Method`/`Mcp-Name`
//! against the body (400), then the lifecycle of the revision: a session
//! for the dated ones, `_meta` for `2026-07-28`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use serde_json::Map;
use tokio::sync::mpsc;

use super::access::{self, McpCaller};
use super::input_state::Binding;
use super::methods;
use super::peer::{self, Out, Peer};
use super::protocol::{self, code, meta, Message, RpcError, LATEST_STATEFUL, STATEFUL, STATELESS, SUPPORTED};
use super::replay::Owner;
use super::reply::{self, respond, Format};
use super::session::{self, Session};
use crate::admin::AppState;

/// Largest message read: tool arguments are small objects.
const MAX_BODY: usize = 1024 * 1024;

pub(super) const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";

/// The response format `Accept` allows (JSON preferred), and whether it
/// allows an SSE stream; 406 when neither.
fn format(headers: &HeaderMap) -> Result<(Format, bool), RpcError> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok((Format::Json, false));
    };
    let accept = accept.to_str().unwrap_or_default().to_ascii_lowercase();
    let types: Vec<&str> = accept.split(',').map(|t| t.split(';').next().unwrap_or_default().trim()).collect();
    let sse = types.iter().any(|t| matches!(*t, "text/event-stream" | "text/*" | "*/*"));
    if types.iter().any(|t| matches!(*t, "application/json" | "application/*" | "*/*")) {
        Ok((Format::Json, sse))
    } else if sse {
        Ok((Format::Sse, true))
    } else {
        Err(RpcError::new(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "Accept must allow application/json or text/event-stream",
        ))
    }
}

/// A header's value, trimmed (`None` when absent or not text).
pub(super) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The body, or 413 over [`MAX_BODY`].
async fn read_body(req: Request) -> Result<(HeaderMap, axum::body::Bytes), RpcError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        RpcError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::INVALID_REQUEST,
            format!("the message is larger than {MAX_BODY} bytes"),
        )
    })?;
    Ok((parts.headers, bytes))
}

/// `POST /mcp`.
pub async fn post(State(s): State<Arc<AppState>>, req: Request) -> Response {
    match handle_post(s, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle_post(s: Arc<AppState>, req: Request) -> Result<Response, RpcError> {
    let cfg = &s.manager.config;
    access::check_host_and_origin(cfg, req.headers())?;
    let (fmt, sse_ok) = format(req.headers())?;
    let json_body = header_str(req.headers(), header::CONTENT_TYPE.as_str())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !json_body {
        return Err(RpcError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_REQUEST,
            "Content-Type must be application/json",
        ));
    }
    let who = access::authenticate(&s.manager, req.headers()).await?;
    let (headers, body) = read_body(req).await?;
    let msg = protocol::parse(&body)?;
    let id = match &msg {
        Message::Request { id, .. } => id.clone(),
        _ => Value::Null,
    };
    let version = header_str(&headers, VERSION_HEADER);
    if let Some(v) = version.filter(|v| !SUPPORTED.contains(v)) {
        return Err(RpcError::unsupported_version(v).with_id(&id));
    }
    check_method_headers(&headers, &msg, version == Some(STATELESS)).map_err(|e| e.with_id(&id))?;
    let session_id = header_str(&headers, SESSION_HEADER).map(str::to_string);
    let stateless = version == Some(STATELESS)
        || (version.is_none() && session_id.is_none() && msg.method() != Some("initialize") && has_meta_version(&msg));
    let version = version.map(str::to_string);
    let post = Post {
        state: s,
        who,
        headers,
        fmt,
        sse_ok,
        resume: None,
    };
    if stateless {
        stateless_post(post, msg).await
    } else {
        stateful_post(post, msg, session_id, version).await
    }
}

/// How a revision answers beyond the methods' results.
struct Rules {
    /// Its answer to a method we do not have.
    not_found: fn(&str) -> RpcError,
    /// What it adds to a result.
    finish: fn(&str, Value) -> Value,
}

/// One POST past its checks: what its handler task owns.
struct Post {
    state: Arc<AppState>,
    who: McpCaller,
    headers: HeaderMap,
    fmt: Format,
    sse_ok: bool,
    /// Who may resume the response's stream (a 2025-11-25 session).
    resume: Option<Owner>,
}

impl Post {
    /// Answers request `id` with `method`'s result through the client
    /// `peer` (built once the response stream exists), as `rules` say.
    async fn answer(
        self,
        id: Value,
        method: String,
        params: Map<String, Value>,
        peer: impl FnOnce(Option<mpsc::UnboundedSender<Out>>) -> Result<Peer, RpcError>,
        rules: Rules,
    ) -> Result<Response, RpcError> {
        let Post {
            state,
            who,
            headers,
            fmt,
            sse_ok,
            resume,
            ..
        } = self;
        reply::run(fmt, sse_ok, id.clone(), resume, move |tx| {
            let peer = peer(tx);
            async move {
                let peer = peer?;
                let m = &state.manager;
                match methods::dispatch(m, &who, &headers, &id, &method, &params, &peer).await? {
                    Some(result) => Ok((rules.finish)(&method, result)),
                    None => Err((rules.not_found)(&method).with_id(&id)),
                }
            }
        })
        .await
    }
}

fn has_meta_version(msg: &Message) -> bool {
    matches!(msg, Message::Request { params, .. } if params.get("_meta").and_then(|m| m.get(meta::PROTOCOL_VERSION)).is_some())
}

/// The parameter a request's `Mcp-Name` repeats: the tool or prompt name,
/// the resource URI, or the task id (SEP-2663).
fn name_key(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

/// `Mcp-Method` and `Mcp-Name` must say what the body says (a proxy may
/// have decided on them without reading the body); for `2026-07-28`
/// (`required`) they must be there.
fn check_method_headers(headers: &HeaderMap, msg: &Message, required: bool) -> Result<(), RpcError> {
    let mismatch = |m: String| RpcError::bad(code::HEADER_MISMATCH, m);
    let Some(method) = msg.method() else {
        return Ok(());
    };
    match header_str(headers, METHOD_HEADER) {
        Some(h) if h != method => return Err(mismatch(format!("Mcp-Method {h:?} does not match the body's method {method:?}"))),
        None if required => return Err(mismatch("the Mcp-Method header is required".into())),
        _ => {}
    }
    let (Message::Request { params, .. }, Some(key)) = (msg, name_key(method)) else {
        return Ok(());
    };
    match (header_str(headers, NAME_HEADER), params.get(key).and_then(Value::as_str)) {
        (Some(h), Some(b)) if h != b => Err(mismatch(format!("Mcp-Name {h:?} does not match the body's {key} {b:?}"))),
        (Some(h), None) => Err(mismatch(format!("Mcp-Name {h:?} names nothing: the body has no {key}"))),
        (None, Some(_)) if required => Err(mismatch("the Mcp-Name header is required for this method".into())),
        _ => Ok(()),
    }
}

/// Most bytes of `clientInfo` and `capabilities` a session keeps (stored
/// for its idle hour, read on every request): far above what clients send,
/// far below the 1 MiB a request body may be.
const MAX_SESSION_CLIENT_BYTES: usize = 16 * 1024;

/// The first revision whose clients expect a priming event (an id and no
/// data) on a stream and resume it with `Last-Event-ID` (SEP-1699); older
/// clients may not take an event without data.
const RESUMABLE_SINCE: &str = "2025-11-25";

/// 202 Accepted: notifications and client responses get no body.
fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

/// The dated revisions: `initialize` opens a session in the store; every
/// other message names it in `Mcp-Session-Id`.
async fn stateful_post(mut post: Post, msg: Message, session_id: Option<String>, version: Option<String>) -> Result<Response, RpcError> {
    let m = &post.state.manager;
    let who = &post.who;
    if let Message::Request { id, method, params } = &msg {
        if method == "initialize" {
            let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or_default();
            let negotiated = if STATEFUL.contains(&asked) { asked } else { LATEST_STATEFUL };
            let kept = [params.get("clientInfo"), params.get("capabilities")];
            if kept.iter().flatten().map(|v| v.to_string().len()).sum::<usize>() > MAX_SESSION_CLIENT_BYTES {
                let e = RpcError::new(
                    StatusCode::OK,
                    code::INVALID_PARAMS,
                    format!("clientInfo and capabilities may take at most {MAX_SESSION_CLIENT_BYTES} bytes: the session keeps them"),
                );
                return Ok(respond(post.fmt, StatusCode::OK, e.with_id(id).body(), None));
            }
            let opened = Session {
                version: negotiated.to_string(),
                owner: who.caller.hash.clone(),
                client: params.get("clientInfo").cloned(),
                capabilities: params.get("capabilities").filter(|c| c.is_object()).cloned(),
                log_level: None,
                subscriptions: Vec::new(),
            };
            let sid = session::open(m.store.as_ref(), &opened).await.map_err(|e| store_error(e, id))?;
            let body = protocol::result(id, methods::initialize_result(negotiated, m.config.mcp_conformance_fixtures));
            return Ok(respond(post.fmt, StatusCode::OK, body, Some((SESSION_HEADER, sid))));
        }
    }
    let Some(sid) = session_id else {
        return Err(RpcError::bad(
            code::SESSION,
            "send Mcp-Session-Id from initialize (or use protocol version 2026-07-28 without sessions)",
        )
        .with_id(request_id(&msg)));
    };
    let owner = &who.caller.hash;
    let Some(sess) = session::resume(m.store.as_ref(), &sid, owner)
        .await
        .map_err(|e| store_error(e, request_id(&msg)))?
    else {
        return Err(session::gone().with_id(request_id(&msg)));
    };
    if let Some(v) = version.filter(|v| *v != sess.version) {
        return Err(RpcError::bad(
            code::HEADER_MISMATCH,
            format!("MCP-Protocol-Version {v} is not this session's version {}", sess.version),
        )
        .with_id(request_id(&msg)));
    }
    let (id, method, params) = match msg {
        Message::Request { id, method, params } => (id, method, params),
        Message::Response { id, outcome } => {
            // an answer to a question a handler of this session asked on its stream
            if !peer::answer(&sid, &id, outcome) {
                tracing::debug!(session = %sid, "an MCP response nobody here waits for");
            }
            return Ok(accepted());
        }
        Message::Notification { .. } => return Ok(accepted()),
    };
    let fmt = post.fmt;
    match method.as_str() {
        "ping" => return Ok(respond(fmt, StatusCode::OK, protocol::result(&id, json!({})), None)),
        "logging/setLevel" => {
            let level = params
                .get("level")
                .and_then(Value::as_str)
                .filter(|l| peer::level_rank(l).is_some());
            let Some(level) = level else {
                let e = RpcError::new(
                    StatusCode::OK,
                    code::INVALID_PARAMS,
                    format!("params.level must be one of {}", peer::LEVELS.join(", ")),
                );
                return Ok(respond(fmt, StatusCode::OK, e.with_id(&id).body(), None));
            };
            let saved = session::update(m.store.as_ref(), &sid, owner, |s| s.log_level = Some(level.to_string()))
                .await
                .map_err(|e| store_error(e, &id))?;
            if saved.is_none() {
                return Err(session::gone().with_id(&id));
            }
            return Ok(respond(fmt, StatusCode::OK, protocol::result(&id, json!({})), None));
        }
        "initialize" => {
            return Err(RpcError::bad(code::INVALID_REQUEST, "this session is already initialized").with_id(&id));
        }
        "resources/subscribe" | "resources/unsubscribe" => {
            let body = match subscription(m, who, &sess, &method, &params).await {
                Ok(sub) => {
                    let saved = session::update(m.store.as_ref(), &sid, owner, |s| sub.apply(s))
                        .await
                        .map_err(|e| store_error(e, &id))?;
                    if saved.is_none() {
                        return Err(session::gone().with_id(&id));
                    }
                    protocol::result(&id, json!({}))
                }
                Err(e) => e.with_id(&id).body(),
            };
            return Ok(respond(fmt, StatusCode::OK, body, None));
        }
        _ => {}
    }
    if sess.version.as_str() >= RESUMABLE_SINCE {
        post.resume = Some(Owner {
            session: sid.clone(),
            owner: owner.clone(),
        });
    }
    let caps = sess.capabilities.clone().unwrap_or_else(|| json!({}));
    let level = sess.log_level.clone();
    let rules_version = sess.version.clone();
    let rules = Rules {
        not_found: |method| {
            RpcError::new(
                StatusCode::OK,
                code::METHOD_NOT_FOUND,
                format!("method {method:?} is not supported"),
            )
        },
        finish: |_, result| result,
    };
    let request = params.clone();
    let peer = move |tx| Ok(Peer::new(tx, Some(sid), &request, caps, level.as_deref(), &rules_version));
    post.answer(id, method, params, peer, rules).await
}

/// `resources/subscribe` (a URI the caller may read, at most
/// [`session::MAX_SUBSCRIPTIONS`]) or `resources/unsubscribe` on `sess`.
/// A subscription change, checked against the session as read.
enum Subscription {
    Add(String),
    Remove(String),
}

impl Subscription {
    /// Applies the change to the session as stored now (another change may
    /// have come first: the limit is checked again).
    fn apply(&self, s: &mut Session) {
        match self {
            Subscription::Remove(uri) => s.subscriptions.retain(|u| u != uri),
            Subscription::Add(uri) => {
                if !s.subscriptions.contains(uri) && s.subscriptions.len() < session::MAX_SUBSCRIPTIONS {
                    s.subscriptions.push(uri.clone());
                }
            }
        }
    }
}

async fn subscription(
    m: &crate::manage::Manager,
    who: &McpCaller,
    sess: &Session,
    method: &str,
    params: &Map<String, Value>,
) -> Result<Subscription, RpcError> {
    let invalid = |msg: String| RpcError::new(StatusCode::OK, code::INVALID_PARAMS, msg);
    let uri = params
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{method} needs params.uri")))?;
    if method == "resources/unsubscribe" {
        return Ok(Subscription::Remove(uri.to_string()));
    }
    methods::read_resource(m, &who.caller, uri, &sess.version).await?;
    if !sess.subscriptions.iter().any(|u| u == uri) && sess.subscriptions.len() >= session::MAX_SUBSCRIPTIONS {
        return Err(invalid(format!("at most {} subscriptions per session", session::MAX_SUBSCRIPTIONS)));
    }
    Ok(Subscription::Add(uri.to_string()))
}

fn request_id(msg: &Message) -> &Value {
    match msg {
        Message::Request { id, .. } => id,
        _ => &Value::Null,
    }
}

pub(super) fn store_error(e: crate::manage::ManageError, id: &Value) -> RpcError {
    tracing::error!(error = %e, "store failure in /mcp");
    RpcError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code::INTERNAL,
        "the store is unavailable, try again",
    )
    .with_id(id)
}

/// The `2026-07-28` results that carry caching hints (SEP-2549).
const CACHEABLE: [&str; 6] = [
    "server/discover",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// `2026-07-28`: every request carries its revision and the client's
/// capabilities in `_meta`; no session. Removed and unknown methods are 404.
async fn stateless_post(post: Post, msg: Message) -> Result<Response, RpcError> {
    let Message::Request { id, method, params } = msg else {
        return Ok(accepted());
    };
    let meta_of = params.get("_meta").and_then(Value::as_object);
    let missing: Vec<&str> = [meta::PROTOCOL_VERSION, meta::CLIENT_CAPABILITIES]
        .into_iter()
        .filter(|k| meta_of.and_then(|m| m.get(*k)).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(RpcError::bad(code::INVALID_PARAMS, format!("params._meta lacks {}", missing.join(", "))).with_id(&id));
    }
    let asked = meta_of
        .and_then(|m| m.get(meta::PROTOCOL_VERSION))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match header_str(&post.headers, VERSION_HEADER) {
        None => return Err(RpcError::bad(code::HEADER_MISMATCH, "the MCP-Protocol-Version header is required").with_id(&id)),
        Some(h) if h != asked => {
            return Err(RpcError::bad(
                code::HEADER_MISMATCH,
                format!("MCP-Protocol-Version {h:?} does not match _meta's protocol version {asked:?}"),
            )
            .with_id(&id))
        }
        Some(_) => {}
    }
    if method == "server/discover" {
        return Ok(respond(
            post.fmt,
            StatusCode::OK,
            protocol::result(
                &id,
                finish_stateless(
                    &method,
                    methods::discover_result(post.state.manager.config.mcp_conformance_fixtures),
                ),
            ),
            None,
        ));
    }
    let caps = meta_of
        .and_then(|m| m.get(meta::CLIENT_CAPABILITIES))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let level = meta_of
        .and_then(|m| m.get(meta::LOG_LEVEL))
        .and_then(Value::as_str)
        .map(str::to_string);
    let target = name_key(&method)
        .and_then(|k| params.get(k))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let binding = Binding::new(&post.state.manager.sealer, &post.who.caller.hash, &method, target, &params);
    let rules = Rules {
        not_found: |method| {
            RpcError::new(
                StatusCode::NOT_FOUND,
                code::METHOD_NOT_FOUND,
                format!("method {method:?} is not supported in {STATELESS}"),
            )
        },
        finish: finish_stateless,
    };
    let request = params.clone();
    let owner = post.who.caller.hash.clone();
    let peer = move |tx| Peer::stateless(tx, &request, caps, level.as_deref(), binding, &owner);
    post.answer(id, method, params, peer, rules).await
}

/// A `2026-07-28` result: its `resultType` (`complete` unless the handler
/// asked for input) and, for lists and reads, caching hints (SEP-2549).
fn finish_stateless(method: &str, mut result: Value) -> Value {
    if result.get("resultType").is_none() {
        result["resultType"] = json!("complete");
    }
    if CACHEABLE.contains(&method) && result["resultType"] == "complete" {
        // Lists and reads depend on the caller (ownership): never shared, and
        // the data may change at any moment.
        result["ttlMs"] = json!(0);
        result["cacheScope"] = json!("private");
    }
    result
}

/// `DELETE /mcp`: ends the session named in `Mcp-Session-Id` (204), or 404.
pub async fn delete(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let m = &s.manager;
    if let Err(e) = access::check_host_and_origin(&m.config, &headers) {
        return e.into_response();
    }
    let who = match access::authenticate(m, &headers).await {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let Some(sid) = header_str(&headers, SESSION_HEADER) else {
        return RpcError::bad(code::SESSION, "send the Mcp-Session-Id to end").into_response();
    };
    match session::close(m.store.as_ref(), sid, &who.caller.hash).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => RpcError::new(StatusCode::NOT_FOUND, code::SESSION, "session not found").into_response(),
        Err(e) => store_error(e, &Value::Null).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn call(name: &str) -> Message {
        protocol::parse(format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#).as_bytes()).unwrap()
    }

    #[test]
    fn method_and_name_headers_must_match_the_body() {
        let ok = headers(&[("mcp-method", " tools/call "), ("mcp-name", "  echo ")]);
        assert!(check_method_headers(&ok, &call("echo"), true).is_ok());
        for (h, required) in [
            (headers(&[("mcp-method", "tools/list"), ("mcp-name", "echo")]), false),
            (headers(&[("mcp-method", "TOOLS/CALL"), ("mcp-name", "echo")]), false),
            (headers(&[("mcp-method", "tools/call"), ("mcp-name", "delete_proxy")]), false),
            (headers(&[("mcp-method", "tools/call")]), true),
            (headers(&[("mcp-name", "echo")]), true),
        ] {
            let e = check_method_headers(&h, &call("echo"), required).unwrap_err();
            assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, code::HEADER_MISMATCH), "{h:?}");
        }
        // the dated revisions need not send them
        assert!(check_method_headers(&HeaderMap::new(), &call("echo"), false).is_ok());
    }

    #[test]
    fn accept_picks_json_or_sse() {
        assert_eq!(
            format(&headers(&[("accept", "application/json, text/event-stream")])).ok(),
            Some((Format::Json, true))
        );
        assert_eq!(format(&headers(&[("accept", "text/event-stream")])).ok(), Some((Format::Sse, true)));
        assert_eq!(
            format(&headers(&[("accept", "application/json")])).ok(),
            Some((Format::Json, false))
        );
        assert_eq!(format(&HeaderMap::new()).ok(), Some((Format::Json, false)));
        assert_eq!(
            format(&headers(&[("accept", "text/html")])).err().map(|e| e.status),
            Some(StatusCode::NOT_ACCEPTABLE)
        );
    }
}
