//! The first hour of a new user (issue 19): start-up refusals that say what
//! to set, `serve --help`, shell completion and script-friendly CLI output,
//! all through the real binary.

use std::process::Output;
use std::time::Duration;

use serde_json::json;

use crate::harness::{refused_port, run_bin, serve_env, spawn, Portcullis, Redis};

/// Runs the binary with exactly `env` (plus PATH) in an empty directory.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_bin(tempfile::tempdir().unwrap().path(), args, env)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_env_example_placeholders_are_refused_naming_the_variable() {
    for var in ["ADMIN_TOKEN", "SECRET_KEY", "REDIS_PASSWORD"] {
        let placeholder = format!("change-me-{}", var.to_lowercase().replace('_', "-"));
        let mut env: Vec<(String, String)> = serve_env("redis://127.0.0.1:1/0");
        env.retain(|(k, _)| k != var);
        env.push((var.to_string(), placeholder));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out = run(&["serve"], &env);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{var}: serve started with the placeholder:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{var}: expected one line:\n{stderr}");
        assert!(lines[0].contains(var) && lines[0].contains("placeholder"), "{var}: {}", lines[0]);
        assert!(!lines[0].contains("change-me"), "{var}: the value is echoed: {}", lines[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_points_at_the_embedded_store() {
    let (_hold, closed) = refused_port();
    let mut env = serve_env(&format!("redis://127.0.0.1:{closed}/0"));
    env.retain(|(k, _)| k != "REDIS_STARTUP_TIMEOUT");
    env.push(("REDIS_STARTUP_TIMEOUT".into(), "1".into()));
    let mut proc = spawn(&["serve"], &env);
    let code = proc.wait_exit(Duration::from_secs(15));
    let log = proc.log_text();
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}:\n{log}");
    let last = log.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(
        last.contains("STORE=embedded"),
        "the last line does not name STORE=embedded: {last}"
    );
}

#[test]
fn serve_help_names_the_environment_a_first_run_needs() {
    let out = run(&["serve", "--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for var in ["ADMIN_TOKEN", "SECRET_KEY", "STORE", "REDIS_URL", "HTTP_PORT", ".env.example"] {
        assert!(help.contains(var), "serve --help does not mention {var}:\n{help}");
    }
}

#[test]
fn completion_scripts_cover_the_verbs() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completion", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for verb in ["proxy", "route", "cert", "reveal", "completion"] {
            assert!(script.contains(verb), "{shell} completion lacks {verb}");
        }
    }
    let out = run(&["completion", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reveal_value_prints_only_the_value() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let (s, v) = p
        .admin("POST", "/api/v1/tokens/generate", Some(json!({"name": "ci-bot", "scope": "user"})))
        .await;
    assert_eq!(s, 201, "{v}");
    let value = v["token"].as_str().unwrap().to_string();
    let api = format!("http://127.0.0.1:{}", p.api_port);

    let out = run(
        &["token", "reveal", "ci-bot", "--value"],
        &[("API_URL", &api), ("ADMIN_TOKEN", &p.admin_token)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{value}\n"), "only the value and a newline");

    // Without --value the block for people is printed, value included.
    let out = run(
        &["token", "reveal", "ci-bot"],
        &[("API_URL", &api), ("ADMIN_TOKEN", &p.admin_token)],
    );
    let block = text(&out.stdout);
    assert!(block.contains(&value) && block.contains("ci-bot"), "{block}");

    // A token that cannot be a header value is named as such, not as a connection failure.
    let out = run(&["token", "list"], &[("API_URL", &api), ("ADMIN_TOKEN", "pc_abc\u{7f}def")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot be sent") && !err.contains("cannot reach"), "{err}");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = run(&["--version"], &[]);
    assert!(out.status.success());
    let version = text(&out.stdout);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(version.trim(), format!("portcullis {} (commit {head})", env!("CARGO_PKG_VERSION")));
}

/// `just run` (scripts/run.sh) on a machine where no Redis answers: it writes
/// `.env` with fresh secrets (0600), falls back to the embedded store and
/// serves with the admin token it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_script_without_redis_serves_from_the_embedded_store() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    for f in ["scripts/run.sh", "scripts/lib.sh", ".env.example"] {
        std::fs::copy(root.join(f), dir.path().join(f)).unwrap();
    }
    let (_hold, closed) = refused_port();
    let api_port = crate::harness::free_port().to_string();
    let log = dir.path().join("run.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = std::process::Command::new("bash")
        .arg("scripts/run.sh")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("PORTCULLIS_BIN", crate::harness::bin())
        .env("REDIS_URL", format!("redis://127.0.0.1:{closed}/0"))
        .env("API_PORT", &api_port)
        .env("HTTP_PORT", crate::harness::free_port().to_string())
        .env("HTTPS_PORT", crate::harness::free_port().to_string())
        .env("PROXY_PROTOCOL_PORT", "0")
        .env("ACME_DIRECTORY_URL", "http://127.0.0.1:9/directory")
        .env("ACME_STAGING_URL", "http://127.0.0.1:9/directory")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let _proc = crate::harness::Proc::from_child(child, log.clone());
    let client = reqwest::Client::new();
    let health = crate::harness::eventually(Duration::from_secs(60), || async {
        let r = client.get(format!("http://127.0.0.1:{api_port}/health")).send().await.ok()?;
        r.json::<serde_json::Value>().await.ok()
    })
    .await;
    let run_log = std::fs::read_to_string(&log).unwrap_or_default();
    let health = health.unwrap_or_else(|| panic!("never served:\n{run_log}"));
    assert_eq!(health["store"], "embedded", "{health}\n{run_log}");
    assert!(run_log.contains("using the embedded single-node store"), "{run_log}");

    let env_file = dir.path().join(".env");
    assert_eq!(std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777, 0o600);
    let dotenv = std::fs::read_to_string(&env_file).unwrap();
    let token = dotenv.lines().find_map(|l| l.strip_prefix("ADMIN_TOKEN=")).unwrap().to_string();
    assert!(token.starts_with("pcl_") && !token.contains("change-me"), "{token}");
    let r = client
        .post(format!("http://127.0.0.1:{api_port}/api/v1/proxy/targets/"))
        .bearer_auth(&token)
        .json(&json!({"hostname": "first.test", "target_url": "http://127.0.0.1:9", "enable_https": false}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
    let data = std::fs::read_dir(dir.path().join(".data")).unwrap().count();
    assert!(data > 0, "the embedded store wrote nothing under .data/");
}

/// `SECRET_KEY` left unset is derived from `ADMIN_TOKEN`: changing the admin
/// token later makes the stored secrets unreadable. `serve` must stop and
/// say so, naming both variables, instead of running without its keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_admin_token_without_secret_key_stops_serve_naming_both() {
    let redis = Redis::start();
    let mut first = Portcullis::start(&redis).await;
    // Something sealed for sure: a token value, besides the signing keys.
    let (s, v) = first.admin("POST", "/api/v1/tokens/", Some(json!({"name": "sealed"}))).await;
    assert_eq!(s, 201, "{v}");
    first.proc.terminate();
    assert!(
        first.proc.wait_exit(Duration::from_secs(30)).is_some(),
        "the first serve did not stop"
    );

    let mut env = serve_env(&redis.url());
    env.retain(|(k, _)| k != "ADMIN_TOKEN");
    env.push(("ADMIN_TOKEN".into(), "another-admin-token-0123456789abcdef".into()));
    let mut second = spawn(&["serve"], &env);
    let code = second.wait_exit(Duration::from_secs(60));
    let log = second.log_text();
    assert!(code.is_some_and(|c| c != 0), "serve ran on unreadable secrets ({code:?}):\n{log}");
    let why = log.lines().find(|l| l.contains("SECRET_KEY")).unwrap_or_else(|| panic!("{log}"));
    assert!(why.contains("ADMIN_TOKEN"), "the reason names ADMIN_TOKEN: {why}");
    assert!(!log.contains("0123456789abcdef"), "a token value is logged: {log}");
}
