//! One ACME order with instant-acme: account (kept in the store), HTTP-01
//! challenges (answers in the store), finalize with our own key and CSR, and
//! the certificate stored only when everything succeeded.

use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use sha2::{Digest, Sha256};

use super::{csr, Acme, IssueRequest};
use crate::model::{now_rfc3339, CertInfo, Certificate};

/// Why an order failed; the text is what the status endpoint shows.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The ACME server or the transport said no.
    #[error("ACME error: {0}")]
    Acme(#[from] instant_acme::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Key or CSR generation failed.
    #[error("key generation failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

impl OrderError {
    /// True when trying the whole order again may succeed (bad nonces, rate limits, network).
    pub fn is_transient(&self) -> bool {
        matches!(self, OrderError::Acme(e) if is_transient(e))
    }
}

/// How long a challenge answer stays in the store at most.
const CHALLENGE_TTL_SECS: u64 = 3600;
/// Attempts for calls that failed transiently (rate limits, network).
const TRANSIENT_ATTEMPTS: u32 = 3;

fn is_transient(e: &instant_acme::Error) -> bool {
    match e {
        instant_acme::Error::Api(p) => {
            matches!(
                p.r#type.as_deref(),
                Some("urn:ietf:params:acme:error:badNonce" | "urn:ietf:params:acme:error:rateLimited")
            ) || p.status.is_some_and(|s| s >= 500)
        }
        instant_acme::Error::Hyper(_) | instant_acme::Error::Other(_) => true,
        _ => false,
    }
}

fn builder(acme: &Acme) -> Result<instant_acme::AccountBuilder, OrderError> {
    Ok(match &acme.config.acme.ca_bundle {
        Some(p) => Account::builder_with_root(p)?,
        None => Account::builder()?,
    })
}

/// Loads or creates the account for (directory, email), kept sealed in the store.
async fn account(acme: &Acme, directory: &str, email: Option<&str>) -> Result<Account, OrderError> {
    let id = hex::encode(Sha256::digest(format!("{directory}|{}", email.unwrap_or("")).as_bytes()));
    let key = format!("acme:account:{id}");
    if let Some(sealed) = acme.store.get_value(&key).await? {
        if let Ok(json) = acme.sealer.open(&sealed) {
            if let Ok(creds) = serde_json::from_str::<AccountCredentials>(&json) {
                return Ok(builder(acme)?.from_credentials(creds).await?);
            }
        }
        tracing::warn!(directory, "stored ACME account unusable; creating a new one");
    }
    let contact = email.map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let mut last = None;
    for attempt in 0..TRANSIENT_ATTEMPTS {
        let new = NewAccount {
            contact: &contacts,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        match builder(acme)?.create(&new, directory.to_string(), None).await {
            Ok((account, creds)) => {
                let json = serde_json::to_string(&creds).map_err(|e| OrderError::Other(e.to_string()))?;
                let sealed = acme.sealer.seal(&json).map_err(|e| OrderError::Other(e.to_string()))?;
                acme.store.set_value(&key, &sealed).await?;
                return Ok(account);
            }
            Err(e) if is_transient(&e) => {
                tracing::warn!(directory, attempt, error = %e, "ACME account creation failed; retrying");
                last = Some(e);
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(|| OrderError::Other("account creation failed".into()), OrderError::from))
}

async fn new_order(account: &Account, ids: &[Identifier]) -> Result<Order, OrderError> {
    let mut attempt = 0;
    loop {
        match account.new_order(&NewOrder::new(ids)).await {
            Ok(o) => return Ok(o),
            Err(e) if is_transient(&e) && attempt + 1 < TRANSIENT_ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "ACME new order failed; retrying");
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The reasons an invalid order gives, from its authorizations' challenges.
async fn failure_reason(order: &mut Order) -> String {
    let mut reasons = Vec::new();
    if let Some(p) = &order.state().error {
        reasons.push(p.to_string());
    }
    let mut authzs = order.authorizations();
    while let Some(Ok(mut a)) = authzs.next().await {
        let _ = a.refresh().await;
        for c in &a.challenges {
            if let Some(p) = &c.error {
                reasons.push(p.to_string());
            }
        }
    }
    if reasons.is_empty() {
        "the order became invalid".into()
    } else {
        reasons.join("; ")
    }
}

impl Acme {
    /// Waits until this instance's data plane answers the challenge (so the
    /// CA's validation does not race our own snapshot rebuild).
    async fn self_check(&self, token: &str, expected: &str) {
        let url = format!("http://127.0.0.1:{}/.well-known/acme-challenge/{token}", self.config.http_port);
        for _ in 0..100 {
            if let Ok(r) = self.http_client.get(&url).send().await {
                if r.status().is_success() && r.text().await.is_ok_and(|t| t == expected) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::warn!(token, "own data plane does not answer the challenge yet; continuing");
    }

    fn poll_policy(&self) -> RetryPolicy {
        let a = &self.config.acme;
        RetryPolicy::new()
            .initial_delay(a.poll_initial_wait.max(Duration::from_millis(250)))
            .backoff(1.5)
            .timeout(a.poll_interval * a.poll_max_attempts.max(1))
    }
}

/// The ACME directory an order for `req` talks to.
pub fn directory(acme: &Acme, req: &IssueRequest) -> String {
    if req.staging {
        acme.config.acme.staging_url.clone()
    } else {
        acme.config.acme.directory_url.clone()
    }
}

/// `e` and every error below it, so a connection failure says why
/// ("client error (Connect): tcp connect error: Connection refused"), not
/// only its top line.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        next = cause.source();
    }
    text
}

/// Runs the order; returns the new certificate's serial.
pub async fn issue(acme: &Acme, req: &IssueRequest) -> Result<String, OrderError> {
    let directory = directory(acme, req);
    let account = account(acme, &directory, req.email.as_deref()).await?;
    let ids: Vec<Identifier> = req.domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
    let mut order = new_order(&account, &ids).await?;
    let mut tokens = Vec::new();
    let result = finish(acme, req, &directory, &mut order, &mut tokens).await;
    for t in tokens {
        if let Err(e) = acme.store.delete_challenge(&t).await {
            tracing::warn!(token = %t, error = %e, "cannot delete challenge answer (it expires by itself)");
        }
    }
    result
}

async fn finish(
    acme: &Acme,
    req: &IssueRequest,
    directory: &str,
    order: &mut Order,
    tokens: &mut Vec<String>,
) -> Result<String, OrderError> {
    {
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(OrderError::Other(format!("authorization is {other:?}"))),
            }
            let mut ch = a
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| OrderError::Other("the CA offered no http-01 challenge".into()))?;
            let key_auth = ch.key_authorization().as_str().to_string();
            let token = ch.token.clone();
            if !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(OrderError::Other("the CA sent a malformed challenge token".into()));
            }
            acme.store.put_challenge(&token, &key_auth, CHALLENGE_TTL_SECS).await?;
            tokens.push(token.clone());
            acme.self_check(&token, &key_auth).await;
            ch.set_ready().await?;
        }
    }
    acme.set_status(req, "validating", "challenges ready, waiting for the CA").await;
    let policy = acme.poll_policy();
    let status = order.poll_ready(&policy).await?;
    if status != OrderStatus::Ready {
        return Err(OrderError::Other(format!("validation failed: {}", failure_reason(order).await)));
    }
    let (key, csr) = csr::key_and_csr(req.key_type, acme.config.acme.rsa_key_size, &req.domains)?;
    order.finalize_csr(&csr).await?;
    let chain = order.poll_certificate(&policy).await?;
    let key_pem = String::from_utf8_lossy(&key.private_key_to_pem_pkcs8()?).into_owned();
    let info = CertInfo::parse(&chain, &key_pem).map_err(|e| OrderError::Other(format!("the CA returned an unusable certificate: {e}")))?;
    let cert = Certificate {
        cert_name: req.cert_name.clone(),
        domains: info.domains,
        email: req.email.clone(),
        acme_directory_url: Some(directory.to_string()),
        status: "active".into(),
        source: "acme".into(),
        expires_at: info.expires_at.to_rfc3339(),
        not_before: info.not_before.to_rfc3339(),
        serial: info.serial.clone(),
        issuer: info.issuer,
        fingerprint_sha256: info.fingerprint_sha256,
        fullchain_pem: info.fullchain_pem,
        private_key_encrypted: acme
            .sealer
            .seal(&info.private_key_pem)
            .map_err(|e| OrderError::Other(e.to_string()))?,
        owner_token_hash: req.owner_token_hash.clone(),
        created_by: req.created_by.clone(),
        created_at: now_rfc3339(),
    };
    let current = acme.store.get_cert(&req.cert_name).await?;
    let unchanged = match (&current, &req.replaces) {
        (None, None) => true,
        (Some(c), Some(fp)) => c.fingerprint_sha256 == *fp && c.owner_token_hash == req.owner_token_hash,
        _ => false,
    };
    if !unchanged {
        return Err(OrderError::Other(format!(
            "certificate {} was created, replaced or deleted while the order ran; the newly issued certificate was not stored",
            req.cert_name
        )));
    }
    acme.store.put_cert(&cert).await?;
    if let Some(host) = &req.attach_to {
        attach(acme, host, req).await?;
    }
    Ok(info.serial)
}

/// Points a proxy at a certificate, if the proxy still exists and still
/// belongs to whoever ordered the certificate (a hostname deleted and taken
/// by another owner meanwhile is left alone).
async fn attach(acme: &Acme, host: &str, req: &IssueRequest) -> Result<(), OrderError> {
    let cert_name = req.cert_name.as_str();
    if let Some(mut p) = acme.store.get_proxy(host).await? {
        if p.owner_token_hash == req.owner_token_hash && p.cert_name.as_deref() != Some(cert_name) {
            p.cert_name = Some(cert_name.to_string());
            acme.store.update_proxy(&p).await?;
        }
    }
    Ok(())
}
