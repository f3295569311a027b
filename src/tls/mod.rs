//! The data plane's certificate table: parsed chains and keys by name, the
//! one thing the snapshot keeps for TLS. A leaf: the SNI callback that reads
//! it lives in `proxy::sni`, loading stored certificates in `snapshot::build`
//! and the self-signed fallback in start-up (`server`).

use std::collections::HashMap;
use std::sync::Arc;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

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
