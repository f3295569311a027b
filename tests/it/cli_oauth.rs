//! `portcullis oauth <verb>` end to end (issue 19): every OAuth admin verb
//! through the real binary against one real server, with a client registered
//! through the real `/register` and tokens minted by the real signing code;
//! the human output, the `--json` shape and the exit codes, and a user token
//! refused by each admin verb.

use serde_json::{json, Value};

use crate::admin_api::{make_token, start};
use crate::harness::cli::{assert_shape, Cli};
use crate::harness::Redis;

const CLIENT: &[(&str, &str)] = &[
    ("client_id", "string"),
    ("client_name", "string|null"),
    ("redirect_uris", "array"),
    ("grant_types", "array"),
    ("token_endpoint_auth_method", "string"),
    ("source", "string"),
];

const TOKEN: &[(&str, &str)] = &[
    ("jti", "string"),
    ("client_id", "string"),
    ("sub", "string"),
    ("username", "string"),
    ("scope", "string"),
    ("aud", "array"),
    ("iat", "number"),
    ("exp", "number"),
    ("family", "string"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_oauth_admin_verb_through_the_cli() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let cli = Cli::new(&p, &p.admin_token);

    // A client registered the way an MCP client does it.
    let r = reqwest::Client::new()
        .post(p.api("/register"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1:5555/cb"], "token_endpoint_auth_method": "none", "client_name": "cli-probe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let client_id = r.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_string();

    let list = cli.run(&["oauth", "clients"]).ok();
    let header = list.lines().next().unwrap();
    for col in ["CLIENT_ID", "NAME", "SOURCE", "GRANTS", "AUTH", "REDIRECT_URIS"] {
        assert!(header.contains(col), "{list}");
    }
    assert!(
        list.lines()
            .any(|l| l.starts_with(&client_id) && l.contains("cli-probe") && l.contains("http://127.0.0.1:5555/cb")),
        "{list}"
    );
    let clients = cli.run(&["oauth", "clients", "--json"]).json();
    let mine = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == client_id.as_str())
        .unwrap();
    assert_shape(mine, CLIENT);
    let one = cli.run(&["oauth", "client", &client_id, "--json"]).json();
    assert_shape(&one, CLIENT);
    assert_eq!(one["client_name"], "cli-probe", "{one}");
    let shown = cli.run(&["oauth", "client", &client_id]).ok();
    assert!(
        shown.lines().any(|l| l.starts_with("client_name:") && l.ends_with("cli-probe")),
        "{shown}"
    );

    // Two tokens of that client, one of them later revoked.
    let mut jtis = Vec::new();
    for user in ["alice", "bob"] {
        let (s, t) = p
            .admin(
                "POST",
                "/api/v1/oauth/test-token",
                Some(json!({"username": user, "scope": "mcp:read", "client_id": client_id, "aud": ["https://tools.test"]})),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        jtis.push(t["jti"].as_str().unwrap().to_string());
    }
    let table = cli.run(&["oauth", "client-tokens", &client_id]).ok();
    for (jti, user) in jtis.iter().zip(["alice", "bob"]) {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(jti.as_str()) && l.contains(user) && l.contains("mcp:read")),
            "{table}"
        );
    }
    let listed = cli.run(&["oauth", "client-tokens", &client_id, "--json"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_shape(&listed[0], TOKEN);

    let all = cli.run(&["oauth", "tokens", "--json"]).json();
    assert_shape(
        &all,
        &[("active_access_tokens", "number"), ("by_client", "object"), ("tokens", "array")],
    );
    assert_eq!(all["by_client"][&client_id], 2, "{all}");
    let report = cli.run(&["oauth", "tokens"]).ok();
    assert!(report.contains("active access tokens: "), "{report}");
    assert!(report.contains(&format!("  {client_id}: 2")), "{report}");

    let t = cli.run(&["oauth", "token", &jtis[0], "--json"]).json();
    assert_shape(&t, TOKEN);
    assert_eq!(
        (t["username"].as_str(), t["client_id"].as_str()),
        (Some("alice"), Some(client_id.as_str()))
    );
    let shown = cli.run(&["oauth", "token", &jtis[0]]).ok();
    assert!(shown.lines().any(|l| l.starts_with("username:") && l.ends_with("alice")), "{shown}");

    // Sessions: each minted token is its own family.
    let sessions = cli.run(&["oauth", "sessions", "--json"]).json();
    let bob_session = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["username"] == "bob")
        .unwrap_or_else(|| panic!("{sessions}"))
        .clone();
    assert_shape(
        &bob_session,
        &[
            ("session_id", "string"),
            ("client_id", "string"),
            ("username", "string"),
            ("sub", "string"),
            ("tokens", "number"),
        ],
    );
    let table = cli.run(&["oauth", "sessions"]).ok();
    for col in ["SESSION_ID", "CLIENT_ID", "USER", "SUB", "TOKENS"] {
        assert!(table.lines().next().unwrap().contains(col), "{table}");
    }
    let session_id = bob_session["session_id"].as_str().unwrap();
    assert!(table.lines().any(|l| l.starts_with(session_id) && l.contains("bob")), "{table}");

    let m = cli.run(&["oauth", "metrics", "--json"]).json();
    assert_shape(&m, &[("active_access_tokens", "number"), ("registered_clients", "number")]);
    assert!(m["active_access_tokens"].as_u64() >= Some(2), "{m}");
    assert!(cli.run(&["oauth", "metrics"]).ok().contains("registered_clients:"));

    // Revocations: the token and the session are gone afterwards.
    assert_eq!(
        cli.run(&["oauth", "revoke-token", &jtis[0]]).ok(),
        format!("revoked token {}\n", jtis[0])
    );
    let msg = cli.run(&["oauth", "token", &jtis[0]]).refused();
    assert!(msg.contains("not found"), "{msg}");
    let v = cli.run(&["oauth", "revoke-session", session_id, "--json"]).json();
    assert_eq!(v["status"], "revoked", "{v}");
    let left = cli.run(&["oauth", "client-tokens", &client_id, "--json"]).json();
    assert_eq!(left, json!([]), "both tokens revoked");
    assert!(cli.run(&["oauth", "client-tokens", &client_id]).ok().contains("no active tokens"));

    // Key rotation: a new kid, published in the JWKS the server answers.
    let before = cli.run(&["oauth", "health", "--json"]).json();
    assert_shape(
        &before,
        &[
            ("status", "string"),
            ("issuer", "string"),
            ("login_provider", "string"),
            ("signing_kid", "string"),
        ],
    );
    let out = cli.run(&["oauth", "rotate-keys"]).ok();
    let kid = out
        .trim_end()
        .strip_prefix("rotated the signing key; tokens are now signed with kid ")
        .unwrap_or_else(|| panic!("{out}"));
    assert_ne!(kid, before["signing_kid"].as_str().unwrap());
    let after = cli.run(&["oauth", "health", "--json"]).json();
    assert_eq!(after["signing_kid"], kid, "{after}");
    let rotated = cli.run(&["oauth", "rotate-keys", "--json"]).json();
    assert_shape(&rotated, &[("status", "string"), ("current_kid", "string"), ("jwks", "object")]);
    let health = cli.run(&["oauth", "health"]).ok();
    assert!(health.lines().any(|l| l.starts_with("issuer:")), "{health}");

    // A user is refused every admin verb, with the server's reason (exit 1).
    let user = Cli::new(&p, &make_token(&p, "user1", "user").await);
    for verb in [
        vec!["oauth", "clients"],
        vec!["oauth", "tokens"],
        vec!["oauth", "sessions"],
        vec!["oauth", "rotate-keys"],
        vec!["oauth", "delete-client", &client_id],
    ] {
        let msg = user.run(&verb).refused();
        assert!(msg.to_lowercase().contains("admin"), "{verb:?}: {msg}");
    }

    // Deleting the client; then it is not found (exit 1) and a bad verb is exit 2.
    assert_eq!(
        cli.run(&["oauth", "delete-client", &client_id]).ok(),
        format!("deleted client {client_id}\n")
    );
    let msg = cli.run(&["oauth", "client", &client_id]).refused();
    assert!(msg.contains("not found"), "{msg}");
    // Revoking is idempotent: an unknown session is already revoked.
    let out = cli.run(&["oauth", "revoke-session", "no-such-session"]).ok();
    assert_eq!(out, "revoked session no-such-session\n");
    cli.run(&["oauth", "client"]).usage();
}
