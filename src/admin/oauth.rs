//! HTTP adapters of the OAuth protocol endpoints (the logic is in `oauth`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::AppState;
use crate::oauth::params::bearer;
use crate::oauth::token::token_response;
use crate::oauth::OAuthError;

fn q(raw: &Option<String>) -> Vec<u8> {
    raw.clone().unwrap_or_default().into_bytes()
}

/// The client address: the data plane's `X-Forwarded-For` when the peer is loopback.
fn source(peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if peer.ip().is_loopback() {
        if let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
    }
    peer.ip()
}

fn json_or_error(r: Result<serde_json::Value, OAuthError>, status: StatusCode) -> Response {
    match r {
        Ok(v) => {
            let mut resp = (status, Json(v)).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn metadata(State(s): State<Arc<AppState>>) -> Response {
    Json(s.manager.oauth.server_metadata()).into_response()
}
async fn openid(State(s): State<Arc<AppState>>) -> Response {
    Json(s.manager.oauth.openid_configuration()).into_response()
}
async fn jwks(State(s): State<Arc<AppState>>) -> Response {
    match s.manager.oauth.keys().await {
        Ok(r) => ([(header::CACHE_CONTROL, "public, max-age=300")], Json(r.jwks())).into_response(),
        Err(e) => e.into_response(),
    }
}
async fn authorize(State(s): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    s.manager.oauth.authorize(&q(&raw)).await
}
async fn callback(State(s): State<Arc<AppState>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    s.manager.oauth.callback(&headers, &q(&raw)).await
}
async fn consent(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    s.manager.oauth.decide(&headers, &body).await
}
async fn token(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    s.manager.oauth.token(&headers, &body).await
}
async fn introspect(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let admin_ok = match bearer(&headers) {
        Some(t) => s.manager.authenticate(Some(t)).await.is_ok_and(|c| c.is_admin()),
        None => false,
    };
    s.manager.oauth.introspect(&headers, &body, admin_ok).await
}
async fn revoke(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    s.manager.oauth.revoke(&headers, &body).await
}
async fn verify(State(s): State<Arc<AppState>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    s.manager.oauth.verify(&headers, &q(&raw)).await
}
async fn register(State(s): State<Arc<AppState>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap, body: Bytes) -> Response {
    let meta = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return OAuthError::invalid_client_metadata(format!("malformed JSON: {e}")).into_response(),
    };
    json_or_error(
        s.manager.oauth.register(meta, Some(source(peer, &headers))).await,
        StatusCode::CREATED,
    )
}
async fn registration_read(State(s): State<Arc<AppState>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    json_or_error(s.manager.oauth.registration_read(&id, bearer(&headers)).await, StatusCode::OK)
}
async fn registration_update(State(s): State<Arc<AppState>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let meta = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return OAuthError::invalid_client_metadata(format!("malformed JSON: {e}")).into_response(),
    };
    json_or_error(
        s.manager.oauth.registration_update(&id, bearer(&headers), meta).await,
        StatusCode::OK,
    )
}
async fn registration_delete(State(s): State<Arc<AppState>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match s.manager.oauth.registration_delete(&id, bearer(&headers)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}
async fn device_code(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    match s.manager.oauth.device_code(&headers, &body).await {
        Ok(v) => token_response(v),
        Err(e) => e.into_response(),
    }
}
async fn device_page(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    s.manager.oauth.device_page(&q(&raw), source(peer, &headers)).await
}

async fn proxy_login(State(s): State<Arc<AppState>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    s.manager.oauth.proxy_login(&headers, &q(&raw)).await
}
async fn proxy_callback(State(s): State<Arc<AppState>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    s.manager.oauth.proxy_callback(&headers, &q(&raw)).await
}

/// Adds the OAuth protocol endpoints.
pub fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    r.route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/oauth-authorization-server/{*rest}", get(metadata))
        .route("/.well-known/openid-configuration", get(openid))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/callback", get(callback))
        .route("/consent", post(consent))
        .route("/token", post(token))
        .route("/introspect", post(introspect))
        .route("/revoke", post(revoke))
        .route("/verify", get(verify).post(verify))
        .route("/register", post(register))
        .route(
            "/register/{client_id}",
            get(registration_read).put(registration_update).delete(registration_delete),
        )
        .route("/device/code", post(device_code))
        .route("/device/token", post(token))
        .route("/device", get(device_page))
        .route("/_portcullis/login", get(proxy_login))
        .route("/_portcullis/callback", get(proxy_callback))
}
