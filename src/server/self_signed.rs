//! The self-signed fallback certificate for `SELF_SIGNED_CN`: created once
//! at start-up, stored, so every instance serves the same one. Start-up, not
//! `tls`, owns it: `tls` is only the certificate table and names no store.

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use serde::{Deserialize, Serialize};

use crate::secrets::Sealer;
use crate::store::Store;
use crate::tls::CertKey;

#[derive(Serialize, Deserialize)]
struct Stored {
    cert_pem: String,
    key_sealed: String,
}

fn generate(cn: &str, days: u32) -> Result<(String, String), openssl::error::ErrorStack> {
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", cn)?;
    name.append_entry_by_text("O", "Portcullis self-signed")?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial: [u8; 16] = rand::random();
    let serial = BigNum::from_slice(&serial)?.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(days)?);
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    let san = SubjectAlternativeName::new().dns(cn).build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    b.sign(&key, MessageDigest::sha256())?;
    let cert = b.build();
    Ok((
        String::from_utf8_lossy(&cert.to_pem()?).into_owned(),
        String::from_utf8_lossy(&key.private_key_to_pem_pkcs8()?).into_owned(),
    ))
}

/// Returns the stored self-signed certificate for `cn`, creating it if this is the first start.
pub async fn ensure_self_signed(store: &dyn Store, sealer: &Sealer, cn: &str, days: u32) -> anyhow::Result<CertKey> {
    let key = format!("self_signed:{cn}");
    if store.get_value(&key).await?.is_none() {
        let (cert_pem, key_pem) = generate(cn, days)?;
        let stored = Stored {
            cert_pem,
            key_sealed: sealer.seal(&key_pem)?,
        };
        if store.set_value_if_absent(&key, &serde_json::to_string(&stored)?).await? {
            tracing::info!(cn, "created the self-signed fallback certificate");
        }
    }
    let raw = store
        .get_value(&key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("self-signed certificate vanished from the store"))?;
    let stored: Stored = serde_json::from_str(&raw)?;
    let key_pem = sealer.open(&stored.key_sealed)?;
    CertKey::from_pem(&stored.cert_pem, &key_pem).map_err(|e| anyhow::anyhow!("stored self-signed certificate: {e}"))
}
