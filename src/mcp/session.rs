//! `Mcp-Session-Id` sessions of the dated revisions, kept in the store with
//! an idle expiry so that any instance on the same store serves them. A
//! session belongs to the credential that opened it: another caller naming
//! its id is told it does not exist.

use serde::{Deserialize, Serialize};

use axum::http::StatusCode;

use super::protocol::{code, RpcError};
use crate::manage::ManageResult;
use crate::secrets::constant_time_eq;
use crate::store::backend::{Applied, Batch, Check};
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
/// another caller's). The renewal writes only if the session is still what
/// was read: a change made meanwhile (which renewed it too) or a DELETE is
/// never overwritten.
pub async fn resume(store: &dyn Store, id: &str, owner: &str) -> ManageResult<Option<Session>> {
    let Some((raw, s)) = read(store, id, owner).await? else {
        return Ok(None);
    };
    let key = keys::mcp_session(id);
    let mut renew = Batch::default();
    renew.check(Check::Equals(key.clone(), raw.clone())).put_ex(key, raw, IDLE_SECS);
    store.apply(&renew).await?;
    Ok(Some(s))
}

/// Attempts of [`update`] against concurrent changes of the same session.
const UPDATE_ATTEMPTS: usize = 16;

/// Changes session `id` of `owner` with `change` and stores it, renewing
/// its idle period, in one atomic write that holds only if the session is
/// still what was read: a concurrent change (two subscriptions at once) is
/// read again and `change` applied to it, and a session ended meanwhile
/// stays ended (`None`).
pub async fn update(store: &dyn Store, id: &str, owner: &str, mut change: impl FnMut(&mut Session)) -> ManageResult<Option<Session>> {
    let key = keys::mcp_session(id);
    for _ in 0..UPDATE_ATTEMPTS {
        let Some((raw, mut s)) = read(store, id, owner).await? else {
            return Ok(None);
        };
        change(&mut s);
        let mut write = Batch::default();
        write
            .check(Check::Equals(key.clone(), raw))
            .put_ex(key.clone(), encode(&s)?, IDLE_SECS);
        if store.apply(&write).await? == Applied::Ok {
            return Ok(Some(s));
        }
    }
    Err(crate::manage::ManageError::Conflict(
        "the session changed too often at once: try again".into(),
    ))
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

/// The answer to a request naming a session that is unknown, expired,
/// another caller's, or ended while the request changed it.
pub fn gone() -> RpcError {
    RpcError::new(StatusCode::NOT_FOUND, code::SESSION, "session not found: initialize again")
}

/// Ends session `id` if it belongs to `owner`; true when one was ended.
pub async fn close(store: &dyn Store, id: &str, owner: &str) -> ManageResult<bool> {
    if read(store, id, owner).await?.is_none() {
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
    use crate::store::EmbeddedStore;

    #[tokio::test]
    async fn concurrent_changes_all_land_and_an_ended_session_stays_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let store: &dyn Store = store.as_ref();
        let sess = Session {
            version: "2025-06-18".into(),
            owner: "owner".into(),
            client: None,
            capabilities: None,
            log_level: None,
            subscriptions: Vec::new(),
        };
        let id = open(store, &sess).await.unwrap();
        let adds = (0..6).map(|i| {
            let id = id.clone();
            async move { update(store, &id, "owner", |s| s.subscriptions.push(format!("portcullis://proxies/h{i}"))).await }
        });
        for r in futures::future::join_all(adds).await {
            assert!(r.unwrap().is_some());
        }
        let now = peek(store, &id, "owner").await.unwrap().unwrap();
        assert_eq!(now.subscriptions.len(), 6, "no change was lost: {:?}", now.subscriptions);
        assert!(update(store, &id, "intruder", |s| s.log_level = Some("debug".into()))
            .await
            .unwrap()
            .is_none());
        assert!(close(store, &id, "owner").await.unwrap());
        assert!(update(store, &id, "owner", |s| s.log_level = Some("debug".into()))
            .await
            .unwrap()
            .is_none());
        assert!(resume(store, &id, "owner").await.unwrap().is_none(), "nothing brought it back");
        assert_eq!(store.kv_get(&keys::mcp_session(&id)).await.unwrap(), None);
    }

    #[test]
    fn only_well_formed_ids_become_keys() {
        assert!(valid_id(&new_id()));
        assert!(!valid_id("abc"));
        assert!(!valid_id(&"A".repeat(ID_LEN)));
        assert!(!valid_id(&format!("{}:", "a".repeat(ID_LEN - 1))));
        assert_ne!(new_id(), new_id());
    }
}
