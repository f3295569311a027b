//! OAuth flow events (authorize, callback, token, refresh, revoke, and
//! their failures with the reason) as request-log records of kind `oauth`,
//! with the client id and the user, so `portcullis logs oauth` can trace a
//! flow. Secrets (codes, tokens, client secrets) are never put in a record.

use axum::http::{header, HeaderMap};
use base64::Engine;

use super::capture::unique_ts;
use super::record::{truncate, Record};
use super::writer::{self, Item};
use crate::oauth::params::{client_credentials, Params};
use crate::oauth::OAuthError;

/// Longest client id or user name kept in an event.
const MAX_NAME: usize = 256;

/// The client address the data plane named (`X-Real-IP`, set by it for
/// every request it forwards; the control plane listens on loopback only).
fn client_ip(headers: &HeaderMap) -> String {
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string())
}

/// The host the client asked for (the authorization server's hostname).
fn host(headers: &HeaderMap) -> String {
    let raw = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let h = raw.split(':').next().unwrap_or_default().to_ascii_lowercase();
    if h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
        truncate(&h, 253).to_string()
    } else {
        "invalid".into()
    }
}

/// Queues one event record.
fn emit(event: &str, path: &str, headers: &HeaderMap, client_id: Option<&str>, user: Option<&str>, status: u16, reason: Option<String>) {
    if !writer::enabled() {
        return;
    }
    let name = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(|s| truncate(s, MAX_NAME).to_string());
    let ts = unique_ts();
    writer::submit(Item::Event(Box::new(Record {
        ts,
        timestamp: writer::rfc3339(ts),
        kind: "oauth".into(),
        request_id: headers
            .get(super::capture::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(|v| truncate(v, 128).to_string()),
        client_ip: client_ip(headers),
        host: host(headers),
        path: path.into(),
        status,
        client_id: name(client_id),
        user: name(user),
        event: Some(event.into()),
        reason: reason.map(|r| truncate(&r, 512).to_string()),
        ..Record::default()
    })));
}

/// The reason of an OAuth error: its code and description.
fn reason_of(e: &OAuthError) -> String {
    format!("{}: {}", e.code, e.description)
}

/// The user name in an access token we just issued (its payload, read
/// without checking the signature we made a moment ago).
fn user_in(token_response: &serde_json::Value) -> Option<String> {
    let token = token_response.get("access_token")?.as_str()?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("preferred_username")?.as_str().map(String::from)
}

/// `POST /token`: `token` (code or device grant) or `refresh`, by grant type.
pub fn token(headers: &HeaderMap, body: &[u8], result: Result<&serde_json::Value, &OAuthError>) {
    let p = Params::parse(body);
    let grant = p.get("grant_type").ok().flatten().unwrap_or_default();
    let event = if grant == "refresh_token" { "refresh" } else { "token" };
    let client = client_credentials(headers, &p).ok().map(|(id, _)| id);
    match result {
        Ok(v) => emit(event, "/token", headers, client.as_deref(), user_in(v).as_deref(), 200, None),
        Err(e) => emit(
            event,
            "/token",
            headers,
            client.as_deref(),
            None,
            e.status.as_u16(),
            Some(reason_of(e)),
        ),
    }
}

/// `POST /revoke`.
pub fn revoke(headers: &HeaderMap, body: &[u8], result: Result<(), &OAuthError>) {
    let p = Params::parse(body);
    let client = client_credentials(headers, &p).ok().map(|(id, _)| id);
    match result {
        Ok(()) => emit("revoke", "/revoke", headers, client.as_deref(), None, 200, None),
        Err(e) => emit(
            "revoke",
            "/revoke",
            headers,
            client.as_deref(),
            None,
            e.status.as_u16(),
            Some(reason_of(e)),
        ),
    }
}

/// The `error` of a redirect back to the client, or of an error page.
fn redirect_error(resp: &axum::response::Response) -> Option<String> {
    let status = resp.status().as_u16();
    let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
    let from_location = location
        .and_then(|l| url::Url::parse(l).ok())
        .and_then(|u| u.query_pairs().find(|(k, _)| k == "error").map(|(_, v)| v.into_owned()));
    from_location.or_else(|| (status >= 400).then(|| format!("answered {status}")))
}

/// `GET /authorize`: the client asking for a login.
pub fn authorize(headers: &HeaderMap, query: &[u8], resp: &axum::response::Response) {
    let p = Params::parse(query);
    let client = p.get("client_id").ok().flatten();
    emit(
        "authorize",
        "/authorize",
        headers,
        client,
        None,
        resp.status().as_u16(),
        redirect_error(resp),
    );
}

/// `GET /callback`: the provider sent the user back; `user` when the login succeeded.
pub fn callback(headers: &HeaderMap, client_id: &str, user: Option<&str>, resp: &axum::response::Response) {
    emit(
        "callback",
        "/callback",
        headers,
        Some(client_id),
        user,
        resp.status().as_u16(),
        redirect_error(resp),
    );
}
