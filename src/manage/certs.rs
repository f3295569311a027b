//! Certificate operations (upload; ACME issuance is its own module).

use serde::Deserialize;
use serde_json::Value;

use super::{from_json, Caller, ManageError, ManageResult, Manager};
use crate::model::{now_rfc3339, valid_name, CertInfo, Certificate, ValidationError};

/// Body of `POST /api/v1/certificates/upload`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
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

impl Manager {
    /// Stores an uploaded certificate after checking it (parses, key matches, not expired).
    /// Replacing an existing name is allowed for its owner.
    pub async fn upload_cert(&self, caller: &Caller, body: Value) -> ManageResult<Certificate> {
        let up: Upload = from_json(body)?;
        if !valid_name(&up.cert_name) {
            return Err(ValidationError::new("cert_name", "letters, digits, '-', '_' and '.' only").into());
        }
        let info = CertInfo::parse(&up.certificate_pem, &up.private_key_pem)?;
        self.require_cert_domains(caller, &info.domains, "certificate_pem").await?;
        let existing = self.store.get_cert(&up.cert_name).await?;
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
            private_key_encrypted: self.sealer.seal(&info.private_key_pem)?,
            owner_token_hash: existing
                .as_ref()
                .map_or_else(|| caller.hash.clone(), |e| e.owner_token_hash.clone()),
            created_by: caller.name.clone(),
            created_at: now_rfc3339(),
        };
        self.store.put_cert(&cert).await?;
        tracing::info!(cert = %cert.cert_name, domains = ?cert.domains, serial = %cert.serial, by = %caller.name, "certificate stored");
        Ok(cert.public())
    }

    /// Certificates the caller may see, without keys.
    pub async fn list_certs(&self, caller: &Caller) -> ManageResult<Vec<Certificate>> {
        let mut v: Vec<Certificate> = self
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

    /// One certificate, without its key.
    pub async fn get_cert(&self, caller: &Caller, name: &str) -> ManageResult<Certificate> {
        match self.store.get_cert(name).await? {
            Some(c) if caller.may_read(&c.owner_token_hash) => Ok(c.public()),
            _ => Err(ManageError::NotFound(format!("certificate {name}"))),
        }
    }

    /// Deletes a certificate.
    pub async fn delete_cert(&self, caller: &Caller, name: &str) -> ManageResult<()> {
        let c = self.get_cert(caller, name).await?;
        self.store.delete_cert(&c.cert_name).await?;
        tracing::info!(cert = %c.cert_name, by = %caller.name, "certificate deleted");
        Ok(())
    }
}
