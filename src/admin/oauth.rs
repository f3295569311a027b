//! HTTP adapters of the OAuth protocol endpoints (the logic is in `oauth`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::AppState;
use crate::oauth::params::bearer;
use crate::oauth::token::token_response;
use crate::oauth::OAuthError;

/// Largest request body an OAuth endpoint reads: form posts and client
/// metadata are a few KiB; more is refused with 413 before it is buffered.
pub const MAX_OAUTH_BODY: usize = 64 * 1024;

/// A request body of an OAuth endpoint. axum's own rejection (too large,
/// unreadable) is plain text; this one is the RFC 6749 error JSON.
struct Body(Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(OAuthError::body_rejected(e.status(), format!("request body over {} KiB", MAX_OAUTH_BODY / 1024)).into_response())
            }
            Err(e) => Err(OAuthError::body_rejected(e.status(), e.body_text()).into_response()),
        }
    }
}

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
async fn consent(State(s): State<Arc<AppState>>, headers: HeaderMap, Body(body): Body) -> Response {
    s.manager.oauth.decide(&headers, &body).await
}
async fn token(State(s): State<Arc<AppState>>, headers: HeaderMap, Body(body): Body) -> Response {
    s.manager.oauth.token(&headers, &body).await
}
async fn introspect(State(s): State<Arc<AppState>>, headers: HeaderMap, Body(body): Body) -> Response {
    let admin_ok = match bearer(&headers) {
        Some(t) => s.manager.authenticate(Some(t)).await.is_ok_and(|c| c.is_admin()),
        None => false,
    };
    s.manager.oauth.introspect(&headers, &body, admin_ok).await
}
async fn revoke(State(s): State<Arc<AppState>>, headers: HeaderMap, Body(body): Body) -> Response {
    s.manager.oauth.revoke(&headers, &body).await
}
async fn verify(State(s): State<Arc<AppState>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    s.manager.oauth.verify(&headers, &q(&raw)).await
}
async fn register(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
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
async fn registration_update(State(s): State<Arc<AppState>>, Path(id): Path<String>, headers: HeaderMap, Body(body): Body) -> Response {
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
async fn device_code(State(s): State<Arc<AppState>>, headers: HeaderMap, Body(body): Body) -> Response {
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
    // A router of their own, so the body limit applies to these endpoints only.
    let oauth = Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
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
        .layer(axum::extract::DefaultBodyLimit::max(MAX_OAUTH_BODY));
    r.merge(oauth)
}
