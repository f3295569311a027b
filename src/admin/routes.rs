//! `/api/v1/routes/...`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::ApiResult;
use super::openapi::{Api, Op};
use super::{reply, AppState, Authed, Body, JsonResult};
use crate::manage::routes::{self, RouteDeleted};
use crate::model::{Route, RouteKey, RoutePatch, RouteSpec, RouteUpdate};

async fn create(State(s): State<Arc<AppState>>, Authed(c): Authed, Body(b): Body<RouteSpec>) -> JsonResult {
    reply(StatusCode::CREATED, routes::create(&s.manager, &c, b).await?)
}
async fn list(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    reply(StatusCode::OK, routes::list(&s.manager, &c).await?)
}
async fn formatted(State(s): State<Arc<AppState>>, Authed(c): Authed) -> ApiResult<Response> {
    let text = routes::formatted(&s.manager, &c).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}
async fn show(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(route_id): Path<String>) -> JsonResult {
    reply(StatusCode::OK, routes::get(&s.manager, &c, RouteKey { route_id }).await?)
}
async fn update(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(route_id): Path<String>,
    Body(patch): Body<RoutePatch>,
) -> JsonResult {
    reply(
        StatusCode::OK,
        routes::update(&s.manager, &c, RouteUpdate { route_id, patch }).await?,
    )
}
async fn delete(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(route_id): Path<String>) -> JsonResult {
    reply(StatusCode::OK, routes::delete(&s.manager, &c, RouteKey { route_id }).await?)
}

/// Adds the route endpoints.
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/routes/")
        .get(list, Op::new("List the routes the caller may see").ok_list::<Route>(StatusCode::OK))
        .post(
            create,
            Op::new("Create a route").body::<RouteSpec>().ok::<Route>(StatusCode::CREATED),
        )
        .done()
        .at("/api/v1/routes/formatted")
        .get(
            formatted,
            Op::new("The routes as a text table").ok_media(StatusCode::OK, "text/plain"),
        )
        .done()
        .at("/api/v1/routes/{route_id}")
        .get(show, Op::new("Show a route").ok::<Route>(StatusCode::OK))
        .put(
            update,
            Op::new("Change some fields of a route")
                .body::<RoutePatch>()
                .ok::<Route>(StatusCode::OK),
        )
        .delete(delete, Op::new("Delete a route").ok::<RouteDeleted>(StatusCode::OK))
        .done()
}
