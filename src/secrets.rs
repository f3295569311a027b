//! Secrets at rest and in comparison: AES-256-GCM sealing of values the API
//! can reveal (token values, private keys), token generation and hashing,
//! and constant-time equality.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Prefix of every API token, so leaked tokens are recognisable.
pub const TOKEN_PREFIX: &str = "pcl_";

const SEALED_PREFIX: &str = "v1:";

/// A sealed value could not be opened (wrong `SECRET_KEY` or tampering).
#[derive(Debug, Error)]
#[error("cannot decrypt a stored secret: {0}")]
pub struct SealError(String);

/// Associated data of values sealed at rest (the default purpose).
const AT_REST: &[u8] = b"portcullis";

/// Encrypts and decrypts secrets with the instance key.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
    /// AES-GCM associated data naming what the sealed values are for, so a
    /// value sealed for one purpose never opens as another's.
    purpose: &'static [u8],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer for `key` (from `Config::secret_key`).
    pub fn new(key: [u8; 32]) -> Self {
        Self { key, purpose: AT_REST }
    }

    /// The same key sealing for another `purpose` (AES-GCM associated
    /// data): values a client is handed (an MCP `requestState`) must not
    /// open as secrets at rest, nor the reverse.
    pub fn for_purpose(&self, purpose: &'static [u8]) -> Self {
        Self { key: self.key, purpose }
    }

    /// `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plain: &str) -> Result<String, SealError> {
        let nonce: [u8; 12] = rand::random();
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            self.purpose,
            plain.as_bytes(),
            &mut tag,
        )
        .map_err(|e| SealError(e.to_string()))?;
        let mut out = Vec::with_capacity(12 + ct.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(out)))
    }

    /// Reverses [`Sealer::seal`].
    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| SealError("unknown format".into()))?;
        let raw = STANDARD.decode(body).map_err(|e| SealError(e.to_string()))?;
        if raw.len() < 28 {
            return Err(SealError("too short".into()));
        }
        let (nonce, rest) = raw.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let plain = decrypt_aead(Cipher::aes_256_gcm(), &self.key, Some(nonce), self.purpose, ct, tag)
            .map_err(|_| SealError("authentication failed: SECRET_KEY differs from the one that sealed it (it must be the same on every instance; when SECRET_KEY is unset it is derived from ADMIN_TOKEN, so changing ADMIN_TOKEN changes it)".into()))?;
        String::from_utf8(plain).map_err(|e| SealError(e.to_string()))
    }
}

/// A new API token: the prefix and 32 random bytes, base64url.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `sha256:<hex>`, the form tokens are stored and looked up by.
pub fn token_hash(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_detects_a_wrong_key() {
        let s = Sealer::new([7; 32]);
        let sealed = s.seal("hello").unwrap();
        assert!(!sealed.contains("hello"));
        assert_eq!(s.open(&sealed).unwrap(), "hello");
        assert!(Sealer::new([8; 32]).open(&sealed).is_err());
    }

    #[test]
    fn a_value_sealed_for_one_purpose_does_not_open_for_another() {
        let at_rest = Sealer::new([7; 32]);
        let other = at_rest.for_purpose(b"portcullis test purpose");
        assert_eq!(other.open(&other.seal("x").unwrap()).unwrap(), "x");
        assert!(at_rest.open(&other.seal("x").unwrap()).is_err());
        assert!(other.open(&at_rest.seal("x").unwrap()).is_err());
    }

    #[test]
    fn tokens_are_long_prefixed_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() >= 4 + 43);
        assert_ne!(a, b);
        assert!(token_hash(&a).starts_with("sha256:"));
        assert!(constant_time_eq(&a, &a.clone()) && !constant_time_eq(&a, &b));
    }
}
