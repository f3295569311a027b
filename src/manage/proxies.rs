//! Proxy target operations: create, list, show, update, delete.
//!
//! Each operation takes the caller and a typed request (`model::ProxySpec`,
//! `ProxyPatch`, ...) and returns a typed result, so REST, CLI and MCP share
//! one behaviour; authorization is asked of `authz` inside.

use serde::Serialize;
use utoipa::ToSchema;

use super::{from_json, Caller, ManageError, ManageResult, Manager};
use crate::model::{AutoCertOptions, Proxy, ProxyKey, ProxySpec, ProxyUpdate, ValidationError};

/// What creating a proxy did: the proxy, and (for an HTTPS proxy created
/// without `cert_name`) what happened about its certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProxyCreated {
    /// The proxy as the API shows it.
    #[serde(flatten)]
    pub proxy: Proxy,
    /// The automatic certificate order, when one was considered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<AutoCertificate>,
}

/// What became of the automatic certificate of a new HTTPS proxy.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutoCertificate {
    /// Name of the certificate ordered (`proxy-` and the hostname).
    pub cert_name: String,
    /// `pending` (ordered), `skipped` (not publicly validatable, or turned
    /// off) or `not_started` (the order could not start).
    pub status: String,
    /// Why, in words.
    pub message: String,
    /// Where to follow the order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
    /// `staging` or `production`, for a pending order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

/// The answer to a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProxyDeleted {
    /// Always `deleted`.
    pub status: &'static str,
    /// The hostname of the proxy deleted.
    pub hostname: String,
}

/// Creates a proxy owned by the caller.
/// With `enable_https` and no `cert_name`, issuance of a certificate for
/// the hostname starts (request options `staging` and `email` apply) and
/// the result is attached; until then the self-signed one is served.
pub async fn create(m: &Manager, caller: &Caller, spec: ProxySpec) -> ManageResult<ProxyCreated> {
    let (p, order) = store_new(m, caller, spec).await?;
    let certificate = if p.enable_https && p.cert_name.is_none() {
        Some(m.auto_certificate(caller, &p, order).await)
    } else {
        None
    };
    Ok(ProxyCreated {
        proxy: p.public(),
        certificate,
    })
}

/// Creates a default proxy at start-up (`manage::bootstrap`) unless one
/// with its hostname exists, which is left as it is: the checks and record
/// of [`create`], without a certificate order (start-up serves the
/// self-signed certificate until the admin asks for one). `None` when the
/// proxy was there.
pub async fn ensure(m: &Manager, caller: &Caller, spec: ProxySpec) -> ManageResult<Option<Proxy>> {
    if m.store.get_proxy(&spec.hostname.to_ascii_lowercase()).await?.is_some() {
        return Ok(None);
    }
    match store_new(m, caller, spec).await {
        Ok((p, _)) => Ok(Some(p.public())),
        // another instance created it meanwhile
        Err(ManageError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Validates, authorizes and stores a new proxy (a certificate of the
/// hostname the owner already has is attached); the order options are
/// handed back for the automatic certificate.
async fn store_new(m: &Manager, caller: &Caller, spec: ProxySpec) -> ManageResult<(Proxy, AutoCertOptions)> {
    let (mut p, order) = spec.into_record(caller.hash.clone(), caller.name.clone());
    p.validate()?;
    m.check_claimable_host(caller, &p.hostname)?;
    m.check_scope_lists(caller, &p, None)?;
    m.check_user_target(caller, "target_url", &p.target_url).await?;
    if let Some(name) = &p.cert_name {
        m.referenced_cert(caller, name).await?;
    }
    m.seal_secret(&mut p)?;
    let existing = crate::manage::acme_certs::proxy_cert_name(&p.hostname);
    if p.enable_https
        && p.cert_name.is_none()
        && m.store
            .get_cert(&existing)
            .await?
            .is_some_and(|c| c.owner_token_hash == p.owner_token_hash && c.domains.contains(&p.hostname))
    {
        p.cert_name = Some(existing);
    }
    m.store.create_proxy(&p).await?;
    tracing::info!(hostname = %p.hostname, by = %caller.name, "proxy created");
    Ok((p, order))
}

/// Every proxy the caller may see.
pub async fn list(m: &Manager, caller: &Caller) -> ManageResult<Vec<Proxy>> {
    Ok(m.store
        .list_proxies()
        .await?
        .into_iter()
        .filter(|p| caller.may_read(&p.owner_token_hash))
        .map(Proxy::public)
        .collect())
}

/// One proxy; 404 when missing or not the caller's.
pub async fn get(m: &Manager, caller: &Caller, key: ProxyKey) -> ManageResult<Proxy> {
    Ok(m.stored_proxy(caller, &key.hostname).await?.public())
}

/// Applies the fields of a patch to a proxy.
pub async fn update(m: &Manager, caller: &Caller, req: ProxyUpdate) -> ManageResult<Proxy> {
    let current = m.stored_proxy(caller, &req.hostname).await?;
    let mut p = current.clone();
    req.patch.apply(&mut p);
    p.validate()?;
    m.check_scope_lists(caller, &p, Some(&current))?;
    if p.target_url != current.target_url {
        m.check_user_target(caller, "target_url", &p.target_url).await?;
    }
    if let Some(name) = p.cert_name.as_ref().filter(|n| current.cert_name.as_ref() != Some(*n)) {
        m.referenced_cert(caller, name).await?;
    }
    m.seal_secret(&mut p)?;
    m.store.update_proxy(&p).await?;
    tracing::info!(hostname = %p.hostname, by = %caller.name, "proxy updated");
    Ok(p.public())
}

/// Deletes a proxy.
pub async fn delete(m: &Manager, caller: &Caller, key: ProxyKey) -> ManageResult<ProxyDeleted> {
    let p = m.stored_proxy(caller, &key.hostname).await?;
    m.store.delete_proxy(&p.hostname).await?;
    tracing::info!(hostname = %p.hostname, by = %caller.name, "proxy deleted");
    Ok(ProxyDeleted {
        status: "deleted",
        hostname: p.hostname,
    })
}

/// An update given as a JSON object, for operations that change a few
/// proxy fields on the caller's behalf (auth and resource settings,
/// certificate attach): read as a [`crate::model::ProxyPatch`], so the same
/// rules apply.
pub(super) async fn update_json(m: &Manager, caller: &Caller, hostname: &str, patch: serde_json::Value) -> ManageResult<Proxy> {
    let patch = from_json(patch)?;
    update(
        m,
        caller,
        ProxyUpdate {
            hostname: hostname.to_string(),
            patch,
        },
    )
    .await
}

impl Manager {
    /// Starts the automatic order for a new proxy, unless it is off
    /// (`ACME_AUTO`, the proxy's `acme_auto`) or no public CA could validate
    /// the hostname; says which, and how to follow it. A skip is recorded as
    /// the certificate's status `skipped`, so the status URL tells it too.
    async fn auto_certificate(&self, caller: &Caller, p: &Proxy, order: AutoCertOptions) -> AutoCertificate {
        let AutoCertOptions { staging, email } = order;
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
            return AutoCertificate {
                cert_name: name,
                status: "skipped".into(),
                message: why,
                status_url: Some(status_url),
                directory: None,
            };
        }
        match self.issue_for_proxy(caller, p, staging, email).await {
            Ok(_) => AutoCertificate {
                message: format!(
                    "ordering a certificate for {} from the {directory} ACME directory; follow it at {status_url}",
                    p.hostname
                ),
                cert_name: name,
                status: "pending".into(),
                status_url: Some(status_url),
                directory: Some(directory.into()),
            },
            Err(e) => {
                tracing::warn!(hostname = %p.hostname, error = %e, "automatic certificate issuance did not start");
                AutoCertificate {
                    cert_name: name,
                    status: "not_started".into(),
                    message: format!("no certificate ordered: {e}"),
                    status_url: None,
                    directory: None,
                }
            }
        }
    }

    /// Seals a newly given GitHub client secret (an unchanged one is already sealed).
    fn seal_secret(&self, p: &mut Proxy) -> ManageResult<()> {
        if let Some(s) = &p.github_client_secret {
            if s == crate::model::MASKED || s.is_empty() {
                return Err(ValidationError::new("github_client_secret", "give the secret itself").into());
            }
            if self.sealer.open(s).is_err() {
                p.github_client_secret = Some(self.sealer.seal(s)?);
            }
        }
        Ok(())
    }

    /// One proxy as stored (secrets sealed); 404 when missing or not the caller's.
    pub(super) async fn stored_proxy(&self, caller: &Caller, hostname: &str) -> ManageResult<Proxy> {
        let hostname = hostname.to_ascii_lowercase();
        match self.store.get_proxy(&hostname).await? {
            Some(p) if caller.may_read(&p.owner_token_hash) => Ok(p),
            _ => Err(ManageError::NotFound(format!("proxy {hostname}"))),
        }
    }
}
