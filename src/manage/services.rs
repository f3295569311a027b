//! Named external services: a name mapped to a URL, the target of `service` routes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{from_json, require_admin, Caller, ManageError, ManageResult, Manager};
use crate::model::{valid_name, validate_http_url, ValidationError};

/// An external service registration.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalService {
    /// Unique name used as a route's `target_value`.
    pub service_name: String,
    /// Where it lives.
    pub target_url: String,
}

impl Manager {
    /// Registers or replaces a named service (admin only: services are shared).
    pub async fn register_service(&self, caller: &Caller, body: Value) -> ManageResult<ExternalService> {
        require_admin(caller)?;
        let s: ExternalService = from_json(body)?;
        if !valid_name(&s.service_name) {
            return Err(ValidationError::new("service_name", "letters, digits, '-', '_' and '.' only").into());
        }
        validate_http_url("target_url", &s.target_url)?;
        self.store.put_service_url(&s.service_name, &s.target_url).await?;
        Ok(s)
    }

    /// Every named service, for the admin. Services are the admin's (only the
    /// admin registers them or routes to them) and their URLs are internal:
    /// other callers get an empty list.
    pub async fn list_services(&self, caller: &Caller) -> ManageResult<Vec<ExternalService>> {
        if !caller.is_admin() {
            return Ok(Vec::new());
        }
        let mut v: Vec<ExternalService> = self
            .store
            .list_service_urls()
            .await?
            .into_iter()
            .map(|(service_name, target_url)| ExternalService { service_name, target_url })
            .collect();
        v.sort_by(|a, b| a.service_name.cmp(&b.service_name));
        Ok(v)
    }

    /// Removes a named service.
    pub async fn unregister_service(&self, caller: &Caller, name: &str) -> ManageResult<()> {
        require_admin(caller)?;
        self.store.delete_service_url(name).await.map_err(ManageError::from)
    }
}
