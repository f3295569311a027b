//! Automatic renewal: every `RENEWAL_CHECK_INTERVAL`, ACME certificates
//! expiring within `RENEWAL_THRESHOLD_DAYS` are re-ordered. The per-name
//! order lock makes sure only one instance renews a certificate at a time.

use chrono::{DateTime, Utc};

use super::{Acme, IssueRequest, KeyType, StartError};
use crate::model::Certificate;

/// True when `cert` expires within `threshold_days`.
pub fn due(cert: &Certificate, threshold_days: i64, now: DateTime<Utc>) -> bool {
    DateTime::parse_from_rfc3339(&cert.expires_at)
        .map_or(true, |exp| exp.with_timezone(&Utc) - now < chrono::Duration::days(threshold_days))
}

impl Acme {
    /// Re-orders a stored certificate with the same names, contact and directory.
    pub async fn renew(&self, cert: &Certificate, production: bool) -> Result<(), StartError> {
        let staging = !production && cert.acme_directory_url.as_deref() == Some(self.config.acme.staging_url.as_str());
        let key_type = if cert.fullchain_pem.is_empty() {
            KeyType::Rsa
        } else {
            key_type_of(cert)
        };
        self.start(IssueRequest {
            cert_name: cert.cert_name.clone(),
            domains: cert.domains.clone(),
            email: cert.email.clone(),
            staging,
            key_type,
            owner_token_hash: cert.owner_token_hash.clone(),
            created_by: cert.created_by.clone(),
            attach_to: None,
            replaces: Some(cert.fingerprint_sha256.clone()),
        })
        .await
    }

    /// One renewal pass over every ACME certificate.
    pub async fn renew_due(&self) {
        let certs = match self.store.list_certs().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "renewal check cannot list certificates");
                return;
            }
        };
        let now = Utc::now();
        for c in certs
            .iter()
            .filter(|c| c.source == "acme" && due(c, self.config.acme.renewal_threshold_days, now))
        {
            match self.renew(c, false).await {
                Ok(()) => tracing::info!(cert = %c.cert_name, expires_at = %c.expires_at, "renewal started"),
                Err(StartError::Busy(_)) => tracing::debug!(cert = %c.cert_name, "renewal already running elsewhere"),
                Err(e) => tracing::warn!(cert = %c.cert_name, error = %e, "renewal could not start"),
            }
        }
    }

    /// Runs renewal passes until `stop` resolves.
    pub async fn renewal_loop(self, mut stop: pingora::server::ShutdownWatch) {
        let mut tick = tokio::time::interval(self.config.acme.renewal_check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tick.tick() => self.renew_due().await,
            }
        }
    }
}

fn key_type_of(cert: &Certificate) -> KeyType {
    openssl::x509::X509::from_pem(cert.fullchain_pem.as_bytes())
        .ok()
        .and_then(|c| c.public_key().ok())
        .map_or(KeyType::Rsa, |k| if k.ec_key().is_ok() { KeyType::Ecdsa } else { KeyType::Rsa })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_compares_expiry_with_the_threshold() {
        let mut c: Certificate = serde_json::from_value(serde_json::json!({
            "cert_name": "x", "domains": ["a.test"], "status": "active", "source": "acme", "expires_at": "",
            "not_before": "", "serial": "1", "issuer": "", "fingerprint_sha256": "", "fullchain_pem": ""
        }))
        .unwrap();
        let now = Utc::now();
        c.expires_at = (now + chrono::Duration::days(10)).to_rfc3339();
        assert!(due(&c, 30, now));
        assert!(!due(&c, 5, now));
        c.expires_at = "garbage".into();
        assert!(due(&c, 30, now));
    }
}
