//! `portcullis login|logout|whoami`, and the token every other verb sends:
//! `--token`/`ADMIN_TOKEN` when given, else the stored login, refreshed
//! first when it expires within a minute.

use std::time::Instant;

use clap::Args;
use serde_json::{json, Value};
use url::Url;

use super::credentials::{self, Credentials, TokenResponse, CLI_CLIENT_ID};
use super::device::{self, DeviceAuthorization, PollAnswer, Poller, Step};
use super::error::{CliError, CliResult};
use super::http::{client, endpoint, parse_base, send_failure};
use super::output::{emit, json as print_json, text};
use super::ClientOpts;

/// Scopes `portcullis login` asks for by default.
pub const DEFAULT_SCOPE: &str = "admin user mcp";

/// Options of `portcullis login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Authorization server base URL (default: OAUTH_ISSUER, else --api-url).
    #[arg(long, env = "OAUTH_ISSUER")]
    pub issuer: Option<String>,
    /// Scopes to request, space-separated.
    #[arg(long, default_value = DEFAULT_SCOPE)]
    pub scope: String,
    /// Resource (RFC 8707) the token is for (repeatable; default: the issuer itself, i.e. the admin API).
    #[arg(long = "resource", value_name = "URI")]
    pub resources: Vec<String>,
}

/// The issuer to log in at: `--issuer`/`OAUTH_ISSUER`, else the admin API URL.
pub fn issuer_of(explicit: Option<&str>, api_url: &str) -> String {
    explicit
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(api_url.trim())
        .trim_end_matches('/')
        .to_string()
}

async fn post_form(base: &Url, path: &[&str], form: &[(&str, &str)]) -> Result<(u16, String), String> {
    let http = client().map_err(|e| e.to_string())?;
    let resp = http
        .post(endpoint(base, path))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| send_failure(&e, "set --issuer or OAUTH_ISSUER to where it listens"))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| super::http::root_cause(&e))?;
    Ok((status, body))
}

async fn start_device(issuer: &Url, args: &LoginArgs) -> CliResult<DeviceAuthorization> {
    let mut form = vec![("client_id", CLI_CLIENT_ID), ("scope", args.scope.as_str())];
    form.extend(args.resources.iter().map(|r| ("resource", r.as_str())));
    // The server gives a token without resource an audience nothing accepts:
    // by default name the admin API's resource (the issuer) explicitly.
    let admin_api = issuer.as_str().trim_end_matches('/').to_string();
    if args.resources.is_empty() {
        form.push(("resource", admin_api.as_str()));
    }
    let (status, body) = post_form(issuer, &["device", "code"], &form)
        .await
        .map_err(|reason| CliError::IssuerUnreachable {
            url: issuer.as_str().trim_end_matches('/').to_string(),
            reason,
        })?;
    if !(200..300).contains(&status) {
        let reason = match device::oauth_error(&body) {
            Some((code, desc)) => device::describe(&code, desc.as_deref()),
            None => device::raw_body(status, &body),
        };
        return Err(CliError::Login(format!("the device authorization request was refused ({reason})")));
    }
    serde_json::from_str(&body).map_err(|e| CliError::Login(format!("unexpected device authorization response ({e})")))
}

fn instructions(a: &DeviceAuthorization) -> String {
    let mut s = format!(
        "To log in, open\n\n    {}\n\nand enter the code\n\n    {}\n\n",
        a.verification_uri, a.user_code
    );
    if let Some(c) = &a.verification_uri_complete {
        s.push_str(&format!("(or open {c} , which has the code filled in)\n\n"));
    }
    s.push_str(&format!(
        "Waiting for approval (the code expires in {} minutes) ...\n",
        a.expires_in.div_ceil(60)
    ));
    s
}

/// Runs the device flow and stores the tokens.
pub async fn login(opts: &ClientOpts, args: LoginArgs) -> CliResult {
    let issuer_text = issuer_of(args.issuer.as_deref(), &opts.api_url);
    let issuer = parse_base(&issuer_text)?;
    let path = credentials::default_path()?;
    let auth = start_device(&issuer, &args).await?;
    eprint!("{}", instructions(&auth));
    let started = Instant::now();
    let mut poller = Poller::new(&auth);
    let mut wait = poller.interval();
    let tokens = loop {
        tokio::time::sleep(wait).await;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", auth.device_code.as_str()),
            ("client_id", CLI_CLIENT_ID),
        ];
        let answer = match post_form(&issuer, &["token"], &form).await {
            Ok((status, body)) => device::classify(status, &body),
            Err(reason) => PollAnswer::Transient(reason),
        };
        match poller.step(answer, started.elapsed()) {
            Step::Wait(d) => wait = d,
            Step::Done(t) => break t,
            Step::Fail(reason) => return Err(CliError::Login(reason)),
        }
    };
    let creds = Credentials::from_response(&issuer_text, CLI_CLIENT_ID, tokens, credentials::now(), None);
    credentials::save(&path, &creds)?;
    let claims = credentials::jwt_claims(&creds.access_token).unwrap_or(Value::Null);
    let who = ["preferred_username", "sub"]
        .iter()
        .find_map(|k| claims.get(*k).and_then(Value::as_str))
        .unwrap_or("?")
        .to_string();
    if opts.json {
        print_json(&json!({
            "status": "logged_in",
            "user": who,
            "issuer": creds.issuer,
            "scope": creds.scope,
            "expires_at": credentials::rfc3339(creds.expires_at),
            "credentials": path.display().to_string(),
        }));
    } else {
        emit(&format!(
            "logged in as {who} (scopes: {}); credentials saved to {}\n",
            creds.scope.as_deref().filter(|s| !s.is_empty()).unwrap_or("-"),
            path.display()
        ));
    }
    Ok(())
}

/// Deletes the stored login.
pub fn logout(json_out: bool) -> CliResult {
    let path = credentials::default_path()?;
    let removed = credentials::remove(&path)?;
    if json_out {
        print_json(&json!({"status": if removed { "logged_out" } else { "not_logged_in" }, "credentials": path.display().to_string()}));
    } else if removed {
        emit(&format!("logged out (deleted {})\n", path.display()));
    } else {
        emit(&format!("not logged in (no {})\n", path.display()));
    }
    Ok(())
}

/// Shows the stored access token's claims (decoded, not verified).
pub fn whoami(opts: &ClientOpts) -> CliResult {
    let path = credentials::default_path()?;
    let creds = credentials::load(&path)?.ok_or_else(|| CliError::Credentials {
        path: path.display().to_string(),
        reason: "not logged in; run `portcullis login`".into(),
    })?;
    let claims = credentials::jwt_claims(&creds.access_token).map_err(|reason| CliError::Credentials {
        path: path.display().to_string(),
        reason,
    })?;
    let now = credentials::now();
    let overridden = opts.token.as_deref().is_some_and(|t| !t.trim().is_empty());
    if opts.json {
        print_json(&json!({
            "credentials": path.display().to_string(),
            "issuer": creds.issuer,
            "expires_at": credentials::rfc3339(creds.expires_at),
            "expired": creds.is_expired(now),
            "refreshable": creds.refresh_token.is_some(),
            "overridden_by_token": overridden,
            "claims": claims,
        }));
        return Ok(());
    }
    emit(&whoami_text(&claims, &creds, &path.display().to_string(), now, overridden));
    Ok(())
}

/// The `whoami` report for people.
pub fn whoami_text(claims: &Value, creds: &Credentials, path: &str, now: i64, overridden: bool) -> String {
    let time = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_i64)
            .map(|t| format!("{} ({})", credentials::rfc3339(t), credentials::relative(t, now)))
    };
    let mut rows: Vec<(String, String)> = Vec::new();
    for k in ["preferred_username", "email", "sub", "scope", "groups", "aud", "iss", "azp", "jti"] {
        if let Some(v) = claims.get(k) {
            rows.push((k.to_string(), text(v)));
        }
    }
    for k in ["iat", "exp"] {
        if let Some(t) = time(k) {
            rows.push((k.to_string(), t));
        }
    }
    if let Some(map) = claims.as_object() {
        for (k, v) in map {
            if !rows.iter().any(|(r, _)| r == k) && !["nbf", "client_id", "typ"].contains(&k.as_str()) {
                rows.push((k.clone(), text(v)));
            }
        }
    }
    let status = if creds.is_expired(now) {
        if creds.refresh_token.is_some() {
            "expired (refreshed on the next command)"
        } else {
            "expired; run `portcullis login`"
        }
    } else {
        "valid"
    };
    rows.push(("token".into(), status.into()));
    rows.push(("issuer".into(), creds.issuer.clone()));
    rows.push(("credentials".into(), path.to_string()));
    let width = rows.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out: String = rows.iter().map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:"))).collect();
    if overridden {
        out.push_str("note: --token/ADMIN_TOKEN is set, so commands send that token instead of this login\n");
    }
    out
}

/// Exchanges the refresh token for new tokens and stores them.
async fn refresh(path: &std::path::Path, creds: &Credentials) -> CliResult<Credentials> {
    let refresh_token = creds
        .refresh_token
        .as_deref()
        .ok_or_else(|| CliError::LoginExpired("your login has expired and has no refresh token".into()))?;
    let issuer = parse_base(&creds.issuer)?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", creds.client_id.as_str()),
    ];
    let (status, body) = post_form(&issuer, &["token"], &form)
        .await
        .map_err(|reason| CliError::IssuerUnreachable {
            url: creds.issuer.clone(),
            reason: format!("refreshing the login: {reason}"),
        })?;
    if !(200..300).contains(&status) {
        return Err(match device::oauth_error(&body) {
            Some((code, desc)) if status == 400 || status == 401 => CliError::LoginExpired(format!(
                "the login could not be refreshed ({})",
                device::describe(&code, desc.as_deref())
            )),
            Some((code, desc)) => CliError::Login(format!("refreshing the login: {}", device::describe(&code, desc.as_deref()))),
            None => CliError::Login(format!("refreshing the login: {}", device::raw_body(status, &body))),
        });
    }
    let tokens: TokenResponse = serde_json::from_str(&body).map_err(|e| CliError::Login(format!("unexpected refresh response ({e})")))?;
    let next = Credentials::from_response(
        &creds.issuer,
        &creds.client_id,
        tokens,
        credentials::now(),
        creds.refresh_token.clone(),
    );
    credentials::save(path, &next)?;
    Ok(next)
}

/// The bearer token for admin API calls: `--token`/`ADMIN_TOKEN`, else the
/// stored login (refreshed when it expires within a minute).
pub async fn resolve_token(opts: &ClientOpts) -> CliResult<String> {
    if let Some(t) = opts.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(t.to_string());
    }
    let path = credentials::default_path().map_err(|_| CliError::MissingToken)?;
    let creds = credentials::load(&path)?.ok_or(CliError::MissingToken)?;
    let now = credentials::now();
    if !creds.needs_refresh(now) {
        return Ok(creds.access_token);
    }
    match refresh(&path, &creds).await {
        Ok(next) => Ok(next.access_token),
        // The issuer is down but the token still works for a few seconds: use it.
        Err(e @ (CliError::IssuerUnreachable { .. } | CliError::Login(_))) if !creds.is_expired(now) => {
            eprintln!("warning: {e}; using the current access token until it expires");
            Ok(creds.access_token)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_defaults_to_the_api_url() {
        assert_eq!(
            issuer_of(Some("https://auth.example.com/"), "http://127.0.0.1:9000"),
            "https://auth.example.com"
        );
        assert_eq!(issuer_of(Some("  "), "http://127.0.0.1:9000/"), "http://127.0.0.1:9000");
        assert_eq!(issuer_of(None, "http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    }

    #[test]
    fn whoami_shows_claims_expiry_and_overrides() {
        let claims = serde_json::json!({"sub": "github-1", "preferred_username": "alice", "scope": "admin user", "aud": ["http://127.0.0.1:9000"], "exp": 1_060, "iat": 1_000, "custom": 7});
        let creds = Credentials {
            issuer: "http://127.0.0.1:9000".into(),
            client_id: CLI_CLIENT_ID.into(),
            access_token: String::new(),
            refresh_token: Some("r".into()),
            expires_at: 1_060,
            scope: None,
        };
        let out = whoami_text(&claims, &creds, "/tmp/c.json", 1_000, false);
        assert!(out.starts_with("preferred_username: alice\n"), "{out}");
        assert!(out.contains("scope:              admin user\n"), "{out}");
        assert!(out.contains("exp:                1970-01-01T00:17:40Z (in 1m 0s)\n"), "{out}");
        assert!(out.contains("custom:             7\n"), "{out}");
        assert!(out.contains("token:              valid\n"), "{out}");
        assert!(!out.contains("note:"));
        let out = whoami_text(&claims, &creds, "/tmp/c.json", 2_000, true);
        assert!(out.contains("expired (refreshed on the next command)"), "{out}");
        assert!(out.contains("note: --token/ADMIN_TOKEN is set"), "{out}");
    }
}
