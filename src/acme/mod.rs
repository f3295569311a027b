//! Certificates by ACME (HTTP-01): asynchronous orders bounded by a worker
//! pool, one order per certificate name across instances (a store lock),
//! status in the store, challenge answers in the store (served by every
//! instance's data plane), automatic renewal.

mod csr;
mod order;
pub mod renew;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::model::{now_rfc3339, valid_hostname, valid_name, ValidationError};
use crate::secrets::Sealer;
use crate::store::Store;

/// Whole-order attempts when the CA answers with a transient error.
const ORDER_ATTEMPTS: u32 = 3;

/// Most names one certificate may carry.
pub const MAX_DOMAINS: usize = 100;

/// Key algorithm of an issued certificate.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// RSA of `RSA_KEY_SIZE` bits.
    #[default]
    Rsa,
    /// ECDSA P-256.
    Ecdsa,
}

/// Everything one order needs.
#[derive(Clone, Debug)]
pub struct IssueRequest {
    /// Certificate name.
    pub cert_name: String,
    /// Names to cover.
    pub domains: Vec<String>,
    /// ACME account contact.
    pub email: Option<String>,
    /// Use the staging directory.
    pub staging: bool,
    /// Key algorithm.
    pub key_type: KeyType,
    /// Owner hash for the stored certificate.
    pub owner_token_hash: String,
    /// Creator name.
    pub created_by: String,
    /// Proxy to attach the certificate to once issued.
    pub attach_to: Option<String>,
    /// Fingerprint of the stored certificate this order replaces (`None`:
    /// there is none). A certificate found changed, deleted, or owned by
    /// someone else when the order finishes is left alone: the new one is not stored.
    pub replaces: Option<String>,
}

/// Generation status as stored under `cert:status:{name}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CertStatus {
    /// Certificate name.
    pub cert_name: String,
    /// `pending`, `validating`, `issued`, `failed` or `skipped` (no order started).
    pub status: String,
    /// Progress or the ACME error text.
    pub message: String,
    /// Names ordered.
    pub domains: Vec<String>,
    /// Staging directory used.
    pub staging: bool,
    /// Last change.
    pub updated_at: String,
    /// Who ordered it (not shown by the API): only they and the admin may read the status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner_token_hash: String,
}

/// Why an order could not even start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad names.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Another order for this name is running.
    #[error("an order for certificate {0} is already running")]
    Busy(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Why no public CA can validate `host` (HTTP-01 from the internet), or
/// `None` when one may: IP addresses, `localhost` and the special-use
/// domains `.localhost`, `.test`, `.internal`, `.local`, `.invalid`, and
/// single-label names.
pub fn not_publicly_validatable(host: &str) -> Option<String> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    let last = h.rsplit('.').next().unwrap_or_default();
    if h.parse::<std::net::IpAddr>().is_ok() || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())) {
        return Some(format!("{h} is an IP address"));
    }
    if !h.contains('.') {
        return Some(format!("{h} is a single-label name"));
    }
    ["localhost", "test", "internal", "local", "invalid"]
        .contains(&last)
        .then(|| format!("{h} is under .{last}, a special-use domain no public CA validates"))
}

/// Normalises and checks the names of an order.
pub fn validate_domains(field: &str, domains: &[String]) -> Result<Vec<String>, ValidationError> {
    if domains.is_empty() {
        return Err(ValidationError::new(field, "at least one domain is required"));
    }
    if domains.len() > MAX_DOMAINS {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_DOMAINS} domains per certificate (got {})", domains.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(domains.len());
    for d in domains {
        let d = d.trim().to_ascii_lowercase();
        if d.starts_with("*.") {
            return Err(ValidationError::new(
                field,
                format!("{d}: HTTP-01 cannot issue wildcard certificates (that needs DNS-01)"),
            ));
        }
        if !valid_hostname(&d) || !d.contains('.') && d != "localhost" {
            return Err(ValidationError::new(field, format!("{d:?} is not a valid domain name")));
        }
        if out.contains(&d) {
            return Err(ValidationError::new(field, format!("{d} is listed twice")));
        }
        out.push(d);
    }
    Ok(out)
}

/// The ACME engine shared by the API handlers and the renewal loop.
#[derive(Clone)]
pub struct Acme {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    sealer: Sealer,
    workers: Arc<Semaphore>,
    http_client: reqwest::Client,
}

fn lock_name(cert: &str) -> String {
    format!("cert:{cert}")
}

impl Acme {
    /// An engine with `CERT_GEN_MAX_WORKERS` concurrent orders.
    pub fn new(store: Arc<dyn Store>, config: Arc<Config>, sealer: Sealer) -> Self {
        let workers = Arc::new(Semaphore::new(config.acme.max_workers));
        let http_client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            store,
            config,
            sealer,
            workers,
            http_client,
        }
    }

    /// Records a status change.
    async fn set_status(&self, req: &IssueRequest, status: &str, message: impl Into<String>) {
        let s = CertStatus {
            cert_name: req.cert_name.clone(),
            status: status.into(),
            message: message.into(),
            domains: req.domains.clone(),
            staging: req.staging,
            updated_at: now_rfc3339(),
            owner_token_hash: req.owner_token_hash.clone(),
        };
        let ttl = if matches!(status, "issued" | "failed" | "skipped") {
            self.config.acme.status_retention.as_secs()
        } else {
            self.order_budget().as_secs() * u64::from(ORDER_ATTEMPTS) + 600
        };
        let ttl = Some(ttl);
        if let Err(e) = self
            .store
            .put_cert_status(&req.cert_name, &serde_json::to_string(&s).unwrap_or_default(), ttl)
            .await
        {
            tracing::warn!(cert = %req.cert_name, error = %e, "cannot record certificate status");
        }
    }

    /// Records that no order was started for `req`, and why (status `skipped`).
    pub async fn skip(&self, req: &IssueRequest, why: &str) {
        self.set_status(req, "skipped", why).await;
    }

    /// The current status of `name`'s generation, if any is retained.
    pub async fn status(&self, name: &str) -> Result<Option<CertStatus>, crate::store::StoreError> {
        Ok(self
            .store
            .get_cert_status(name)
            .await?
            .and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// Validates and starts an order in the background; returns at once.
    pub async fn start(&self, mut req: IssueRequest) -> Result<(), StartError> {
        if !valid_name(&req.cert_name) {
            return Err(ValidationError::new("cert_name", "letters, digits, '-', '_' and '.' only").into());
        }
        req.domains = validate_domains("domains", &req.domains)?;
        let owner = format!("{:016x}", rand::random::<u64>());
        let hold = self.order_budget().as_secs() + 120;
        if !self.store.acquire_lock(&lock_name(&req.cert_name), &owner, hold).await? {
            return Err(StartError::Busy(req.cert_name));
        }
        self.set_status(&req, "pending", "waiting for a worker").await;
        let me = self.clone();
        tokio::spawn(async move {
            let permit = me.workers.clone().acquire_owned().await;
            me.run(&req).await;
            drop(permit);
            if let Err(e) = me.store.release_lock(&lock_name(&req.cert_name), &owner).await {
                tracing::warn!(cert = %req.cert_name, error = %e, "cannot release the order lock (it expires by itself)");
            }
        });
        Ok(())
    }

    /// Longest an order may poll for.
    fn order_budget(&self) -> std::time::Duration {
        let a = &self.config.acme;
        a.poll_initial_wait + a.poll_interval * a.poll_max_attempts.max(1) * 2
    }

    /// Runs one order to its end, recording the outcome. The status names
    /// the directory and each retry, so a user waiting on an unreachable CA
    /// sees where and why, not a bare "client error".
    async fn run(&self, req: &IssueRequest) {
        let directory = order::directory(self, req);
        tracing::info!(cert = %req.cert_name, domains = ?req.domains, staging = req.staging, %directory, "ACME order starting");
        self.set_status(req, "pending", format!("ordering from {directory}")).await;
        let mut outcome = order::issue(self, req).await;
        for attempt in 1..ORDER_ATTEMPTS {
            match &outcome {
                Err(e) if e.is_transient() => {
                    let why = order::with_causes(e);
                    tracing::warn!(cert = %req.cert_name, attempt, error = %why, "ACME order hit a transient error; starting it again");
                    let retry = format!("retrying ({}/{}) after {directory}: {why}", attempt + 1, ORDER_ATTEMPTS);
                    self.set_status(req, "pending", retry).await;
                    tokio::time::sleep(std::time::Duration::from_secs(2 * u64::from(attempt))).await;
                    outcome = order::issue(self, req).await;
                }
                _ => break,
            }
        }
        match outcome {
            Ok(serial) => {
                tracing::info!(cert = %req.cert_name, serial = %serial, "certificate issued");
                self.set_status(req, "issued", format!("issued, serial {serial}")).await;
            }
            Err(e) => {
                let why = format!("{directory}: {}", order::with_causes(&e));
                tracing::warn!(cert = %req.cert_name, error = %why, "ACME order failed");
                self.set_status(req, "failed", why).await;
            }
        }
    }
}
