//! A fresh private key and a CSR for every order.

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509ReqBuilder};

use super::KeyType;

/// Generates the key and a DER CSR naming `domains` (first one as CN).
pub fn key_and_csr(key_type: KeyType, rsa_bits: u32, domains: &[String]) -> Result<(PKey<Private>, Vec<u8>), openssl::error::ErrorStack> {
    let key = match key_type {
        KeyType::Rsa => PKey::from_rsa(Rsa::generate(rsa_bits)?)?,
        KeyType::Ecdsa => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
    };
    let mut b = X509ReqBuilder::new()?;
    let mut name = X509NameBuilder::new()?;
    if let Some(first) = domains.first() {
        name.append_entry_by_text("CN", first)?;
    }
    b.set_subject_name(&name.build())?;
    b.set_pubkey(&key)?;
    let mut san = SubjectAlternativeName::new();
    for d in domains {
        san.dns(d);
    }
    let mut exts = Stack::new()?;
    exts.push(san.build(&b.x509v3_context(None))?)?;
    b.add_extensions(&exts)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((key, b.build().to_der()?))
}
