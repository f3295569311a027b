//! TLS for the data plane: certificate selection by SNI at handshake time
//! from the current snapshot, and the shared self-signed fallback certificate.

mod self_signed;

pub use self_signed::ensure_self_signed;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use openssl::pkey::{PKey, Private};
use openssl::ssl::NameType;
use openssl::x509::X509;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;

use crate::metrics;
use crate::model::Certificate;
use crate::secrets::Sealer;
use crate::snapshot::SnapshotHandle;

/// A parsed certificate chain and key, ready to hand to OpenSSL.
pub struct CertKey {
    /// Leaf certificate.
    pub leaf: X509,
    /// Intermediates.
    pub chain: Vec<X509>,
    /// Private key.
    pub key: PKey<Private>,
}

impl std::fmt::Debug for CertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertKey({:?})", self.leaf.subject_name())
    }
}

impl CertKey {
    /// Parses PEM chain and key.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Self, String> {
        let mut certs = X509::stack_from_pem(chain_pem.as_bytes()).map_err(|e| e.to_string())?.into_iter();
        let leaf = certs.next().ok_or("empty chain")?;
        let key = PKey::private_key_from_pem(key_pem.as_bytes()).map_err(|e| e.to_string())?;
        Ok(Self {
            leaf,
            chain: certs.collect(),
            key,
        })
    }

    /// Loads a stored certificate, decrypting its key.
    pub fn from_record(c: &Certificate, sealer: &Sealer) -> Result<Self, String> {
        let key = sealer.open(&c.private_key_encrypted).map_err(|e| e.to_string())?;
        Self::from_pem(&c.fullchain_pem, &key)
    }
}

/// Certificates by name: exact names, wildcard parents, and the fallback.
/// Cloned (shallowly, the certificates are shared) when only the signing keys
/// of a snapshot change.
#[derive(Clone)]
pub struct CertTable {
    exact: HashMap<String, Arc<CertKey>>,
    wildcard: HashMap<String, Arc<CertKey>>,
    fallback: Arc<CertKey>,
}

impl CertTable {
    /// An empty table serving `fallback`.
    pub fn new(fallback: Arc<CertKey>) -> Self {
        Self {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            fallback,
        }
    }

    /// Adds a certificate under each of its domains (`*.x` as a wildcard for x).
    pub fn insert_domains(&mut self, domains: &[String], ck: Arc<CertKey>) {
        for d in domains {
            match d.strip_prefix("*.") {
                Some(parent) => self.wildcard.insert(parent.to_string(), ck.clone()),
                None => self.exact.insert(d.clone(), ck.clone()),
            };
        }
    }

    /// Adds `name` unless a certificate already covers it exactly.
    pub fn insert_exact_if_absent(&mut self, name: &str, ck: Arc<CertKey>) {
        self.exact.entry(name.to_string()).or_insert(ck);
    }

    /// Exact name, then a wildcard for the parent, else `None`.
    pub fn find(&self, name: &str) -> Option<&Arc<CertKey>> {
        self.exact
            .get(name)
            .or_else(|| name.split_once('.').and_then(|(_, parent)| self.wildcard.get(parent)))
    }

    /// The self-signed fallback.
    pub fn fallback(&self) -> &Arc<CertKey> {
        &self.fallback
    }
}

/// The pingora TLS callback choosing a certificate per handshake.
pub struct SniSelector {
    /// Current snapshot.
    pub handle: SnapshotHandle,
}

#[async_trait]
impl TlsAccept for SniSelector {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let sni = ssl.servername(NameType::HOST_NAME).map(str::to_ascii_lowercase).unwrap_or_default();
        let snap = self.handle.load();
        let (ck, outcome) = match snap.certs.find(&sni) {
            Some(ck) => (ck.clone(), "ok"),
            None => (snap.certs.fallback().clone(), "default_cert"),
        };
        let mut ok = pingora::tls::ext::ssl_use_certificate(ssl, &ck.leaf).is_ok();
        ok &= pingora::tls::ext::ssl_use_private_key(ssl, &ck.key).is_ok();
        for c in &ck.chain {
            ok &= pingora::tls::ext::ssl_add_chain_cert(ssl, c).is_ok();
        }
        metrics::TLS_HANDSHAKES
            .with_label_values(&[if ok { outcome } else { "failed" }])
            .inc();
        if !ok {
            tracing::warn!(sni = %sni, "could not install the certificate for this handshake");
        }
    }
}
