//! Certificate selection by SNI at handshake time, from the current snapshot.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use openssl::ssl::NameType;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;

use crate::metrics;
use crate::reqlog::ServerName;
use crate::snapshot::SnapshotHandle;

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

    /// Keeps the server name in the connection's digest (once per
    /// connection) for the request log's `sni`.
    async fn handshake_complete_callback(&self, ssl: &TlsRef) -> Option<Arc<dyn Any + Send + Sync>> {
        let name = ssl.servername(NameType::HOST_NAME)?;
        Some(Arc::new(ServerName(Arc::from(name.to_ascii_lowercase()))))
    }
}
