//! The CLI end to end (issue 19): the real binary against a real server,
//! checking what a person reads, the `--json` shape scripts rely on, the
//! exit codes (0 done, 1 refused or failed, 2 bad command line) and the
//! one-line `error: ...` format.

use serde_json::Value;

use crate::admin_api::{make_cert, start};
use crate::harness::cli::Cli;
use crate::harness::{refused_port, run_bin, Redis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_generate_to_cascading_delete() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let admin = Cli::new(&p, &p.admin_token);

    let out = admin
        .run(&["token", "generate", "alice", "--scope", "user", "--email", "a@example.com"])
        .ok();
    assert!(out.starts_with("created token alice (scope: user)"), "{out}");
    let value = out.lines().map(str::trim).find(|l| l.starts_with("pcl_")).unwrap().to_string();
    assert!(out.contains("shown only once"), "{out}");

    let v = admin.run(&["token", "generate", "bob", "--json"]).json();
    assert_eq!((v["name"].as_str(), v["scope"].as_str()), (Some("bob"), Some("user")), "{v}");
    assert!(v["token"].as_str().is_some_and(|t| t.starts_with("pcl_")), "{v}");

    let list = admin.run(&["token", "list"]).ok();
    let header = list.lines().next().unwrap();
    for col in ["NAME", "SCOPE", "EMAIL", "CREATED_BY", "CREATED_AT"] {
        assert!(header.contains(col), "{list}");
    }
    assert!(
        list.lines().any(|l| l.starts_with("alice ") && l.contains("a@example.com")),
        "{list}"
    );
    let names: Vec<String> = admin
        .run(&["token", "list", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        admin.run(&["token", "list", "--json"]).ok().find("pcl_").is_none(),
        "values are never listed"
    );

    assert_eq!(admin.run(&["token", "reveal", "alice", "--value"]).ok(), format!("{value}\n"));

    // alice sees herself, changes her own e-mail, and may not create tokens.
    let alice = Cli::new(&p, &value);
    let info = alice.run(&["token", "info", "--json"]).json();
    assert_eq!(info["name"], "alice", "{info}");
    let out = alice.run(&["token", "email", "new@example.com"]).ok();
    assert_eq!(out, "updated the certificate e-mail of token alice to new@example.com\n");
    assert_eq!(
        admin.run(&["token", "show", "alice", "--json"]).json()["cert_email"],
        "new@example.com"
    );
    let msg = alice.run(&["token", "generate", "mallory"]).refused();
    assert!(msg.to_lowercase().contains("admin"), "{msg}");
    // the bootstrap admin has no stored record: its e-mail is set where its token is
    let msg = admin.run(&["token", "email", "root@example.com"]).refused();
    assert!(msg.contains("ADMIN_EMAIL"), "{msg}");
    let mine = alice.run(&["token", "list", "--json"]).json();
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "a user lists only itself: {mine}");

    // What alice owns goes with her.
    alice
        .run(&["proxy", "create", "alice.test", "http://127.0.0.1:9", "--no-https"])
        .ok();
    let out = admin.run(&["token", "delete", "alice"]).ok();
    assert!(out.starts_with("deleted token alice"), "{out}");
    assert!(out.contains("also deleted its proxies: alice.test"), "{out}");
    let msg = admin.run(&["proxy", "show", "alice.test"]).refused();
    assert!(msg.contains("not found"), "{msg}");
    let msg = admin.run(&["token", "show", "alice"]).refused();
    assert!(msg.contains("not found"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_routes_and_services_round_trip() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let cli = Cli::new(&p, &p.admin_token);

    let out = cli
        .run(&[
            "proxy",
            "create",
            "app.test",
            "http://127.0.0.1:3000",
            "--header",
            "X-Env=prod",
            "--response-header",
            "X-Frame-Options=DENY",
            "--no-https",
        ])
        .ok();
    assert_eq!(out, "created proxy app.test -> http://127.0.0.1:3000\n");
    let v = cli.run(&["proxy", "show", "app.test", "--json"]).json();
    assert_eq!(v["custom_headers"]["X-Env"], "prod", "{v}");
    assert_eq!(v["custom_response_headers"]["X-Frame-Options"], "DENY", "{v}");
    assert_eq!(v["enable_https"], false, "{v}");
    let shown = cli.run(&["proxy", "show", "app.test"]).ok();
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("target_url:") && l.ends_with("http://127.0.0.1:3000")),
        "{shown}"
    );

    cli.run(&["proxy", "update", "app.test", "--set", "auth_required_users=[\"alice\"]"])
        .ok();
    let v = cli.run(&["proxy", "show", "app.test", "--json"]).json();
    assert_eq!(v["auth_required_users"], serde_json::json!(["alice"]), "{v}");
    assert_eq!(cli.run(&["proxy", "disable", "app.test"]).ok(), "disabled proxy app.test\n");
    assert_eq!(cli.run(&["proxy", "show", "app.test", "--json"]).json()["enabled"], false);
    assert_eq!(cli.run(&["proxy", "enable", "app.test"]).ok(), "enabled proxy app.test\n");
    let hosts: Vec<Value> = cli
        .run(&["proxy", "list", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["hostname"].clone())
        .collect();
    assert!(hosts.contains(&Value::from("app.test")), "{hosts:?}");

    // Routes.
    let out = cli
        .run(&[
            "route",
            "create",
            "/api/",
            "port",
            "8080",
            "--priority",
            "90",
            "--methods",
            "GET,POST",
            "--id",
            "api-r",
        ])
        .ok();
    assert_eq!(out, "created route api-r: /api/ -> port:8080\n");
    let v = cli.run(&["route", "show", "api-r", "--json"]).json();
    assert_eq!(
        (v["priority"].as_i64(), v["methods"].clone()),
        (Some(90), serde_json::json!(["GET", "POST"])),
        "{v}"
    );
    assert_eq!(
        cli.run(&["route", "update", "api-r", "--set", "priority=80"]).ok(),
        "updated route api-r: priority=80\n"
    );
    assert_eq!(cli.run(&["route", "show", "api-r", "--json"]).json()["priority"], 80);
    let table = cli.run(&["route", "list"]).ok();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("api-r ") && l.contains("port:8080") && l.contains("GET,POST")),
        "{table}"
    );
    assert!(cli.run(&["route", "formatted"]).ok().contains("api-r"));
    let msg = cli.run(&["route", "create", "/x", "port", "notaport"]).refused();
    assert!(msg.contains("target_value"), "{msg}");
    assert_eq!(cli.run(&["route", "delete", "api-r"]).ok(), "deleted route api-r\n");
    assert!(cli.run(&["route", "show", "api-r"]).refused().contains("not found"));

    // Named services.
    assert_eq!(
        cli.run(&["service", "register", "auth", "http://127.0.0.1:9100"]).ok(),
        "registered service auth -> http://127.0.0.1:9100\n"
    );
    let list = cli.run(&["service", "list-external"]).ok();
    assert!(
        list.lines().any(|l| l.starts_with("auth ") && l.ends_with("http://127.0.0.1:9100")),
        "{list}"
    );
    assert!(list.lines().any(|l| l.starts_with("api ") && l.contains("internal")), "{list}");
    assert_eq!(cli.run(&["service", "unregister", "auth"]).ok(), "deleted service auth\n");

    assert_eq!(cli.run(&["proxy", "delete", "app.test"]).ok(), "deleted proxy app.test\n");
    assert!(cli.run(&["proxy", "show", "app.test"]).refused().contains("not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_upload_show_and_delete() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let cli = Cli::new(&p, &p.admin_token);
    let (cert, key) = make_cert(&["files.example.test"], -1, 30);
    let (cert_path, key_path) = (cli.file("fullchain.pem", &cert), cli.file("privkey.pem", &key));

    cli.run(&["cert", "upload", "files", "--cert", &cert_path, "--key", &key_path]).ok();
    let v = cli.run(&["cert", "show", "files", "--json"]).json();
    assert_eq!(v["domains"], serde_json::json!(["files.example.test"]), "{v}");
    assert!(!v.to_string().contains("PRIVATE KEY"), "the key is never shown: {v}");
    let pem = cli.run(&["cert", "show", "files", "--pem"]).ok();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----") && !pem.contains("PRIVATE"), "{pem}");
    let list = cli.run(&["cert", "list"]).ok();
    assert!(list.lines().any(|l| l.starts_with("files ")), "{list}");

    let msg = cli
        .run(&["cert", "upload", "bad", "--cert", &cli.file("junk.pem", "junk"), "--key", &key_path])
        .refused();
    assert!(!msg.is_empty());
    let msg = cli
        .run(&["cert", "upload", "missing", "--cert", "/nonexistent.pem", "--key", &key_path])
        .refused();
    assert!(msg.contains("/nonexistent.pem"), "names the file: {msg}");

    cli.run(&["cert", "delete", "files"]).ok();
    assert!(cli.run(&["cert", "show", "files"]).refused().contains("not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_error_lines() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let cli = Cli::new(&p, &p.admin_token);

    // Bad command line: clap's usage on stderr, exit 2.
    let r = cli.run(&["route", "frob"]);
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(r.err.contains("Usage:"), "{}", r.err);

    // A wrong token: exit 1, the server's reason.
    let msg = Cli::new(&p, "pcl_not-a-real-token-0000000000000000")
        .run(&["token", "list"])
        .refused();
    assert!(!msg.contains("cannot reach"), "{msg}");

    // No server: exit 1, names the URL and what to check.
    let (_hold, closed) = refused_port();
    let gone = Cli::at(&format!("http://127.0.0.1:{closed}"), &p.admin_token);
    let msg = gone.run(&["token", "list"]).refused();
    assert!(msg.contains(&format!("127.0.0.1:{closed}")) && msg.contains("API_URL"), "{msg}");

    // --json does not turn errors into JSON: stdout stays empty for scripts.
    let msg = cli.run(&["proxy", "show", "nowhere.test", "--json"]).refused();
    assert!(msg.contains("not found"), "{msg}");

    // No token at all.
    let none = Cli::new(&p, "");
    let msg = none.run(&["proxy", "list"]).refused();
    assert!(msg.contains("ADMIN_TOKEN"), "{msg}");

    // `.`, `..` and an empty name are names no URL can carry (parsers drop
    // dots; "" addresses the collection): a bad command line, exit 2 before
    // any request, instead of `proxy auth-disable ..` becoming
    // `DELETE /api/v1/proxy/targets/auth` (deleting the proxy `auth`) or
    // `proxy show ""` printing the proxy list.
    for host in ["auth", "mcp"] {
        cli.run(&["proxy", "create", host, "http://127.0.0.1:9", "--no-https"]).ok();
    }
    for args in [
        &["proxy", "auth-disable", ".."][..],
        &["proxy", "resource-clear", ".."],
        &["proxy", "delete", "."],
        &["proxy", "delete", ""],
        &["proxy", "show", ""],
        &["token", "show", ".."],
        &["token", "show", ""],
        &["token", "email", "a@example.com", "--name", ".."],
        &["route", "delete", ""],
        &["cert", "show", " "],
        &["oauth", "client", ""],
        &["service", "show", ""],
    ] {
        let err = cli.run(args).usage();
        assert!(err.contains("cannot be a name"), "{args:?}: {err}");
    }
    // Against no server at all it is still exit 2: no request was tried.
    assert!(gone.run(&["proxy", "show", ""]).usage().contains("cannot be a name"));
    for host in ["auth", "mcp"] {
        assert_eq!(cli.run(&["proxy", "show", host, "--json"]).json()["hostname"], host);
    }

    // The OAuth server's health through the CLI.
    let v = cli.run(&["oauth", "health", "--json"]).json();
    assert!(v["issuer"].as_str().is_some_and(|i| i.starts_with("https://")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resource_registry_through_the_cli() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let cli = Cli::new(&p, &p.admin_token);
    cli.run(&["proxy", "create", "tools.test", "http://127.0.0.1:9", "--no-https"]).ok();
    let uri = "https://tools.test/mcp";

    cli.run(&["resource", "register", uri, "tools.test", "Tools", "--scopes", "mcp:read,mcp:write"])
        .ok();
    let v = cli.run(&["resource", "show", uri, "--json"]).json();
    assert_eq!(
        (v["name"].as_str(), v["proxy_target"].as_str()),
        (Some("Tools"), Some("tools.test")),
        "{v}"
    );
    assert_eq!(v["scopes"], serde_json::json!(["mcp:read", "mcp:write"]), "{v}");
    let listed = cli.run(&["resource", "list", "--json"]).json();
    assert!(listed.to_string().contains(uri), "{listed}");

    cli.run(&[
        "resource",
        "update",
        uri,
        "--set",
        "name=Tool box",
        "--set",
        "scopes=[\"mcp:read\"]",
    ])
    .ok();
    let v = cli.run(&["resource", "show", uri, "--json"]).json();
    assert_eq!(
        (v["name"].as_str(), v["scopes"].clone()),
        (Some("Tool box"), serde_json::json!(["mcp:read"])),
        "{v}"
    );

    // A token for the resource is valid; one for another audience is not (exit 1).
    let (s, t) = p
        .admin(
            "POST",
            "/api/v1/oauth/test-token",
            Some(serde_json::json!({"username": "u", "scope": "mcp:read", "aud": [uri]})),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    cli.run(&["resource", "validate-token", uri, t["access_token"].as_str().unwrap()])
        .ok();
    let (_, other) = p
        .admin(
            "POST",
            "/api/v1/oauth/test-token",
            Some(serde_json::json!({"username": "u", "scope": "mcp:read", "aud": ["https://else.test"]})),
        )
        .await;
    let r = cli.run(&["resource", "validate-token", uri, other["access_token"].as_str().unwrap()]);
    assert_eq!(r.code, Some(1), "{}", r.err);
    assert!(
        r.out.contains("NOT valid") && r.out.contains("audience"),
        "the report says why: {}",
        r.out
    );

    cli.run(&["resource", "delete", uri]).ok();
    assert!(cli.run(&["resource", "show", uri]).refused().contains("not found"));
}

/// `portcullis completion bash` is a script bash loads, and the function it
/// registers completes the verbs (zsh and fish are not installed here; their
/// scripts are checked for the verbs in `newcomer.rs`).
#[test]
fn the_bash_completion_loads_and_completes_verbs() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::harness::run_bin(dir.path(), &["completion", "bash"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let script = dir.path().join("portcullis.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let check = std::process::Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));

    let complete = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "source {script}; complete -p portcullis >/dev/null || exit 3; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; _portcullis portcullis '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script = script.display(),
            words = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            cword = words.len() - 1,
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let out = std::process::Command::new("bash").arg("-c").arg(program).output().unwrap();
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    };
    assert_eq!(complete("portcullis tok"), vec!["token".to_string()]);
    let verbs = complete("portcullis token re");
    assert!(verbs.contains(&"reveal".to_string()), "{verbs:?}");
    let verbs = complete("portcullis proxy auth-");
    for v in ["auth-enable", "auth-disable", "auth-config", "auth-show"] {
        assert!(verbs.contains(&v.to_string()), "{verbs:?}");
    }
}

/// The subcommands listed in the `Commands:` section of `portcullis ARGS --help`.
fn subcommands(args: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.push("--help");
    let out = run_bin(std::path::Path::new("."), &all, &[]);
    assert!(out.status.success(), "{all:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|v| *v != "help")
        .map(str::to_string)
        .collect()
}

/// The README promises "one recipe per CLI verb": every verb of the binary
/// (recursively) is run by some recipe of the justfile, so a verb added
/// without one fails here. `serve` is run by `just run` (scripts/run.sh).
#[test]
fn every_cli_verb_has_a_just_recipe() {
    let justfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/justfile")).unwrap();
    assert!(justfile.contains("./scripts/run.sh"), "just run starts serve");
    let groups = subcommands(&[]);
    assert!(groups.len() > 5 && groups.iter().any(|g| g == "service"), "{groups:?}");
    let mut missing = Vec::new();
    for group in groups.iter().filter(|g| *g != "serve") {
        let verbs = subcommands(&[group]);
        let calls: Vec<String> = if verbs.is_empty() {
            vec![format!("{{{{ cli }}}} {group}")]
        } else {
            verbs.iter().map(|v| format!("{{{{ cli }}}} {group} {v}")).collect()
        };
        for call in calls {
            let runs = justfile.lines().any(|l| {
                let l = l.trim();
                l == call || l.starts_with(&format!("{call} "))
            });
            if !runs {
                missing.push(call);
            }
        }
    }
    assert!(missing.is_empty(), "verbs without a just recipe: {missing:?}");
}
