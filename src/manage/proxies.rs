//! Proxy target operations.

use serde_json::Value;

use super::{from_json, merge, Caller, ManageError, ManageResult, Manager};
use crate::model::{now_rfc3339, Proxy};

/// Fields a caller can never set: identity and ownership.
const LOCKED: [&str; 4] = ["hostname", "owner_token_hash", "created_by", "created_at"];

impl Manager {
    /// Creates a proxy owned by the caller.
    pub async fn create_proxy(&self, caller: &Caller, body: Value) -> ManageResult<Proxy> {
        let mut body = body;
        if let Value::Object(o) = &mut body {
            for k in &LOCKED[1..] {
                o.remove(*k);
            }
        }
        let mut p: Proxy = from_json(body)?;
        p.validate()?;
        p.owner_token_hash = caller.hash.clone();
        p.created_by = caller.name.clone();
        p.created_at = now_rfc3339();
        self.store.create_proxy(&p).await?;
        tracing::info!(hostname = %p.hostname, by = %caller.name, "proxy created");
        Ok(p)
    }

    /// Every proxy the caller may see.
    pub async fn list_proxies(&self, caller: &Caller) -> ManageResult<Vec<Proxy>> {
        Ok(self.store.list_proxies().await?.into_iter().filter(|p| caller.owns(&p.owner_token_hash)).collect())
    }

    /// One proxy; 404 when missing or not the caller's.
    pub async fn get_proxy(&self, caller: &Caller, hostname: &str) -> ManageResult<Proxy> {
        let hostname = hostname.to_ascii_lowercase();
        match self.store.get_proxy(&hostname).await? {
            Some(p) if caller.owns(&p.owner_token_hash) => Ok(p),
            _ => Err(ManageError::NotFound(format!("proxy {hostname}"))),
        }
    }

    /// Applies the fields of `patch` to a proxy.
    pub async fn update_proxy(&self, caller: &Caller, hostname: &str, patch: Value) -> ManageResult<Proxy> {
        let current = self.get_proxy(caller, hostname).await?;
        let mut v = serde_json::to_value(&current).map_err(|e| ManageError::Store(e.to_string()))?;
        merge(&mut v, patch, &LOCKED)?;
        let mut p: Proxy = from_json(v)?;
        p.validate()?;
        self.store.update_proxy(&p).await?;
        tracing::info!(hostname = %p.hostname, by = %caller.name, "proxy updated");
        Ok(p)
    }

    /// Deletes a proxy.
    pub async fn delete_proxy(&self, caller: &Caller, hostname: &str) -> ManageResult<()> {
        let p = self.get_proxy(caller, hostname).await?;
        self.store.delete_proxy(&p.hostname).await?;
        tracing::info!(hostname = %p.hostname, by = %caller.name, "proxy deleted");
        Ok(())
    }
}
