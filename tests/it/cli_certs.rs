//! `portcullis cert create-multi` and `cert status` end to end (issue 19):
//! the real binary orders one certificate for several names from Pebble,
//! follows it with `status --wait`, and reads the issued record; the other
//! certificate verbs are in `cli.rs` and `acme_ops.rs`.

use crate::harness::cli::{assert_shape, Cli};
use crate::harness::pebble::Pebble;
use crate::harness::{free_port, Portcullis, Redis};

const STATUS: &[(&str, &str)] = &[("status", "string"), ("message", "string")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_domain_certificate_followed_with_status() {
    let redis = Redis::start();
    let http = free_port();
    let pebble = Pebble::start(http, 0);
    let mut env: Vec<(&str, String)> = pebble.env();
    env.push(("HTTP_PORT", http.to_string()));
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = Portcullis::start_with(&redis, &env_ref).await;
    let cli = Cli::new(&p, &p.admin_token);

    let out = cli.run(&["cert", "create-multi", "pair", "one.example.org,two.example.org"]).ok();
    assert_eq!(
        out,
        "requested certificate pair for one.example.org,two.example.org; follow it with `portcullis cert status pair --wait`\n"
    );
    let now = cli.run(&["cert", "status", "pair", "--json"]).json();
    assert_shape(&now, STATUS);

    let done = cli.run(&["cert", "status", "pair", "--wait", "--timeout", "90", "--json"]).json();
    assert_shape(&done, STATUS);
    assert_eq!(done["status"], "issued", "{done}");
    let line = cli.run(&["cert", "status", "pair"]).ok();
    assert!(line.lines().any(|l| l.starts_with("status:") && l.ends_with("issued")), "{line}");

    let v = cli.run(&["cert", "show", "pair", "--json"]).json();
    assert_eq!(v["domains"], serde_json::json!(["one.example.org", "two.example.org"]), "{v}");
    let list = cli.run(&["cert", "list"]).ok();
    assert!(list.lines().any(|l| l.starts_with("pair ")), "{list}");

    // Bad input: the server's reason with exit 1, a bad option exit 2.
    let msg = cli.run(&["cert", "create-multi", "bad", "not a domain,x"]).refused();
    assert!(msg.contains("domain"), "{msg}");
    let msg = cli.run(&["cert", "status", "nothing"]).refused();
    assert!(msg.contains("not found"), "{msg}");
    cli.run(&["cert", "status", "pair", "--timeout", "5"]).usage();
    cli.run(&["cert", "create-multi", "bad", "a.example.org", "--key-type", "dsa"])
        .usage();
}
