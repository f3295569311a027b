//! `portcullis token <verb>` beyond the round trip in `cli.rs` (issue 19):
//! `create` importing a value, `show`/`info`/`reveal` as people read them,
//! `email --name`, `delete --json`, the refusals with their exit codes, and
//! the `.env` the CLI reads in its working directory, the real environment
//! overriding it.

use crate::admin_api::start;
use crate::harness::cli::{assert_shape, Cli};
use crate::harness::{refused_port, run_bin, Redis};

const TOKEN: &[(&str, &str)] = &[
    ("name", "string"),
    ("scope", "string"),
    ("cert_email", "string|null"),
    ("created_by", "string|null"),
    ("created_at", "string"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_verbs_and_the_dot_env_the_cli_reads() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let admin = Cli::new(&p, &p.admin_token);

    // An imported value is the token: it authenticates as the new name.
    let imported = "pcl_imported-from-the-old-system-0123456789abcdef";
    let out = admin
        .run(&[
            "token",
            "create",
            "ci",
            "--value",
            imported,
            "--scope",
            "admin",
            "--email",
            "ci@example.com",
        ])
        .ok();
    assert!(out.starts_with("created token ci (scope: admin)\n"), "{out}");
    assert!(out.contains(&format!("\n  {imported}\n")), "{out}");
    let ci = Cli::new(&p, imported);
    let me = ci.run(&["token", "info", "--json"]).json();
    assert_shape(&me, TOKEN);
    assert_eq!((me["name"].as_str(), me["scope"].as_str()), (Some("ci"), Some("admin")), "{me}");
    assert!(!me.to_string().contains(imported), "info never returns the value: {me}");
    let info = ci.run(&["token", "info"]).ok();
    assert!(info.lines().any(|l| l.starts_with("name:") && l.ends_with("ci")), "{info}");

    // Without --value one is generated; --json carries it once.
    let v = admin.run(&["token", "create", "gen", "--json"]).json();
    assert_shape(&v, &[("name", "string"), ("scope", "string"), ("token", "string")]);
    assert_eq!(v["scope"], "user", "the default scope");
    let generated = v["token"].as_str().unwrap().to_string();
    assert_ne!(generated, imported);

    // Refusals: exit 1 with the server's reason; a bad scope is a usage error.
    let msg = admin.run(&["token", "create", "short", "--value", "tooshort"]).refused();
    assert!(msg.contains("token") || msg.contains("32"), "{msg}");
    let msg = admin.run(&["token", "create", "ci"]).refused();
    assert!(msg.contains("exists") || msg.contains("ci"), "{msg}");
    let msg = admin.run(&["token", "create", "dup-value", "--value", imported]).refused();
    assert!(!msg.contains(imported), "the value is not echoed: {msg}");
    admin.run(&["token", "create", "x", "--scope", "root"]).usage();
    admin.run(&["token", "show"]).usage();

    // show: a person's view and the JSON shape; never the value.
    let shown = admin.run(&["token", "show", "ci"]).ok();
    assert!(
        shown.lines().any(|l| l.starts_with("cert_email:") && l.ends_with("ci@example.com")),
        "{shown}"
    );
    assert!(!shown.contains(imported), "{shown}");
    let v = admin.run(&["token", "show", "gen", "--json"]).json();
    assert_shape(&v, TOKEN);
    assert!(v.get("token").is_none(), "{v}");

    // reveal for people: the value and the name, not the stored hash.
    let block = admin.run(&["token", "reveal", "gen"]).ok();
    assert!(block.contains(&generated) && block.contains("gen"), "{block}");
    assert!(!block.lines().any(|l| l.starts_with("hash:")), "{block}");
    let msg = Cli::new(&p, &generated).run(&["token", "reveal", "ci"]).refused();
    assert!(msg.to_lowercase().contains("admin"), "{msg}");

    // email --name: an admin changes another token's e-mail.
    let out = admin.run(&["token", "email", "gen@example.com", "--name", "gen"]).ok();
    assert_eq!(out, "updated the certificate e-mail of token gen to gen@example.com\n");
    assert_eq!(
        admin.run(&["token", "show", "gen", "--json"]).json()["cert_email"],
        "gen@example.com"
    );
    let msg = admin.run(&["token", "email", "not-an-email", "--name", "gen"]).refused();
    assert!(msg.contains("cert_email") || msg.contains("e-mail"), "{msg}");

    // delete --json: what was removed, then the token no longer authenticates.
    let v = admin.run(&["token", "delete", "gen", "--json"]).json();
    assert_eq!(v["name"], "gen", "{v}");
    let msg = Cli::new(&p, &generated).run(&["token", "info"]).refused();
    assert!(!msg.contains("cannot reach"), "{msg}");
    let msg = admin.run(&["token", "delete", "gen"]).refused();
    assert!(msg.contains("not found"), "{msg}");
    let names: Vec<String> = admin
        .run(&["token", "list", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["ci".to_string()], "{names:?}");
    assert_eq!(
        admin.run(&["token", "list"]).ok().lines().filter(|l| l.starts_with("ci ")).count(),
        1
    );

    // `.env` in the working directory configures the CLI; the real
    // environment overrides it.
    let dir = admin.dir.path();
    std::fs::write(
        dir.join(".env"),
        format!("API_URL={}\nADMIN_TOKEN={}\n", admin.api_url, p.admin_token),
    )
    .unwrap();
    let info = |env: &[(&str, &str)]| {
        let out = run_bin(dir, &["token", "info", "--json"], env);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = info(&[]);
    assert_eq!(code, Some(0), "{err}");
    let me: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(me["scope"], "admin", "the .env token: {me}");
    let (code, out, err) = info(&[("ADMIN_TOKEN", imported)]);
    assert_eq!(code, Some(0), "{err}");
    let me: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(me["name"], "ci", "the real ADMIN_TOKEN wins over .env: {me}");
    let (_hold, closed) = refused_port();
    let (code, _, err) = info(&[("API_URL", &format!("http://127.0.0.1:{closed}"))]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{closed}")),
        "the real API_URL wins over .env: {err}"
    );
}
