//! The stored login of `portcullis login`: where the credentials file lives,
//! reading and writing it (mode 0600, replaced atomically), when the access
//! token needs a refresh, and decoding a JWT's claims for display.
//! Everything here is pure or touches only the one file.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{CliError, CliResult};

/// Overrides the credentials file location.
pub const CREDENTIALS_VAR: &str = "PORTCULLIS_CREDENTIALS";
/// The OAuth client id of the CLI (a public client built into the server).
pub const CLI_CLIENT_ID: &str = "portcullis-cli";
/// Refresh this many seconds before the access token expires.
pub const REFRESH_MARGIN_SECS: i64 = 60;

/// What `portcullis login` stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Base URL of the authorization server the tokens came from (refreshes go there).
    pub issuer: String,
    /// The OAuth client the tokens were issued to.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// The bearer token the CLI sends.
    pub access_token: String,
    /// Rotated on every refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (unix seconds).
    pub expires_at: i64,
    /// Granted scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

fn default_client_id() -> String {
    CLI_CLIENT_ID.to_string()
}

/// A successful token endpoint answer (RFC 6749 §5.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Lifetime in seconds.
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// A new refresh token (absent: keep the old one).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Granted scopes.
    #[serde(default)]
    pub scope: Option<String>,
}

impl Credentials {
    /// Credentials from a token response received at `now`. A response without
    /// a refresh token keeps `previous_refresh` (RFC 6749 §6); a response
    /// without `expires_in` uses the JWT's `exp`, else five minutes.
    pub fn from_response(issuer: &str, client_id: &str, r: TokenResponse, now: i64, previous_refresh: Option<String>) -> Self {
        let expires_at = r
            .expires_in
            .map(|s| now.saturating_add(s))
            .or_else(|| jwt_claims(&r.access_token).ok().and_then(|c| c.get("exp").and_then(Value::as_i64)))
            .unwrap_or(now + 300);
        Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            access_token: r.access_token,
            refresh_token: r.refresh_token.or(previous_refresh),
            expires_at,
            scope: r.scope,
        }
    }

    /// True when the access token is expired or expires within the margin.
    pub fn needs_refresh(&self, now: i64) -> bool {
        now >= self.expires_at - REFRESH_MARGIN_SECS
    }

    /// True when the access token is past its expiry.
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

/// Where the credentials file lives: `$PORTCULLIS_CREDENTIALS`, else
/// `$XDG_CONFIG_HOME/portcullis/credentials.json`, else
/// `$HOME/.config/portcullis/credentials.json`. Empty values count as unset.
pub fn path_from(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if let Some(p) = var(CREDENTIALS_VAR) {
        return Some(PathBuf::from(p));
    }
    let config = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(config.join("portcullis").join("credentials.json"))
}

/// The credentials file of this process's environment.
pub fn default_path() -> CliResult<PathBuf> {
    path_from(|k| std::env::var(k).ok()).ok_or_else(|| CliError::Credentials {
        path: "(unknown)".into(),
        reason: format!("set {CREDENTIALS_VAR}, XDG_CONFIG_HOME or HOME"),
    })
}

fn file_error(path: &Path, reason: impl ToString) -> CliError {
    CliError::Credentials {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads the credentials; `None` when the file does not exist.
pub fn load(path: &Path) -> CliResult<Option<Credentials>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            file_error(
                path,
                format!("not valid credentials ({e}); run `portcullis logout` and log in again"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_error(path, e)),
    }
}

/// Writes the credentials readable by the owner only, replacing the file
/// atomically (a temporary file in the same directory, then a rename).
pub fn save(path: &Path, creds: &Credentials) -> CliResult {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| file_error(dir, e))?;

    let body = serde_json::to_vec_pretty(creds).map_err(|e| file_error(path, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "credentials.json".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = opts.open(&tmp).and_then(|mut f| {
        // The mode above applies only to a new file; make sure of it anyway.
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        f.write_all(&body)?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(file_error(path, e));
    }
    Ok(())
}

/// Deletes the credentials file; `false` when there was none.
pub fn remove(path: &Path) -> CliResult<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(file_error(path, e)),
    }
}

/// The claims of a JWT, decoded WITHOUT verifying the signature (for display
/// and for reading `exp`; the server verifies).
pub fn jwt_claims(token: &str) -> Result<Value, String> {
    let mut parts = token.trim().split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("not a JWT (expected three dot-separated parts)".into());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| format!("the JWT payload is not base64url ({e})"))?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|e| format!("the JWT payload is not JSON ({e})"))?;
    if claims.is_object() {
        Ok(claims)
    } else {
        Err("the JWT payload is not a JSON object".into())
    }
}

/// `at` relative to `now`, for people: "in 29m 10s", "3h 2m ago".
pub fn relative(at: i64, now: i64) -> String {
    let d = (at - now).unsigned_abs();
    let span = match d {
        0..=59 => format!("{d}s"),
        60..=3599 => format!("{}m {}s", d / 60, d % 60),
        3600..=86_399 => format!("{}h {}m", d / 3600, (d % 3600) / 60),
        _ => format!("{}d {}h", d / 86_400, (d % 86_400) / 3600),
    };
    if at >= now {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// A unix time as RFC 3339 UTC.
pub fn rfc3339(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(|| at.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Now, in unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: &Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256","kid":"k1"}"#),
            b64(claims.to_string().as_bytes()),
            b64(b"sig")
        )
    }

    fn sample() -> Credentials {
        Credentials {
            issuer: "https://auth.example.com".into(),
            client_id: CLI_CLIENT_ID.into(),
            access_token: "a.b.c".into(),
            refresh_token: Some("prt_1".into()),
            expires_at: 1_000,
            scope: Some("admin user".into()),
        }
    }

    #[test]
    fn the_path_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_string())
        };
        assert_eq!(
            path_from(env(&[(CREDENTIALS_VAR, "/x/c.json"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/c.json"))
        );
        assert_eq!(
            path_from(env(&[("XDG_CONFIG_HOME", "/cfg"), ("HOME", "/h")])),
            Some(PathBuf::from("/cfg/portcullis/credentials.json"))
        );
        assert_eq!(
            path_from(env(&[(CREDENTIALS_VAR, " "), ("XDG_CONFIG_HOME", ""), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.config/portcullis/credentials.json"))
        );
        assert_eq!(path_from(env(&[])), None);
    }

    #[test]
    fn credentials_round_trip_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("credentials.json");
        assert_eq!(load(&path).unwrap(), None);
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(sample()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(
                std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        // Replacing keeps 0600 and leaves no temporary file behind.
        let mut next = sample();
        next.refresh_token = Some("prt_2".into());
        save(&path, &next).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().refresh_token.as_deref(), Some("prt_2"));
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_logout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(load(&path), Err(CliError::Credentials { .. })));
    }

    #[test]
    fn refresh_is_due_within_a_minute_of_expiry() {
        let c = sample();
        assert!(!c.needs_refresh(900));
        assert!(!c.needs_refresh(939));
        assert!(c.needs_refresh(940));
        assert!(c.needs_refresh(2_000));
        assert!(!c.is_expired(999));
        assert!(c.is_expired(1_000));
    }

    #[test]
    fn responses_become_credentials() {
        let r = TokenResponse {
            access_token: "t".into(),
            expires_in: Some(1800),
            refresh_token: None,
            scope: Some("admin".into()),
        };
        let c = Credentials::from_response("https://auth.example.com/", CLI_CLIENT_ID, r, 100, Some("old".into()));
        assert_eq!(c.issuer, "https://auth.example.com");
        assert_eq!(c.expires_at, 1900);
        assert_eq!(
            c.refresh_token.as_deref(),
            Some("old"),
            "a response without a refresh token keeps the old one"
        );

        let token = jwt(&json!({"sub": "u1", "exp": 5_000}));
        let r = TokenResponse {
            access_token: token,
            expires_in: None,
            refresh_token: Some("new".into()),
            scope: None,
        };
        let c = Credentials::from_response("http://127.0.0.1:9000", CLI_CLIENT_ID, r, 100, Some("old".into()));
        assert_eq!(c.expires_at, 5_000, "falls back to the JWT's exp");
        assert_eq!(c.refresh_token.as_deref(), Some("new"));
    }

    #[test]
    fn jwt_claims_are_decoded_without_verification() {
        let claims = json!({"sub": "github-1", "scope": "admin user", "aud": ["https://auth.example.com"]});
        assert_eq!(jwt_claims(&jwt(&claims)).unwrap(), claims);
        assert!(jwt_claims("opaque-api-token").is_err());
        assert!(jwt_claims("a.!!!.c").is_err());
        assert!(jwt_claims("a.b.c.d").is_err());
    }

    #[test]
    fn times_read_well() {
        assert_eq!(relative(190, 100), "in 1m 30s");
        assert_eq!(relative(100, 7_400), "2h 1m ago");
        assert_eq!(relative(100, 100), "in 0s");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
