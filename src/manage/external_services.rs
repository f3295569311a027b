//! External services (a name mapped to a URL, the target of `service`
//! routes), the built-in internal `api` service, and the unified list of
//! all three service types.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::services::{ServiceKey, ServiceList};
use super::{require_admin, Caller, ManageError, ManageResult, Manager};
use crate::model::{now_rfc3339, valid_name, validate_http_url, ValidationError};
use crate::services::{record, ExternalMeta, ServiceType, API_SERVICE, RESERVED_NAMES};

/// `POST /api/v1/services/external`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterExternal {
    /// Unique name used as a route's `target_value`.
    pub service_name: String,
    /// Where it lives.
    pub target_url: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// `external` when given.
    #[serde(default)]
    pub service_type: Option<ServiceType>,
}

/// `PUT /api/v1/services/external/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateExternal {
    /// New URL.
    #[serde(default)]
    pub target_url: Option<String>,
    /// New description (an empty string clears it).
    #[serde(default)]
    pub description: Option<String>,
}

/// A change of the external service `service_name`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalUpdate {
    /// The service's name.
    pub service_name: String,
    /// The fields to change (the REST body).
    pub patch: UpdateExternal,
}

/// The answer to an unregistration.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalDeleted {
    /// Always `deleted`.
    pub status: &'static str,
    /// The service unregistered.
    pub service_name: String,
}

/// An external or internal service as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalService {
    /// Name.
    pub service_name: String,
    /// `external` or `internal`.
    pub service_type: ServiceType,
    /// Where it lives.
    pub target_url: String,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who registered it (empty for built-in and older registrations).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub updated_at: String,
}

/// One line of `GET /api/v1/services/unified`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnifiedService {
    /// Name.
    pub service_name: String,
    /// Type.
    pub service_type: ServiceType,
    /// Where traffic goes.
    pub target_url: String,
    /// Docker state, or `registered` / `builtin`.
    pub status: String,
    /// Free text or the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Options of the unified list.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnifiedQuery {
    /// Only this type.
    #[serde(default, rename = "type")]
    pub service_type: Option<ServiceType>,
}

fn check_description(d: &Option<String>) -> ManageResult<()> {
    if let Some(d) = d {
        crate::model::check_text_len("description", d, 1000)?;
    }
    Ok(())
}

impl Manager {
    fn api_service(&self) -> ExternalService {
        ExternalService {
            service_name: API_SERVICE.into(),
            service_type: ServiceType::Internal,
            target_url: self.config.api_base_url(),
            description: Some("the control plane: admin API, OAuth and certificates".into()),
            created_by: String::new(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn external_view(service_name: String, target_url: String, m: ExternalMeta) -> ExternalService {
        ExternalService {
            service_name,
            service_type: ServiceType::External,
            target_url,
            description: m.description,
            created_by: m.created_by,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Registers a named service (admin only: services are shared).
pub async fn register(m: &Manager, caller: &Caller, r: RegisterExternal) -> ManageResult<ExternalService> {
    require_admin(caller)?;
    if !valid_name(&r.service_name) {
        return Err(ValidationError::new("service_name", "letters, digits, '-', '_' and '.' only").into());
    }
    if RESERVED_NAMES.contains(&r.service_name.as_str()) {
        return Err(ManageError::Conflict(format!("{} is a built-in or reserved name", r.service_name)));
    }
    if r.service_type.is_some_and(|t| t != ServiceType::External) {
        return Err(ValidationError::new("service_type", "this endpoint registers external services").into());
    }
    if record::get(m.store.as_ref(), &r.service_name).await?.is_some() {
        return Err(ManageError::Conflict(format!("{} is a Docker service", r.service_name)));
    }
    validate_http_url("target_url", &r.target_url)?;
    check_description(&r.description)?;
    let now = now_rfc3339();
    let meta = ExternalMeta {
        description: r.description.filter(|d| !d.is_empty()),
        owner_token_hash: caller.hash.clone(),
        created_by: caller.name.clone(),
        created_at: now.clone(),
        updated_at: now,
    };
    record::put_external(m.store.as_ref(), &r.service_name, &meta).await?;
    m.store.put_service_url(&r.service_name, &r.target_url).await?;
    Ok(Manager::external_view(r.service_name, r.target_url, meta))
}

/// Every external service, with the built-in `api`, for the admin.
/// Their URLs are internal (only the admin routes to them): other
/// callers get an empty list.
pub async fn list(m: &Manager, caller: &Caller) -> ManageResult<Vec<ExternalService>> {
    if !caller.is_admin() {
        return Ok(Vec::new());
    }
    let mut v = vec![m.api_service()];
    for (name, url) in m.store.list_service_urls().await? {
        let meta = record::get_external(m.store.as_ref(), &name).await?.unwrap_or_default();
        v.push(Manager::external_view(name, url, meta));
    }
    v.sort_by(|a, b| a.service_name.cmp(&b.service_name));
    Ok(v)
}

/// One external or internal service (admin only, as the list).
pub async fn get(m: &Manager, caller: &Caller, key: ServiceKey) -> ManageResult<ExternalService> {
    let name = key.service_name.as_str();
    if !caller.is_admin() {
        return Err(ManageError::NotFound(format!("service {name}")));
    }
    if name == API_SERVICE {
        return Ok(m.api_service());
    }
    let url = m
        .store
        .list_service_urls()
        .await?
        .remove(name)
        .ok_or_else(|| ManageError::NotFound(format!("service {name}")))?;
    let meta = record::get_external(m.store.as_ref(), name).await?.unwrap_or_default();
    Ok(Manager::external_view(name.to_string(), url, meta))
}

/// Changes an external service's URL or description.
pub async fn update(m: &Manager, caller: &Caller, upd: ExternalUpdate) -> ManageResult<ExternalService> {
    let (name, r) = (upd.service_name.as_str(), upd.patch);
    require_admin(caller)?;
    if name == API_SERVICE {
        return Err(ManageError::Conflict("the api service is built in".into()));
    }
    let current = get(
        m,
        caller,
        ServiceKey {
            service_name: name.to_string(),
        },
    )
    .await?;
    let url = r.target_url.unwrap_or(current.target_url);
    validate_http_url("target_url", &url)?;
    check_description(&r.description)?;
    let mut meta = record::get_external(m.store.as_ref(), name).await?.unwrap_or_default();
    if let Some(d) = r.description {
        meta.description = (!d.is_empty()).then_some(d);
    }
    meta.updated_at = now_rfc3339();
    record::put_external(m.store.as_ref(), name, &meta).await?;
    m.store.put_service_url(name, &url).await?;
    Ok(Manager::external_view(name.to_string(), url, meta))
}

/// Removes a named service.
pub async fn unregister(m: &Manager, caller: &Caller, key: ServiceKey) -> ManageResult<ExternalDeleted> {
    let name = key.service_name.as_str();
    require_admin(caller)?;
    if name == API_SERVICE {
        return Err(ManageError::Conflict("the api service is built in".into()));
    }
    m.store.delete_service_url(name).await?;
    record::delete_external(m.store.as_ref(), name).await?;
    Ok(ExternalDeleted {
        status: "deleted",
        service_name: key.service_name,
    })
}

/// Docker, external and internal services in one list (external and
/// internal ones for the admin only, as their own list).
pub async fn unified(m: &Manager, caller: &Caller, q: UnifiedQuery) -> ManageResult<Vec<UnifiedService>> {
    let mut v: Vec<UnifiedService> = super::services::list(m, caller, ServiceList::default())
        .await?
        .into_iter()
        .map(|s| UnifiedService {
            service_name: s.service_name,
            service_type: ServiceType::Docker,
            target_url: s.target_url,
            status: s.status,
            description: Some(s.image),
        })
        .collect();
    for e in list(m, caller).await? {
        v.push(UnifiedService {
            status: if e.service_type == ServiceType::Internal {
                "builtin"
            } else {
                "registered"
            }
            .into(),
            service_name: e.service_name,
            service_type: e.service_type,
            target_url: e.target_url,
            description: e.description,
        });
    }
    if let Some(t) = q.service_type {
        v.retain(|s| s.service_type == t);
    }
    v.sort_by(|a, b| a.service_name.cmp(&b.service_name));
    Ok(v)
}
