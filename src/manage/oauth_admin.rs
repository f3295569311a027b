//! Administration of the OAuth authorization server: clients, consents,
//! live tokens and sessions, key rotation, counts, and minted tokens. Every
//! operation is the admin's, checked here like every other `manage`
//! operation (front ends do not check it themselves), with typed results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{require_admin, Caller, ManageError, ManageResult, Manager};
use crate::model::ValidationError;
use crate::oauth::keys::Jwks;
use crate::oauth::model::{AccessRecord, Client, User};
use crate::oauth::OAuthError;

impl From<OAuthError> for ManageError {
    fn from(e: OAuthError) -> Self {
        ManageError::OAuth(e)
    }
}

/// What the admin API shows of a client: never its secret hashes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    /// Client id (random, or the CIMD URL).
    pub client_id: String,
    /// Display name.
    pub client_name: Option<String>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Grants allowed.
    pub grant_types: Vec<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
    /// Scopes the client may ask for (space separated), if restricted.
    pub scope: Option<String>,
    /// Unix time of registration.
    pub client_id_issued_at: i64,
    /// Unix time the secret expires (0 = never).
    pub client_secret_expires_at: i64,
    /// `dcr`, `cimd` or `builtin`.
    pub source: String,
    /// May introspect tokens issued to other clients.
    pub resource_server: bool,
    /// Skips the consent page.
    pub pre_approved: bool,
}

impl From<Client> for ClientView {
    fn from(c: Client) -> Self {
        Self {
            client_id: c.client_id,
            client_name: c.client_name,
            redirect_uris: c.redirect_uris,
            grant_types: c.grant_types,
            token_endpoint_auth_method: c.token_endpoint_auth_method,
            scope: c.scope,
            client_id_issued_at: c.client_id_issued_at,
            client_secret_expires_at: c.client_secret_expires_at,
            source: c.source,
            resource_server: c.resource_server,
            pre_approved: c.pre_approved,
        }
    }
}

/// Names one client.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientKey {
    /// The client's id.
    pub client_id: String,
}

/// The admin's flags of a client; an absent or `null` flag stays as it is.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientFlags {
    /// The client is a resource server: it may introspect tokens issued to others.
    #[serde(default)]
    pub resource_server: Option<bool>,
    /// No consent page for this client.
    #[serde(default)]
    pub pre_approved: Option<bool>,
}

/// New flags for the client `client_id`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientFlagsUpdate {
    /// The client's id.
    pub client_id: String,
    /// The flags to set.
    pub flags: ClientFlags,
}

/// Names one user's consent to a client.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentKey {
    /// The client's id.
    pub client_id: String,
    /// The user's id (`provider:subject`).
    pub user_id: String,
}

/// A consent a user gave a client.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsentView {
    /// The client.
    pub client_id: String,
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    #[serde(default)]
    pub username: Option<String>,
    /// Scopes granted.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub scope: Value,
    /// Resources granted.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub resources: Value,
    /// When.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub granted_at: Value,
}

/// Names one access token.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JtiKey {
    /// The token's id.
    pub jti: String,
}

/// Names one session (token family).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionKey {
    /// The session's id.
    pub session_id: String,
}

/// Names the proxy whose resource's tokens are listed.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyHost {
    /// The proxy's hostname.
    pub hostname: String,
}

/// The live access tokens, counted per client.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// How many.
    pub active_access_tokens: usize,
    /// How many per client id.
    pub by_client: BTreeMap<String, usize>,
    /// The tokens.
    pub tokens: Vec<AccessRecord>,
}

/// A session: the tokens of one login, refreshed as a family.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The family id.
    pub session_id: String,
    /// Client.
    pub client_id: String,
    /// User name.
    pub username: String,
    /// Subject.
    pub sub: String,
    /// Live access tokens in it.
    pub tokens: usize,
}

/// What a removal did.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthRemoved {
    /// `deleted` or `revoked`.
    pub status: &'static str,
    /// The client concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// How many consents were forgotten, if consents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consents: Option<usize>,
    /// The token revoked, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The session revoked, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

impl OAuthRemoved {
    fn new(status: &'static str) -> Self {
        Self {
            status,
            client_id: None,
            user_id: None,
            consents: None,
            jti: None,
            session_id: None,
        }
    }
}

/// The signing keys after a rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    /// Always `rotated`.
    pub status: &'static str,
    /// The key that signs from now on.
    pub current_kid: String,
    /// Every published key (JWKS).
    pub jwks: Jwks,
}

/// Counts of the authorization server's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthCounts {
    /// Live access tokens.
    pub active_access_tokens: usize,
    /// Registered clients.
    pub registered_clients: usize,
}

/// The authorization server's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthHealth {
    /// Always `healthy` when it answers.
    pub status: &'static str,
    /// The issuer URL.
    pub issuer: String,
    /// `github` or `oidc`.
    pub login_provider: String,
    /// The key that signs now.
    pub signing_kid: String,
}

/// A token to mint through the real signing code (tests, service accounts).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// The user's name.
    pub username: String,
    /// The subject (default `test:{username}`).
    #[serde(default)]
    pub sub: Option<String>,
    /// The user's e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// The user's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Scopes, space separated.
    #[serde(default)]
    pub scope: String,
    /// Lifetime in seconds (default: the access token lifetime).
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// Client id (default `portcullis-admin`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Audiences (default: the admin API's own resource).
    #[serde(default)]
    pub aud: Vec<String>,
}

/// A minted access token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Minted {
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Its id.
    pub jti: String,
    /// Expiry (unix time).
    pub exp: i64,
    /// Audiences.
    pub aud: Vec<String>,
}

/// What the OAuth admin API shows of a proxy's auth settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProxyAuthView {
    /// The proxy.
    pub hostname: String,
    /// Auth enforced by the data plane.
    pub auth_enabled: bool,
    /// `forward`, `redirect` or `passthrough`.
    pub auth_mode: crate::model::AuthMode,
    /// Authorization server host.
    pub auth_proxy: Option<String>,
    /// Users allowed.
    pub auth_required_users: Option<Vec<String>>,
    /// Protected resource path.
    pub resource_endpoint: Option<String>,
    /// The proxy's own GitHub OAuth app.
    pub github_client_id: Option<String>,
}

/// Every registered client.
pub async fn list_clients(m: &Manager, caller: &Caller) -> ManageResult<Vec<ClientView>> {
    require_admin(caller)?;
    Ok(m.oauth.list_clients().await?.into_iter().map(ClientView::from).collect())
}

/// One client; 404 when not registered.
pub async fn get_client(m: &Manager, caller: &Caller, key: ClientKey) -> ManageResult<ClientView> {
    require_admin(caller)?;
    m.oauth
        .registered_client(&key.client_id)
        .await?
        .map(ClientView::from)
        .ok_or_else(|| ManageError::NotFound(format!("client {}", key.client_id)))
}

/// Deletes a client.
pub async fn delete_client(m: &Manager, caller: &Caller, key: ClientKey) -> ManageResult<OAuthRemoved> {
    require_admin(caller)?;
    if !m.oauth.delete_client(&key.client_id).await? {
        return Err(ManageError::NotFound(format!("client {}", key.client_id)));
    }
    Ok(OAuthRemoved {
        client_id: Some(key.client_id),
        ..OAuthRemoved::new("deleted")
    })
}

/// Sets a client's flags (`resource_server`, `pre_approved`).
pub async fn set_client_flags(m: &Manager, caller: &Caller, req: ClientFlagsUpdate) -> ManageResult<ClientView> {
    require_admin(caller)?;
    m.oauth
        .set_client_flags(&req.client_id, req.flags.resource_server, req.flags.pre_approved)
        .await?
        .map(ClientView::from)
        .ok_or_else(|| ManageError::NotFound(format!("client {}", req.client_id)))
}

/// Every consent given.
pub async fn list_consents(m: &Manager, caller: &Caller) -> ManageResult<Vec<ConsentView>> {
    require_admin(caller)?;
    Ok(m.oauth
        .list_consents()
        .await?
        .iter()
        .filter_map(|v| serde_json::from_value(crate::oauth::consent::consent_view(v)).ok())
        .collect())
}

/// Forgets every consent given to a client.
pub async fn forget_client_consents(m: &Manager, caller: &Caller, key: ClientKey) -> ManageResult<OAuthRemoved> {
    require_admin(caller)?;
    let n = m.oauth.forget_consents(&key.client_id, None).await?;
    Ok(OAuthRemoved {
        client_id: Some(key.client_id),
        consents: Some(n),
        ..OAuthRemoved::new("revoked")
    })
}

/// Forgets one user's consent to a client; 404 when there is none.
pub async fn forget_consent(m: &Manager, caller: &Caller, key: ConsentKey) -> ManageResult<OAuthRemoved> {
    require_admin(caller)?;
    if m.oauth.forget_consents(&key.client_id, Some(&key.user_id)).await? == 0 {
        return Err(ManageError::NotFound(format!(
            "consent of {} for client {}",
            key.user_id, key.client_id
        )));
    }
    Ok(OAuthRemoved {
        client_id: Some(key.client_id),
        user_id: Some(key.user_id),
        ..OAuthRemoved::new("revoked")
    })
}

/// Every live access token record (unreadable ones skipped).
async fn records(m: &Manager) -> ManageResult<Vec<AccessRecord>> {
    Ok(m.oauth
        .list_access_tokens()
        .await?
        .into_iter()
        .filter_map(|v| serde_json::from_value::<AccessRecord>(v).ok())
        .collect())
}

/// The live access tokens of one client.
pub async fn client_tokens(m: &Manager, caller: &Caller, key: ClientKey) -> ManageResult<Vec<AccessRecord>> {
    require_admin(caller)?;
    Ok(records(m).await?.into_iter().filter(|t| t.client_id == key.client_id).collect())
}

/// Every live access token, counted per client.
pub async fn list_tokens(m: &Manager, caller: &Caller) -> ManageResult<TokenList> {
    require_admin(caller)?;
    let tokens = records(m).await?;
    let mut by_client = BTreeMap::new();
    for t in &tokens {
        *by_client.entry(t.client_id.clone()).or_insert(0) += 1;
    }
    Ok(TokenList {
        active_access_tokens: tokens.len(),
        by_client,
        tokens,
    })
}

/// One live access token; 404 when unknown or expired.
pub async fn get_token(m: &Manager, caller: &Caller, key: JtiKey) -> ManageResult<AccessRecord> {
    require_admin(caller)?;
    m.oauth
        .access_record(&key.jti)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("token {}", key.jti)))
}

/// Revokes one live access token.
pub async fn revoke_token(m: &Manager, caller: &Caller, key: JtiKey) -> ManageResult<OAuthRemoved> {
    let t = get_token(m, caller, key).await?;
    m.oauth.revoke_jti(&t.jti, t.exp).await?;
    Ok(OAuthRemoved {
        jti: Some(t.jti),
        ..OAuthRemoved::new("revoked")
    })
}

/// The sessions (token families) with live access tokens.
pub async fn list_sessions(m: &Manager, caller: &Caller) -> ManageResult<Vec<SessionView>> {
    require_admin(caller)?;
    let mut families: BTreeMap<String, SessionView> = BTreeMap::new();
    for t in records(m).await? {
        families
            .entry(t.family.clone())
            .or_insert_with(|| SessionView {
                session_id: t.family.clone(),
                client_id: t.client_id.clone(),
                username: t.username.clone(),
                sub: t.sub.clone(),
                tokens: 0,
            })
            .tokens += 1;
    }
    Ok(families.into_values().collect())
}

/// Revokes a session: every token of the family.
pub async fn revoke_session(m: &Manager, caller: &Caller, key: SessionKey) -> ManageResult<OAuthRemoved> {
    require_admin(caller)?;
    m.oauth.revoke_family(&key.session_id).await?;
    Ok(OAuthRemoved {
        session_id: Some(key.session_id),
        ..OAuthRemoved::new("revoked")
    })
}

/// Rotates the signing key.
pub async fn rotate_keys(m: &Manager, caller: &Caller) -> ManageResult<Rotated> {
    require_admin(caller)?;
    let ring = m.oauth.rotate_keys().await?;
    Ok(Rotated {
        status: "rotated",
        current_kid: ring.current.kid.clone(),
        jwks: ring.jwks(),
    })
}

/// Counts of live tokens and registered clients.
pub async fn counts(m: &Manager, caller: &Caller) -> ManageResult<OAuthCounts> {
    require_admin(caller)?;
    Ok(OAuthCounts {
        active_access_tokens: m.oauth.list_access_tokens().await?.len(),
        registered_clients: m.oauth.list_clients().await?.len(),
    })
}

/// The issuer, the login provider and the signing key.
pub async fn health(m: &Manager, caller: &Caller) -> ManageResult<OAuthHealth> {
    require_admin(caller)?;
    let kid = m.oauth.keys().await?.current.kid;
    Ok(OAuthHealth {
        status: "healthy",
        issuer: m.oauth.issuer().to_string(),
        login_provider: format!("{:?}", m.config.oauth.login_provider).to_ascii_lowercase(),
        signing_kid: kid,
    })
}

/// Longest lifetime (either sign) of a minted token: ten years.
const MAX_MINT_TTL_SECS: i64 = 10 * 365 * 24 * 3600;

/// Mints an access token through the real signing code.
pub async fn mint(m: &Manager, caller: &Caller, req: MintRequest) -> ManageResult<Minted> {
    require_admin(caller)?;
    let user = User {
        id: req.sub.unwrap_or_else(|| format!("test:{}", req.username)),
        username: req.username,
        email: req.email,
        groups: req.groups,
    };
    let scope: Vec<String> = req.scope.split_whitespace().map(String::from).collect();
    let ttl = req
        .expires_in
        .unwrap_or_else(|| i64::try_from(m.config.oauth.access_token_lifetime.as_secs()).unwrap_or(1800));
    // Time arithmetic on the claims must not overflow (found by the API fuzzer:
    // a huge `expires_in` dropped the connection); negative is allowed, for
    // tests of expired tokens.
    if !(-MAX_MINT_TTL_SECS..=MAX_MINT_TTL_SECS).contains(&ttl) {
        return Err(ValidationError::new("expires_in", format!("at most {MAX_MINT_TTL_SECS} seconds either way")).into());
    }
    let family = crate::oauth::random_token(16);
    let client = req.client_id.unwrap_or_else(|| "portcullis-admin".into());
    // The admin names the audience; none named: the admin API's own resource.
    let mut aud = req.aud;
    if aud.is_empty() {
        aud.push(m.oauth.admin_resource());
    }
    let (jwt, claims) = m.oauth.sign_access_ttl(&client, &user, &scope, &aud, &family, ttl).await?;
    Ok(Minted {
        access_token: jwt,
        token_type: "Bearer",
        jti: claims.jti,
        exp: claims.exp,
        aud: claims.aud,
    })
}

/// The auth settings of every proxy.
pub async fn proxies(m: &Manager, caller: &Caller) -> ManageResult<Vec<ProxyAuthView>> {
    require_admin(caller)?;
    Ok(super::proxies::list(m, caller)
        .await?
        .into_iter()
        .map(|p| ProxyAuthView {
            hostname: p.hostname,
            auth_enabled: p.auth_enabled,
            auth_mode: p.auth_mode,
            auth_proxy: p.auth_proxy,
            auth_required_users: p.auth_required_users,
            resource_endpoint: p.resource_endpoint,
            github_client_id: p.github_client_id,
        })
        .collect())
}

/// The live tokens whose audience is a proxy's protected resource.
pub async fn proxy_sessions(m: &Manager, caller: &Caller, key: ProxyHost) -> ManageResult<Vec<AccessRecord>> {
    require_admin(caller)?;
    let p = m.stored_proxy(caller, &key.hostname).await?;
    let resource = format!("https://{}{}", p.hostname, p.resource_endpoint.unwrap_or_default());
    let resource = resource.trim_end_matches('/');
    Ok(records(m)
        .await?
        .into_iter()
        .filter(|t| t.aud.iter().any(|a| a.trim_end_matches('/') == resource))
        .collect())
}
