//! HTTP adapters of the OAuth protocol endpoints (the logic is in `oauth`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::openapi::{Api, Op};
use super::AppState;
use crate::oauth::clients::{ClientMetadata, ClientRegistration};
use crate::oauth::consent::ConsentDecision;
use crate::oauth::device::{DeviceAuthorization, DeviceAuthorizationRequest};
use crate::oauth::introspect::{Introspection, IntrospectionRequest, RevocationRequest, VerifyAnswer};
use crate::oauth::keys::Jwks;
use crate::oauth::metadata::{OpenIdConfiguration, ServerMetadata};
use crate::oauth::params::bearer;
use crate::oauth::token::{token_response, TokenRequest, TokenResponse};
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
async fn authorize(State(s): State<Arc<AppState>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let resp = s.manager.oauth.authorize(&q(&raw)).await;
    crate::reqlog::events::authorize(&headers, &q(&raw), &resp);
    resp
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

/// Adds the OAuth protocol endpoints, each reading at most
/// [`MAX_OAUTH_BODY`] bytes of body.
pub fn routes(api: Api) -> Api {
    let ok = StatusCode::OK;
    // A route list of its own, so the body limit applies to these endpoints only.
    let own = Api::new();
    let page = |s: &str| Op::new(s).oauth().ok_media(StatusCode::OK, "text/html");
    let verify_op = || {
        Op::new("ForwardAuth check of a token (bearer or session cookie) for a host")
            .oauth()
            .query("resource", "The exact resource the token must be for", false)
            .query("rd", "The URL being visited; its host must be in the token's audience", false)
            .ok::<VerifyAnswer>(ok)
    };
    let own = own
        .at("/.well-known/oauth-authorization-server")
        .get(
            metadata,
            Op::new("Authorization server metadata (RFC 8414)").oauth().ok::<ServerMetadata>(ok),
        )
        .done()
        .at("/.well-known/oauth-authorization-server/{*rest}")
        .get(
            metadata,
            Op::new("Authorization server metadata for a path-suffixed issuer")
                .oauth()
                .ok::<ServerMetadata>(ok),
        )
        .done()
        .at("/.well-known/openid-configuration")
        .get(openid, Op::new("OpenID Connect discovery").oauth().ok::<OpenIdConfiguration>(ok))
        .done()
        .at("/jwks")
        .get(jwks, Op::new("The signing keys (JWKS, RFC 7517)").oauth().ok::<Jwks>(ok))
        .done()
        .at("/authorize")
        .get(
            authorize,
            Op::new("Authorization endpoint: starts the login (code flow with PKCE S256)")
                .oauth()
                .query("response_type", "`code`", true)
                .query("client_id", "The client (or the URL of its metadata document)", true)
                .query("redirect_uri", "One of the client's redirect URIs", false)
                .query("code_challenge", "The PKCE S256 challenge", true)
                .query("code_challenge_method", "`S256`", true)
                .query("scope", "Scopes, space separated", false)
                .query("state", "Returned unchanged with the code", false)
                .query("resource", "A resource indicator (RFC 8707), repeatable", false)
                .query("proxy_hostname", "The proxy whose login rules apply", false)
                .redirect(StatusCode::FOUND),
        )
        .done()
        .at("/callback")
        .get(
            callback,
            Op::new("Return from the upstream identity provider")
                .oauth()
                .query("state", "The login session", true)
                .query("code", "The upstream authorization code", false)
                .query("error", "The upstream refusal", false)
                .redirect(StatusCode::FOUND),
        )
        .done()
        .at("/consent")
        .post(
            consent,
            Op::new("Answer of the consent page")
                .oauth()
                .form::<ConsentDecision>()
                .redirect(StatusCode::SEE_OTHER),
        )
        .done()
        .at("/token")
        .post(
            token,
            Op::new("Token endpoint (RFC 6749, RFC 8628, RFC 8707)")
                .oauth()
                .form::<TokenRequest>()
                .ok::<TokenResponse>(ok),
        )
        .done()
        .at("/introspect")
        .post(
            introspect,
            Op::new("Token introspection (RFC 7662)")
                .oauth()
                .form::<IntrospectionRequest>()
                .ok::<Introspection>(ok),
        )
        .done()
        .at("/revoke")
        .post(
            revoke,
            Op::new("Token revocation (RFC 7009)").oauth().form::<RevocationRequest>().empty(ok),
        )
        .done()
        .at("/verify")
        .get(verify, verify_op())
        .post(verify, verify_op())
        .done()
        .at("/register")
        .post(
            register,
            Op::new("Dynamic client registration (RFC 7591)")
                .oauth()
                .body::<ClientMetadata>()
                .ok::<ClientRegistration>(StatusCode::CREATED),
        )
        .done()
        .at("/register/{client_id}")
        .get(
            registration_read,
            Op::new("Read a client registration (RFC 7592)")
                .oauth()
                .ok::<ClientRegistration>(ok),
        )
        .put(
            registration_update,
            Op::new("Update a client registration (RFC 7592)")
                .oauth()
                .body::<ClientMetadata>()
                .ok::<ClientRegistration>(ok),
        )
        .delete(
            registration_delete,
            Op::new("Delete a client registration (RFC 7592)")
                .oauth()
                .empty(StatusCode::NO_CONTENT),
        )
        .done()
        .at("/device/code")
        .post(
            device_code,
            Op::new("Device authorization (RFC 8628)")
                .oauth()
                .form::<DeviceAuthorizationRequest>()
                .ok::<DeviceAuthorization>(ok),
        )
        .done()
        .at("/device/token")
        .post(
            token,
            Op::new("Token endpoint for the device flow")
                .oauth()
                .form::<TokenRequest>()
                .ok::<TokenResponse>(ok),
        )
        .done()
        .at("/device")
        .get(
            device_page,
            page("The device verification page").query("user_code", "The code shown on the device", false),
        )
        .done()
        .at("/_portcullis/login")
        .get(
            proxy_login,
            Op::new("Login for a proxy in redirect mode")
                .oauth()
                .query("rd", "Where to return after login (same host only)", false)
                .redirect(StatusCode::FOUND),
        )
        .done()
        .at("/_portcullis/callback")
        .get(
            proxy_callback,
            Op::new("Return to a proxy after login")
                .oauth()
                .query("state", "The pending login", true)
                .query("code", "The authorization code", false)
                .query("error", "The refusal", false)
                .redirect(StatusCode::FOUND),
        )
        .done();
    api.merge(own.limit_body(MAX_OAUTH_BODY))
}
