//! Certificate issuance operations (ACME): request, status, renew,
//! re-issue from production, and certificates for proxies.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{from_json, Caller, ManageError, ManageResult, Manager};
use crate::acme::{CertStatus, IssueRequest, KeyType};
use crate::model::{valid_name, Proxy, ValidationError};

/// Body of `POST /api/v1/certificates/` (one domain) and `/multi-domain`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertRequest {
    /// Certificate name.
    pub cert_name: String,
    /// Single-domain form.
    #[serde(default)]
    pub domain: Option<String>,
    /// Multi-domain form.
    #[serde(default)]
    pub domains: Option<Vec<String>>,
    /// ACME contact (defaults to the token's certificate e-mail).
    #[serde(default)]
    pub email: Option<String>,
    /// Use the staging directory.
    #[serde(default)]
    pub staging: bool,
    /// `rsa` (default) or `ecdsa`.
    #[serde(default)]
    pub key_type: KeyType,
}

/// Body of the proxy certificate calls.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyCertRequest {
    /// Use the staging directory.
    #[serde(default)]
    pub staging: bool,
    /// ACME contact.
    #[serde(default)]
    pub email: Option<String>,
    /// Certificate to attach (attach only).
    #[serde(default)]
    pub cert_name: Option<String>,
}

/// Name of the certificate generated for a proxy: `proxy-` and the hostname
/// with `.` as `-` (the reference's `proxy-api-example-com`) and `-` as
/// `--`. Injective: hostnames have no empty labels and no label starts or
/// ends with `-`, so a run of n hyphens in the name is a dot when n is 1 and
/// n/2 hyphens otherwise (`col.example` → `proxy-col-example`, `col-example`
/// → `proxy-col--example`).
pub fn proxy_cert_name(hostname: &str) -> String {
    format!("proxy-{}", hostname.replace('-', "--").replace('.', "-"))
}

/// The answer to an order that started: follow it at `status_url`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertAccepted {
    /// Always `accepted`.
    pub status: &'static str,
    /// The certificate ordered.
    pub cert_name: String,
    /// Where the order's progress is read.
    pub status_url: String,
}

fn accepted(name: &str) -> CertAccepted {
    CertAccepted {
        status: "accepted",
        cert_name: name.to_string(),
        status_url: format!("/api/v1/certificates/{name}/status"),
    }
}

impl Manager {
    fn contact(&self, caller: &Caller, email: Option<String>) -> Option<String> {
        email.or_else(|| caller.email.clone()).or_else(|| self.config.admin_email.clone())
    }

    /// Starts an order; 202-style answer. `multi` selects the body form.
    pub async fn request_cert(&self, caller: &Caller, r: CertRequest, multi: bool) -> ManageResult<CertAccepted> {
        let domains = match (multi, r.domain, r.domains) {
            (false, Some(d), None) => vec![d],
            (true, None, Some(ds)) => ds,
            (false, _, _) => {
                return Err(ValidationError::new("domain", "give exactly one \"domain\" (use /multi-domain for several)").into())
            }
            (true, _, _) => return Err(ValidationError::new("domains", "give a \"domains\" list").into()),
        };
        if !valid_name(&r.cert_name) {
            return Err(ValidationError::new("cert_name", "letters, digits, '-', '_' and '.' only").into());
        }
        self.require_cert_domains(caller, &domains, if multi { "domains" } else { "domain" })
            .await?;
        let existing = self.store.get_cert(&r.cert_name).await?;
        if let Some(e) = &existing {
            if !caller.may_write(&e.owner_token_hash) {
                return Err(ManageError::Conflict(format!("certificate {} already exists", r.cert_name)));
            }
        }
        self.acme
            .start(IssueRequest {
                cert_name: r.cert_name.clone(),
                domains,
                email: self.contact(caller, r.email),
                staging: r.staging,
                key_type: r.key_type,
                owner_token_hash: caller.hash.clone(),
                created_by: caller.name.clone(),
                attach_to: None,
                replaces: existing.map(|e| e.fingerprint_sha256),
            })
            .await?;
        Ok(accepted(&r.cert_name))
    }

    /// Generation status of a certificate the caller may see.
    /// An order's status is the orderer's (older records without an owner: the admin's).
    pub async fn cert_status(&self, caller: &Caller, name: &str) -> ManageResult<CertStatus> {
        let cert = self.store.get_cert(name).await?;
        let status = self.acme.status(name).await?;
        let hidden = cert.as_ref().is_some_and(|c| !caller.may_read(&c.owner_token_hash))
            || status.as_ref().is_some_and(|s| !caller.may_read(&s.owner_token_hash));
        if hidden {
            return Err(ManageError::NotFound(format!("certificate {name}")));
        }
        match (status, cert) {
            (Some(s), _) => Ok(CertStatus {
                owner_token_hash: String::new(),
                ..s
            }),
            (None, Some(c)) => Ok(CertStatus {
                cert_name: c.cert_name,
                status: "issued".into(),
                message: format!("certificate present, expires {}", c.expires_at),
                domains: c.domains,
                staging: false,
                updated_at: c.created_at,
                owner_token_hash: String::new(),
            }),
            (None, None) => Err(ManageError::NotFound(format!("certificate {name}"))),
        }
    }

    /// Renews an ACME certificate now (same directory), or re-issues it from production.
    pub async fn renew_cert(&self, caller: &Caller, name: &str, production: bool) -> ManageResult<CertAccepted> {
        let cert = match self.store.get_cert(name).await? {
            Some(c) if caller.may_read(&c.owner_token_hash) => c,
            _ => return Err(ManageError::NotFound(format!("certificate {name}"))),
        };
        self.require_cert_domains(caller, &cert.domains, "domains").await?;
        if cert.source != "acme" {
            return Err(ManageError::Conflict(format!(
                "certificate {name} was {}ed, not issued by ACME",
                cert.source.trim_end_matches('e')
            )));
        }
        self.acme.renew(&cert, production).await?;
        Ok(accepted(name))
    }

    /// Starts issuance of a certificate for a proxy and attaches it when issued.
    /// The body is read after the proxy is found: a caller learns nothing
    /// from a 422 about proxies it may not see (404 first).
    pub async fn proxy_cert_generate(&self, caller: &Caller, hostname: &str, body: Value) -> ManageResult<CertAccepted> {
        let p = self.stored_proxy(caller, hostname).await?;
        let r: ProxyCertRequest = from_json(body)?;
        self.issue_for_proxy(caller, &p, r.staging, r.email).await
    }

    pub(super) async fn issue_for_proxy(
        &self,
        caller: &Caller,
        p: &Proxy,
        staging: bool,
        email: Option<String>,
    ) -> ManageResult<CertAccepted> {
        let name = proxy_cert_name(&p.hostname);
        let existing = self.store.get_cert(&name).await?;
        if let Some(e) = &existing {
            if e.owner_token_hash != p.owner_token_hash {
                return Err(ManageError::Conflict(format!(
                    "certificate {name} exists and belongs to another account; order one under another name and attach it"
                )));
            }
        }
        self.acme
            .start(IssueRequest {
                cert_name: name.clone(),
                domains: vec![p.hostname.clone()],
                email: self.contact(caller, email),
                staging,
                key_type: KeyType::Rsa,
                owner_token_hash: p.owner_token_hash.clone(),
                created_by: caller.name.clone(),
                attach_to: Some(p.hostname.clone()),
                replaces: existing.map(|e| e.fingerprint_sha256),
            })
            .await?;
        Ok(accepted(&name))
    }

    /// Points a proxy at an existing certificate the caller may use.
    /// The body is read after the proxy is found, as for generate.
    pub async fn proxy_cert_attach(&self, caller: &Caller, hostname: &str, body: Value) -> ManageResult<Proxy> {
        self.stored_proxy(caller, hostname).await?;
        let r: ProxyCertRequest = from_json(body)?;
        let name = r.cert_name.ok_or_else(|| ValidationError::new("cert_name", "required"))?;
        self.usable_cert(caller, &name).await?;
        super::proxies::update_json(self, caller, hostname, json!({"cert_name": name})).await
    }
}
