//! `/api/v1/oauth/...`: the OAuth admin API (admin tokens only): clients,
//! tokens, sessions, key rotation, metrics and health. Each handler calls
//! `manage::oauth_admin`, which checks the caller.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::openapi::{Api, Op};
use super::{reply, AppState, Authed, Body, JsonResult};
use crate::manage::oauth_admin::{
    self as oa, ClientFlags, ClientFlagsUpdate, ClientKey, ClientView, ConsentKey, ConsentView, JtiKey, MintRequest, Minted, OAuthCounts,
    OAuthHealth, OAuthRemoved, ProxyAuthView, ProxyHost, Rotated, SessionKey, SessionView, TokenList,
};
use crate::oauth::model::AccessRecord;

async fn clients(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, oa::list_clients(&s.manager, &c).await?)
}
async fn client(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(client_id): Path<String>) -> JsonResult {
    reply(StatusCode::OK, oa::get_client(&s.manager, &c, ClientKey { client_id }).await?)
}
async fn delete_client(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(client_id): Path<String>) -> JsonResult {
    reply(StatusCode::OK, oa::delete_client(&s.manager, &c, ClientKey { client_id }).await?)
}
async fn patch_client(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(client_id): Path<String>,
    Body(flags): Body<ClientFlags>,
) -> JsonResult {
    reply(
        StatusCode::OK,
        oa::set_client_flags(&s.manager, &c, ClientFlagsUpdate { client_id, flags }).await?,
    )
}
async fn consents(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, oa::list_consents(&s.manager, &c).await?)
}
async fn forget_client_consents(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(client_id): Path<String>) -> JsonResult {
    reply(
        StatusCode::OK,
        oa::forget_client_consents(&s.manager, &c, ClientKey { client_id }).await?,
    )
}
async fn forget_consent(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path((client_id, user_id)): Path<(String, String)>,
) -> JsonResult {
    reply(
        StatusCode::OK,
        oa::forget_consent(&s.manager, &c, ConsentKey { client_id, user_id }).await?,
    )
}
async fn client_tokens(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(client_id): Path<String>) -> JsonResult {
    reply(StatusCode::OK, oa::client_tokens(&s.manager, &c, ClientKey { client_id }).await?)
}
async fn tokens(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, oa::list_tokens(&s.manager, &c).await?)
}
async fn token(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(jti): Path<String>) -> JsonResult {
    reply(StatusCode::OK, oa::get_token(&s.manager, &c, JtiKey { jti }).await?)
}
async fn revoke_token(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(jti): Path<String>) -> JsonResult {
    reply(StatusCode::OK, oa::revoke_token(&s.manager, &c, JtiKey { jti }).await?)
}
async fn sessions(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, oa::list_sessions(&s.manager, &c).await?)
}
async fn delete_session(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(session_id): Path<String>) -> JsonResult {
    reply(StatusCode::OK, oa::revoke_session(&s.manager, &c, SessionKey { session_id }).await?)
}
async fn rotate(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, oa::rotate_keys(&s.manager, &c).await?)
}
async fn metrics(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, oa::counts(&s.manager, &c).await?)
}
async fn health(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, oa::health(&s.manager, &c).await?)
}
/// Mints an access token through the real signing code (admin only), for
/// integration tests and for service accounts.
async fn test_token(State(s): State<Arc<AppState>>, Authed(c): Authed, Body(b): Body<MintRequest>) -> JsonResult {
    reply(StatusCode::CREATED, oa::mint(&s.manager, &c, b).await?)
}
async fn proxies(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, oa::proxies(&s.manager, &c).await?)
}
async fn proxy_sessions(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(hostname): Path<String>) -> JsonResult {
    reply(StatusCode::OK, oa::proxy_sessions(&s.manager, &c, ProxyHost { hostname }).await?)
}

/// Adds the OAuth admin endpoints.
pub fn routes(api: Api) -> Api {
    let ok = StatusCode::OK;
    api.at("/api/v1/oauth/clients/")
        .get(clients, Op::new("List the registered OAuth clients").ok_list::<ClientView>(ok))
        .done()
        .at("/api/v1/oauth/clients/{client_id}")
        .get(client, Op::new("Show an OAuth client").ok::<ClientView>(ok))
        .delete(delete_client, Op::new("Delete an OAuth client").ok::<OAuthRemoved>(ok))
        .patch(
            patch_client,
            Op::new("Set an OAuth client's flags").body::<ClientFlags>().ok::<ClientView>(ok),
        )
        .done()
        .at("/api/v1/oauth/clients/{client_id}/consents")
        .delete(
            forget_client_consents,
            Op::new("Forget every consent given to a client").ok::<OAuthRemoved>(ok),
        )
        .done()
        .at("/api/v1/oauth/clients/{client_id}/consents/{user_id}")
        .delete(
            forget_consent,
            Op::new("Forget one user's consent to a client").ok::<OAuthRemoved>(ok),
        )
        .done()
        .at("/api/v1/oauth/consents")
        .get(consents, Op::new("List the consents given").ok_list::<ConsentView>(ok))
        .done()
        .at("/api/v1/oauth/clients/{client_id}/tokens")
        .get(
            client_tokens,
            Op::new("List a client's live access tokens").ok_list::<AccessRecord>(ok),
        )
        .done()
        .at("/api/v1/oauth/tokens")
        .get(tokens, Op::new("List the live access tokens").ok::<TokenList>(ok))
        .done()
        .at("/api/v1/oauth/tokens/{jti}")
        .get(token, Op::new("Show a live access token").ok::<AccessRecord>(ok))
        .delete(revoke_token, Op::new("Revoke an access token").ok::<OAuthRemoved>(ok))
        .done()
        .at("/api/v1/oauth/sessions")
        .get(sessions, Op::new("List the sessions (token families)").ok_list::<SessionView>(ok))
        .done()
        .at("/api/v1/oauth/sessions/{session_id}")
        .delete(delete_session, Op::new("Revoke a session").ok::<OAuthRemoved>(ok))
        .done()
        .at("/api/v1/oauth/keys/rotate")
        .post(rotate, Op::new("Rotate the signing key").ok::<Rotated>(ok))
        .done()
        .at("/api/v1/oauth/metrics")
        .get(metrics, Op::new("Counts of tokens and clients").ok::<OAuthCounts>(ok))
        .done()
        .at("/api/v1/oauth/health")
        .get(health, Op::new("The authorization server's state").ok::<OAuthHealth>(ok))
        .done()
        .at("/api/v1/oauth/test-token")
        .post(
            test_token,
            Op::new("Mint an access token")
                .body::<MintRequest>()
                .ok::<Minted>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/oauth/proxies")
        .get(proxies, Op::new("The proxies' auth settings").ok_list::<ProxyAuthView>(ok))
        .done()
        .at("/api/v1/oauth/proxies/{hostname}/sessions")
        .get(
            proxy_sessions,
            Op::new("Live tokens for a proxy's resource").ok_list::<AccessRecord>(ok),
        )
        .done()
}
