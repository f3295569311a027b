//! `portcullis proxy <verb>`: proxy targets (`/api/v1/proxy/targets`).

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::args::{headers_object, parse_kv, parse_set, set_object};
use super::certs::WaitOpts;
use super::error::CliResult;
use super::http::Api;
use super::output::{emit, field, fields, flag, table, Column};
use super::proxy_auth::{AuthConfig, AuthEnable, ResourceSet};

const PROXY: &str = "proxy";
const TARGETS: &str = "targets";
const AUTH: &str = "auth";
const MCP: &str = "mcp";

/// Options of `proxy create`.
#[derive(Args, Debug, Default)]
pub struct CreateProxy {
    /// Hostname to serve (e.g. app.example.com).
    #[arg(value_parser = super::args::name)]
    pub hostname: String,
    /// Where requests go when no route matches (http:// or https://).
    pub target_url: String,
    /// Certificate to serve for this hostname.
    #[arg(long)]
    pub cert_name: Option<String>,
    /// Send the target's Host header upstream instead of the client's.
    #[arg(long)]
    pub no_preserve_host: bool,
    /// Do not serve plain HTTP: plain-HTTP requests are redirected to HTTPS
    /// (308). Not together with --no-https (the server refuses a proxy that
    /// serves neither).
    #[arg(long)]
    pub no_http: bool,
    /// Do not serve HTTPS: HTTPS requests are redirected to plain HTTP
    /// (308). Not together with --no-http.
    #[arg(long)]
    pub no_https: bool,
    /// Skip TLS verification of the upstream (self-signed backends).
    #[arg(long)]
    pub insecure_upstream: bool,
    /// Header added to upstream requests (repeatable).
    #[arg(long = "header", value_name = "K=V", value_parser = parse_kv)]
    pub headers: Vec<(String, String)>,
    /// Header added to responses (repeatable).
    #[arg(long = "response-header", value_name = "K=V", value_parser = parse_kv)]
    pub response_headers: Vec<(String, String)>,
    /// Any other proxy field; the value is JSON, or a plain string (repeatable).
    #[arg(long = "set", value_name = "FIELD=JSON", value_parser = parse_set)]
    pub sets: Vec<(String, Value)>,
}

/// Proxy verbs.
#[derive(Subcommand, Debug)]
pub enum ProxyVerb {
    /// Create a proxy target.
    Create(CreateProxy),
    /// List proxy targets.
    List,
    /// Show one proxy target.
    Show {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
    },
    /// Change fields of a proxy target.
    Update {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
        /// Field to change; the value is JSON, or a plain string (repeatable).
        #[arg(long = "set", value_name = "FIELD=JSON", value_parser = parse_set, required = true)]
        sets: Vec<(String, Value)>,
    },
    /// Enable a proxy target.
    Enable {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
    },
    /// Disable a proxy target (it answers 503).
    Disable {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
    },
    /// Delete a proxy target.
    Delete {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
    },
    /// Issue an ACME certificate for the proxy's hostname and attach it when issued.
    CertGenerate {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
        /// Use the ACME staging directory.
        #[arg(long)]
        staging: bool,
        /// ACME account contact (default: the token's certificate e-mail).
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        wait: WaitOpts,
    },
    /// Serve an existing certificate for the proxy.
    CertAttach {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
        /// Certificate name.
        #[arg(value_parser = super::args::name)]
        cert_name: String,
    },
    /// Turn on OAuth for a proxy: AUTH_PROXY is the authorization server host.
    AuthEnable(AuthEnable),
    /// Turn off OAuth for a proxy.
    AuthDisable {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
    },
    /// Change a proxy's allowlists and token rules ("" resets a list to the global default).
    AuthConfig(AuthConfig),
    /// Show a proxy's auth settings.
    AuthShow {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
    },
    /// Describe the proxy as an OAuth protected resource (RFC 9728 metadata).
    ResourceSet(ResourceSet),
    /// Remove the proxy's protected resource metadata.
    ResourceClear {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
    },
    /// Show the proxy's protected resource settings.
    ResourceShow {
        /// Hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
    },
}

impl CreateProxy {
    /// The creation body: only what the flags change, then `--set` fields on top.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("hostname".into(), json!(self.hostname));
        body.insert("target_url".into(), json!(self.target_url));
        if let Some(c) = &self.cert_name {
            body.insert("cert_name".into(), json!(c));
        }
        for (flag, key) in [
            (self.no_preserve_host, "preserve_host_header"),
            (self.no_http, "enable_http"),
            (self.no_https, "enable_https"),
            (self.insecure_upstream, "verify_upstream_tls"),
        ] {
            if flag {
                body.insert(key.into(), json!(false));
            }
        }
        if !self.headers.is_empty() {
            body.insert("custom_headers".into(), headers_object(&self.headers));
        }
        if !self.response_headers.is_empty() {
            body.insert("custom_response_headers".into(), headers_object(&self.response_headers));
        }
        body.extend(set_object(&self.sets));
        Value::Object(body)
    }
}

fn changed(sets: &Map<String, Value>) -> String {
    sets.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

fn list_table(v: &Value) -> String {
    let host = |p: &Value| field(p, "hostname");
    let target = |p: &Value| field(p, "target_url");
    let enabled = |p: &Value| flag(p, "enabled");
    let http = |p: &Value| flag(p, "enable_http");
    let https = |p: &Value| flag(p, "enable_https");
    let cert = |p: &Value| field(p, "cert_name");
    let auth = |p: &Value| {
        if p.get("auth_enabled").and_then(Value::as_bool) == Some(true) {
            field(p, "auth_mode")
        } else {
            "off".into()
        }
    };
    let owner = |p: &Value| field(p, "created_by");
    let cols: [Column<'_>; 8] = [
        ("HOSTNAME", &host),
        ("TARGET_URL", &target),
        ("ENABLED", &enabled),
        ("HTTP", &http),
        ("HTTPS", &https),
        ("CERT", &cert),
        ("AUTH", &auth),
        ("CREATED_BY", &owner),
    ];
    table(v, &cols, "no proxies")
}

fn finish_started(json_out: bool, v: &Value, what: &str, name: &str) -> CliResult {
    if json_out {
        super::output::json(v);
    } else {
        emit(&format!("{what}; follow it with `portcullis cert status {name} --wait`\n"));
    }
    Ok(())
}

async fn toggle(api: &Api, hostname: &str, enabled: bool) -> CliResult<(Value, String)> {
    let v = api.put(&[PROXY, TARGETS, hostname], &json!({ "enabled": enabled })).await?;
    let t = format!("{} proxy {}\n", if enabled { "enabled" } else { "disabled" }, field(&v, "hostname"));
    Ok((v, t))
}

/// Runs one proxy verb.
pub async fn run(api: &Api, json_out: bool, verb: ProxyVerb) -> CliResult {
    let (v, text) = match verb {
        ProxyVerb::Create(c) => {
            let v = api.post(&[PROXY, TARGETS, ""], &c.body()).await?;
            let mut t = format!("created proxy {} -> {}\n", field(&v, "hostname"), field(&v, "target_url"));
            if let Some(cert) = v.get("certificate") {
                t.push_str(&format!("certificate {}: {}\n", field(cert, "cert_name"), field(cert, "message")));
                if cert.get("status").and_then(Value::as_str) == Some("pending") {
                    t.push_str(&format!(
                        "follow it with `portcullis cert status {} --wait`\n",
                        field(cert, "cert_name")
                    ));
                }
            }
            (v, t)
        }
        ProxyVerb::List => {
            let v = api.get(&[PROXY, TARGETS, ""]).await?;
            let t = list_table(&v);
            (v, t)
        }
        ProxyVerb::Show { hostname } => {
            let v = api.get(&[PROXY, TARGETS, &hostname]).await?;
            let t = fields(&v, &["owner_token_hash"]);
            (v, t)
        }
        ProxyVerb::Update { hostname, sets } => {
            let patch = set_object(&sets);
            let v = api.put(&[PROXY, TARGETS, &hostname], &Value::Object(patch.clone())).await?;
            let t = format!("updated proxy {}: {}\n", field(&v, "hostname"), changed(&patch));
            (v, t)
        }
        ProxyVerb::Enable { hostname } => toggle(api, &hostname, true).await?,
        ProxyVerb::Disable { hostname } => toggle(api, &hostname, false).await?,
        ProxyVerb::Delete { hostname } => {
            let v = api.delete(&[PROXY, TARGETS, &hostname]).await?;
            let t = format!("deleted proxy {}\n", field(&v, "hostname"));
            (v, t)
        }
        ProxyVerb::CertGenerate {
            hostname,
            staging,
            email,
            wait,
        } => {
            let mut body = Map::new();
            if staging {
                body.insert("staging".into(), json!(true));
            }
            if let Some(e) = email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
                body.insert("email".into(), json!(e));
            }
            let v = api
                .post(&[PROXY, TARGETS, &hostname, "cert", "generate"], &Value::Object(body))
                .await?;
            let name = field(&v, "cert_name");
            let what = format!(
                "requested certificate {name} for proxy {hostname}{}; it is attached when issued",
                if staging { " (staging)" } else { "" }
            );
            if !wait.wait {
                return finish_started(json_out, &v, &what, &name);
            }
            if !json_out {
                eprintln!("{what}");
            }
            let (record, outcome) = super::certs::wait_for(api, &name, std::time::Duration::from_secs(wait.timeout)).await;
            let record = record.unwrap_or(Value::Null);
            let t = fields(&record, &[]);
            outcome?;
            (record, t)
        }
        ProxyVerb::CertAttach { hostname, cert_name } => {
            let v = api
                .post(&[PROXY, TARGETS, &hostname, "cert", "attach"], &json!({ "cert_name": cert_name }))
                .await?;
            let t = format!(
                "proxy {} now serves certificate {}\n",
                field(&v, "hostname"),
                field(&v, "cert_name")
            );
            (v, t)
        }
        ProxyVerb::AuthEnable(a) => {
            let v = api.post(&[PROXY, TARGETS, &a.hostname, AUTH], &a.body()).await?;
            let t = format!(
                "enabled auth ({}) on {} via {}\n{}",
                a.body()["auth_mode"].as_str().unwrap_or(""),
                a.hostname,
                a.auth_proxy,
                fields(&v, &[])
            );
            (v, t)
        }
        ProxyVerb::AuthDisable { hostname } => {
            let v = api.delete(&[PROXY, TARGETS, &hostname, AUTH]).await?;
            (v, format!("disabled auth on {hostname}\n"))
        }
        ProxyVerb::AuthConfig(c) => {
            let patch = c.patch();
            let v = api.put(&[PROXY, TARGETS, &c.hostname], &Value::Object(patch.clone())).await?;
            let t = format!("updated auth settings of {}: {}\n", field(&v, "hostname"), changed(&patch));
            (v, t)
        }
        ProxyVerb::AuthShow { hostname } => {
            let v = api.get(&[PROXY, TARGETS, &hostname, AUTH]).await?;
            let t = fields(&v, &[]);
            (v, t)
        }
        ProxyVerb::ResourceSet(r) => {
            let v = api.post(&[PROXY, TARGETS, &r.hostname, MCP], &r.body()).await?;
            let t = format!("{} is a protected resource at {}\n{}", r.hostname, r.endpoint, fields(&v, &[]));
            (v, t)
        }
        ProxyVerb::ResourceClear { hostname } => {
            let v = api.delete(&[PROXY, TARGETS, &hostname, MCP]).await?;
            (v, format!("removed the protected resource settings of {hostname}\n"))
        }
        ProxyVerb::ResourceShow { hostname } => {
            let v = api.get(&[PROXY, TARGETS, &hostname, MCP]).await?;
            let t = fields(&v, &[]);
            (v, t)
        }
    };
    super::output::show(&v, &text, json_out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_sends_only_what_flags_change() {
        let plain = CreateProxy {
            hostname: "a.example.com".into(),
            target_url: "http://127.0.0.1:8080".into(),
            ..Default::default()
        };
        assert_eq!(
            plain.body(),
            json!({"hostname": "a.example.com", "target_url": "http://127.0.0.1:8080"})
        );

        let full = CreateProxy {
            hostname: "a.example.com".into(),
            target_url: "https://10.0.0.2".into(),
            cert_name: Some("wild".into()),
            no_preserve_host: true,
            no_http: true,
            no_https: false,
            insecure_upstream: true,
            headers: vec![("X-A".into(), "1".into())],
            response_headers: vec![("X-B".into(), "2".into())],
            sets: vec![("auth_enabled".into(), json!(true)), ("enable_http".into(), json!(true))],
        };
        assert_eq!(
            full.body(),
            json!({
                "hostname": "a.example.com",
                "target_url": "https://10.0.0.2",
                "cert_name": "wild",
                "preserve_host_header": false,
                "enable_http": true,
                "verify_upstream_tls": false,
                "custom_headers": {"X-A": "1"},
                "custom_response_headers": {"X-B": "2"},
                "auth_enabled": true,
            })
        );
    }
}
