//! Route operations.

use serde_json::Value;

use super::{from_json, merge, Caller, ManageError, ManageResult, Manager};
use crate::model::{now_rfc3339, Route, RouteScope, TargetType};

const LOCKED: [&str; 4] = ["route_id", "owner_token_hash", "created_by", "created_at"];

impl Manager {
    /// Creates a route owned by the caller.
    pub async fn create_route(&self, caller: &Caller, body: Value) -> ManageResult<Route> {
        let mut body = body;
        if let Value::Object(o) = &mut body {
            for k in &LOCKED[1..] {
                o.remove(*k);
            }
        }
        let mut r: Route = from_json(body)?;
        r.validate()?;
        self.authorize_route(caller, &r).await?;
        r.owner_token_hash = caller.hash.clone();
        r.created_by = caller.name.clone();
        r.created_at = now_rfc3339();
        self.store.create_route(&r).await?;
        tracing::info!(route = %r.route_id, by = %caller.name, "route created");
        Ok(r)
    }

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

    /// Routes the caller may see, highest priority first.
    pub async fn list_routes(&self, caller: &Caller) -> ManageResult<Vec<Route>> {
        let mut v: Vec<Route> = self
            .store
            .list_routes()
            .await?
            .into_iter()
            .filter(|r| caller.may_read(&r.owner_token_hash))
            .collect();
        v.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.route_id.cmp(&b.route_id)));
        Ok(v)
    }

    /// One route.
    pub async fn get_route(&self, caller: &Caller, id: &str) -> ManageResult<Route> {
        match self.store.get_route(id).await? {
            Some(r) if caller.may_read(&r.owner_token_hash) => Ok(r),
            _ => Err(ManageError::NotFound(format!("route {id}"))),
        }
    }

    /// Applies `patch` to a route.
    pub async fn update_route(&self, caller: &Caller, id: &str, patch: Value) -> ManageResult<Route> {
        let current = self.get_route(caller, id).await?;
        let mut v = serde_json::to_value(&current).map_err(|e| ManageError::Store(e.to_string()))?;
        merge(&mut v, patch, &LOCKED)?;
        let mut r: Route = from_json(v)?;
        r.validate()?;
        self.authorize_route(caller, &r).await?;
        self.store.update_route(&r).await?;
        tracing::info!(route = %r.route_id, by = %caller.name, "route updated");
        Ok(r)
    }

    /// Deletes a route.
    pub async fn delete_route(&self, caller: &Caller, id: &str) -> ManageResult<()> {
        let r = self.get_route(caller, id).await?;
        self.store.delete_route(&r.route_id).await?;
        tracing::info!(route = %r.route_id, by = %caller.name, "route deleted");
        Ok(())
    }

    /// The caller's routes as a plain-text table.
    pub async fn format_routes(&self, caller: &Caller) -> ManageResult<String> {
        Ok(format_route_table(&self.list_routes(caller).await?))
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
