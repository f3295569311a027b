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
