//! `portcullis proxy auth-*|resource-*` and `resource auto-register` end to
//! end (issue 19): the real binary against one real server with a real
//! backend; each setting is checked in the `--json` record, in what a person
//! reads, and where it matters in what the data plane then answers (also
//! for `proxy create --no-http`).

use std::time::Duration;

use serde_json::{json, Value};

use crate::admin_api::{make_token, start};
use crate::harness::cli::{assert_shape, Cli};
use crate::harness::{backend, eventually, get_as, Portcullis, Redis};

/// Polls until `host/path` answers `want` through the data plane.
async fn answers(p: &Portcullis, host: &str, path: &str, want: u16) {
    let seen = eventually(Duration::from_secs(10), || async {
        (get_as(p, host, path, &[]).await.0 == want).then_some(())
    })
    .await;
    assert!(
        seen.is_some(),
        "{host}{path} never answered {want}: {:?}",
        get_as(p, host, path, &[]).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_resource_settings_through_the_cli() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let b = backend::start("B").await;
    let cli = Cli::new(&p, &p.admin_token);
    cli.run(&["proxy", "create", "api.test", &b.url(), "--no-https"]).ok();
    cli.run(&["proxy", "create", "plain.test", &b.url(), "--no-https"]).ok();
    answers(&p, "api.test", "/open", 200).await;

    // auth-enable: the settings come back, and the data plane asks for a token.
    let out = cli
        .run(&[
            "proxy",
            "auth-enable",
            "api.test",
            "auth.test",
            "forward",
            "--scopes",
            "mcp:read,mcp:write",
        ])
        .ok();
    assert!(out.starts_with("enabled auth (forward) on api.test via auth.test\n"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("auth_mode:") && l.ends_with("forward")), "{out}");
    answers(&p, "api.test", "/open", 401).await;
    let (_, h, _) = get_as(&p, "api.test", "/open", &[]).await;
    assert!(
        h.get("www-authenticate").is_some_and(|v| v.to_str().unwrap().starts_with("Bearer")),
        "{h:?}"
    );
    let v = cli.run(&["proxy", "auth-show", "api.test", "--json"]).json();
    assert_shape(
        &v,
        &[
            ("auth_enabled", "bool"),
            ("auth_proxy", "string"),
            ("auth_mode", "string"),
            ("auth_allowed_scopes", "array"),
            ("auth_required_users", "array|null"),
            ("auth_pass_headers", "bool"),
            ("auth_pass_token", "bool"),
            ("auth_cookie_name", "string"),
            ("auth_header_prefix", "string"),
        ],
    );
    assert_eq!(
        (v["auth_enabled"].clone(), v["auth_proxy"].clone(), v["auth_allowed_scopes"].clone()),
        (json!(true), json!("auth.test"), json!(["mcp:read", "mcp:write"])),
        "{v}"
    );
    let shown = cli.run(&["proxy", "auth-show", "api.test"]).ok();
    assert!(
        shown.lines().any(|l| l.starts_with("auth_proxy:") && l.ends_with("auth.test")),
        "{shown}"
    );

    // auth-config: lists set, "" resets to the global default, --set for the rest.
    let out = cli
        .run(&[
            "proxy",
            "auth-config",
            "api.test",
            "--users",
            "alice,bob",
            "--emails",
            "*@example.com",
            "--excluded-paths",
            "/health",
            "--set",
            "auth_pass_token=true",
        ])
        .ok();
    assert!(out.starts_with("updated auth settings of api.test: "), "{out}");
    for field in [
        "auth_required_users",
        "auth_required_emails",
        "auth_excluded_paths",
        "auth_pass_token",
    ] {
        assert!(out.contains(field), "{field} not named: {out}");
    }
    let v = cli.run(&["proxy", "auth-show", "api.test", "--json"]).json();
    assert_eq!(v["auth_required_users"], json!(["alice", "bob"]), "{v}");
    assert_eq!(v["auth_required_emails"], json!(["*@example.com"]), "{v}");
    assert_eq!(v["auth_pass_token"], true, "{v}");
    answers(&p, "api.test", "/health", 200).await;
    cli.run(&["proxy", "auth-config", "api.test", "--users", ""]).ok();
    let v = cli.run(&["proxy", "auth-show", "api.test", "--json"]).json();
    assert_eq!(v["auth_required_users"], Value::Null, "{v}");

    // Bad values: the server's reason and exit 1; a bad mode or no change is exit 2.
    let msg = cli
        .run(&["proxy", "auth-config", "api.test", "--set", "auth_mode=sideways"])
        .refused();
    assert!(msg.contains("auth_mode"), "{msg}");
    let msg = cli.run(&["proxy", "auth-config", "api.test", "--set", "hostname=x.test"]).refused();
    assert!(msg.contains("hostname"), "{msg}");
    cli.run(&["proxy", "auth-enable", "api.test", "auth.test", "sideways"]).usage();
    cli.run(&["proxy", "auth-config", "api.test"]).usage();
    let msg = cli.run(&["proxy", "auth-show", "nowhere.test"]).refused();
    assert!(msg.contains("not found"), "{msg}");

    // auth-disable: open again.
    assert_eq!(cli.run(&["proxy", "auth-disable", "api.test"]).ok(), "disabled auth on api.test\n");
    let v = cli.run(&["proxy", "auth-show", "api.test", "--json"]).json();
    assert_eq!(
        (v["auth_enabled"].clone(), v["auth_required_emails"].clone()),
        (json!(false), Value::Null),
        "{v}"
    );
    answers(&p, "api.test", "/open", 200).await;

    // resource-set: the metadata the data plane serves for the host.
    let out = cli
        .run(&[
            "proxy",
            "resource-set",
            "api.test",
            "--scopes",
            "mcp:read",
            "--stateful",
            "--override-backend",
            "--server-info",
            r#"{"name":"tools","version":"1.0"}"#,
        ])
        .ok();
    assert!(out.starts_with("api.test is a protected resource at /mcp\n"), "{out}");
    let v = cli.run(&["proxy", "resource-show", "api.test", "--json"]).json();
    assert_shape(
        &v,
        &[
            ("resource_endpoint", "string"),
            ("resource_scopes", "array"),
            ("resource_stateful", "bool"),
            ("resource_override_backend", "bool"),
            ("resource_server_info", "object"),
        ],
    );
    assert_eq!(
        (
            v["resource_endpoint"].clone(),
            v["resource_scopes"].clone(),
            v["resource_stateful"].clone()
        ),
        (json!("/mcp"), json!(["mcp:read"]), json!(true)),
        "{v}"
    );
    let shown = cli.run(&["proxy", "resource-show", "api.test"]).ok();
    assert!(
        shown.lines().any(|l| l.starts_with("resource_endpoint:") && l.ends_with("/mcp")),
        "{shown}"
    );
    let meta = eventually(Duration::from_secs(10), || async {
        let (s, _, v) = get_as(&p, "api.test", "/.well-known/oauth-protected-resource/mcp", &[]).await;
        (s == 200 && v["resource"] == "http://api.test/mcp").then_some(v)
    })
    .await;
    let meta = meta.unwrap_or_else(|| panic!("metadata never served"));
    assert_eq!(meta["scopes_supported"], json!(["mcp:read"]), "{meta}");
    let msg = cli.run(&["proxy", "resource-set", "api.test", "--set-nothing"]).usage();
    assert!(msg.contains("--set-nothing"), "{msg}");

    // auto-register: the proxies with resource settings (the built-in
    // localhost one among them), not the plain one, and only once.
    let out = cli.run(&["resource", "auto-register"]).ok();
    assert!(out.starts_with("registered "), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("https://api.test/mcp ") && l.contains("mcp:read")),
        "{out}"
    );
    assert!(!out.contains("plain.test"), "{out}");
    let again = cli.run(&["resource", "auto-register", "--json"]).json();
    assert_eq!(again, json!([]), "nothing new the second time");
    assert!(cli.run(&["resource", "auto-register"]).ok().starts_with("nothing new to register"));
    let v = cli.run(&["resource", "show", "https://api.test/mcp", "--json"]).json();
    assert_shape(
        &v,
        &[
            ("uri", "string"),
            ("name", "string"),
            ("proxy_target", "string"),
            ("scopes", "array"),
        ],
    );
    assert_eq!(v["scopes"], json!(["mcp:read"]), "{v}");

    // resource-clear: the settings are gone.
    assert_eq!(
        cli.run(&["proxy", "resource-clear", "api.test"]).ok(),
        "removed the protected resource settings of api.test\n"
    );
    let v = cli.run(&["proxy", "resource-show", "api.test", "--json"]).json();
    assert_eq!(
        (v["resource_endpoint"].clone(), v["resource_scopes"].clone()),
        (Value::Null, Value::Null),
        "{v}"
    );

    // --no-http as its help says: plain HTTP is redirected to HTTPS (308),
    // and not together with --no-https.
    cli.run(&["proxy", "create", "tls-only.test", &b.url(), "--no-http"]).ok();
    answers(&p, "tls-only.test", "/x?y=1", 308).await;
    let (_, h, _) = get_as(&p, "tls-only.test", "/x?y=1", &[]).await;
    let location = format!("https://tls-only.test:{}/x?y=1", p.https_port);
    assert_eq!(h["location"], location.as_str(), "{h:?}");
    let msg = cli
        .run(&["proxy", "create", "off.test", &b.url(), "--no-http", "--no-https"])
        .refused();
    assert!(msg.contains("enable_http"), "{msg}");
    let help = cli.run(&["proxy", "create", "--help"]).ok();
    let line = help.lines().find(|l| l.trim_start().starts_with("--no-http ")).unwrap();
    assert!(line.contains("308") && line.contains("--no-https"), "{line}");

    // Another owner may neither read nor change these settings.
    let mallory = Cli::new(&p, &make_token(&p, "mallory", "user").await);
    for verb in [
        vec!["proxy", "auth-show", "api.test"],
        vec!["proxy", "auth-disable", "api.test"],
        vec!["proxy", "auth-enable", "api.test", "auth.test", "passthrough"],
        vec!["proxy", "resource-set", "api.test"],
        vec!["proxy", "resource-clear", "api.test"],
    ] {
        let msg = mallory.run(&verb).refused();
        assert!(!msg.is_empty(), "{verb:?}");
    }
    assert_eq!(cli.run(&["proxy", "auth-show", "api.test", "--json"]).json()["auth_enabled"], false);
}
