//! `/api/v1/oauth/...`: the OAuth admin API (admin tokens only): clients,
//! tokens, sessions, key rotation, metrics and health.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::error::ApiError;
use super::openapi::{Api, Op};
use super::{reply, AppState, Authed, JsonResult};
use crate::manage::{require_admin, ManageError};
use crate::oauth::OAuthError;

fn oauth_err(e: OAuthError) -> ApiError {
    ApiError::new(e.status, e.code, e.description)
}

/// What the admin API shows of a client (never secret hashes).
fn client_view(c: crate::oauth::model::Client) -> Value {
    json!({"client_id": c.client_id, "client_name": c.client_name, "redirect_uris": c.redirect_uris,
        "grant_types": c.grant_types, "token_endpoint_auth_method": c.token_endpoint_auth_method, "scope": c.scope,
        "client_id_issued_at": c.client_id_issued_at, "client_secret_expires_at": c.client_secret_expires_at, "source": c.source,
        "resource_server": c.resource_server, "pre_approved": c.pre_approved})
}

/// One live access token's record, or 404.
async fn access_record(s: &AppState, jti: &str) -> Result<crate::oauth::model::AccessRecord, ApiError> {
    s.manager
        .oauth
        .access_record(jti)
        .await
        .map_err(oauth_err)?
        .ok_or_else(|| ManageError::NotFound(format!("token {jti}")).into())
}

async fn clients(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    require_admin(&c)?;
    let list: Vec<Value> = s
        .manager
        .oauth
        .list_clients()
        .await
        .map_err(oauth_err)?
        .into_iter()
        .map(client_view)
        .collect();
    reply(StatusCode::OK, list)
}

async fn client(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(id): Path<String>) -> JsonResult {
    require_admin(&c)?;
    let found = s
        .manager
        .oauth
        .registered_client(&id)
        .await
        .map_err(oauth_err)?
        .ok_or_else(|| ManageError::NotFound(format!("client {id}")))?;
    reply(StatusCode::OK, client_view(found))
}

async fn delete_client(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(id): Path<String>) -> JsonResult {
    require_admin(&c)?;
    if !s.manager.oauth.delete_client(&id).await.map_err(oauth_err)? {
        return Err(ManageError::NotFound(format!("client {id}")).into());
    }
    reply(StatusCode::OK, json!({"status": "deleted", "client_id": id}))
}

/// `PATCH /api/v1/oauth/clients/{id}`: `resource_server` (may introspect
/// others' tokens) and `pre_approved` (no consent page), both booleans.
async fn patch_client(
    State(s): State<Arc<AppState>>,
    Authed(c): Authed,
    Path(id): Path<String>,
    super::ApiJson(b): super::ApiJson,
) -> JsonResult {
    require_admin(&c)?;
    let flag = |k: &str| -> Result<Option<bool>, ApiError> {
        match b.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(v)) => Ok(Some(*v)),
            Some(_) => Err(ManageError::Invalid(crate::model::ValidationError::new(k, "must be true or false")).into()),
        }
    };
    let (rs, pa) = (flag("resource_server")?, flag("pre_approved")?);
    if let Some(k) = b
        .as_object()
        .and_then(|o| o.keys().find(|k| !matches!(k.as_str(), "resource_server" | "pre_approved")))
    {
        return Err(ManageError::Invalid(crate::model::ValidationError::new(
            k,
            "unknown field (resource_server, pre_approved)",
        ))
        .into());
    }
    let found = s
        .manager
        .oauth
        .set_client_flags(&id, rs, pa)
        .await
        .map_err(oauth_err)?
        .ok_or_else(|| ManageError::NotFound(format!("client {id}")))?;
    reply(StatusCode::OK, client_view(found))
}

async fn consents(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    require_admin(&c)?;
    let list = s.manager.oauth.list_consents().await.map_err(oauth_err)?;
    reply(
        StatusCode::OK,
        list.iter().map(crate::oauth::consent::consent_view).collect::<Vec<_>>(),
    )
}

async fn forget_client_consents(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(id): Path<String>) -> JsonResult {
    require_admin(&c)?;
    let n = s.manager.oauth.forget_consents(&id, None).await.map_err(oauth_err)?;
    reply(StatusCode::OK, json!({"status": "revoked", "client_id": id, "consents": n}))
}

async fn forget_consent(State(s): State<Arc<AppState>>, Authed(c): Authed, Path((id, user)): Path<(String, String)>) -> JsonResult {
    require_admin(&c)?;
    if s.manager.oauth.forget_consents(&id, Some(&user)).await.map_err(oauth_err)? == 0 {
        return Err(ManageError::NotFound(format!("consent of {user} for client {id}")).into());
    }
    reply(StatusCode::OK, json!({"status": "revoked", "client_id": id, "user_id": user}))
}

async fn client_tokens(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(id): Path<String>) -> JsonResult {
    require_admin(&c)?;
    let all = s.manager.oauth.list_access_tokens().await.map_err(oauth_err)?;
    reply(
        StatusCode::OK,
        all.into_iter().filter(|t| t["client_id"] == id.as_str()).collect::<Vec<_>>(),
    )
}

async fn tokens(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    require_admin(&c)?;
    let all = s.manager.oauth.list_access_tokens().await.map_err(oauth_err)?;
    let mut by_client = serde_json::Map::new();
    for t in &all {
        let k = t["client_id"].as_str().unwrap_or("").to_string();
        let n = by_client.get(&k).and_then(Value::as_u64).unwrap_or(0) + 1;
        by_client.insert(k, json!(n));
    }
    reply(
        StatusCode::OK,
        json!({"active_access_tokens": all.len(), "by_client": by_client, "tokens": all}),
    )
}

async fn token(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(jti): Path<String>) -> JsonResult {
    require_admin(&c)?;
    let t = access_record(&s, &jti).await?;
    reply(StatusCode::OK, t)
}

async fn revoke_token(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(jti): Path<String>) -> JsonResult {
    require_admin(&c)?;
    let t = access_record(&s, &jti).await?;
    s.manager.oauth.revoke_jti(&jti, t.exp).await.map_err(oauth_err)?;
    reply(StatusCode::OK, json!({"status": "revoked", "jti": jti}))
}

async fn sessions(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    require_admin(&c)?;
    let all = s.manager.oauth.list_access_tokens().await.map_err(oauth_err)?;
    let mut families: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    for t in all {
        let f = t["family"].as_str().unwrap_or("").to_string();
        families.entry(f.clone()).or_insert_with(
            || json!({"session_id": f, "client_id": t["client_id"], "username": t["username"], "sub": t["sub"], "tokens": 0}),
        );
        if let Some(e) = families.get_mut(&f) {
            e["tokens"] = json!(e["tokens"].as_u64().unwrap_or(0) + 1);
        }
    }
    reply(StatusCode::OK, families.into_values().collect::<Vec<_>>())
}

async fn delete_session(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(id): Path<String>) -> JsonResult {
    require_admin(&c)?;
    s.manager.oauth.revoke_family(&id).await.map_err(oauth_err)?;
    reply(StatusCode::OK, json!({"status": "revoked", "session_id": id}))
}

async fn rotate(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    require_admin(&c)?;
    let ring = s.manager.oauth.rotate_keys().await.map_err(oauth_err)?;
    reply(
        StatusCode::OK,
        json!({"status": "rotated", "current_kid": ring.current.kid, "jwks": ring.jwks()}),
    )
}

async fn metrics(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    require_admin(&c)?;
    let o = &s.manager.oauth;
    let tokens = o.list_access_tokens().await.map_err(oauth_err)?.len();
    let clients = o.list_clients().await.map_err(oauth_err)?.len();
    reply(
        StatusCode::OK,
        json!({"active_access_tokens": tokens, "registered_clients": clients}),
    )
}

async fn health(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    require_admin(&c)?;
    let o = &s.manager.oauth;
    let keys = o.keys().await.map(|r| r.current.kid).map_err(oauth_err)?;
    let provider = format!("{:?}", s.manager.config.oauth.login_provider).to_ascii_lowercase();
    reply(
        StatusCode::OK,
        json!({"status": "healthy", "issuer": o.issuer(), "login_provider": provider, "signing_kid": keys}),
    )
}

/// Mints an access token through the real signing code (admin only), for
/// integration tests and for service accounts.
async fn test_token(State(s): State<Arc<AppState>>, Authed(c): Authed, super::ApiJson(b): super::ApiJson) -> JsonResult {
    require_admin(&c)?;
    let str_list = |k: &str| -> Vec<String> {
        b[k].as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let username = b["username"]
        .as_str()
        .ok_or_else(|| ManageError::Invalid(crate::model::ValidationError::new("username", "required")))?
        .to_string();
    let user = crate::oauth::model::User {
        id: b["sub"].as_str().map_or_else(|| format!("test:{username}"), String::from),
        username,
        email: b["email"].as_str().map(String::from),
        groups: str_list("groups"),
    };
    let scope: Vec<String> = b["scope"].as_str().unwrap_or("").split_whitespace().map(String::from).collect();
    let ttl = b["expires_in"]
        .as_i64()
        .unwrap_or_else(|| i64::try_from(s.manager.config.oauth.access_token_lifetime.as_secs()).unwrap_or(1800));
    let family = crate::oauth::random_token(16);
    let client = b["client_id"].as_str().unwrap_or("portcullis-admin");
    // The admin names the audience; none named: the admin API's own resource.
    let mut aud = str_list("aud");
    if aud.is_empty() {
        aud.push(s.manager.oauth.admin_resource());
    }
    let (jwt, claims) = s
        .manager
        .oauth
        .sign_access_ttl(client, &user, &scope, &aud, &family, ttl)
        .await
        .map_err(oauth_err)?;
    reply(
        StatusCode::CREATED,
        json!({"access_token": jwt, "token_type": "Bearer", "jti": claims.jti, "exp": claims.exp, "aud": claims.aud}),
    )
}

async fn proxies(State(s): State<Arc<AppState>>, Authed(c): Authed) -> JsonResult {
    require_admin(&c)?;
    let list: Vec<Value> = crate::manage::proxies::list(&s.manager, &c)
        .await?
        .into_iter()
        .map(|p| {
            json!({"hostname": p.hostname, "auth_enabled": p.auth_enabled, "auth_mode": p.auth_mode, "auth_proxy": p.auth_proxy,
            "auth_required_users": p.auth_required_users, "resource_endpoint": p.resource_endpoint, "github_client_id": p.github_client_id})
        })
        .collect();
    reply(StatusCode::OK, list)
}

async fn proxy_sessions(State(s): State<Arc<AppState>>, Authed(c): Authed, Path(host): Path<String>) -> JsonResult {
    require_admin(&c)?;
    let p = crate::manage::proxies::get(&s.manager, &c, crate::model::ProxyKey { hostname: host }).await?;
    let ep = p.resource_endpoint.unwrap_or_default();
    let resource = format!("https://{}{}", p.hostname, ep);
    let all = s.manager.oauth.list_access_tokens().await.map_err(oauth_err)?;
    let mine: Vec<Value> = all
        .into_iter()
        .filter(|t| {
            t["aud"].as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x.as_str()
                        .is_some_and(|x| x.trim_end_matches('/') == resource.trim_end_matches('/'))
                })
            })
        })
        .collect();
    reply(StatusCode::OK, mine)
}

/// Adds the OAuth admin endpoints.
pub fn routes(api: Api) -> Api {
    api.at("/api/v1/oauth/clients/")
        .get(clients, Op::new("List the registered OAuth clients").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/clients/{client_id}")
        .get(client, Op::new("Show an OAuth client").ok_json(StatusCode::OK))
        .delete(delete_client, Op::new("Delete an OAuth client").ok_json(StatusCode::OK))
        .patch(patch_client, Op::new("Set an OAuth client's flags").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/clients/{client_id}/consents")
        .delete(
            forget_client_consents,
            Op::new("Forget every consent given to a client").ok_json(StatusCode::OK),
        )
        .done()
        .at("/api/v1/oauth/clients/{client_id}/consents/{user_id}")
        .delete(
            forget_consent,
            Op::new("Forget one user's consent to a client").ok_json(StatusCode::OK),
        )
        .done()
        .at("/api/v1/oauth/consents")
        .get(consents, Op::new("List the consents given").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/clients/{client_id}/tokens")
        .get(client_tokens, Op::new("List a client's live access tokens").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/tokens")
        .get(tokens, Op::new("List the live access tokens").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/tokens/{jti}")
        .get(token, Op::new("Show a live access token").ok_json(StatusCode::OK))
        .delete(revoke_token, Op::new("Revoke an access token").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/sessions")
        .get(sessions, Op::new("List the sessions (token families)").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/sessions/{session_id}")
        .delete(delete_session, Op::new("Revoke a session").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/keys/rotate")
        .post(rotate, Op::new("Rotate the signing key").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/metrics")
        .get(metrics, Op::new("Counts of tokens and clients").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/health")
        .get(health, Op::new("The authorization server's state").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/test-token")
        .post(test_token, Op::new("Mint an access token").ok_json(StatusCode::CREATED))
        .done()
        .at("/api/v1/oauth/proxies")
        .get(proxies, Op::new("The proxies' auth settings").ok_json(StatusCode::OK))
        .done()
        .at("/api/v1/oauth/proxies/{hostname}/sessions")
        .get(
            proxy_sessions,
            Op::new("Live tokens for a proxy's resource").ok_json(StatusCode::OK),
        )
        .done()
}
