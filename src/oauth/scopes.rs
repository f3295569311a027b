//! Who may log in and which scopes they get. Privileges come only from the
//! server's configuration (`OAUTH_ADMIN_USERS`, `OAUTH_USER_USERS`,
//! `OAUTH_MCP_USERS`, `OAUTH_ALLOWED_GITHUB_USERS`, and the
//! `OAUTH_LOCALHOST_*` overrides for the built-in localhost proxy); the
//! per-proxy lists a proxy owner writes (`auth_required_users`,
//! `oauth_*_users`) may only narrow what those grant, never widen it.

use super::model::User;
use crate::model::Proxy;

fn listed(list: &[String], user: &User) -> bool {
    list.iter().any(|u| u == "*" || u.eq_ignore_ascii_case(&user.username))
}

/// Checks the login allowlists: `OAUTH_ALLOWED_GITHUB_USERS` (unset = anyone)
/// and, when the login is for a proxy, that proxy's `auth_required_users` too.
pub fn may_log_in(global: Option<&[String]>, proxy: Option<&Proxy>, user: &User) -> Result<(), String> {
    if global.is_some_and(|l| !listed(l, user)) {
        return Err(format!("user {} is not allowed to log in here", user.username));
    }
    match proxy.and_then(|p| p.auth_required_users.as_deref()) {
        Some(l) if !listed(l, user) => Err(format!("user {} is not allowed to log in here", user.username)),
        _ => Ok(()),
    }
}

/// Scopes the user is entitled to: the configured tiers (for the localhost
/// proxy chosen by the server, its `OAUTH_LOCALHOST_*` overrides), each
/// tier dropped when the proxy has its own list for it and the user is not
/// on it. `server_chose_proxy` is false when the proxy came from a client's
/// `proxy_hostname` parameter: a client parameter never selects the
/// localhost overrides.
pub fn entitled(cfg: &crate::config::OAuthConfig, proxy: Option<&Proxy>, server_chose_proxy: bool, user: &User) -> Vec<String> {
    let localhost = server_chose_proxy && proxy.is_some_and(|p| p.hostname == "localhost");
    let tier = |own: Option<&Vec<String>>, local: &Option<Vec<String>>, global: &Vec<String>| -> bool {
        let base = match local {
            Some(l) if localhost => l,
            _ => global,
        };
        listed(base, user) && own.is_none_or(|o| listed(o, user))
    };
    let mut out: Vec<&str> = Vec::new();
    if tier(
        proxy.and_then(|p| p.oauth_admin_users.as_ref()),
        &cfg.localhost_admin_users,
        &cfg.admin_users,
    ) {
        out.extend(["admin", "user", "mcp", "mcp:read", "mcp:write", "mcp:admin"]);
    }
    if tier(
        proxy.and_then(|p| p.oauth_user_users.as_ref()),
        &cfg.localhost_user_users,
        &cfg.user_users,
    ) {
        out.extend(["user", "mcp:read"]);
    }
    if tier(
        proxy.and_then(|p| p.oauth_mcp_users.as_ref()),
        &cfg.localhost_mcp_users,
        &cfg.mcp_users,
    ) {
        out.extend(["mcp", "mcp:read", "mcp:write"]);
    }
    let mut v: Vec<String> = Vec::new();
    for s in super::SUPPORTED_SCOPES {
        if out.contains(&s) {
            v.push(s.to_string());
        }
    }
    v
}

/// True when `scope` lets its holder use the admin API (read or write).
pub fn admin_api_scope(scope: &[String]) -> bool {
    scope.iter().any(|s| s == "admin" || s == "user")
}

/// The granted scopes: requested ∩ entitled (everything entitled when none requested).
pub fn grant(requested: &[String], entitled: &[String]) -> Vec<String> {
    if requested.is_empty() {
        entitled.to_vec()
    } else {
        requested.iter().filter(|s| entitled.contains(s)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: &str) -> User {
        User {
            id: format!("github:{n}"),
            username: n.into(),
            email: None,
            groups: vec![],
        }
    }

    #[test]
    fn allowlists_and_scope_grants() {
        assert!(may_log_in(None, None, &user("x")).is_ok());
        let allowed = vec!["alice".to_string()];
        assert!(may_log_in(Some(&allowed), None, &user("Alice")).is_ok());
        assert!(may_log_in(Some(&allowed), None, &user("bob")).is_err());
        let ent = vec!["user".to_string(), "mcp:read".to_string()];
        assert_eq!(grant(&[], &ent), ent);
        assert_eq!(grant(&["admin".into(), "user".into()], &ent), vec!["user".to_string()]);
    }

    fn proxy(v: serde_json::Value) -> Proxy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn per_proxy_lists_only_narrow() {
        let mut cfg = crate::config::OAuthConfig::from_test_env();
        let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        cfg.admin_users = names(&["alice"]);
        cfg.user_users = names(&["carol"]);
        cfg.mcp_users = names(&["dave"]);
        cfg.localhost_admin_users = Some(names(&["*"]));
        let wide = proxy(serde_json::json!({"hostname": "p.test", "target_url": "http://127.0.0.1:1",
            "oauth_admin_users": ["*"], "oauth_user_users": ["*"], "auth_required_users": ["*"]}));
        // a proxy saying "everyone is admin" gives dave nothing more than his configured mcp
        assert_eq!(
            entitled(&cfg, Some(&wide), false, &user("dave")),
            entitled(&cfg, None, false, &user("dave"))
        );
        assert!(!entitled(&cfg, Some(&wide), true, &user("dave")).contains(&"admin".to_string()));
        // a proxy list without alice drops her admin there
        let narrow = proxy(serde_json::json!({"hostname": "n.test", "target_url": "http://127.0.0.1:1", "oauth_admin_users": ["nobody"]}));
        assert!(!entitled(&cfg, Some(&narrow), true, &user("alice")).contains(&"admin".to_string()));
        // the localhost overrides apply only when the server picked the localhost proxy
        let local = proxy(serde_json::json!({"hostname": "localhost", "target_url": "http://127.0.0.1:1"}));
        assert!(entitled(&cfg, Some(&local), true, &user("dave")).contains(&"admin".to_string()));
        assert!(!entitled(&cfg, Some(&local), false, &user("dave")).contains(&"admin".to_string()));
        // the global allowlist always applies; a proxy list narrows it
        let allowed = names(&["alice"]);
        assert!(may_log_in(Some(&allowed), Some(&wide), &user("bob")).is_err());
        let only_carol =
            proxy(serde_json::json!({"hostname": "c.test", "target_url": "http://127.0.0.1:1", "auth_required_users": ["carol"]}));
        assert!(may_log_in(None, Some(&only_carol), &user("alice")).is_err());
    }
}
