//! A real ACME server: Debian's Pebble with pebble-challtestsrv as its DNS
//! (every name resolves to 127.0.0.1 unless a test says otherwise).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, Proc};

pub struct Pebble {
    pub dir: tempfile::TempDir,
    /// The port Pebble sends HTTP-01 validations to.
    pub http_port: u16,
    pub acme_port: u16,
    pub mgmt_port: u16,
    pub dns_mgmt_port: u16,
    _dns: Proc,
    _pebble: Proc,
}

fn write_tls_material(dir: &std::path::Path) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};
    let build = |cn: &str, ca: bool, signer: Option<(&X509, &PKey<openssl::pkey::Private>)>| {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&BigNum::from_u32(rand::random::<u32>() >> 1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(signer.map_or(&name, |(c, _)| c.subject_name())).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap()).unwrap();
        if ca {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
        } else {
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .dns("localhost")
                .build(&b.x509v3_context(signer.map(|(c, _)| &**c), None))
                .unwrap();
            b.append_extension(san).unwrap();
        }
        b.sign(signer.map_or(&key, |(_, k)| k), MessageDigest::sha256()).unwrap();
        (b.build(), key)
    };
    let (ca, ca_key) = build("Test CA for Pebble", true, None);
    let (leaf, leaf_key) = build("127.0.0.1", false, Some((&ca, &ca_key)));
    std::fs::write(dir.join("ca.pem"), ca.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.private_key_to_pem_pkcs8().unwrap()).unwrap();
}

fn start_proc(dir: &std::path::Path, name: &str, cmd: &mut Command) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let f = std::fs::File::create(&log).unwrap();
    let child = cmd
        .current_dir(dir)
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    Proc::from_child(child, log)
}

impl Pebble {
    /// Starts Pebble validating HTTP-01 on `http_port`; `nonce_reject` is the
    /// percentage of nonces Pebble rejects (0 = none).
    pub fn start(http_port: u16, nonce_reject: u32) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        write_tls_material(dir.path());
        let (acme_port, mgmt_port, dns_port, dns_mgmt_port) = (free_port(), free_port(), free_port(), free_port());
        let cfg = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": "cert.pem", "privateKey": "key.pem",
            "httpPort": http_port, "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": false
        }});
        std::fs::write(dir.path().join("pebble.json"), cfg.to_string()).unwrap();
        let dns = start_proc(
            dir.path(),
            "challtestsrv",
            Command::new("pebble-challtestsrv").args([
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{dns_mgmt_port}"),
            ]),
        );
        let pebble = start_proc(
            dir.path(),
            "pebble",
            Command::new("pebble")
                .args(["-config", "pebble.json", "-dnsserver", &format!("127.0.0.1:{dns_port}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", nonce_reject.to_string())
                .env("PEBBLE_AUTHZREUSE", "0"),
        );
        let p = Pebble {
            dir,
            http_port,
            acme_port,
            mgmt_port,
            dns_mgmt_port,
            _dns: dns,
            _pebble: pebble,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let up = std::net::TcpStream::connect(("127.0.0.1", acme_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", dns_mgmt_port)).is_ok();
            if up {
                return p;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "pebble did not start: {}",
            std::fs::read_to_string(p.dir.path().join("pebble.log")).unwrap_or_default()
        );
    }

    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    pub fn ca_bundle(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    /// Env for portcullis to use this Pebble.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ACME_DIRECTORY_URL", self.directory()),
            ("ACME_STAGING_URL", self.directory()),
            ("ACME_CA_BUNDLE", self.ca_bundle()),
            ("ACME_POLL_INTERVAL_SECONDS", "1".into()),
            ("ACME_POLL_MAX_ATTEMPTS", "30".into()),
        ]
    }

    /// Pebble's root for issued certificates (PEM).
    pub async fn issuing_root(&self) -> String {
        let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
        client
            .get(format!("https://127.0.0.1:{}/roots/0", self.mgmt_port))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Makes `host` resolve to `ip` for Pebble's validation.
    pub async fn set_a_record(&self, host: &str, ip: &str) {
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/add-a", self.dns_mgmt_port))
            .json(&serde_json::json!({"host": host, "addresses": [ip]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
}
