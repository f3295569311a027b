//! The authorization model, enforced here and nowhere else (README,
//! "Authorization model"). Every management operation asks these functions:
//!
//! - a user-scope caller reads and changes only what it owns (others'
//!   objects are 404, as if absent);
//! - it affects traffic, certificates and identity only for hostnames it
//!   owns (a proxy it created); naming a hostname of another owner is 403;
//! - only the admin creates global routes, names hosts it does not own,
//!   uses named services, or sends traffic to this machine's local addresses
//!   (`USER_TARGET_ALLOW_NETWORKS` aside);
//! - the admin may do all of it, for any owner.

use std::net::IpAddr;

use super::{Caller, ManageError, ManageResult, Manager};
use crate::model::{cert_covers, Certificate, Proxy, TokenScope, ValidationError};
use crate::secrets::constant_time_eq;

/// Name the bootstrap admin token goes by.
pub const BOOTSTRAP_ADMIN: &str = "ADMIN_TOKEN";

impl Caller {
    /// True for admin callers (admin API tokens, the bootstrap token, OAuth `admin`).
    pub fn is_admin(&self) -> bool {
        self.scope == TokenScope::Admin
    }

    /// True when the caller owns what `owner_hash` owns.
    fn is_owner(&self, owner_hash: &str) -> bool {
        constant_time_eq(&self.hash, owner_hash)
    }

    /// True when this caller may see an object owned by `owner_hash`:
    /// the admin sees everything, anyone else only their own.
    pub fn may_read(&self, owner_hash: &str) -> bool {
        self.is_admin() || self.is_owner(owner_hash)
    }

    /// True when this caller may change an object owned by `owner_hash`
    /// (read-only OAuth callers change nothing).
    pub fn may_write(&self, owner_hash: &str) -> bool {
        !self.read_only && self.may_read(owner_hash)
    }
}

/// Fails with `Forbidden` unless the caller is an admin.
pub fn require_admin(caller: &Caller) -> ManageResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ManageError::Forbidden("this operation needs an admin token".into()))
    }
}

/// True for a hostname that is an IP address literal: its last label is all
/// digits (no top-level domain is), which covers `127.0.0.1` and `127.1`.
pub fn is_ip_hostname(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
        || host
            .trim_end_matches('.')
            .rsplit('.')
            .next()
            .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
}

impl Manager {
    /// True when the caller controls `hostname`: the admin controls every
    /// host; a user the hosts of the proxies it owns.
    pub async fn owns_host(&self, caller: &Caller, hostname: &str) -> ManageResult<bool> {
        if caller.is_admin() {
            return Ok(true);
        }
        Ok(self
            .store
            .get_proxy(&hostname.to_ascii_lowercase())
            .await?
            .is_some_and(|p| caller.is_owner(&p.owner_token_hash)))
    }

    /// `Forbidden` unless the caller controls `hostname`; `field` and `what`
    /// make the message say which input named it.
    pub async fn require_host(&self, caller: &Caller, hostname: &str, field: &str) -> ManageResult<()> {
        if self.owns_host(caller, hostname).await? {
            return Ok(());
        }
        Err(ManageError::Forbidden(format!(
            "{field}: {hostname} is not a proxy you own; name only hostnames of your own proxies"
        )))
    }

    /// `Forbidden` when a certificate for `domains` would cover a hostname
    /// that another owner's proxy serves (the admin may name any host).
    /// Names no proxy serves yet are allowed: the certificate is served for
    /// them only once the caller owns such a proxy (see the snapshot).
    pub async fn require_cert_domains(&self, caller: &Caller, domains: &[String], field: &str) -> ManageResult<()> {
        if caller.is_admin() {
            return Ok(());
        }
        let proxies = self.store.list_proxies().await?;
        for d in domains {
            let d = d.to_ascii_lowercase();
            if let Some(p) = proxies
                .iter()
                .find(|p| cert_covers(&d, &p.hostname) && !caller.is_owner(&p.owner_token_hash))
            {
                return Err(ManageError::Forbidden(format!(
                    "{field}: {d} covers {}, a hostname owned by another account; certificates may name only your own hostnames",
                    p.hostname
                )));
            }
        }
        Ok(())
    }

    /// The certificate `name` if the caller may use it (attach it to a proxy):
    /// its own, or any for the admin. The one check behind `cert_name` in
    /// proxy create/update and the attach endpoint; 404 otherwise, as for
    /// every object the caller may not see.
    pub async fn usable_cert(&self, caller: &Caller, name: &str) -> ManageResult<Certificate> {
        match self.store.get_cert(name).await? {
            Some(c) if caller.may_read(&c.owner_token_hash) => Ok(c),
            _ => Err(ManageError::NotFound(format!("certificate {name}"))),
        }
    }

    /// The certificate a proxy's `cert_name` refers to, checked when the
    /// proxy is written: a 422 on `cert_name` when there is none the caller
    /// may use. Absent and another owner's answer alike, so the reply tells
    /// nothing about others' certificate names.
    pub async fn referenced_cert(&self, caller: &Caller, name: &str) -> ManageResult<Certificate> {
        self.usable_cert(caller, name).await.map_err(|e| match e {
            ManageError::NotFound(_) => {
                ValidationError::new("cert_name", format!("there is no certificate {name} that you may use")).into()
            }
            other => other,
        })
    }

    /// Only the admin sets a proxy's OAuth scope lists (`oauth_*_users`) and
    /// `oauth_endpoints`: a user may keep what is stored (`current`), not
    /// set or change it.
    pub fn check_scope_lists(&self, caller: &Caller, new: &Proxy, current: Option<&Proxy>) -> ManageResult<()> {
        if caller.is_admin() {
            return Ok(());
        }
        let lists = |p: &Proxy| {
            [
                ("oauth_admin_users", p.oauth_admin_users.clone()),
                ("oauth_user_users", p.oauth_user_users.clone()),
                ("oauth_mcp_users", p.oauth_mcp_users.clone()),
            ]
        };
        let before = current.map(lists);
        for (i, (field, v)) in lists(new).into_iter().enumerate() {
            let kept = before.as_ref().map_or(v.is_none(), |b| b[i].1 == v);
            if !kept {
                return Err(ManageError::Forbidden(format!(
                    "{field}: only the admin sets per-proxy OAuth scope lists (scopes come from server configuration)"
                )));
            }
        }
        // The authorization server's pages (login, consent, device approval)
        // served on a host a user controls would lend them our identity.
        if new.oauth_endpoints != current.is_some_and(|c| c.oauth_endpoints) {
            return Err(ManageError::Forbidden(
                "oauth_endpoints: only the admin serves the authorization server's endpoints on a proxy".into(),
            ));
        }
        Ok(())
    }

    /// Checks a hostname a caller wants to serve: users may not claim IP address literals.
    pub fn check_claimable_host(&self, caller: &Caller, hostname: &str) -> ManageResult<()> {
        if !caller.is_admin() && is_ip_hostname(hostname) {
            return Err(ManageError::Forbidden(format!(
                "hostname: {hostname} is an IP address; only the admin may serve IP-address hostnames"
            )));
        }
        Ok(())
    }

    /// Checks a target URL of a non-admin caller: every address it resolves
    /// to must pass [`crate::config::Config::user_target_refusal`]. The
    /// snapshot applies the same rule again to what it resolves (DNS may change).
    pub async fn check_user_target(&self, caller: &Caller, field: &str, url: &str) -> ManageResult<()> {
        if caller.is_admin() {
            return Ok(());
        }
        let u = url::Url::parse(url).map_err(|e| ValidationError::new(field, format!("not a valid URL: {e}")))?;
        let port = u
            .port_or_known_default()
            .ok_or_else(|| ValidationError::new(field, "the URL has no port"))?;
        let host = u
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addrs: Vec<std::net::SocketAddr> =
            match tokio::time::timeout(std::time::Duration::from_secs(3), tokio::net::lookup_host((host.as_str(), port))).await {
                Ok(Ok(a)) => a.collect(),
                // Unresolvable now: the snapshot checks whatever it resolves to later.
                _ => Vec::new(),
            };
        for a in addrs {
            if let Some(why) = self.config.user_target_refusal(a) {
                return Err(ManageError::Forbidden(format!("{field}: {url} is not allowed as a target: {why}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_hostnames() {
        for h in ["127.0.0.1", "127.1", "10.0.0.1", "::1", "1.2.3.4."] {
            assert!(is_ip_hostname(h), "{h}");
        }
        for h in ["a.test", "1.example", "localhost", "x1.y2z"] {
            assert!(!is_ip_hostname(h), "{h}");
        }
    }
}
