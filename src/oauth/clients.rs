//! Clients: dynamic registration (RFC 7591) with registration management
//! (RFC 7592), Client ID Metadata Documents (an https `client_id`, fetched
//! with an SSRF guard), the built-in CLI client, and client authentication.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::model::{now, Client};
use super::tokens::digest;
use super::{random_token, OAuth, OAuthError, OAuthResult, CLI_CLIENT_ID};
use crate::config::is_loopback_host;
use crate::secrets::constant_time_eq;
use crate::store::OAuthStore;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const GRANTS: [&str; 3] = ["authorization_code", "refresh_token", DEVICE_GRANT];
const CIMD_MAX_BYTES: usize = 64 * 1024;
/// Client metadata a client registers or updates with (RFC 7591 section
/// 2, RFC 7592). It is read as a JSON object by hand (fields kept that
/// this server does not know, each size-limited); this type is its schema.
#[derive(ToSchema)]
pub struct ClientMetadata {
    /// Where codes may be sent: https, loopback http or a private-use
    /// scheme; required for the `authorization_code` grant.
    pub redirect_uris: Option<Vec<String>>,
    /// A name shown on the consent page (at most 200 characters).
    pub client_name: Option<String>,
    /// `authorization_code` (default), `refresh_token`,
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    pub grant_types: Option<Vec<String>>,
    /// `code` only.
    pub response_types: Option<Vec<String>>,
    /// `client_secret_basic` (default), `client_secret_post` or `none`
    /// (a public client, no secret).
    pub token_endpoint_auth_method: Option<String>,
    /// The scopes the client may ask for, space separated.
    pub scope: Option<String>,
}

/// A registered client as registration answers it (RFC 7591 section 3.2.1,
/// RFC 7592 section 3): the metadata as stored, plus the secret and the
/// registration access token only in the answer that created them. Other
/// metadata the client registered is echoed too.
#[derive(ToSchema)]
pub struct ClientRegistration {
    /// The client's id.
    pub client_id: String,
    /// The client's secret (confidential clients, registration answer only).
    pub client_secret: Option<String>,
    /// When the id was issued, seconds since the epoch.
    pub client_id_issued_at: i64,
    /// When the registration expires, seconds since the epoch.
    pub client_secret_expires_at: i64,
    /// Where codes may be sent.
    pub redirect_uris: Vec<String>,
    /// The grants the client may use.
    pub grant_types: Vec<String>,
    /// `code`.
    pub response_types: Vec<String>,
    /// How the client authenticates at the token endpoint.
    pub token_endpoint_auth_method: String,
    /// Where the registration is read, updated and deleted (RFC 7592).
    pub registration_client_uri: String,
    /// The bearer token for `registration_client_uri` (registration answer only).
    pub registration_access_token: Option<String>,
    /// The client's name.
    pub client_name: Option<String>,
    /// The scopes the client may ask for.
    pub scope: Option<String>,
}

/// How long a fetched metadata document's client is cached.
const CIMD_CACHE_SECS: u64 = 300;

/// The one answer for every failure to get a metadata document (refused
/// address, connection error, HTTP status): the caller learns nothing about
/// the network behind the server. Details go to the log.
fn cimd_unavailable() -> OAuthError {
    OAuthError::invalid_client("the client metadata document could not be retrieved")
}

/// Checks a redirect URI: https, loopback http, or a private-use scheme
/// (reverse domain, RFC 8252); never a fragment.
pub fn valid_redirect_uri(u: &str) -> bool {
    let Ok(p) = url::Url::parse(u) else { return false };
    if p.fragment().is_some() {
        return false;
    }
    match p.scheme() {
        "https" => p.host_str().is_some(),
        "http" => is_loopback_host(p.host_str().unwrap_or("")),
        s => s.contains('.'),
    }
}

/// Exact match, except that a loopback redirect may use any port (RFC 8252 §7.3).
pub fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    match (url::Url::parse(registered), url::Url::parse(given)) {
        (Ok(mut a), Ok(mut b)) if a.scheme() == "http" && is_loopback_host(a.host_str().unwrap_or("")) => {
            let _ = a.set_port(None);
            let _ = b.set_port(None);
            a == b
        }
        _ => false,
    }
}

fn builtin_cli() -> Client {
    Client {
        client_id: CLI_CLIENT_ID.into(),
        client_secret_hash: None,
        registration_token_hash: None,
        client_name: Some("Portcullis CLI".into()),
        redirect_uris: vec![],
        grant_types: vec![DEVICE_GRANT.into(), "refresh_token".into()],
        response_types: vec![],
        scope: None,
        token_endpoint_auth_method: "none".into(),
        extra: Map::new(),
        client_id_issued_at: 0,
        client_secret_expires_at: 0,
        source: "builtin".into(),
        resource_server: false,
        pre_approved: true,
    }
}

fn strings(v: Option<&Value>, field: &str) -> OAuthResult<Option<Vec<String>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or_else(|| OAuthError::invalid_client_metadata(format!("{field} must be a list of strings")))
            })
            .collect::<OAuthResult<Vec<_>>>()
            .map(Some),
        Some(_) => Err(OAuthError::invalid_client_metadata(format!("{field} must be a list of strings"))),
    }
}

/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 20;
/// Longest redirect URI, and longest value of any other metadata string.
pub const MAX_METADATA_STRING: usize = 2000;
/// Longest `client_name` (it is shown on the consent page).
pub const MAX_CLIENT_NAME: usize = 200;
/// Largest whole metadata document, as JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Size limits of registration metadata: self-registration is anonymous,
/// so what one caller may make us store and show is bounded.
fn check_limits(meta: &Map<String, Value>, redirect_uris: &[String]) -> OAuthResult<()> {
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris"
        )));
    }
    if redirect_uris.iter().any(|u| u.len() > MAX_METADATA_STRING) {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "a redirect URI is longer than {MAX_METADATA_STRING} characters"
        )));
    }
    match meta.get("client_name") {
        None | Some(Value::Null) => {}
        Some(Value::String(n)) if n.chars().count() <= MAX_CLIENT_NAME && !n.chars().any(char::is_control) => {}
        Some(Value::String(_)) => {
            return Err(OAuthError::invalid_client_metadata(format!(
                "client_name must be at most {MAX_CLIENT_NAME} characters, without control characters"
            )))
        }
        Some(_) => return Err(OAuthError::invalid_client_metadata("client_name must be a string")),
    }
    let too_long = |v: &Value| matches!(v, Value::String(t) if t.len() > MAX_METADATA_STRING);
    if let Some((k, _)) = meta
        .iter()
        .find(|(_, v)| too_long(v) || v.as_array().is_some_and(|a| a.iter().any(too_long)))
    {
        return Err(OAuthError::invalid_client_metadata(format!(
            "{k}: values are limited to {MAX_METADATA_STRING} characters"
        )));
    }
    if serde_json::to_vec(meta).map_or(true, |b| b.len() > MAX_METADATA_BYTES) {
        return Err(OAuthError::invalid_client_metadata(format!(
            "client metadata is limited to {} KiB",
            MAX_METADATA_BYTES / 1024
        )));
    }
    Ok(())
}

/// Validates registration metadata into a client (without id/secret).
fn client_from_metadata(meta: &Map<String, Value>, source: &str) -> OAuthResult<Client> {
    let redirect_uris = strings(meta.get("redirect_uris"), "redirect_uris")?.unwrap_or_default();
    check_limits(meta, &redirect_uris)?;
    let grant_types = strings(meta.get("grant_types"), "grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(g) = grant_types.iter().find(|g| !GRANTS.contains(&g.as_str())) {
        return Err(OAuthError::invalid_client_metadata(format!(
            "grant type {g} is not supported (no implicit or password grants)"
        )));
    }
    let response_types = strings(meta.get("response_types"), "response_types")?.unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(OAuthError::invalid_client_metadata("only the code response type is supported"));
    }
    if grant_types.iter().any(|g| g == "authorization_code") && redirect_uris.is_empty() {
        return Err(OAuthError::invalid_redirect_uri(
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    if let Some(bad) = redirect_uris.iter().find(|u| !valid_redirect_uri(u)) {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "{bad} must be https, loopback http or a private-use scheme, without fragment"
        )));
    }
    let method = meta
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .unwrap_or(if source == "cimd" { "none" } else { "client_secret_basic" });
    if !matches!(method, "none" | "client_secret_basic" | "client_secret_post") || (source == "cimd" && method != "none") {
        return Err(OAuthError::invalid_client_metadata(format!(
            "token_endpoint_auth_method {method} is not supported"
        )));
    }
    let scope = meta.get("scope").and_then(Value::as_str).map(String::from);
    if let Some(s) = &scope {
        if let Some(bad) = s.split_whitespace().find(|x| !super::SUPPORTED_SCOPES.contains(x)) {
            return Err(OAuthError::invalid_client_metadata(format!("unknown scope {bad}")));
        }
    }
    let mut extra = meta.clone();
    for k in [
        "redirect_uris",
        "grant_types",
        "response_types",
        "token_endpoint_auth_method",
        "scope",
        "client_id",
        "client_secret",
        "client_id_issued_at",
        "client_secret_expires_at",
        "registration_access_token",
        "registration_client_uri",
    ] {
        extra.remove(k);
    }
    Ok(Client {
        client_id: String::new(),
        client_secret_hash: None,
        registration_token_hash: None,
        client_name: meta.get("client_name").and_then(Value::as_str).map(String::from),
        redirect_uris,
        grant_types,
        response_types,
        scope,
        token_endpoint_auth_method: method.into(),
        extra,
        client_id_issued_at: now(),
        client_secret_expires_at: 0,
        source: source.into(),
        resource_server: false,
        pre_approved: false,
    })
}

/// True only for global unicast addresses: the CIMD fetch refuses every
/// other kind (loopback, private, shared, link-local, site-local,
/// benchmarking, documentation, multicast, reserved, `0.0.0.0/8`, and IPv6
/// forms that embed an IPv4 address: mapped, compatible, NAT64, 6to4, Teredo).
fn is_global_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let [a, b, c, _] = v.octets();
            !(a == 0
                || a == 10
                || a == 127
                || a >= 224
                || (a == 100 && (64..128).contains(&b))
                || (a == 169 && b == 254)
                || (a == 172 && (16..32).contains(&b))
                || (a == 192 && b == 168)
                || (a == 192 && b == 0 && (c == 0 || c == 2))
                || (a == 192 && b == 88 && c == 99)
                || (a == 198 && (b == 18 || b == 19))
                || (a == 198 && b == 51 && c == 100)
                || (a == 203 && b == 0 && c == 113))
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            // Only 2000::/3 is global unicast; inside it, refuse the
            // IETF protocol block (Teredo, ORCHID, ...), documentation and 6to4.
            (s[0] & 0xe000) == 0x2000 && !(s[0] == 0x2001 && s[1] < 0x0200) && !(s[0] == 0x2001 && s[1] == 0x0db8) && s[0] != 0x2002
        }
    }
}

impl OAuth {
    /// The registration response body for `c` (secrets only when just created).
    fn registration_body(&self, c: &Client, secret: Option<&str>, reg_token: Option<&str>) -> Value {
        let mut v = json!({
            "client_id": c.client_id,
            "client_id_issued_at": c.client_id_issued_at,
            "client_secret_expires_at": c.client_secret_expires_at,
            "redirect_uris": c.redirect_uris,
            "grant_types": c.grant_types,
            "response_types": c.response_types,
            "token_endpoint_auth_method": c.token_endpoint_auth_method,
            "registration_client_uri": format!("{}/register/{}", self.issuer(), c.client_id),
        });
        for (k, val) in &c.extra {
            v[k] = val.clone();
        }
        if let Some(n) = &c.client_name {
            v["client_name"] = json!(n);
        }
        if let Some(s) = &c.scope {
            v["scope"] = json!(s);
        }
        if let Some(s) = secret {
            v["client_secret"] = json!(s);
        }
        if let Some(t) = reg_token {
            v["registration_access_token"] = json!(t);
        }
        v
    }

    async fn save_client(&self, c: &Client) -> OAuthResult<()> {
        let ttl = (c.client_secret_expires_at > 0).then(|| u64::try_from(c.client_secret_expires_at - now()).unwrap_or(1).max(1));
        let ttl = ttl.or(Some(self.config.oauth.client_lifetime.as_secs()));
        self.store.put_client(&c.client_id, c, ttl).await?;
        Ok(())
    }

    /// Dynamic client registration.
    pub async fn register(&self, meta: Value, source: Option<IpAddr>) -> OAuthResult<Value> {
        let Value::Object(meta) = meta else {
            return Err(OAuthError::invalid_client_metadata("the body must be a JSON object"));
        };
        let who = source.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        let hour = now() / 3600;
        let n = self.store.count_registration(&who, hour).await?;
        if n > i64::from(self.config.oauth.registrations_per_hour) {
            return Err(OAuthError::slow_down("too many registrations from this address; try again later"));
        }
        let mut c = client_from_metadata(&meta, "dcr")?;
        c.client_id = format!("client_{}", random_token(16));
        c.client_secret_expires_at = now() + i64::try_from(self.config.oauth.client_lifetime.as_secs()).unwrap_or(0);
        let secret = (c.token_endpoint_auth_method != "none").then(|| format!("pcs_{}", random_token(32)));
        c.client_secret_hash = secret.as_deref().map(digest);
        let reg_token = format!("prg_{}", random_token(32));
        c.registration_token_hash = Some(digest(&reg_token));
        self.save_client(&c).await?;
        tracing::info!(client_id = %c.client_id, name = ?c.client_name, "client registered");
        Ok(self.registration_body(&c, secret.as_deref(), Some(&reg_token)))
    }

    /// A registered client after checking its registration access token.
    async fn managed_client(&self, client_id: &str, reg_token: Option<&str>) -> OAuthResult<Client> {
        let c = self
            .registered_client(client_id)
            .await?
            .ok_or_else(|| OAuthError::invalid_token("unknown client or registration token"))?;
        let ok = match (&c.registration_token_hash, reg_token) {
            (Some(h), Some(t)) => constant_time_eq(h, &digest(t)),
            _ => false,
        };
        if ok {
            Ok(c)
        } else {
            Err(OAuthError::invalid_token("unknown client or registration token"))
        }
    }

    /// RFC 7592 read.
    pub async fn registration_read(&self, client_id: &str, reg_token: Option<&str>) -> OAuthResult<Value> {
        let c = self.managed_client(client_id, reg_token).await?;
        Ok(self.registration_body(&c, None, None))
    }

    /// RFC 7592 update (replaces the metadata; id, secret and token stay).
    pub async fn registration_update(&self, client_id: &str, reg_token: Option<&str>, meta: Value) -> OAuthResult<Value> {
        let old = self.managed_client(client_id, reg_token).await?;
        let Value::Object(meta) = meta else {
            return Err(OAuthError::invalid_client_metadata("the body must be a JSON object"));
        };
        if meta.get("client_id").and_then(Value::as_str).is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_client_metadata("client_id cannot change"));
        }
        let mut c = client_from_metadata(&meta, "dcr")?;
        if (c.token_endpoint_auth_method == "none") != old.client_secret_hash.is_none() {
            return Err(OAuthError::invalid_client_metadata(
                "token_endpoint_auth_method cannot switch between public and confidential",
            ));
        }
        c.client_id = old.client_id.clone();
        c.client_secret_hash = old.client_secret_hash.clone();
        c.registration_token_hash = old.registration_token_hash.clone();
        c.client_id_issued_at = old.client_id_issued_at;
        c.client_secret_expires_at = old.client_secret_expires_at;
        c.resource_server = old.resource_server;
        c.pre_approved = old.pre_approved;
        self.save_client(&c).await?;
        Ok(self.registration_body(&c, None, None))
    }

    /// RFC 7592 delete.
    pub async fn registration_delete(&self, client_id: &str, reg_token: Option<&str>) -> OAuthResult<()> {
        self.managed_client(client_id, reg_token).await?;
        self.delete_client(client_id).await?;
        Ok(())
    }

    /// Looks a client up: built-in, registered, or a metadata document URL.
    pub async fn client(&self, client_id: &str) -> OAuthResult<Client> {
        if client_id == CLI_CLIENT_ID {
            return Ok(builtin_cli());
        }
        if client_id.starts_with("https://") {
            return self.metadata_document_client(client_id).await;
        }
        self.registered_client(client_id)
            .await?
            .ok_or_else(|| OAuthError::invalid_client("unknown client"))
    }

    /// Authenticates a client at the token, introspection and revocation endpoints.
    pub async fn authenticate_client(&self, client_id: &str, secret: Option<&str>) -> OAuthResult<Client> {
        // A client that cannot be found or fetched is `invalid_client`; a
        // store outage stays what it is (503), not a claim that it is unknown.
        let c = self.client(client_id).await.map_err(|e| match e.code {
            "temporarily_unavailable" | "server_error" => e,
            _ => OAuthError::invalid_client("unknown client"),
        })?;
        match (&c.client_secret_hash, secret) {
            (None, _) => Ok(c),
            (Some(h), Some(s)) if constant_time_eq(h, &digest(s)) => Ok(c),
            _ => Err(OAuthError::invalid_client("client authentication failed")),
        }
    }

    /// A registered (dynamic) client, if it exists.
    pub async fn registered_client(&self, client_id: &str) -> OAuthResult<Option<Client>> {
        Ok(self.store.get_client(client_id).await?)
    }

    /// Every registered client (admin API).
    pub async fn list_clients(&self) -> OAuthResult<Vec<Client>> {
        let mut v: Vec<Client> = self.store.list_clients().await?;
        v.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(v)
    }

    /// Deletes a registered client (admin API).
    /// Its tokens are revoked with it (every family it was issued), and the
    /// consents users gave it are forgotten.
    pub async fn delete_client(&self, client_id: &str) -> OAuthResult<bool> {
        let existed = self.store.delete_client(client_id).await?;
        let families = self.store.take_client_families(client_id).await?;
        for f in &families {
            self.revoke_family(f).await?;
        }
        self.forget_consents(client_id, None).await?;
        if !families.is_empty() {
            tracing::info!(client_id, families = families.len(), "deleted client's tokens revoked");
        }
        Ok(existed)
    }

    /// Admin: marks a client as resource server and/or pre-approved.
    pub async fn set_client_flags(
        &self,
        client_id: &str,
        resource_server: Option<bool>,
        pre_approved: Option<bool>,
    ) -> OAuthResult<Option<Client>> {
        let Some(mut c) = self.registered_client(client_id).await? else {
            return Ok(None);
        };
        if let Some(v) = resource_server {
            c.resource_server = v;
        }
        if let Some(v) = pre_approved {
            c.pre_approved = v;
        }
        self.save_client(&c).await?;
        Ok(Some(c))
    }

    /// Fetches and validates a Client ID Metadata Document: https only, no
    /// private or loopback address unless allowed by `OAUTH_CIMD_ALLOWED_HOSTS`,
    /// pinned to the checked address, 5 s, 64 KiB, no redirects, and the
    /// document's `client_id` must equal its URL. Cached for 5 minutes.
    async fn metadata_document_client(&self, url: &str) -> OAuthResult<Client> {
        let cache = digest(url);
        if let Ok(Some(c)) = self.store.cached_metadata_client::<Client>(&cache).await {
            return Ok(c);
        }
        let parsed = url::Url::parse(url).map_err(|_| OAuthError::invalid_client("client_id is not a valid URL"))?;
        if parsed.scheme() != "https" || parsed.fragment().is_some() || parsed.username() != "" || parsed.path() == "/" {
            return Err(OAuthError::invalid_client(
                "a metadata document client_id must be an https URL with a path",
            ));
        }
        let host = parsed
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let allowed = self.config.oauth.cimd_allowed_hosts.iter().any(|h| h == &format!("{host}:{port}"));
        let addrs: Vec<SocketAddr> = tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| OAuthError::invalid_client("resolving the client_id host timed out"))?
            .map_err(|_| OAuthError::invalid_client("cannot resolve the client_id host"))?
            .collect();
        let addr = *addrs
            .first()
            .ok_or_else(|| OAuthError::invalid_client("the client_id host has no address"))?;
        if !allowed && addrs.iter().any(|a| !is_global_unicast(a.ip())) {
            tracing::warn!(client_id = url, %addr, "refused to fetch a client metadata document from a non-global address");
            return Err(cimd_unavailable());
        }
        let client = self.pinned_client(Duration::from_secs(5), &host, addr)?;
        let mut resp = client.get(url).header("Accept", "application/json").send().await.map_err(|e| {
            tracing::warn!(client_id = url, error = %e, "client metadata document fetch failed");
            cimd_unavailable()
        })?;
        if !resp.status().is_success() {
            tracing::warn!(client_id = url, status = %resp.status(), "client metadata document fetch refused");
            return Err(cimd_unavailable());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|_| cimd_unavailable())? {
            body.extend_from_slice(&chunk);
            if body.len() > CIMD_MAX_BYTES {
                return Err(OAuthError::invalid_client("the client metadata document is larger than 64 KiB"));
            }
        }
        let doc: Value =
            serde_json::from_slice(&body).map_err(|_| OAuthError::invalid_client("the client metadata document is not JSON"))?;
        let Value::Object(meta) = doc else {
            return Err(OAuthError::invalid_client("the client metadata document is not a JSON object"));
        };
        if meta.get("client_id").and_then(Value::as_str) != Some(url) {
            return Err(OAuthError::invalid_client("the document's client_id must equal its URL"));
        }
        let mut c = client_from_metadata(&meta, "cimd").map_err(|e| OAuthError::invalid_client(e.description))?;
        c.client_id = url.to_string();
        self.store.cache_metadata_client(&cache, &c, CIMD_CACHE_SECS).await?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_rules() {
        assert!(valid_redirect_uri("https://app.example/cb"));
        assert!(valid_redirect_uri("http://127.0.0.1:5000/cb"));
        assert!(valid_redirect_uri("com.example.app:/cb"));
        assert!(!valid_redirect_uri("http://app.example/cb"));
        assert!(!valid_redirect_uri("https://app.example/cb#x"));
        assert!(redirect_matches("http://127.0.0.1:1000/cb", "http://127.0.0.1:2000/cb"));
        assert!(!redirect_matches("http://127.0.0.1:1000/cb", "http://127.0.0.1:2000/other"));
        assert!(!redirect_matches("https://a.example/cb", "https://a.example/cb/"));
        assert!(!redirect_matches("https://a.example:1/cb", "https://a.example:2/cb"));
    }

    #[test]
    fn only_global_unicast_addresses_are_fetched() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.1.1",
            "0.0.0.1",
            "198.18.0.1",
            "198.19.255.1",
            "100.64.0.1",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:93.184.216.34",
            "::7f00:1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
            "2001::1",
            "2001:db8::1",
        ] {
            assert!(!is_global_unicast(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(is_global_unicast(ip.parse().unwrap()), "{ip}");
        }
    }
}
