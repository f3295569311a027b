//! Certificate operations: upload, list, show, delete (ACME issuance is
//! `acme_certs`). Typed requests in, typed results out.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Caller, ManageError, ManageResult, Manager};
use crate::model::{now_rfc3339, valid_name, CertInfo, Certificate, ValidationError};

/// Names one certificate: the request of show and delete.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertKey {
    /// The certificate's name.
    pub cert_name: String,
}

/// The answer to a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertDeleted {
    /// Always `deleted`.
    pub status: &'static str,
    /// The name of the certificate deleted.
    pub cert_name: String,
}

/// Body of `POST /api/v1/certificates/upload`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertUpload {
    /// Unique name.
    pub cert_name: String,
    /// Leaf then intermediates, PEM.
    #[serde(alias = "fullchain_pem")]
    pub certificate_pem: String,
    /// The leaf's private key, PEM.
    pub private_key_pem: String,
    /// Contact e-mail.
    #[serde(default)]
    pub email: Option<String>,
}

/// Stores an uploaded certificate after checking it (parses, key matches, not expired).
/// Replacing an existing name is allowed for its owner.
pub async fn upload(m: &Manager, caller: &Caller, up: CertUpload) -> ManageResult<Certificate> {
    if !valid_name(&up.cert_name) {
        return Err(ValidationError::new("cert_name", "letters, digits, '-', '_' and '.' only").into());
    }
    let info = CertInfo::parse(&up.certificate_pem, &up.private_key_pem)?;
    m.require_cert_domains(caller, &info.domains, "certificate_pem").await?;
    let existing = m.store.get_cert(&up.cert_name).await?;
    if let Some(e) = &existing {
        if !caller.may_write(&e.owner_token_hash) {
            return Err(ManageError::Conflict(format!("certificate {} already exists", up.cert_name)));
        }
    }
    let cert = Certificate {
        cert_name: up.cert_name,
        domains: info.domains,
        email: up.email.or_else(|| caller.email.clone()),
        acme_directory_url: None,
        status: "active".into(),
        source: "upload".into(),
        expires_at: info.expires_at.to_rfc3339(),
        not_before: info.not_before.to_rfc3339(),
        serial: info.serial,
        issuer: info.issuer,
        fingerprint_sha256: info.fingerprint_sha256,
        fullchain_pem: info.fullchain_pem,
        private_key_encrypted: m.sealer.seal(&info.private_key_pem)?,
        owner_token_hash: existing
            .as_ref()
            .map_or_else(|| caller.hash.clone(), |e| e.owner_token_hash.clone()),
        created_by: caller.name.clone(),
        created_at: now_rfc3339(),
    };
    m.store.put_cert(&cert).await?;
    tracing::info!(cert = %cert.cert_name, domains = ?cert.domains, serial = %cert.serial, by = %caller.name, "certificate stored");
    Ok(cert.public())
}

/// Certificates the caller may see, without keys.
pub async fn list(m: &Manager, caller: &Caller) -> ManageResult<Vec<Certificate>> {
    let mut v: Vec<Certificate> = m
        .store
        .list_certs()
        .await?
        .into_iter()
        .filter(|c| caller.may_read(&c.owner_token_hash))
        .map(|c| c.public())
        .collect();
    v.sort_by(|a, b| a.cert_name.cmp(&b.cert_name));
    Ok(v)
}

/// One certificate, without its key; 404 when missing or not the caller's.
pub async fn get(m: &Manager, caller: &Caller, key: CertKey) -> ManageResult<Certificate> {
    match m.store.get_cert(&key.cert_name).await? {
        Some(c) if caller.may_read(&c.owner_token_hash) => Ok(c.public()),
        _ => Err(ManageError::NotFound(format!("certificate {}", key.cert_name))),
    }
}

/// Deletes a certificate no proxy uses: one still named by a proxy's
/// `cert_name` is a 409 naming those proxies (deleting it would leave them
/// on the self-signed certificate without a word).
pub async fn delete(m: &Manager, caller: &Caller, key: CertKey) -> ManageResult<CertDeleted> {
    let c = get(m, caller, key).await?;
    let users: Vec<String> = m
        .store
        .list_proxies()
        .await?
        .into_iter()
        .filter(|p| p.cert_name.as_deref() == Some(c.cert_name.as_str()))
        .map(|p| p.hostname)
        .collect();
    if !users.is_empty() {
        return Err(ManageError::Conflict(format!(
            "certificate {} is used by the proxies {}; attach another certificate to them or delete them first",
            c.cert_name,
            users.join(", ")
        )));
    }
    m.store.delete_cert(&c.cert_name).await?;
    tracing::info!(cert = %c.cert_name, by = %caller.name, "certificate deleted");
    Ok(CertDeleted {
        status: "deleted",
        cert_name: c.cert_name,
    })
}
