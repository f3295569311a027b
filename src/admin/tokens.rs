//! `/api/v1/tokens/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::openapi::{Api, Op};
use super::{reply, AppState, Authed, Body, JsonResult};
use crate::manage::tokens::{self, TokenDeleted};
use crate::model::{TokenEmail, TokenKey, TokenSpec, TokenView};

async fn create(State(s): State<Arc<AppState>>, Authed(c): Authed, Body(b): Body<TokenSpec>) -> JsonResult {
    reply(StatusCode::CREATED, tokens::create(&s.manager, &c, b).await?)
}
async fn generate(State(s): State<Arc<AppState>>, Authed(c): Authed, Body(b): Body<TokenSpec>) -> JsonResult {
    reply(StatusCode::CREATED, tokens::generate(&s.manager, &c, b).await?)
}
async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, tokens::list(&s.manager, &c).await?)
}
async fn info(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, tokens::info(&s.manager, &c).await?)
}
async fn email(State(s): State<Arc<AppState>>, Authed(c): Authed, Body(b): Body<TokenEmail>) -> JsonResult {
    reply(StatusCode::OK, tokens::set_email(&s.manager, &c, b).await?)
}
async fn show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(name): Path<String>) -> JsonResult {
    reply(StatusCode::OK, tokens::get(&s.manager, &c, TokenKey { name }).await?)
}
async fn delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(name): Path<String>) -> JsonResult {
    reply(StatusCode::OK, tokens::delete(&s.manager, &c, TokenKey { name }).await?)
}
async fn reveal(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(name): Path<String>) -> JsonResult {
    reply(StatusCode::OK, tokens::reveal(&s.manager, &c, TokenKey { name }).await?)
}

/// Adds the token endpoints.
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/tokens/")
        .get(
            list,
            Op::new("List the tokens the caller may see").ok_list::<TokenView>(StatusCode::OK),
        )
        .post(
            create,
            Op::new("Store a token the caller gives")
                .body::<TokenSpec>()
                .ok::<TokenView>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/tokens/generate")
        .post(
            generate,
            Op::new("Generate a new token")
                .body::<TokenSpec>()
                .ok::<TokenView>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/tokens/info")
        .get(info, Op::new("The calling token").ok::<TokenView>(StatusCode::OK))
        .done()
        .at("/api/v1/tokens/email")
        .put(
            email,
            Op::new("Set the calling token's certificate e-mail")
                .body::<TokenEmail>()
                .ok::<TokenView>(StatusCode::OK),
        )
        .done()
        .at("/api/v1/tokens/{name}")
        .get(show, Op::new("Show a token").ok::<TokenView>(StatusCode::OK))
        .delete(
            delete,
            Op::new("Delete a token and what it owns").ok::<TokenDeleted>(StatusCode::OK),
        )
        .done()
        .at("/api/v1/tokens/{name}/reveal")
        .get(reveal, Op::new("Reveal a token's value").ok::<TokenView>(StatusCode::OK))
        .done()
}
