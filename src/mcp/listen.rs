//! `GET /mcp`: a session's own SSE stream, outside any request, carrying
//! `notifications/resources/updated` for the resources the session
//! subscribed to. The stream looks every [`POLL`] at the session in the
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
                let events: String = updated
                    .iter()
                    .map(|uri| {
                        let n = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}});
                        format!("event: message\ndata: {n}\n\n")
                    })
                    .collect();
                return Some(Bytes::from(events));
            }
            self.quiet += 1;
            if self.quiet >= KEEPALIVE_POLLS {
                self.quiet = 0;
                return Some(Bytes::from_static(b": keep-alive\n\n"));
            }
        }
    }

    /// The subscribed URIs whose contents changed since the last look
    /// (a new subscription is only recorded); `None` when the session ended.
    async fn look(&mut self) -> Option<Vec<String>> {
        let m = &self.state.manager;
        let sess = match session::peek(m.store.as_ref(), &self.sid, &self.who.caller.hash).await {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            // the store is away: look again next time
            Err(_) => return Some(Vec::new()),
        };
        self.seen.retain(|uri, _| sess.subscriptions.contains(uri));
        let mut updated = Vec::new();
        for uri in &sess.subscriptions {
            // a resource that can no longer be read has changed too
            let contents = methods::read_resource(m, &self.who.caller, uri, &sess.version).await.ok();
            let mut h = DefaultHasher::new();
            contents.map(|c| c.to_string()).hash(&mut h);
            let digest = h.finish();
            if self.seen.insert(uri.clone(), digest).is_some_and(|before| before != digest) {
                updated.push(uri.clone());
            }
        }
        Some(updated)
    }
}
