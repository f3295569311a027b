//! Proxy target operations.

use serde_json::Value;

use super::{from_json, merge, Caller, ManageError, ManageResult, Manager};
use crate::model::{now_rfc3339, Proxy};

/// Fields a caller can never set: identity and ownership.
const LOCKED: [&str; 4] = ["hostname", "owner_token_hash", "created_by", "created_at"];

impl Manager {
    /// Creates a proxy owned by the caller.
    /// With `enable_https` and no `cert_name`, issuance of a certificate for
    /// the hostname starts (request options `staging` and `email` apply) and
    /// the result is attached; until then the self-signed one is served.
    pub async fn create_proxy(&self, caller: &Caller, body: Value) -> ManageResult<Proxy> {
        let mut body = body;
        let (mut staging, mut email) = (false, None);
        if let Value::Object(o) = &mut body {
            for k in &LOCKED[1..] {
                o.remove(*k);
            }
            staging = o.remove("staging").and_then(|v| v.as_bool()).unwrap_or(false);
            email = o.remove("email").and_then(|v| v.as_str().map(String::from));
        }
        let mut p: Proxy = from_json(body)?;
        p.validate()?;
        self.check_claimable_host(caller, &p.hostname)?;
        self.check_user_target(caller, "target_url", &p.target_url).await?;
        if let Some(name) = &p.cert_name {
            self.usable_cert(caller, name).await?;
        }
        self.seal_secret(&mut p)?;
        p.owner_token_hash = caller.hash.clone();
        p.created_by = caller.name.clone();
        p.created_at = now_rfc3339();
        let existing = crate::manage::acme_certs::proxy_cert_name(&p.hostname);
        let auto_issue = p.enable_https && p.cert_name.is_none();
        if auto_issue
            && self
                .store
                .get_cert(&existing)
                .await?
                .is_some_and(|c| c.owner_token_hash == p.owner_token_hash && c.domains.contains(&p.hostname))
        {
            p.cert_name = Some(existing);
        }
        self.store.create_proxy(&p).await?;
        tracing::info!(hostname = %p.hostname, by = %caller.name, "proxy created");
        if auto_issue && p.cert_name.is_none() {
            if let Err(e) = self.issue_for_proxy(caller, &p, staging, email).await {
                tracing::warn!(hostname = %p.hostname, error = %e, "automatic certificate issuance did not start");
            }
        }
        Ok(p.public())
    }

    /// Seals a newly given GitHub client secret (an unchanged one is already sealed).
    fn seal_secret(&self, p: &mut Proxy) -> ManageResult<()> {
        if let Some(s) = &p.github_client_secret {
            if s == crate::model::MASKED || s.is_empty() {
                return Err(crate::model::ValidationError::new("github_client_secret", "give the secret itself").into());
            }
            if self.sealer.open(s).is_err() {
                p.github_client_secret = Some(self.sealer.seal(s)?);
            }
        }
        Ok(())
    }

    /// Every proxy the caller may see.
    pub async fn list_proxies(&self, caller: &Caller) -> ManageResult<Vec<Proxy>> {
        Ok(self
            .store
            .list_proxies()
            .await?
            .into_iter()
            .filter(|p| caller.may_read(&p.owner_token_hash))
            .map(Proxy::public)
            .collect())
    }

    /// One proxy as stored (secrets sealed); 404 when missing or not the caller's.
    pub(super) async fn stored_proxy(&self, caller: &Caller, hostname: &str) -> ManageResult<Proxy> {
        let hostname = hostname.to_ascii_lowercase();
        match self.store.get_proxy(&hostname).await? {
            Some(p) if caller.may_read(&p.owner_token_hash) => Ok(p),
            _ => Err(ManageError::NotFound(format!("proxy {hostname}"))),
        }
    }

    /// One proxy; 404 when missing or not the caller's.
    pub async fn get_proxy(&self, caller: &Caller, hostname: &str) -> ManageResult<Proxy> {
        Ok(self.stored_proxy(caller, hostname).await?.public())
    }

    /// Applies the fields of `patch` to a proxy.
    pub async fn update_proxy(&self, caller: &Caller, hostname: &str, patch: Value) -> ManageResult<Proxy> {
        let current = self.stored_proxy(caller, hostname).await?;
        let mut v = serde_json::to_value(&current).map_err(|e| ManageError::Store(e.to_string()))?;
        merge(&mut v, patch, &LOCKED)?;
        let mut p: Proxy = from_json(v)?;
        p.validate()?;
        if p.target_url != current.target_url {
            self.check_user_target(caller, "target_url", &p.target_url).await?;
        }
        if let Some(name) = p.cert_name.as_ref().filter(|n| current.cert_name.as_ref() != Some(*n)) {
            self.usable_cert(caller, name).await?;
        }
        self.seal_secret(&mut p)?;
        self.store.update_proxy(&p).await?;
        tracing::info!(hostname = %p.hostname, by = %caller.name, "proxy updated");
        Ok(p.public())
    }

    /// Deletes a proxy.
    pub async fn delete_proxy(&self, caller: &Caller, hostname: &str) -> ManageResult<()> {
        let p = self.stored_proxy(caller, hostname).await?;
        self.store.delete_proxy(&p.hostname).await?;
        tracing::info!(hostname = %p.hostname, by = %caller.name, "proxy deleted");
        Ok(())
    }
}
