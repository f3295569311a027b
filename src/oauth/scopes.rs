//! Who may log in and which scopes they get: global lists, per-proxy
//! allowlists and the `OAUTH_LOCALHOST_*` overrides.

use super::model::User;
use crate::model::Proxy;

fn listed(list: &[String], user: &User) -> bool {
    list.iter().any(|u| u == "*" || u.eq_ignore_ascii_case(&user.username))
}

/// Checks the login allowlist: the proxy's `auth_required_users` when set,
/// else `OAUTH_ALLOWED_GITHUB_USERS` (unset = anyone).
pub fn may_log_in(global: Option<&[String]>, proxy: Option<&Proxy>, user: &User) -> Result<(), String> {
    let list = proxy.and_then(|p| p.auth_required_users.as_deref()).or(global);
    match list {
        None => Ok(()),
        Some(l) if listed(l, user) => Ok(()),
        Some(_) => Err(format!("user {} is not allowed to log in here", user.username)),
    }
}

/// Scopes the user is entitled to.
pub fn entitled(cfg: &crate::config::OAuthConfig, proxy: Option<&Proxy>, user: &User) -> Vec<String> {
    let localhost = proxy.is_some_and(|p| p.hostname == "localhost");
    let pick = |own: Option<&Vec<String>>, local: &Option<Vec<String>>, global: &Vec<String>| -> Vec<String> {
        if let Some(o) = own {
            return o.clone();
        }
        if localhost {
            if let Some(l) = local {
                return l.clone();
            }
        }
        global.clone()
    };
    let admin = pick(
        proxy.and_then(|p| p.oauth_admin_users.as_ref()),
        &cfg.localhost_admin_users,
        &cfg.admin_users,
    );
    let usr = pick(
        proxy.and_then(|p| p.oauth_user_users.as_ref()),
        &cfg.localhost_user_users,
        &cfg.user_users,
    );
    let mcp = pick(
        proxy.and_then(|p| p.oauth_mcp_users.as_ref()),
        &cfg.localhost_mcp_users,
        &cfg.mcp_users,
    );
    let mut out: Vec<&str> = Vec::new();
    if listed(&admin, user) {
        out.extend(["admin", "user", "mcp", "mcp:read", "mcp:write", "mcp:admin"]);
    }
    if listed(&usr, user) {
        out.extend(["user", "mcp:read"]);
    }
    if listed(&mcp, user) {
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
}
