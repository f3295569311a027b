//! `portcullis service <verb>` for Docker services (issue 19): the real
//! binary against a real `serve` and a real engine (`harness::docker`, host
//! networking on 127.0.0.1, the local busybox image). One server and two
//! containers: every Docker verb's human output, `--json` shape and exit
//! code, another owner refused, and bad names refused before any request.

use std::time::Duration;

use serde_json::{json, Value};

use crate::admin_api::make_token;
use crate::harness::cli::{assert_shape, Cli, Run};
use crate::harness::docker::Engine;
use crate::harness::{eventually, free_port, Redis};
use crate::services::{start, wait_status, DOMAIN};

const SERVICE: &[(&str, &str)] = &[
    ("service_name", "string"),
    ("service_type", "string"),
    ("image", "string"),
    ("status", "string"),
    ("port", "number"),
    ("target_url", "string"),
    ("memory_limit", "string"),
    ("environment", "object"),
    ("port_configs", "array"),
    ("owner_token_hash", "string"),
    ("created_by", "string"),
    ("created_at", "string"),
];
const PORT: &[(&str, &str)] = &[
    ("service_name", "string"),
    ("port_name", "string"),
    ("host_port", "number"),
    ("bind_address", "string"),
    ("protocol", "string"),
    ("require_token", "bool"),
];

/// `-- COMMAND` of a busybox httpd on `$BIND_ADDRESS:$PORT` that prints
/// `started-{name}` and serves `hello-{name}`.
fn httpd(name: &str) -> [String; 4] {
    let script = format!(
        "echo started-{name}; echo hello-{name} > /www/index.html; \
         exec /bin/busybox httpd -f -p $BIND_ADDRESS:$PORT -h /www"
    );
    ["/bin/busybox".into(), "sh".into(), "-c".into(), script]
}

/// `service ARGS... -- COMMAND`.
fn with_command(cli: &Cli, args: &[&str], command: &[String]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--");
    all.extend(command.iter().map(String::as_str));
    cli.run(&all)
}

/// The body of `GET http://127.0.0.1:{port}/` once it answers 200.
async fn direct(port: u16) -> Option<String> {
    eventually(Duration::from_secs(20), || async move {
        let r = reqwest::get(format!("http://127.0.0.1:{port}/")).await.ok()?;
        if r.status() != 200 {
            return None;
        }
        r.text().await.ok()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_services_through_the_cli() {
    let engine = Engine::shared();
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let admin = Cli::new(&p, &p.admin_token);
    let alice = Cli::new(&p, &make_token(&p, "alice", "user").await);
    let bob = Cli::new(&p, &make_token(&p, "bob", "user").await);
    let host = format!("cli-web.{DOMAIN}");

    // Bad command lines: exit 2 before any request.
    for args in [
        &["service", "show", ".."][..],
        &["service", "delete", ""],
        &["service", "logs", "."],
        &["service", "port-remove", "cli-web", ""],
    ] {
        let err = alice.run(args).usage();
        assert!(err.contains("cannot be a name"), "{args:?}: {err}");
    }
    alice.run(&["service", "create", "cli-web"]).usage();
    alice.run(&["service", "logs", "cli-web", "--lines", "many"]).usage();
    // Refused by the server: exit 1, the field named, nothing kept.
    let msg = alice
        .run(&["service", "create", "cli-web", "busybox:latest", "--memory", "1k"])
        .refused();
    assert!(msg.contains("memory_limit"), "{msg}");
    let msg = alice.run(&["service", "create", "Bad_Name", "busybox:latest"]).refused();
    assert!(msg.contains("service_name"), "{msg}");

    // create: alice's httpd with a proxy, reached through the data plane.
    let out = with_command(
        &alice,
        &[
            "service",
            "create",
            "cli-web",
            "busybox:latest",
            "--memory",
            "64m",
            "--env",
            "GREETING=hi",
            "--auto-proxy",
        ],
        &httpd("cli-web"),
    )
    .ok();
    let port: u16 = out
        .strip_prefix("created service cli-web (running) on port ")
        .and_then(|r| r.split_once(' '))
        .and_then(|(p, _)| p.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(out.ends_with(&format!(" -> http://127.0.0.1:{port}\n")), "{out}");
    let body = wait_status(&p, &host, "/", 200).await;
    assert_eq!(body.as_str().map(str::trim), Some("hello-cli-web"));
    let msg = alice.run(&["service", "create", "cli-web", "busybox:latest"]).refused();
    assert!(msg.contains("already exists"), "{msg}");

    // create-exposed: the admin's httpd published on 127.0.0.1 directly.
    let exposed = free_port();
    let v = with_command(
        &admin,
        &[
            "service",
            "create-exposed",
            "cli-exp",
            "busybox:latest",
            &exposed.to_string(),
            "127.0.0.1",
            "--json",
        ],
        &httpd("cli-exp"),
    )
    .json();
    assert_shape(&v, SERVICE);
    assert_eq!(
        (v["port"].as_u64(), v["expose_ports"].as_bool(), v["bind_address"].as_str()),
        (Some(u64::from(exposed)), Some(true), Some("127.0.0.1")),
        "{v}"
    );
    let body = direct(exposed)
        .await
        .unwrap_or_else(|| panic!("127.0.0.1:{exposed} never answered"));
    assert_eq!(body.trim(), "hello-cli-exp");

    // list: each user sees only their own; the admin sees both.
    let table = alice.run(&["service", "list"]).ok();
    for col in ["NAME", "IMAGE", "STATUS", "PORT", "TARGET"] {
        assert!(table.lines().next().unwrap().contains(col), "{table}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with("cli-web "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("running") && row.contains(&port.to_string()), "{row}");
    assert!(!table.contains("cli-exp"), "{table}");
    assert_eq!(bob.run(&["service", "list"]).ok(), "no services\n");
    let all = admin.run(&["service", "list", "--json"]).json();
    let names: Vec<&str> = all.as_array().unwrap().iter().filter_map(|s| s["service_name"].as_str()).collect();
    assert_eq!(names.len(), 2, "{all}");
    assert!(names.contains(&"cli-web") && names.contains(&"cli-exp"), "{all}");
    all.as_array().unwrap().iter().for_each(|s| assert_shape(s, SERVICE));
    let own = admin.run(&["service", "list", "--owned-only", "--json"]).json();
    assert_eq!(own.as_array().map(Vec::len), Some(1), "{own}");
    assert_eq!(own[0]["service_name"], "cli-exp", "{own}");

    // show
    let shown = alice.run(&["service", "show", "cli-web"]).ok();
    for (key, value) in [("service_name", "cli-web"), ("status", "running"), ("memory_limit", "64m")] {
        assert!(
            shown.lines().any(|l| l.starts_with(&format!("{key}:")) && l.ends_with(value)),
            "{key}: {shown}"
        );
    }
    let v = alice.run(&["service", "show", "cli-web", "--json"]).json();
    assert_shape(&v, SERVICE);
    assert_eq!(v["environment"]["GREETING"], "hi", "{v}");
    assert_eq!(v["created_by"], "alice", "{v}");

    // Another owner: every verb is refused as if the service did not exist.
    for args in [
        &["service", "show", "cli-web"][..],
        &["service", "stop", "cli-web"],
        &["service", "restart", "cli-web"],
        &["service", "logs", "cli-web"],
        &["service", "stats", "cli-web"],
        &["service", "port-list", "cli-web"],
        &["service", "port-add", "cli-web", &free_port().to_string()],
        &["service", "proxy-create", "cli-web", "--hostname", "bob.test"],
        &["service", "delete", "cli-web"],
    ] {
        let msg = bob.run(args).refused();
        assert!(msg.contains("not found"), "{args:?}: {msg}");
    }
    let msg = alice.run(&["service", "cleanup"]).refused();
    assert!(msg.to_lowercase().contains("admin"), "{msg}");
    assert_eq!(
        alice.run(&["service", "show", "cli-web", "--json"]).json()["status"],
        "running",
        "nothing bob did reached it"
    );

    // stop, start, restart
    assert_eq!(alice.run(&["service", "stop", "cli-web"]).ok(), "stop: service cli-web is exited\n");
    let body = wait_status(&p, &host, "/", 503).await;
    assert!(
        body.as_str().unwrap_or_default().contains("service cli-web is not running"),
        "{body}"
    );
    let v = alice.run(&["service", "start", "cli-web", "--json"]).json();
    assert_shape(&v, SERVICE);
    assert_eq!(v["status"], "running", "{v}");
    wait_status(&p, &host, "/", 200).await;
    assert_eq!(
        alice.run(&["service", "restart", "cli-web"]).ok(),
        "restart: service cli-web is running\n"
    );
    wait_status(&p, &host, "/", 200).await;

    // logs and stats
    let logs = alice.run(&["service", "logs", "cli-web", "--lines", "50"]).ok();
    assert!(logs.contains("started-cli-web"), "{logs}");
    let logs = alice.run(&["service", "logs", "cli-web", "--timestamps"]).ok();
    assert!(logs.starts_with("20"), "timestamps first: {logs}");
    let v = alice.run(&["service", "logs", "cli-web", "--json"]).json();
    assert_shape(&v, &[("service_name", "string"), ("logs", "string")]);
    assert!(v["logs"].as_str().unwrap().contains("started-cli-web"), "{v}");
    let stats = alice.run(&["service", "stats", "cli-web"]).ok();
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("memory_limit_bytes:") && l.ends_with(&(64 * 1024 * 1024).to_string())),
        "{stats}"
    );
    let v = alice.run(&["service", "stats", "cli-web", "--json"]).json();
    assert_shape(
        &v,
        &[
            ("cpu_percent", "number"),
            ("memory_usage_bytes", "number"),
            ("memory_limit_bytes", "number"),
            ("pids", "number"),
            ("read_at", "string"),
        ],
    );
    assert!(v["pids"].as_u64().is_some_and(|n| n >= 1), "{v}");

    // proxy-create: another hostname for alice's service; the admin's default one.
    let out = alice.run(&["service", "proxy-create", "cli-web", "--hostname", "alt.test"]).ok();
    assert_eq!(out, format!("created proxy alt.test -> http://127.0.0.1:{port}\n"));
    let body = wait_status(&p, "alt.test", "/", 200).await;
    assert_eq!(body.as_str().map(str::trim), Some("hello-cli-web"));
    let v = admin.run(&["service", "proxy-create", "cli-exp", "--json"]).json();
    assert_shape(&v, &[("hostname", "string"), ("target_url", "string")]);
    assert_eq!(v["hostname"], format!("cli-exp.{DOMAIN}"), "{v}");

    // Ports: list, add, remove; the main port stays.
    let table = alice.run(&["service", "port-list", "cli-web"]).ok();
    for col in ["SERVICE", "NAME", "PORT", "BIND", "PROTO", "TOKEN"] {
        assert!(table.lines().next().unwrap().contains(col), "{table}");
    }
    assert!(
        table.lines().any(|l| l.starts_with("cli-web ") && l.contains(&port.to_string())),
        "{table}"
    );
    let extra = free_port();
    let out = alice
        .run(&["service", "port-add", "cli-web", &extra.to_string(), "--port-name", "metrics"])
        .ok();
    assert_eq!(out, format!("added port {extra} (metrics) to cli-web\n"));
    let ports = alice.run(&["service", "port-list", "cli-web", "--json"]).json();
    let ports = ports.as_array().unwrap();
    assert_eq!(ports.len(), 2, "{ports:?}");
    ports.iter().for_each(|p| assert_shape(p, PORT));
    assert!(
        ports.iter().any(|p| p["host_port"] == extra && p["port_name"] == "metrics"),
        "{ports:?}"
    );
    let main = ports.iter().find(|p| p["host_port"] == port).unwrap()["port_name"]
        .as_str()
        .unwrap()
        .to_string();
    let msg = alice.run(&["service", "port-remove", "cli-web", &main]).refused();
    assert!(msg.contains("main port"), "{msg}");
    let msg = alice.run(&["service", "port-add", "cli-web", "22"]).refused();
    assert!(msg.contains("22"), "{msg}");
    let v = alice.run(&["service", "port-remove", "cli-web", "metrics", "--json"]).json();
    assert_shape(&v, PORT);
    assert_eq!(v["host_port"], extra, "{v}");
    let msg = alice.run(&["service", "port-remove", "cli-web", "metrics"]).refused();
    assert!(msg.contains("not found"), "{msg}");
    let extra2 = free_port();
    alice
        .run(&["service", "port-add", "cli-web", &extra2.to_string(), "--port-name", "again"])
        .ok();
    assert_eq!(
        alice.run(&["service", "port-remove", "cli-web", "again"]).ok(),
        format!("removed port {extra2} (again) from cli-web\n")
    );

    // cleanup: nothing is an orphan here.
    let report = admin.run(&["service", "cleanup"]).ok();
    assert!(report.lines().any(|l| l.starts_with("removed_containers:")), "{report}");
    let v = admin.run(&["service", "cleanup", "--json"]).json();
    assert_shape(
        &v,
        &[
            ("removed_containers", "array"),
            ("missing_containers", "array"),
            ("released_ports", "array"),
        ],
    );
    assert_eq!(v["removed_containers"], json!([]), "{v}");
    assert!(engine.try_docker(&["inspect", "cli-web"]), "a service's container is no orphan");

    // delete: the container, its ports and every proxy to it go.
    assert_eq!(alice.run(&["service", "delete", "cli-web"]).ok(), "deleted service cli-web\n");
    assert!(!engine.try_docker(&["inspect", "cli-web"]), "the container is removed");
    for h in [host.as_str(), "alt.test"] {
        let msg = admin.run(&["proxy", "show", h]).refused();
        assert!(msg.contains("not found"), "{h}: {msg}");
    }
    let msg = alice.run(&["service", "show", "cli-web"]).refused();
    assert!(msg.contains("not found"), "{msg}");
    let v: Value = admin.run(&["service", "delete", "cli-exp", "--json"]).json();
    assert_shape(
        &v,
        &[
            ("status", "string"),
            ("service_name", "string"),
            ("released_ports", "array"),
            ("deleted_proxies", "array"),
        ],
    );
    assert_eq!(v["released_ports"], json!([exposed]), "{v}");
    assert_eq!(v["deleted_proxies"], json!([format!("cli-exp.{DOMAIN}")]), "{v}");
    assert_eq!(admin.run(&["service", "list"]).ok(), "no services\n");
}
