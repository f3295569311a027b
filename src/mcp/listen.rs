//! `GET /mcp`: a session's own SSE stream, outside any request, carrying
//! `notifications/resources/updated` for the resources the session
//! subscribed to and `notifications/resources/list_changed` when the
//! caller's resource list gained or lost an entry (looked at every
//! [`LIST_EVERY`] polls). The stream looks every [`POLL`] at the session in the
//! store (so a subscription made through any instance counts, and a
//! closed session ends the stream) and reads each subscribed resource as
//! the caller would (so it sees only what the caller may read); a change
//! of its contents since the last look is an update. The first look is
//! taken before the stream's headers go out (a subscription made later is
//! first looked at on the next poll). `2026-07-28` has no
//! sessions and no such stream: GET without `Mcp-Session-Id` is 405.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use super::access::{self, McpCaller};
use super::methods;
use super::protocol::{code, RpcError};
use super::session;
use super::transport::{header_str, store_error, SESSION_HEADER};
use crate::admin::AppState;

/// How often the stream looks for changes.
const POLL: Duration = Duration::from_secs(2);

/// The resource list is compared every this many polls (it lists every
/// proxy and certificate of the caller, so less often than subscriptions).
const LIST_EVERY: u32 = 3;

/// A comment line this often keeps proxies from closing an idle stream
/// (and finds a client that went away).
const KEEPALIVE_POLLS: u32 = 8;

/// `GET /mcp`.
pub async fn get(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match open(s, &headers).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn open(s: Arc<AppState>, headers: &HeaderMap) -> Result<Response, RpcError> {
    let m = &s.manager;
    access::check_host_and_origin(&m.config, headers)?;
    let accepts = header_str(headers, header::ACCEPT.as_str()).is_some_and(|a| {
        a.split(',').any(|t| {
            matches!(
                t.split(';').next().unwrap_or_default().trim(),
                "text/event-stream" | "*/*" | "text/*"
            )
        })
    });
    if !accepts {
        return Err(RpcError::new(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "GET /mcp streams text/event-stream only",
        ));
    }
    let who = access::authenticate(m, headers).await?;
    let Some(sid) = header_str(headers, SESSION_HEADER).map(str::to_string) else {
        return Err(RpcError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::INVALID_REQUEST,
            "GET /mcp opens a session's stream: send Mcp-Session-Id",
        ));
    };
    if session::resume(m.store.as_ref(), &sid, &who.caller.hash)
        .await
        .map_err(|e| store_error(e, &Value::Null))?
        .is_none()
    {
        return Err(RpcError::new(
            StatusCode::NOT_FOUND,
            code::SESSION,
            "session not found: initialize again",
        ));
    }
    let mut watch = Watch {
        state: s,
        who,
        sid,
        seen: HashMap::new(),
        list: None,
        polls: 0,
        quiet: 0,
    };
    // what the subscribed resources hold now: changes from here on are updates
    if watch.look().await.is_none() {
        return Err(RpcError::new(
            StatusCode::NOT_FOUND,
            code::SESSION,
            "session not found: initialize again",
        ));
    }
    let events = futures::stream::unfold(watch, |mut w| async move {
        let chunk = w.next().await?;
        Some((Ok::<_, Infallible>(chunk), w))
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(events),
    )
        .into_response())
}

/// One open stream.
struct Watch {
    state: Arc<AppState>,
    who: McpCaller,
    sid: String,
    /// A digest of each subscribed resource's contents at the last look.
    seen: HashMap<String, u64>,
    /// A digest of the resource list's URIs at the last look.
    list: Option<u64>,
    /// Looks so far.
    polls: u32,
    /// Looks since the stream last sent something.
    quiet: u32,
}

impl Watch {
    /// Waits for the next thing to send: updates, or a keep-alive; `None`
    /// when the session is gone.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            tokio::time::sleep(POLL).await;
            let updated = self.look().await?;
            if !updated.is_empty() {
                self.quiet = 0;
                let events: String = updated.iter().map(|n| format!("event: message\ndata: {n}\n\n")).collect();
                return Some(Bytes::from(events));
            }
            self.quiet += 1;
            if self.quiet >= KEEPALIVE_POLLS {
                self.quiet = 0;
                return Some(Bytes::from_static(b": keep-alive\n\n"));
            }
        }
    }

    /// The notifications due since the last look: subscribed resources
    /// whose contents changed (a new subscription is only recorded) and a
    /// changed resource list; `None` when the session ended.
    async fn look(&mut self) -> Option<Vec<Value>> {
        let m = &self.state.manager;
        let sess = match session::peek(m.store.as_ref(), &self.sid, &self.who.caller.hash).await {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            // the store is away: look again next time
            Err(_) => return Some(Vec::new()),
        };
        let notice = |method: &str, params: Value| json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.seen.retain(|uri, _| sess.subscriptions.contains(uri));
        let mut due = Vec::new();
        for uri in &sess.subscriptions {
            // a resource that can no longer be read has changed too
            let contents = methods::read_resource(m, &self.who.caller, uri, &sess.version).await.ok();
            let digest = digest(&contents.map(|c| c.to_string()));
            if self.seen.insert(uri.clone(), digest).is_some_and(|before| before != digest) {
                due.push(notice("notifications/resources/updated", json!({"uri": uri})));
            }
        }
        if self.polls.is_multiple_of(LIST_EVERY) {
            if let Ok(list) = methods::list_resources(m, &self.who.caller).await {
                let uris: Vec<&str> = list["resources"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|r| r["uri"].as_str()).collect())
                    .unwrap_or_default();
                let now = digest(&uris);
                if self.list.replace(now).is_some_and(|before| before != now) {
                    due.push(notice("notifications/resources/list_changed", json!({})));
                }
            }
        }
        self.polls = self.polls.wrapping_add(1);
        Some(due)
    }
}

/// A digest of `v` for telling whether it changed.
fn digest(v: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}
