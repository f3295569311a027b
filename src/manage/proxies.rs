//! Proxy target operations.

use serde::Serialize;
use serde_json::{json, Value};

use super::{from_json, merge, Caller, ManageError, ManageResult, Manager};
use crate::model::{now_rfc3339, Proxy};

/// What creating a proxy did: the proxy, and (for an HTTPS proxy created
/// without `cert_name`) what happened about its certificate.
#[derive(Debug, Serialize)]
pub struct ProxyCreated {
    /// The proxy as the API shows it.
    #[serde(flatten)]
    pub proxy: Proxy,
    /// `{cert_name, status: pending|skipped|not_started, message, status_url}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Value>,
}

/// Fields a caller can never set: identity and ownership.
const LOCKED: [&str; 4] = ["hostname", "owner_token_hash", "created_by", "created_at"];

impl Manager {
    /// Creates a proxy owned by the caller.
    /// With `enable_https` and no `cert_name`, issuance of a certificate for
    /// the hostname starts (request options `staging` and `email` apply) and
    /// the result is attached; until then the self-signed one is served.
    pub async fn create_proxy(&self, caller: &Caller, body: Value) -> ManageResult<ProxyCreated> {
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
        self.check_scope_lists(caller, &p, None)?;
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
        let certificate = if auto_issue && p.cert_name.is_none() {
            Some(self.auto_certificate(caller, &p, staging, email).await)
        } else {
            None
        };
        Ok(ProxyCreated {
            proxy: p.public(),
            certificate,
        })
    }

    /// Starts the automatic order for a new proxy, unless it is off
    /// (`ACME_AUTO`, the proxy's `acme_auto`) or no public CA could validate
    /// the hostname; says which, and how to follow it. A skip is recorded as
    /// the certificate's status `skipped`, so the status URL tells it too.
    async fn auto_certificate(&self, caller: &Caller, p: &Proxy, staging: bool, email: Option<String>) -> Value {
        let name = crate::manage::acme_certs::proxy_cert_name(&p.hostname);
        let status_url = format!("/api/v1/certificates/{name}/status");
        let skip = if !self.config.acme.auto {
            Some("automatic certificates are off (ACME_AUTO=false)".to_string())
        } else if !p.acme_auto {
            Some("automatic certificates are off for this proxy (acme_auto: false)".to_string())
        } else {
            crate::acme::not_publicly_validatable(&p.hostname)
        };
        let directory = if staging { "staging" } else { "production" };
        if let Some(why) = skip {
            let why = format!(
                "no certificate ordered: {why}; the self-signed certificate is served until one is uploaded or attached, or ordered with POST /api/v1/proxy/targets/{}/cert/generate",
                p.hostname
            );
            tracing::info!(hostname = %p.hostname, reason = %why, "automatic certificate skipped");
            self.acme
                .skip(
                    &crate::acme::IssueRequest {
                        cert_name: name.clone(),
                        domains: vec![p.hostname.clone()],
                        email: None,
                        staging,
                        key_type: crate::acme::KeyType::Rsa,
                        owner_token_hash: p.owner_token_hash.clone(),
                        created_by: caller.name.clone(),
                        attach_to: None,
                        replaces: None,
                    },
                    &why,
                )
                .await;
            return json!({"cert_name": name, "status": "skipped", "message": why, "status_url": status_url});
        }
        match self.issue_for_proxy(caller, p, staging, email).await {
            Ok(_) => json!({
                "cert_name": name, "status": "pending", "directory": directory, "status_url": status_url,
                "message": format!("ordering a certificate for {} from the {directory} ACME directory; follow it at {status_url}", p.hostname),
            }),
            Err(e) => {
                tracing::warn!(hostname = %p.hostname, error = %e, "automatic certificate issuance did not start");
                json!({"cert_name": name, "status": "not_started", "message": format!("no certificate ordered: {e}")})
            }
        }
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
        self.check_scope_lists(caller, &p, Some(&current))?;
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
