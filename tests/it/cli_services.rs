//! `portcullis service <verb>` for what needs no Docker engine (issue 19):
//! external services (register, show, update, list, unregister), the unified
//! list, and the port verbs, through the real binary against a real server.
//! The Docker verbs are tested with a real engine in `services*.rs`.

use crate::admin_api::{make_token, start};
use crate::harness::cli::{assert_shape, Cli};
use crate::harness::{free_port, Redis};

const EXTERNAL: &[(&str, &str)] = &[("service_name", "string"), ("service_type", "string"), ("target_url", "string")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_services_and_ports_through_the_cli() {
    let redis = Redis::start();
    let p = start(&redis).await;
    let cli = Cli::new(&p, &p.admin_token);

    let out = cli
        .run(&[
            "service",
            "register",
            "billing",
            "http://127.0.0.1:9200",
            "--description",
            "the billing API",
        ])
        .ok();
    assert_eq!(out, "registered service billing -> http://127.0.0.1:9200\n");
    let v = cli.run(&["service", "show-external", "billing", "--json"]).json();
    assert_shape(&v, EXTERNAL);
    assert_eq!(
        (v["target_url"].as_str(), v["service_type"].as_str()),
        (Some("http://127.0.0.1:9200"), Some("external")),
        "{v}"
    );
    assert!(v.to_string().contains("the billing API"), "{v}");
    let shown = cli.run(&["service", "show-external", "billing"]).ok();
    assert!(shown.contains("http://127.0.0.1:9200"), "{shown}");

    let out = cli
        .run(&[
            "service",
            "update-external",
            "billing",
            "http://127.0.0.1:9300",
            "--description",
            "moved",
        ])
        .ok();
    assert_eq!(out, "updated service billing -> http://127.0.0.1:9300\n");
    let listed = cli.run(&["service", "list-external", "--json"]).json();
    let billing = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service_name"] == "billing")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_shape(billing, EXTERNAL);
    assert_eq!(billing["target_url"], "http://127.0.0.1:9300", "{billing}");
    let table = cli.run(&["service", "list-external"]).ok();
    assert!(table.lines().next().unwrap().contains("TARGET_URL"), "{table}");

    // The unified list: external and the built-in api, filtered by type.
    let all = cli.run(&["service", "list-all", "--json"]).json();
    let names: Vec<&str> = all.as_array().unwrap().iter().filter_map(|s| s["service_name"].as_str()).collect();
    assert!(names.contains(&"billing") && names.contains(&"api"), "{all}");
    let ext = cli.run(&["service", "list-all", "--type", "external", "--json"]).json();
    assert!(ext.as_array().unwrap().iter().all(|s| s["service_type"] == "external"), "{ext}");
    let table = cli.run(&["service", "list-all"]).ok();
    for col in ["NAME", "TYPE", "STATUS", "TARGET_URL"] {
        assert!(table.lines().next().unwrap().contains(col), "{table}");
    }
    assert!(table.lines().any(|l| l.starts_with("billing ")), "{table}");

    // Bad input: the server's reason, exit 1.
    let msg = cli.run(&["service", "register", "bad", "ftp://127.0.0.1/x"]).refused();
    assert!(msg.contains("target_url") || msg.contains("http"), "{msg}");
    let msg = cli.run(&["service", "show-external", "nothing"]).refused();
    assert!(msg.contains("not found"), "{msg}");
    let msg = cli.run(&["service", "list-all", "--type", "bogus"]).refused();
    assert!(msg.contains("type"), "{msg}");
    cli.run(&["service", "port-check", "not-a-port"]).usage();

    // Ports: a port in use is named as such; the global views parse.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port().to_string();
    let v = cli.run(&["service", "port-check", &busy, "--bind", "127.0.0.1", "--json"]).json();
    assert_eq!(v["available"], false, "{v}");
    let out = cli.run(&["service", "port-check", &busy, "--bind", "127.0.0.1"]).ok();
    assert!(out.starts_with(&format!("port {busy} is not available: ")), "{out}");
    let free = free_port().to_string();
    let v = cli.run(&["service", "port-check", &free, "--json"]).json();
    assert!(v["available"].is_boolean(), "{v}");
    let ports = cli.run(&["service", "ports-global", "--json"]).json();
    assert!(ports.is_array() || ports.is_object(), "{ports}");
    cli.run(&["service", "ports-global"]).ok();
    let ranges = cli.run(&["service", "ports-global", "--available-only", "--json"]).json();
    assert!(ranges.is_object(), "{ranges}");
    let msg = cli.run(&["service", "port-list", "nothing"]).refused();
    assert!(msg.contains("not found"), "{msg}");

    // A user may read but not register or remove.
    let user = Cli::new(&p, &make_token(&p, "u", "user").await);
    let msg = user.run(&["service", "register", "mine", "http://127.0.0.1:9400"]).refused();
    assert!(msg.to_lowercase().contains("admin"), "{msg}");
    let msg = user.run(&["service", "unregister", "billing"]).refused();
    assert!(msg.to_lowercase().contains("admin"), "{msg}");

    assert_eq!(cli.run(&["service", "unregister", "billing"]).ok(), "deleted service billing\n");
    let msg = cli.run(&["service", "unregister", "billing"]).refused();
    assert!(msg.contains("not found"), "{msg}");
}
