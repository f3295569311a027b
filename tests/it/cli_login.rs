//! The stored login without the device flow (issue 19; the flow itself, the
//! 0600 file and a successful refresh are in `tests/oauth/test_cli_login.py`):
//! `whoami` and `logout` with no login, with a login holding a token the real
//! server signed, with a token overriding it, with a refresh the server
//! refuses, and with a corrupt file; output, `--json` shape and exit codes.

use std::os::unix::fs::PermissionsExt;

use serde_json::{json, Value};

use crate::admin_api::start;
use crate::harness::cli::{assert_shape, Cli};
use crate::harness::Redis;

/// Writes the credentials file `portcullis login` would have written.
fn store(cli: &Cli, creds: &Value) -> std::path::PathBuf {
    let path = cli.dir.path().join(".config/portcullis/credentials.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, creds.to_string()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_and_logout_with_and_without_a_stored_login() {
    let redis = Redis::start();
    let p = start(&redis).await;
    // No ADMIN_TOKEN: the stored login (under this HOME) is what counts.
    let cli = Cli::new(&p, "");
    let path = cli.dir.path().join(".config/portcullis/credentials.json");
    let shown_path = path.display().to_string();

    // Nobody logged in.
    let msg = cli.run(&["whoami"]).refused();
    assert!(msg.contains("not logged in") && msg.contains(&shown_path), "{msg}");
    assert_eq!(cli.run(&["logout"]).ok(), format!("not logged in (no {shown_path})\n"));
    let v = cli.run(&["logout", "--json"]).json();
    assert_eq!(v, json!({"status": "not_logged_in", "credentials": shown_path}));
    let msg = cli.run(&["proxy", "list"]).refused();
    assert!(msg.contains("portcullis login"), "{msg}");

    // A login holding an access token the server signed for itself.
    let (_, health) = p.admin("GET", "/api/v1/oauth/health", None).await;
    let issuer = health["issuer"].as_str().unwrap().to_string();
    let (s, minted) = p
        .admin(
            "POST",
            "/api/v1/oauth/test-token",
            Some(json!({"username": "carol", "scope": "admin", "aud": [issuer]})),
        )
        .await;
    assert_eq!(s, 201, "{minted}");
    let access = minted["access_token"].as_str().unwrap().to_string();
    let creds = json!({"issuer": p.api(""), "client_id": "portcullis-cli", "access_token": access,
                       "refresh_token": "not-a-real-refresh-token", "expires_at": now() + 3600, "scope": "admin"});
    store(&cli, &creds);
    let who = cli.run(&["whoami", "--json"]).json();
    assert_shape(
        &who,
        &[
            ("credentials", "string"),
            ("issuer", "string"),
            ("expires_at", "string"),
            ("expired", "bool"),
            ("refreshable", "bool"),
            ("overridden_by_token", "bool"),
            ("claims", "object"),
        ],
    );
    assert_eq!(
        (
            who["expired"].clone(),
            who["refreshable"].clone(),
            who["overridden_by_token"].clone()
        ),
        (json!(false), json!(true), json!(false)),
        "{who}"
    );
    assert_eq!(who["credentials"], shown_path.as_str());
    assert!(who["claims"].to_string().contains("carol"), "the identity: {who}");
    assert!(
        !who.to_string().contains("not-a-real-refresh-token"),
        "the refresh token is never shown: {who}"
    );
    let text = cli.run(&["whoami"]).ok();
    assert!(text.lines().any(|l| l.starts_with("token:") && l.ends_with("valid")), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("credentials:") && l.ends_with(&shown_path)),
        "{text}"
    );
    assert!(!text.contains(&access), "the access token is never shown: {text}");
    let proxies = cli.run(&["proxy", "list", "--json"]).json();
    assert!(proxies.is_array(), "commands call with the stored token: {proxies}");

    // An explicit token wins over the login, and whoami says so.
    let admin = Cli {
        api_url: cli.api_url.clone(),
        token: p.admin_token.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    store(&admin, &creds);
    assert_eq!(admin.run(&["whoami", "--json"]).json()["overridden_by_token"], true);
    assert!(admin.run(&["whoami"]).ok().contains("note: --token/ADMIN_TOKEN is set"));

    // Near expiry the next command refreshes first; a refused refresh says
    // to log in again (exit 1).
    let mut near = creds.clone();
    near["expires_at"] = json!(now() + 30);
    store(&cli, &near);
    let msg = cli.run(&["proxy", "list"]).refused();
    assert!(msg.contains("could not be refreshed") && msg.contains("portcullis login"), "{msg}");

    // Expired with no refresh token: whoami says so, commands refuse.
    let mut expired = creds.clone();
    expired["expires_at"] = json!(now() - 10);
    expired.as_object_mut().unwrap().remove("refresh_token");
    store(&cli, &expired);
    let who = cli.run(&["whoami", "--json"]).json();
    assert_eq!(
        (who["expired"].clone(), who["refreshable"].clone()),
        (json!(true), json!(false)),
        "{who}"
    );
    assert!(cli.run(&["whoami"]).ok().contains("expired; run `portcullis login`"));
    let msg = cli.run(&["token", "list"]).refused();
    assert!(msg.contains("no refresh token") && msg.contains("portcullis login"), "{msg}");

    // A corrupt file: named, with the way out; logout removes it.
    std::fs::write(&path, "{not json").unwrap();
    let msg = cli.run(&["whoami"]).refused();
    assert!(msg.contains(&shown_path) && msg.contains("portcullis logout"), "{msg}");
    assert_eq!(cli.run(&["logout"]).ok(), format!("logged out (deleted {shown_path})\n"));
    assert!(!path.exists());
}
