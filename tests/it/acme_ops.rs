//! Certificate operations that had no test (issue 19), driven through the
//! real CLI with `--wait` against Pebble: renew now, staging to production,
//! a proxy's generate (attached when issued) and attach of an existing
//! certificate, each seen in the served certificate.

use std::process::Output;

use serde_json::Value;

use crate::harness::pebble::Pebble;
use crate::harness::{free_port, run_bin, Portcullis, Redis};

/// Runs the CLI against `p` as the admin.
fn cli(p: &Portcullis, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_string_lossy().into_owned();
    let api = p.api("");
    run_bin(
        dir.path(),
        args,
        &[("HOME", &home), ("API_URL", &api), ("ADMIN_TOKEN", &p.admin_token)],
    )
}

fn ok(out: Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

async fn cert(p: &Portcullis, name: &str) -> Value {
    let (s, v) = p.admin("GET", &format!("/api/v1/certificates/{name}"), None).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// The serial of the certificate served for `sni` (no chain verification:
/// which certificate is served is the point here).
fn served_serial(port: u16, sni: &str) -> String {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let s = b.build().connect(sni, tcp).unwrap();
    let c = s.ssl().peer_certificate().unwrap();
    c.serial_number().to_bn().unwrap().to_hex_str().unwrap().to_string()
}

/// Polls until `sni` is served the certificate with `serial`.
async fn served(p: &Portcullis, sni: &str, serial: &str) -> bool {
    let (port, sni, want) = (p.https_port, sni.to_string(), serial.to_ascii_uppercase());
    crate::harness::eventually(std::time::Duration::from_secs(10), || {
        let (sni, want) = (sni.clone(), want.clone());
        async move {
            let got = tokio::task::spawn_blocking(move || served_serial(port, &sni)).await.ok()?;
            (got.to_ascii_uppercase() == want).then_some(())
        }
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_to_production_generate_and_attach_through_the_cli() {
    let redis = Redis::start();
    let http = free_port();
    let pebble = Pebble::start(http, 0);
    let mut env: Vec<(&str, String)> = pebble.env();
    // Staging and production are the same Pebble under two names, so the
    // directory a certificate came from can be told apart.
    env.retain(|(k, _)| *k != "ACME_STAGING_URL");
    env.push(("ACME_STAGING_URL", pebble.directory().replace("127.0.0.1", "localhost")));
    env.push(("HTTP_PORT", http.to_string()));
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = Portcullis::start_with(&redis, &env_ref).await;
    let production = pebble.directory();

    // Renew now: a new serial, served.
    ok(cli(&p, &["cert", "create", "ops", "ops.example.org", "--wait", "--timeout", "90"]));
    let first = cert(&p, "ops").await;
    assert_eq!(first["acme_directory_url"], production.as_str(), "{first}");
    ok(cli(&p, &["cert", "renew", "ops", "--wait", "--timeout", "90"]));
    let renewed = cert(&p, "ops").await;
    assert_ne!(renewed["serial"], first["serial"], "renew kept the serial");
    assert!(served(&p, "ops.example.org", renewed["serial"].as_str().unwrap()).await);

    // Staging, then to production: re-issued from the production directory.
    ok(cli(
        &p,
        &[
            "cert",
            "create",
            "stage",
            "stage.example.org",
            "--staging",
            "--wait",
            "--timeout",
            "90",
        ],
    ));
    let staged = cert(&p, "stage").await;
    assert!(staged["acme_directory_url"].as_str().unwrap().contains("localhost"), "{staged}");
    ok(cli(&p, &["cert", "to-production", "stage", "--wait", "--timeout", "90"]));
    let prod = cert(&p, "stage").await;
    assert_eq!(prod["acme_directory_url"], production.as_str(), "{prod}");
    assert_ne!(prod["serial"], staged["serial"]);

    // A proxy's own certificate: generated, then attached when issued.
    ok(cli(
        &p,
        &[
            "proxy",
            "create",
            "gen.example.org",
            "http://127.0.0.1:9",
            "--set",
            "acme_auto=false",
        ],
    ));
    ok(cli(&p, &["proxy", "cert-generate", "gen.example.org", "--wait", "--timeout", "90"]));
    let (_, proxy) = p.admin("GET", "/api/v1/proxy/targets/gen.example.org", None).await;
    let name = proxy["cert_name"]
        .as_str()
        .unwrap_or_else(|| panic!("not attached: {proxy}"))
        .to_string();
    let generated = cert(&p, &name).await;
    assert_eq!(generated["domains"], serde_json::json!(["gen.example.org"]));
    assert!(served(&p, "gen.example.org", generated["serial"].as_str().unwrap()).await);

    // Attach an existing certificate to another proxy: it is served there.
    ok(cli(
        &p,
        &["cert", "create", "shared", "att.example.org", "--wait", "--timeout", "90"],
    ));
    ok(cli(
        &p,
        &[
            "proxy",
            "create",
            "att.example.org",
            "http://127.0.0.1:9",
            "--set",
            "acme_auto=false",
        ],
    ));
    ok(cli(&p, &["proxy", "cert-attach", "att.example.org", "shared"]));
    let (_, proxy) = p.admin("GET", "/api/v1/proxy/targets/att.example.org", None).await;
    assert_eq!(proxy["cert_name"], "shared", "{proxy}");
    assert!(served(&p, "att.example.org", cert(&p, "shared").await["serial"].as_str().unwrap()).await);

    // A failed attach names the reason and exits 1.
    let out = cli(&p, &["proxy", "cert-attach", "att.example.org", "no-such-cert"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
}

/// `cert create --wait` against a directory nothing answers at: the progress
/// shows each retry, and the failure names the directory and the cause
/// (it used to say only "client error (Connect)" after 28 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_directory_is_named_with_its_cause_and_retries() {
    let redis = Redis::start();
    // serve_env points ACME at a closed local port
    let p = Portcullis::start(&redis).await;
    let out = cli(
        &p,
        &["cert", "create", "nowhere", "nowhere.example.org", "--wait", "--timeout", "120"],
    );
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("retrying (2/3) after http://127.0.0.1:9/directory"), "{all}");
    let failed = all.lines().rfind(|l| l.contains("failed")).unwrap_or_default();
    assert!(failed.contains("http://127.0.0.1:9/directory"), "{all}");
    assert!(failed.to_lowercase().contains("connect"), "the cause is missing: {failed}");
}
