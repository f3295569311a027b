//! Route operations: create, list, show, update, delete, and the text table.
//!
//! Typed requests (`model::RouteSpec`, `RoutePatch`, ...) in, typed results
//! out; authorization and the references a route makes (proxies, services)
//! are checked here, at write time.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Caller, ManageError, ManageResult, Manager};
use crate::model::{Route, RouteKey, RouteScope, RouteSpec, RouteUpdate, TargetType, ValidationError};

/// The answer to a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteDeleted {
    /// Always `deleted`.
    pub status: &'static str,
    /// The id of the route deleted.
    pub route_id: String,
}

/// Creates a route owned by the caller.
pub async fn create(m: &Manager, caller: &Caller, spec: RouteSpec) -> ManageResult<Route> {
    let mut r = spec.into_record(caller.hash.clone(), caller.name.clone());
    r.validate()?;
    m.authorize_route(caller, &r).await?;
    m.check_route_references(&r).await?;
    m.store.create_route(&r).await?;
    tracing::info!(route = %r.route_id, by = %caller.name, "route created");
    Ok(r)
}

/// Routes the caller may see, highest priority first.
pub async fn list(m: &Manager, caller: &Caller) -> ManageResult<Vec<Route>> {
    let mut v: Vec<Route> = m
        .store
        .list_routes()
        .await?
        .into_iter()
        .filter(|r| caller.may_read(&r.owner_token_hash))
        .collect();
    v.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.route_id.cmp(&b.route_id)));
    Ok(v)
}

/// One route; 404 when missing or not the caller's.
pub async fn get(m: &Manager, caller: &Caller, key: RouteKey) -> ManageResult<Route> {
    match m.store.get_route(&key.route_id).await? {
        Some(r) if caller.may_read(&r.owner_token_hash) => Ok(r),
        _ => Err(ManageError::NotFound(format!("route {}", key.route_id))),
    }
}

/// Applies the fields of a patch to a route.
pub async fn update(m: &Manager, caller: &Caller, req: RouteUpdate) -> ManageResult<Route> {
    let current = get(m, caller, RouteKey { route_id: req.route_id }).await?;
    let mut r = current.clone();
    req.patch.apply(&mut r);
    r.validate()?;
    m.authorize_route(caller, &r).await?;
    m.check_route_references(&r).await?;
    m.store.update_route(&r).await?;
    tracing::info!(route = %r.route_id, by = %caller.name, "route updated");
    Ok(r)
}

/// Deletes a route.
pub async fn delete(m: &Manager, caller: &Caller, key: RouteKey) -> ManageResult<RouteDeleted> {
    let r = get(m, caller, key).await?;
    m.store.delete_route(&r.route_id).await?;
    tracing::info!(route = %r.route_id, by = %caller.name, "route deleted");
    Ok(RouteDeleted {
        status: "deleted",
        route_id: r.route_id,
    })
}

/// The caller's routes as a plain-text table.
pub async fn formatted(m: &Manager, caller: &Caller) -> ManageResult<String> {
    Ok(format_route_table(&list(m, caller).await?))
}

impl Manager {
    /// What a route may say, by caller (README, "Authorization model"):
    /// only the admin creates global routes, names hosts of other owners or
    /// uses named services; a user's route is scoped to proxies it owns and
    /// its target passes the user target rules.
    async fn authorize_route(&self, caller: &Caller, r: &Route) -> ManageResult<()> {
        if caller.is_admin() {
            return Ok(());
        }
        if r.scope == RouteScope::Global {
            return Err(ManageError::Forbidden(
                "scope: only the admin creates global routes; send \"scope\": \"proxy\" with \"proxy_hostnames\" of your own proxies"
                    .into(),
            ));
        }
        for h in &r.proxy_hostnames {
            self.require_host(caller, h, "proxy_hostnames").await?;
        }
        match r.target_type {
            TargetType::Hostname => self.require_host(caller, &r.target_value, "target_value").await,
            TargetType::Service => Err(ManageError::Forbidden(
                "target_type: service targets are the admin's shared services; use a url target".into(),
            )),
            TargetType::Port => {
                self.check_user_target(caller, "target_value", &format!("http://127.0.0.1:{}", r.target_value))
                    .await
            }
            TargetType::Url => self.check_user_target(caller, "target_value", &r.target_value).await,
        }
    }

    /// The objects a route names must exist when it is written: each of
    /// `proxy_hostnames`, a `hostname` target's proxy, a `service` target's
    /// service (external, Docker or the built-in `api`); otherwise a 422 naming the field (asked after
    /// authorization, so a user learns nothing of others' objects).
    async fn check_route_references(&self, r: &Route) -> ManageResult<()> {
        for h in &r.proxy_hostnames {
            if self.store.get_proxy(&h.to_ascii_lowercase()).await?.is_none() {
                return Err(ValidationError::new("proxy_hostnames", format!("there is no proxy {h}")).into());
            }
        }
        match r.target_type {
            TargetType::Hostname if self.store.get_proxy(&r.target_value.to_ascii_lowercase()).await?.is_none() => {
                Err(ValidationError::new("target_value", format!("there is no proxy {}", r.target_value)).into())
            }
            // the same resolution the snapshot uses: external, Docker and the built-in `api`
            TargetType::Service
                if !crate::services::targets(self.store.as_ref(), self.config.api_base_url())
                    .await?
                    .urls
                    .contains_key(&r.target_value) =>
            {
                Err(ValidationError::new("target_value", format!("there is no service {}", r.target_value)).into())
            }
            _ => Ok(()),
        }
    }
}

/// Renders routes as an aligned text table (shared by the API and the CLI).
pub fn format_route_table(routes: &[Route]) -> String {
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| {
            vec![
                r.route_id.clone(),
                r.priority.to_string(),
                if r.is_regex {
                    format!("~{}", r.path_pattern)
                } else {
                    r.path_pattern.clone()
                },
                if r.methods.is_empty() { "*".into() } else { r.methods.join(",") },
                format!(
                    "{}:{}",
                    serde_json::to_value(r.target_type)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    r.target_value
                ),
                match r.scope {
                    crate::model::RouteScope::Global => "global".into(),
                    crate::model::RouteScope::Proxy => format!("proxy:{}", r.proxy_hostnames.join(",")),
                },
                if r.enabled { "yes".into() } else { "no".into() },
            ]
        })
        .collect();
    crate::table::render(&["ROUTE_ID", "PRIORITY", "PATH", "METHODS", "TARGET", "SCOPE", "ENABLED"], &rows)
}
