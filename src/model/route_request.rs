//! What callers send to create and change routes, apart from the stored
//! [`Route`] record.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Route, RouteScope, TargetType};

/// Names one route: the request of show and delete.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteKey {
    /// The route's id.
    pub route_id: String,
}

/// A partial update of the route `route_id`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteUpdate {
    /// The route's id.
    pub route_id: String,
    /// The fields to change.
    pub patch: RoutePatch,
}

/// What a caller gives to create a route: every field of [`Route`] but
/// ownership and creation time. Unknown fields are refused (422).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Stable id; generated from the path when not given.
    #[serde(default)]
    pub route_id: String,
    /// Path prefix, or a regex when `is_regex`.
    pub path_pattern: String,
    /// Kind of target.
    pub target_type: TargetType,
    /// Port, service name, hostname or URL.
    pub target_value: String,
    /// 0..=1000, higher first.
    #[serde(default = "super::route::default_priority")]
    pub priority: i64,
    /// Allowed methods; empty means any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// `path_pattern` is a regular expression.
    #[serde(default)]
    pub is_regex: bool,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Disabled routes never match.
    #[serde(default = "super::route::yes")]
    pub enabled: bool,
    /// Global or proxy scoped.
    #[serde(default)]
    pub scope: RouteScope,
    /// Proxies of a proxy-scoped route.
    #[serde(default)]
    pub proxy_hostnames: Vec<String>,
    /// Auth override for this route: `true` requires a token even when the
    /// proxy's auth is off, `false` skips the check; unset follows the proxy.
    #[serde(default)]
    pub auth_required: Option<bool>,
    /// Scopes a token must carry (all of them) for this route.
    #[serde(default)]
    pub auth_scopes: Option<Vec<String>>,
}

impl RouteSpec {
    /// The record this spec describes, owned by `owner` (a token hash),
    /// made by `created_by` now.
    pub fn into_record(self, owner: String, created_by: String) -> Route {
        Route {
            route_id: self.route_id,
            path_pattern: self.path_pattern,
            target_type: self.target_type,
            target_value: self.target_value,
            priority: self.priority,
            methods: self.methods,
            is_regex: self.is_regex,
            description: self.description,
            enabled: self.enabled,
            scope: self.scope,
            proxy_hostnames: self.proxy_hostnames,
            auth_required: self.auth_required,
            auth_scopes: self.auth_scopes,
            owner_token_hash: owner,
            created_by,
            created_at: super::now_rfc3339(),
        }
    }
}

super::patch::patch_type! {
    [route_id, owner_token_hash, created_by, created_at]
    /// A partial update of a route: each field named replaces the stored one
    /// (`null` clears an optional one). Naming `route_id`, ownership or
    /// creation fields, or an unknown field, is refused (422).
    #[derive(Clone, Debug, Default, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct RoutePatch {
        /// Path prefix, or a regex when `is_regex`.
        #[serde(default)]
        pub path_pattern: Option<String>,
        /// Kind of target.
        #[serde(default)]
        pub target_type: Option<TargetType>,
        /// Port, service name, hostname or URL.
        #[serde(default)]
        pub target_value: Option<String>,
        /// 0..=1000, higher first.
        #[serde(default)]
        pub priority: Option<i64>,
        /// Allowed methods; empty means any.
        #[serde(default)]
        pub methods: Option<Vec<String>>,
        /// `path_pattern` is a regular expression.
        #[serde(default)]
        pub is_regex: Option<bool>,
        /// Free text.
        #[serde(default)]
        pub description: Option<String>,
        /// Disabled routes never match.
        #[serde(default)]
        pub enabled: Option<bool>,
        /// Global or proxy scoped.
        #[serde(default)]
        pub scope: Option<RouteScope>,
        /// Proxies of a proxy-scoped route.
        #[serde(default)]
        pub proxy_hostnames: Option<Vec<String>>,
        /// Auth override for this route: `true` requires a token even when the
        /// proxy's auth is off, `false` skips the check; unset follows the proxy.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub auth_required: Option<Option<bool>>,
        /// Scopes a token must carry (all of them) for this route.
        #[serde(default, deserialize_with = "super::patch::nullable")]
        pub auth_scopes: Option<Option<Vec<String>>>,
    }
}

impl RoutePatch {
    /// Writes the named fields onto `r`.
    pub fn apply(self, r: &mut Route) {
        if let Some(v) = self.path_pattern {
            r.path_pattern = v;
        }
        if let Some(v) = self.target_type {
            r.target_type = v;
        }
        if let Some(v) = self.target_value {
            r.target_value = v;
        }
        if let Some(v) = self.priority {
            r.priority = v;
        }
        if let Some(v) = self.methods {
            r.methods = v;
        }
        if let Some(v) = self.is_regex {
            r.is_regex = v;
        }
        if let Some(v) = self.description {
            r.description = v;
        }
        if let Some(v) = self.enabled {
            r.enabled = v;
        }
        if let Some(v) = self.scope {
            r.scope = v;
        }
        if let Some(v) = self.proxy_hostnames {
            r.proxy_hostnames = v;
        }
        if let Some(v) = self.auth_required {
            r.auth_required = v;
        }
        if let Some(v) = self.auth_scopes {
            r.auth_scopes = v;
        }
    }
}
