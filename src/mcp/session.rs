//! `Mcp-Session-Id` sessions of the dated revisions, kept in the store with
//! an idle expiry so that any instance on the same store serves them. A
//! session belongs to the credential that opened it: another caller naming
//! its id is told it does not exist.

use serde::{Deserialize, Serialize};

use crate::manage::ManageResult;
use crate::secrets::constant_time_eq;
use crate::store::{keys, Store};

/// A session idles out after this long without a request (each request
/// renews it); a client then gets 404 and initializes again.
pub const IDLE_SECS: u64 = 3600;

/// Session ids are 32 random bytes in hex; nothing else becomes a store key.
const ID_LEN: usize = 64;

/// What the store keeps of a session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    /// The revision negotiated at `initialize`.
    pub version: String,
    /// Owner id of the credential that opened it (`Caller::hash`).
    pub owner: String,
    /// The client's `clientInfo`, for logs.
    #[serde(default)]
    pub client: Option<serde_json::Value>,
    /// The capabilities the client declared at `initialize` (what the
    /// server may ask it: sampling, elicitation, roots).
    #[serde(default)]
    pub capabilities: Option<serde_json::Value>,
    /// The least severe log level the client asked for with
    /// `logging/setLevel`; no log notifications before it asks.
    #[serde(default)]
    pub log_level: Option<String>,
    /// Resource URIs the client subscribed to (`resources/subscribe`),
    /// at most [`MAX_SUBSCRIPTIONS`].
    #[serde(default)]
    pub subscriptions: Vec<String>,
}

/// Most resources one session watches: each is read again every poll of
/// its GET stream.
pub const MAX_SUBSCRIPTIONS: usize = 32;

/// A fresh, unguessable session id.
fn new_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// True for a well-formed id (lowercase hex of the right length).
fn valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Stores a new session and returns its id.
pub async fn open(store: &dyn Store, s: &Session) -> ManageResult<String> {
    let id = new_id();
    store.kv_set(&keys::mcp_session(&id), &encode(s)?, Some(IDLE_SECS)).await?;
    Ok(id)
}

/// The session `id` if it exists and belongs to `owner`, renewed for
/// another idle period; `None` otherwise (unknown, expired, malformed or
/// another caller's).
pub async fn resume(store: &dyn Store, id: &str, owner: &str) -> ManageResult<Option<Session>> {
    let Some((raw, s)) = read(store, id, owner).await? else {
        return Ok(None);
    };
    store.kv_set(&keys::mcp_session(id), &raw, Some(IDLE_SECS)).await?;
    Ok(Some(s))
}

/// The session `id` of `owner` as [`resume`] finds it, without renewing it
/// (the GET stream looks every few seconds; only requests keep a session).
pub async fn peek(store: &dyn Store, id: &str, owner: &str) -> ManageResult<Option<Session>> {
    Ok(read(store, id, owner).await?.map(|(_, s)| s))
}

async fn read(store: &dyn Store, id: &str, owner: &str) -> ManageResult<Option<(String, Session)>> {
    if !valid_id(id) {
        return Ok(None);
    }
    let Some(raw) = store.kv_get(&keys::mcp_session(id)).await? else {
        return Ok(None);
    };
    let Ok(s) = serde_json::from_str::<Session>(&raw) else {
        return Ok(None);
    };
    if !constant_time_eq(&s.owner, owner) {
        return Ok(None);
    }
    Ok(Some((raw, s)))
}

/// Stores a changed session `id` (its log level), renewing its idle period.
pub async fn save(store: &dyn Store, id: &str, s: &Session) -> ManageResult<()> {
    if !valid_id(id) {
        return Ok(());
    }
    store.kv_set(&keys::mcp_session(id), &encode(s)?, Some(IDLE_SECS)).await?;
    Ok(())
}

/// Ends session `id` if it belongs to `owner`; true when one was ended.
pub async fn close(store: &dyn Store, id: &str, owner: &str) -> ManageResult<bool> {
    if resume(store, id, owner).await?.is_none() {
        return Ok(false);
    }
    store.kv_del(&keys::mcp_session(id)).await?;
    Ok(true)
}

fn encode(s: &Session) -> ManageResult<String> {
    serde_json::to_string(s).map_err(|e| crate::manage::ManageError::Store(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_become_keys() {
        assert!(valid_id(&new_id()));
        assert!(!valid_id("abc"));
        assert!(!valid_id(&"A".repeat(ID_LEN)));
        assert!(!valid_id(&format!("{}:", "a".repeat(ID_LEN - 1))));
        assert_ne!(new_id(), new_id());
    }
}
