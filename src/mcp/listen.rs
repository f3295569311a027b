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
//!
//! Each stream polls the store, so their number is bounded per instance:
//! one per session (a second is 409, as the MCP TypeScript SDK answers),
//! [`MAX_PER_CALLER`] per credential (429) and [`MAX_STREAMS`] in all
//! (503). With `Last-Event-ID` naming an event of one of the session's
//! request streams, GET resumes that stream instead (`replay`). Streams end when the process begins to stop, so they never hold
//! a shutdown or an upgrade for the whole grace period, and when their
//! credential no longer authenticates (checked every ten seconds).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
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
use super::replay::{self, Owner, Resumption};
use super::session;
use super::transport::{header_str, store_error, SESSION_HEADER};
use crate::admin::AppState;

/// The header a client resumes a stream with (SSE).
const LAST_EVENT_ID: &str = "last-event-id";

/// How often the stream looks for changes.
const POLL: Duration = Duration::from_secs(2);

/// The resource list is compared every this many polls (it lists every
/// proxy and certificate of the caller, so less often than subscriptions).
const LIST_EVERY: u32 = 3;

/// A comment line this often keeps proxies from closing an idle stream
/// (and finds a client that went away).
const KEEPALIVE_POLLS: u32 = 8;

/// The credential is checked again this often (in polls): a revoked API
/// token or an expired OAuth token ends the stream within ten seconds.
const REAUTH_POLLS: u32 = 5;

/// Open streams on this instance, at most.
const MAX_STREAMS: usize = 256;

/// Open streams of one credential on this instance, at most.
const MAX_PER_CALLER: usize = 16;

/// The streams open on this instance: by session, and a count per caller.
#[derive(Default)]
struct Open {
    sessions: HashSet<String>,
    per_caller: HashMap<String, usize>,
}

static OPEN: std::sync::LazyLock<Mutex<Open>> = std::sync::LazyLock::new(Mutex::default);

/// A stream's place among the open ones, given back when the stream ends.
struct Slot {
    sid: String,
    caller: String,
}

impl Slot {
    /// Takes a place for session `sid` of `caller`, or says why there is none.
    fn claim(sid: &str, caller: &str) -> Result<Slot, RpcError> {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        if open.sessions.contains(sid) {
            return Err(RpcError::new(
                StatusCode::CONFLICT,
                code::INVALID_REQUEST,
                "this session already has a stream open: one GET stream per session",
            ));
        }
        if open.per_caller.get(caller).copied().unwrap_or(0) >= MAX_PER_CALLER {
            return Err(RpcError::new(
                StatusCode::TOO_MANY_REQUESTS,
                code::INVALID_REQUEST,
                format!("this credential has {MAX_PER_CALLER} streams open: close one first"),
            ));
        }
        if open.sessions.len() >= MAX_STREAMS {
            return Err(RpcError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::INTERNAL,
                "too many streams open on this instance: try again later",
            ));
        }
        open.sessions.insert(sid.to_string());
        *open.per_caller.entry(caller.to_string()).or_default() += 1;
        Ok(Slot {
            sid: sid.to_string(),
            caller: caller.to_string(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        open.sessions.remove(&self.sid);
        if let Some(n) = open.per_caller.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                open.per_caller.remove(&self.caller);
            }
        }
    }
}

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
        return Err(session::gone());
    }
    if let Some(last) = header_str(headers, LAST_EVENT_ID) {
        let owner = Owner {
            session: sid.clone(),
            owner: who.caller.hash.clone(),
        };
        // an id that is not this session's (or is gone) is ignored: the
        // session's own stream opens as without one
        if let Some(resumption) = replay::resume(last, &owner) {
            return Ok(resumed(resumption, s.shutdown.clone()));
        }
    }
    let slot = Slot::claim(&sid, &who.caller.hash)?;
    let stopping = s.shutdown.clone();
    let mut credential = HeaderMap::new();
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        credential.insert(header::AUTHORIZATION, v.clone());
    }
    let mut watch = Watch {
        state: s,
        who,
        credential,
        sid,
        stopping,
        _slot: slot,
        seen: HashMap::new(),
        list: None,
        polls: 0,
        quiet: 0,
    };
    // what the subscribed resources hold now: changes from here on are updates
    if watch.look().await.is_none() {
        return Err(session::gone());
    }
    let events = futures::stream::unfold(watch, |mut w| async move {
        let chunk = w.next().await?;
        Some((Ok::<_, Infallible>(chunk), w))
    });
    Ok(event_stream(Body::from_stream(events)))
}

/// An SSE response of `body`.
fn event_stream(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// A request's stream resumed after the event the client last received
/// (SEP-1699): what followed, then what comes until the result; it ends
/// with the stream's end or when the process begins to stop. Its number
/// is bounded by the kept streams (one resumption each, `replay`), apart
/// from the per-session streams above.
fn resumed(resumption: Resumption, stopping: tokio::sync::watch::Receiver<bool>) -> Response {
    let events = futures::stream::unfold((resumption, stopping), |(mut r, mut stopping)| async move {
        let chunk = tokio::select! {
            chunk = r.next() => chunk?,
            _ = stopping.changed() => return None,
        };
        Some((Ok::<_, Infallible>(chunk), (r, stopping)))
    });
    event_stream(Body::from_stream(events))
}

/// One open stream.
struct Watch {
    state: Arc<AppState>,
    who: McpCaller,
    /// The `Authorization` header the stream was opened with, checked again
    /// every [`REAUTH_POLLS`].
    credential: HeaderMap,
    sid: String,
    /// Changes when the process begins to stop.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Given back when the stream ends (the client left, the session ended).
    _slot: Slot,
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
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = self.stopping.changed() => return None,
            }
            if self.polls > 0 && self.polls.is_multiple_of(REAUTH_POLLS) && !self.still_authorized().await {
                return None;
            }
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

    /// True while the stream's credential still authenticates as the same
    /// caller (a store outage is not a refusal: the next check decides).
    async fn still_authorized(&self) -> bool {
        match access::authenticate(&self.state.manager, &self.credential).await {
            Ok(now) => now.caller.hash == self.who.caller.hash,
            Err(e) => e.status == StatusCode::SERVICE_UNAVAILABLE,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sid: &str, caller: &str) -> Option<StatusCode> {
        Slot::claim(sid, caller).err().map(|e| e.status)
    }

    #[test]
    fn streams_are_bounded_per_session_and_per_caller_and_given_back() {
        let caller = "listen-test-caller";
        let first = Slot::claim("listen-test-0", caller).expect("a first stream");
        assert_eq!(refused("listen-test-0", caller), Some(StatusCode::CONFLICT));
        let more: Vec<Slot> = (1..MAX_PER_CALLER)
            .map(|i| Slot::claim(&format!("listen-test-{i}"), caller).expect("within the caller's share"))
            .collect();
        assert_eq!(refused("listen-test-x", caller), Some(StatusCode::TOO_MANY_REQUESTS));
        assert!(
            Slot::claim("listen-test-y", "listen-test-other").is_ok(),
            "another caller is not affected"
        );
        drop(first);
        assert!(Slot::claim("listen-test-0", caller).is_ok(), "an ended stream gives its place back");
        drop(more);
        let open = OPEN.lock().unwrap();
        assert!(!open.per_caller.contains_key(caller));
        assert!(!open.sessions.iter().any(|s| s.starts_with("listen-test-")));
    }
}
