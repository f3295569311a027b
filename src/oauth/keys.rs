//! The signing key ring: current and next RSA keys plus the keys retired less
//! than a token lifetime ago, kept sealed in the store. Tokens are signed with
//! `current`; JWKS publishes them all, so a rotation (next → current) never
//! fails a validation and no unexpired token loses its key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::OAuthError;
use crate::secrets::Sealer;
use crate::store::{OAuthStore, Store};

#[derive(Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    pem_sealed: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct RetiredKey {
    key: StoredKey,
    retired_at: i64,
}

#[derive(Clone, Serialize, Deserialize, Default)]
struct StoredRing {
    #[serde(default)]
    retired: Vec<RetiredKey>,
    current: Option<StoredKey>,
    next: Option<StoredKey>,
}

/// The public half of a signing key as a JSON Web Key (RFC 7517, RSA
/// parameters per RFC 7518 section 6.3).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Jwk {
    /// `RSA`.
    pub kty: &'static str,
    /// `sig`: the key verifies signatures.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// `RS256`.
    pub alg: &'static str,
    /// The key id tokens name in their header (RFC 7638 thumbprint).
    pub kid: String,
    /// The modulus, base64url.
    pub n: String,
    /// The public exponent, base64url.
    pub e: String,
}

/// The JWKS document at `/jwks` (RFC 7517 section 5): every key whose
/// tokens are accepted.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Jwks {
    /// The published keys.
    pub keys: Vec<Jwk>,
}

/// One usable key.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// For signing.
    pub encoding: EncodingKey,
    /// For verifying.
    pub decoding: DecodingKey,
    /// The JWK (public part).
    pub jwk: Jwk,
}

/// The loaded ring.
#[derive(Clone)]
pub struct KeyRing {
    /// Signs new tokens.
    pub current: SigningKey,
    /// Every key whose tokens are accepted (and published).
    pub all: Vec<SigningKey>,
}

impl KeyRing {
    /// The key with `kid`, if it is in the ring.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.all.iter().find(|k| k.kid == kid)
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self.all.iter().map(|k| k.jwk.clone()).collect(),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> OAuthError {
    OAuthError::server(format!("signing keys: {e}"))
}

fn load_key(sealer: &Sealer, k: &StoredKey) -> Result<SigningKey, OAuthError> {
    let pem = sealer.open(&k.pem_sealed).map_err(internal)?;
    let rsa = Rsa::private_key_from_pem(pem.as_bytes()).map_err(internal)?;
    let n = URL_SAFE_NO_PAD.encode(rsa.n().to_vec());
    let e = URL_SAFE_NO_PAD.encode(rsa.e().to_vec());
    let public_pem = rsa.public_key_to_pem().map_err(internal)?;
    Ok(SigningKey {
        kid: k.kid.clone(),
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(internal)?,
        decoding: DecodingKey::from_rsa_pem(&public_pem).map_err(internal)?,
        jwk: Jwk {
            kty: "RSA",
            use_: "sig",
            alg: "RS256",
            kid: k.kid.clone(),
            n,
            e,
        },
    })
}

/// RFC 7638 thumbprint of an RSA key: the kid.
fn thumbprint(pem: &str) -> Result<String, OAuthError> {
    let rsa = Rsa::private_key_from_pem(pem.as_bytes())
        .or_else(|_| PKey::private_key_from_pem(pem.as_bytes()).and_then(|k| k.rsa()))
        .map_err(internal)?;
    let canon = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        URL_SAFE_NO_PAD.encode(rsa.n().to_vec())
    );
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canon.as_bytes())))
}

fn new_key(sealer: &Sealer, pem: Option<&str>) -> Result<StoredKey, OAuthError> {
    let pem = match pem {
        Some(p) => {
            let rsa = Rsa::private_key_from_pem(p.as_bytes())
                .or_else(|_| PKey::private_key_from_pem(p.as_bytes()).and_then(|k| k.rsa()))
                .map_err(internal)?;
            String::from_utf8_lossy(&rsa.private_key_to_pem().map_err(internal)?).into_owned()
        }
        None => String::from_utf8_lossy(&Rsa::generate(2048).map_err(internal)?.private_key_to_pem().map_err(internal)?).into_owned(),
    };
    Ok(StoredKey {
        kid: thumbprint(&pem)?,
        pem_sealed: sealer.seal(&pem).map_err(internal)?,
    })
}

/// The stored ring and the text it was parsed from (unparseable text counts as absent).
async fn read(store: &dyn Store) -> Result<Option<(String, StoredRing)>, OAuthError> {
    Ok(store.key_ring().await?.and_then(parse))
}

fn parse(raw: String) -> Option<(String, StoredRing)> {
    let ring = serde_json::from_str(&raw).ok()?;
    Some((raw, ring))
}

fn load(sealer: &Sealer, ring: &StoredRing) -> Result<KeyRing, OAuthError> {
    let current = load_key(sealer, ring.current.as_ref().ok_or_else(|| internal("no current key"))?)?;
    let mut all = vec![current.clone()];
    if let Some(k) = &ring.next {
        all.push(load_key(sealer, k)?);
    }
    for r in &ring.retired {
        all.push(load_key(sealer, &r.key)?);
    }
    Ok(KeyRing { current, all })
}

/// Loads the ring, creating it (seeded with `OAUTH_JWT_PRIVATE_KEY_B64` when given) on first use.
pub async fn ring(store: &dyn Store, sealer: &Sealer, seed_pem: Option<&str>) -> Result<KeyRing, OAuthError> {
    let raw = store.key_ring().await?;
    Ok(ring_from(store, sealer, seed_pem, raw).await?.1)
}

/// Like [`ring`], from the stored text the caller has already read (`None`:
/// nothing stored). Returns the text the ring was loaded from with it, so a
/// cache keyed by that text never pairs one version's text with another's keys.
pub async fn ring_from(
    store: &dyn Store,
    sealer: &Sealer,
    seed_pem: Option<&str>,
    raw: Option<String>,
) -> Result<(String, KeyRing), OAuthError> {
    let (raw, stored) = stored(store, sealer, seed_pem, raw).await?;
    Ok((raw, load(sealer, &stored)?))
}

/// The stored ring parsed from `raw` (the caller's read of the stored ring),
/// creating it first if nothing usable is stored; its keys stay sealed.
async fn stored(
    store: &dyn Store,
    sealer: &Sealer,
    seed_pem: Option<&str>,
    raw: Option<String>,
) -> Result<(String, StoredRing), OAuthError> {
    if let Some(found) = raw.and_then(parse) {
        return Ok(found);
    }
    let fresh = StoredRing {
        retired: Vec::new(),
        current: Some(new_key(sealer, seed_pem)?),
        next: Some(new_key(sealer, None)?),
    };
    let _ = store.create_key_ring(&serde_json::to_string(&fresh).map_err(internal)?).await?;
    read(store).await?.ok_or_else(|| internal("key ring vanished"))
}

/// Rotates: next becomes current, current is retired (kept while tokens it
/// signed may live, `keep_secs`), a new next is made. The rotated ring is
/// loaded before it is stored, so a ring whose keys cannot be unsealed is
/// refused, not written.
///
/// Rotations are serialized across instances by a store lock: two
/// read-modify-writes of the ring racing each other lost a rotation, and a
/// stale write could drop a key that live tokens were signed with.
pub async fn rotate(store: &dyn Store, sealer: &Sealer, seed_pem: Option<&str>, keep_secs: i64) -> Result<KeyRing, OAuthError> {
    let holder = super::random_token(16);
    let mut acquired = false;
    for _ in 0..ROTATE_LOCK_ATTEMPTS {
        if store.lock_key_rotation(&holder, ROTATE_LOCK_TTL_SECS).await? {
            acquired = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    if !acquired {
        return Err(OAuthError::unavailable("another key rotation is in progress; retry"));
    }
    let result = rotate_locked(store, sealer, seed_pem, keep_secs).await;
    // Released only by its holder (a lock that expired meanwhile may be another's).
    if let Err(e) = store.unlock_key_rotation(&holder).await {
        tracing::warn!(error = %e, "key rotation lock not released; it expires on its own");
    }
    result
}

/// How long the rotation lock lives: it expires on its own if its holder
/// dies mid-rotation.
const ROTATE_LOCK_TTL_SECS: u64 = 10;
/// How long a rotation waits for another to finish: 200 x 50 ms.
const ROTATE_LOCK_ATTEMPTS: u32 = 200;

async fn rotate_locked(store: &dyn Store, sealer: &Sealer, seed_pem: Option<&str>, keep_secs: i64) -> Result<KeyRing, OAuthError> {
    let (_, old) = stored(store, sealer, seed_pem, store.key_ring().await?).await?;
    let now = chrono::Utc::now().timestamp();
    let mut retired: Vec<RetiredKey> = old.retired.into_iter().filter(|r| now - r.retired_at <= keep_secs).collect();
    if let Some(k) = old.current {
        retired.push(RetiredKey { key: k, retired_at: now });
    }
    let rotated = StoredRing {
        retired,
        current: old.next.clone(),
        next: Some(new_key(sealer, None)?),
    };
    let ring = load(sealer, &rotated)?;
    store
        .store_rotated_key_ring(&serde_json::to_string(&rotated).map_err(internal)?)
        .await?;
    Ok(ring)
}
