//! `/api/v1/logs/...`: the request log's query API and live follow (SSE).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::openapi::{Api, Op};
use super::{reply, AppState, Authed, JsonResult};
use crate::manage::logs::{self, SearchRequest};
use crate::manage::{from_json, ManageError};
use crate::reqlog::{Page, Stats};

/// The query string as a typed request; a repeated parameter is a 422 like
/// any other bad value (which of two values counts would be a guess).
fn params<T: DeserializeOwned>(raw: Option<String>) -> Result<T, ApiError> {
    let mut map = Map::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if map.insert(k.to_string(), Value::String(v.into_owned())).is_some() {
            return Err(ManageError::Invalid(crate::model::ValidationError::new(k.to_string(), "given more than once")).into());
        }
    }
    Ok(from_json(Value::Object(map))?)
}

async fn search(State(s): State<Arc<AppState>>, Authed(c): Authed, RawQuery(q): RawQuery) -> JsonResult {
    reply(StatusCode::OK, logs::search(&s.manager, &c, params(q)?).await?)
}
async fn by_ip(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(ip): Path<String>, RawQuery(q): RawQuery) -> JsonResult {
    let r = SearchRequest {
        ip: Some(ip),
        ..params(q)?
    };
    reply(StatusCode::OK, logs::search(&s.manager, &c, r).await?)
}
async fn by_client(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(id): Path<String>, RawQuery(q): RawQuery) -> JsonResult {
    let r = SearchRequest {
        client_id: Some(id),
        ..params(q)?
    };
    reply(StatusCode::OK, logs::search(&s.manager, &c, r).await?)
}
async fn errors(State(s): State<Arc<AppState>>, Authed(c): Authed, RawQuery(q): RawQuery) -> JsonResult {
    reply(StatusCode::OK, logs::errors(&s.manager, &c, params(q)?).await?)
}
async fn events(State(s): State<Arc<AppState>>, Authed(c): Authed, RawQuery(q): RawQuery) -> JsonResult {
    reply(StatusCode::OK, logs::stats(&s.manager, &c, params(q)?).await?)
}
async fn follow(State(s): State<Arc<AppState>>, Authed(c): Authed, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let records = logs::follow(&s.manager, &c, params(q)?).await?;
    // A follow never ends by itself: it ends when the process begins to
    // stop, so it never holds a shutdown or an upgrade for the grace period.
    let mut stopping = s.shutdown.clone();
    let records = records.take_until(async move {
        let _ = stopping.changed().await;
    });
    let events = records.map(|r| {
        Ok::<_, Infallible>(
            Event::default()
                .event(r.kind.clone())
                .id(r.ts.to_string())
                .data(serde_json::to_string(&r).unwrap_or_default()),
        )
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// The search filters, as query parameters of the OpenAPI entries.
fn filters(op: Op) -> Op {
    [
        ("host", "Proxy hostname"),
        ("user", "Authenticated user"),
        ("status", "Status code (404) or class (4xx, 5xx)"),
        ("method", "Request method"),
        ("path", "Path prefix"),
        ("ip", "Client IP address"),
        ("client_id", "OAuth client id"),
        ("kind", "request or oauth (OAuth flow steps)"),
        ("hours", "Hours back from now (default 24, at most the retention)"),
        ("since", "Oldest time: RFC 3339 or Unix seconds"),
        ("until", "Newest time: RFC 3339 or Unix seconds"),
        ("min_ms", "Only requests that took at least this many milliseconds"),
        ("q", "Text anywhere in the record, case-insensitive"),
        ("limit", "Records per page (default 100, at most 1000)"),
        ("cursor", "next_cursor of the previous page"),
    ]
    .into_iter()
    .fold(op, |op, (name, description)| op.query(name, description, false))
}

/// Adds the log endpoints.
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/logs/")
        .get(search, filters(Op::new("Latest requests, newest first")).ok::<Page>(StatusCode::OK))
        .done()
        .at("/api/v1/logs/search")
        .get(search, filters(Op::new("Search the request log")).ok::<Page>(StatusCode::OK))
        .done()
        .at("/api/v1/logs/ip/{ip}")
        .get(
            by_ip,
            filters(Op::new("Requests from one client address")).ok::<Page>(StatusCode::OK),
        )
        .done()
        .at("/api/v1/logs/client/{client_id}")
        .get(
            by_client,
            filters(Op::new("Requests and OAuth steps of one OAuth client")).ok::<Page>(StatusCode::OK),
        )
        .done()
        .at("/api/v1/logs/errors")
        .get(
            errors,
            filters(Op::new("4xx/5xx responses and failed OAuth steps")).ok::<Page>(StatusCode::OK),
        )
        .done()
        .at("/api/v1/logs/events")
        .get(
            events,
            Op::new("Hourly counts, error rates, latency percentiles and unique visitors per host")
                .query("hours", "Hours back from now (default 24)", false)
                .query("host", "Only this hostname", false)
                .ok::<Stats>(StatusCode::OK),
        )
        .done()
        .at("/api/v1/logs/follow")
        .get(
            follow,
            filters(Op::new(
                "New records as Server-Sent Events (event: request or oauth, data: a record)",
            ))
            .ok_media(StatusCode::OK, "text/event-stream"),
        )
        .done()
}
