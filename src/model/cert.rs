//! The certificate record and the checks an uploaded PEM must pass.

use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ValidationError;

/// A certificate with its chain; the private key is encrypted at rest and
/// never returned by the API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Certificate {
    /// Unique name.
    pub cert_name: String,
    /// DNS names covered (from the certificate's SANs).
    pub domains: Vec<String>,
    /// Contact e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// ACME directory that issued it, if any.
    #[serde(default)]
    pub acme_directory_url: Option<String>,
    /// `active` once usable.
    pub status: String,
    /// How it came to be: `upload`, `acme` or `self-signed`.
    pub source: String,
    /// Expiry (RFC 3339).
    pub expires_at: String,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// Serial number, hex.
    pub serial: String,
    /// Issuer common name.
    pub issuer: String,
    /// SHA-256 fingerprint of the leaf, hex.
    pub fingerprint_sha256: String,
    /// Leaf followed by intermediates.
    pub fullchain_pem: String,
    /// Private key PEM, encrypted with the instance secret key.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub private_key_encrypted: String,
    /// Hash of the owning token.
    #[serde(default)]
    pub owner_token_hash: String,
    /// Creating token's name.
    #[serde(default)]
    pub created_by: String,
    /// Creation time.
    #[serde(default)]
    pub created_at: String,
}

impl Certificate {
    /// The record as the API shows it: without the (encrypted) key.
    pub fn public(&self) -> Self {
        Self {
            private_key_encrypted: String::new(),
            ..self.clone()
        }
    }
}

/// Facts read from a PEM chain and key that passed every check.
#[derive(Clone, Debug)]
pub struct CertInfo {
    /// SAN DNS names (or the CN when there are none), lowercase.
    pub domains: Vec<String>,
    /// Expiry.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Start of validity.
    pub not_before: chrono::DateTime<chrono::Utc>,
    /// Serial, hex.
    pub serial: String,
    /// Issuer CN.
    pub issuer: String,
    /// Leaf SHA-256 fingerprint, hex.
    pub fingerprint_sha256: String,
    /// Normalised chain PEM.
    pub fullchain_pem: String,
    /// Normalised PKCS#8 key PEM.
    pub private_key_pem: String,
}

fn asn1_to_chrono(t: &openssl::asn1::Asn1TimeRef) -> Result<chrono::DateTime<chrono::Utc>, ValidationError> {
    let epoch = Asn1Time::from_unix(0).map_err(|e| ValidationError::new("certificate_pem", e.to_string()))?;
    let d = epoch.diff(t).map_err(|e| ValidationError::new("certificate_pem", e.to_string()))?;
    let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
    chrono::DateTime::from_timestamp(secs, 0).ok_or_else(|| ValidationError::new("certificate_pem", "validity date out of range"))
}

impl CertInfo {
    /// Parses and checks a chain and key: the chain parses, the key parses
    /// and matches the leaf, and the leaf is not expired.
    pub fn parse(chain_pem: &str, key_pem: &str) -> Result<Self, ValidationError> {
        let chain = X509::stack_from_pem(chain_pem.as_bytes())
            .map_err(|_| ValidationError::new("certificate_pem", "not a PEM certificate chain"))?;
        let leaf = chain
            .first()
            .ok_or_else(|| ValidationError::new("certificate_pem", "no certificate found in the PEM"))?;
        let key: PKey<Private> =
            PKey::private_key_from_pem(key_pem.as_bytes()).map_err(|_| ValidationError::new("private_key_pem", "not a PEM private key"))?;
        let pubkey = leaf
            .public_key()
            .map_err(|_| ValidationError::new("certificate_pem", "unreadable public key"))?;
        if !pubkey.public_eq(&key) {
            return Err(ValidationError::new(
                "private_key_pem",
                "the private key does not match the certificate",
            ));
        }
        let expires_at = asn1_to_chrono(leaf.not_after())?;
        if expires_at <= chrono::Utc::now() {
            return Err(ValidationError::new(
                "certificate_pem",
                format!("the certificate expired at {}", expires_at.to_rfc3339()),
            ));
        }
        let mut domains: Vec<String> = leaf
            .subject_alt_names()
            .map(|sans| sans.iter().filter_map(|n| n.dnsname().map(str::to_ascii_lowercase)).collect())
            .unwrap_or_default();
        if domains.is_empty() {
            if let Some(cn) = leaf.subject_name().entries_by_nid(Nid::COMMONNAME).next() {
                if let Ok(s) = cn.data().to_string() {
                    domains.push(s.to_ascii_lowercase());
                }
            }
        }
        if domains.is_empty() {
            return Err(ValidationError::new("certificate_pem", "the certificate names no DNS domain"));
        }
        domains.dedup();
        let issuer = leaf
            .issuer_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok())
            .unwrap_or_default();
        let serial = leaf
            .serial_number()
            .to_bn()
            .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
            .map_err(|_| ValidationError::new("certificate_pem", "unreadable serial number"))?;
        let fingerprint = leaf
            .digest(openssl::hash::MessageDigest::sha256())
            .map_err(|_| ValidationError::new("certificate_pem", "cannot fingerprint the certificate"))?;
        let mut fullchain = String::new();
        for c in &chain {
            let pem = c
                .to_pem()
                .map_err(|_| ValidationError::new("certificate_pem", "cannot re-encode the chain"))?;
            fullchain.push_str(&String::from_utf8_lossy(&pem));
        }
        let key_pem = key
            .private_key_to_pem_pkcs8()
            .map_err(|_| ValidationError::new("private_key_pem", "cannot re-encode the key"))?;
        Ok(Self {
            domains,
            expires_at,
            not_before: asn1_to_chrono(leaf.not_before())?,
            serial,
            issuer,
            fingerprint_sha256: hex::encode(fingerprint),
            fullchain_pem: fullchain,
            private_key_pem: String::from_utf8_lossy(&key_pem).into_owned(),
        })
    }
}
