//! `portcullis service <verb>`: Docker services, their ports, external
//! services and the unified list (`/api/v1/services/...`), with the verbs
//! of the reference's `service-*` commands.

use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::error::{CliError, CliResult};
use super::http::Api;
use super::output::{field, table, Column};

const SERVICES: &str = "services";
const EXTERNAL: &str = "external";
const PORTS: &str = "ports";

/// Service verbs.
#[derive(Subcommand, Debug)]
pub enum ServiceVerb {
    /// Create a Docker service from an image (or --dockerfile, admin only).
    Create {
        /// Service name (a DNS label).
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Image; "" with --dockerfile.
        image: String,
        /// Dockerfile under the server's DOCKER_BUILD_DIR to build instead of an image.
        #[arg(long)]
        dockerfile: Option<String>,
        /// Host port (allocated when absent).
        #[arg(long)]
        port: Option<u16>,
        /// Port the program listens on inside the container (bridge mode).
        #[arg(long)]
        internal_port: Option<u16>,
        /// Memory limit, e.g. 256m.
        #[arg(long)]
        memory: Option<String>,
        /// CPU limit in cores, e.g. 0.5.
        #[arg(long)]
        cpu: Option<f64>,
        /// Environment variable KEY=VALUE (repeatable).
        #[arg(long = "env", value_parser = key_value)]
        env: Vec<(String, String)>,
        /// Docker restart policy (no, always, unless-stopped, on-failure[:N]).
        #[arg(long)]
        restart_policy: Option<String>,
        /// Also create the proxy NAME.BASE_DOMAIN.
        #[arg(long)]
        auto_proxy: bool,
        /// Command to run instead of the image's (after `--`).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Create a Docker service with a published port on a bind address.
    CreateExposed {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Image.
        image: String,
        /// Host port.
        port: u16,
        /// Bind address (127.0.0.1 or 0.0.0.0).
        bind_address: String,
        /// Memory limit.
        #[arg(long)]
        memory: Option<String>,
        /// CPU limit.
        #[arg(long)]
        cpu: Option<f64>,
        /// Command to run instead of the image's (after `--`), as for `create`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// List Docker services.
    List {
        /// Only the caller's own (also for the admin).
        #[arg(long)]
        owned_only: bool,
    },
    /// Show a Docker service.
    Show {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// Delete a Docker service, its container, ports and proxies.
    Delete {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Delete the record even when the container cannot be removed.
        #[arg(long)]
        force: bool,
        /// Keep the proxies that target it.
        #[arg(long)]
        keep_proxy: bool,
    },
    /// Start the container.
    Start {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// Stop the container.
    Stop {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// Restart the container.
    Restart {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// The container's output.
    Logs {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Lines from the end.
        #[arg(long, default_value_t = 100)]
        lines: u32,
        /// Prefix lines with their time.
        #[arg(long)]
        timestamps: bool,
        /// Keep printing new output.
        #[arg(long)]
        follow: bool,
    },
    /// CPU, memory, network and process counts, one sample.
    Stats {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// Create a proxy for a service.
    ProxyCreate {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Hostname (default NAME.BASE_DOMAIN).
        #[arg(long)]
        hostname: Option<String>,
        /// Serve HTTPS too.
        #[arg(long)]
        https: bool,
    },
    /// Remove orphan containers and stale port claims (admin only).
    Cleanup,
    /// Register (or replace) an external service URL (admin only).
    Register {
        /// Service name, used as a route's target value.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Where it lives (http:// or https://).
        url: String,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List external services (and the built-in api).
    ListExternal,
    /// Show an external service.
    ShowExternal {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// Change an external service's URL and description.
    UpdateExternal {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// New URL.
        url: String,
        /// New description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove an external service (admin only).
    Unregister {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// Every service: Docker, external and internal.
    ListAll {
        /// Only this type: docker, external or internal.
        #[arg(long = "type")]
        service_type: Option<String>,
    },
    /// Add a port to a service.
    PortAdd {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Host port.
        port: u16,
        /// Bind address.
        #[arg(long)]
        bind: Option<String>,
        /// Token requests to this port must carry.
        #[arg(long)]
        source_token: Option<String>,
        /// Port name (default portN).
        #[arg(long)]
        port_name: Option<String>,
        /// Container port (bridge mode).
        #[arg(long)]
        container: Option<u16>,
    },
    /// Remove a port from a service.
    PortRemove {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
        /// Port name.
        #[arg(value_parser = super::args::name)]
        port_name: String,
    },
    /// A service's ports.
    PortList {
        /// Service name.
        #[arg(value_parser = super::args::name)]
        name: String,
    },
    /// Whether a port is free for a service.
    PortCheck {
        /// The port.
        port: u16,
        /// Bind address.
        #[arg(long)]
        bind: Option<String>,
    },
    /// Every allocated port, or (--available-only) the ranges.
    PortsGlobal {
        /// Show the ranges and how many ports are free instead.
        #[arg(long)]
        available_only: bool,
    },
}

fn services_table(v: &Value) -> String {
    let name = |s: &Value| field(s, "service_name");
    let image = |s: &Value| field(s, "image");
    let status = |s: &Value| field(s, "status");
    let port = |s: &Value| field(s, "port");
    let target = |s: &Value| field(s, "target_url");
    let cols: [Column<'_>; 5] = [
        ("NAME", &name),
        ("IMAGE", &image),
        ("STATUS", &status),
        ("PORT", &port),
        ("TARGET", &target),
    ];
    table(v, &cols, "no services")
}

fn ports_table(v: &Value) -> String {
    let service = |p: &Value| field(p, "service_name");
    let name = |p: &Value| field(p, "port_name");
    let host = |p: &Value| field(p, "host_port");
    let bind = |p: &Value| field(p, "bind_address");
    let proto = |p: &Value| field(p, "protocol");
    let token = |p: &Value| super::output::flag(p, "require_token");
    let cols: [Column<'_>; 6] = [
        ("SERVICE", &service),
        ("NAME", &name),
        ("PORT", &host),
        ("BIND", &bind),
        ("PROTO", &proto),
        ("TOKEN", &token),
    ];
    table(v, &cols, "no ports")
}

fn record(v: &Value) -> String {
    super::output::fields(v, &[])
}

/// `KEY=VALUE` of `--env`.
fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))
}

/// Copies a streamed body to stdout until it ends.
async fn follow(api: &Api, name: &str, query: &[(&str, String)]) -> CliResult {
    let mut resp = api.stream(&[SERVICES, name, "logs"], query).await?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| CliError::Protocol(super::http::root_cause(&e)))? {
        super::output::emit(&String::from_utf8_lossy(&chunk));
    }
    Ok(())
}

/// `POST /services/{name}/{action}` (start, stop, restart).
async fn lifecycle(api: &Api, name: &str, action: &str) -> CliResult<(Value, String)> {
    let v = api.post(&[SERVICES, name, action], &json!({})).await?;
    let t = format!("{action}: service {} is {}\n", field(&v, "service_name"), field(&v, "status"));
    Ok((v, t))
}

/// Runs one service verb.
pub async fn run(api: &Api, json_out: bool, verb: ServiceVerb) -> CliResult {
    let (v, text) = match verb {
        ServiceVerb::Create {
            name,
            image,
            dockerfile,
            port,
            internal_port,
            memory,
            cpu,
            env,
            restart_policy,
            auto_proxy,
            command,
        } => {
            let mut b = json!({"service_name": name, "auto_proxy": auto_proxy, "environment": env.into_iter().map(|(k, v)| (k, json!(v))).collect::<Map<String, Value>>()});
            match dockerfile {
                Some(d) => b["dockerfile_path"] = json!(d),
                None => b["image"] = json!(image),
            }
            if let Some(p) = port {
                b["port_configs"] = json!([{"host": p}]);
            }
            for (k, val) in [
                ("internal_port", internal_port.map(|p| json!(p))),
                ("memory_limit", memory.map(|m| json!(m))),
                ("cpu_limit", cpu.map(|c| json!(c))),
                ("restart_policy", restart_policy.map(|r| json!(r))),
                ("command", (!command.is_empty()).then(|| json!(command))),
            ] {
                if let Some(val) = val {
                    b[k] = val;
                }
            }
            let v = api.post(&[SERVICES, ""], &b).await?;
            let t = format!(
                "created service {} ({}) on port {} -> {}\n",
                field(&v, "service_name"),
                field(&v, "status"),
                field(&v, "port"),
                field(&v, "target_url")
            );
            (v, t)
        }
        ServiceVerb::CreateExposed {
            name,
            image,
            port,
            bind_address,
            memory,
            cpu,
            command,
        } => {
            let mut b = json!({
                "service_name": name, "image": image, "expose_ports": true, "bind_address": bind_address,
                "port_configs": [{"host": port, "bind": bind_address}],
            });
            for (k, val) in [
                ("memory_limit", memory.map(|m| json!(m))),
                ("cpu_limit", cpu.map(|c| json!(c))),
                ("command", (!command.is_empty()).then(|| json!(command))),
            ] {
                if let Some(val) = val {
                    b[k] = val;
                }
            }
            let v = api.post(&[SERVICES, ""], &b).await?;
            let t = format!("created service {} on {}:{}\n", field(&v, "service_name"), bind_address, port);
            (v, t)
        }
        ServiceVerb::List { owned_only } => {
            let q = if owned_only {
                vec![("owned_only", "true".to_string())]
            } else {
                vec![]
            };
            let v = api.get_query(&[SERVICES, ""], &q).await?;
            let t = services_table(&v);
            (v, t)
        }
        ServiceVerb::Show { name } => {
            let v = api.get(&[SERVICES, &name]).await?;
            let t = record(&v);
            (v, t)
        }
        ServiceVerb::Delete { name, force, keep_proxy } => {
            let q = [("force", force.to_string()), ("delete_proxy", (!keep_proxy).to_string())];
            let v = api.delete_query(&[SERVICES, &name], &q).await?;
            let t = format!("deleted service {}\n", field(&v, "service_name"));
            (v, t)
        }
        ServiceVerb::Start { name } => lifecycle(api, &name, "start").await?,
        ServiceVerb::Stop { name } => lifecycle(api, &name, "stop").await?,
        ServiceVerb::Restart { name } => lifecycle(api, &name, "restart").await?,
        ServiceVerb::Logs {
            name,
            lines,
            timestamps,
            follow: true,
        } => {
            let q = [
                ("lines", lines.to_string()),
                ("timestamps", timestamps.to_string()),
                ("follow", "true".into()),
            ];
            return follow(api, &name, &q).await;
        }
        ServiceVerb::Logs {
            name, lines, timestamps, ..
        } => {
            let q = [("lines", lines.to_string()), ("timestamps", timestamps.to_string())];
            let v = api.get_query(&[SERVICES, &name, "logs"], &q).await?;
            let t = v.get("logs").and_then(Value::as_str).unwrap_or_default().to_string();
            (v, t)
        }
        ServiceVerb::Stats { name } => {
            let v = api.get(&[SERVICES, &name, "stats"]).await?;
            let t = record(&v);
            (v, t)
        }
        ServiceVerb::ProxyCreate { name, hostname, https } => {
            let mut b = json!({"enable_https": https});
            if let Some(h) = hostname {
                b["hostname"] = json!(h);
            }
            let v = api.post(&[SERVICES, &name, "proxy"], &b).await?;
            let t = format!("created proxy {} -> {}\n", field(&v, "hostname"), field(&v, "target_url"));
            (v, t)
        }
        ServiceVerb::Cleanup => {
            let v = api.post(&[SERVICES, "cleanup"], &json!({})).await?;
            let t = record(&v);
            (v, t)
        }
        ServiceVerb::Register { name, url, description } => {
            let mut b = json!({ "service_name": name, "target_url": url });
            if let Some(d) = description {
                b["description"] = json!(d);
            }
            let v = api.post(&[SERVICES, EXTERNAL], &b).await?;
            let t = format!("registered service {} -> {}\n", field(&v, "service_name"), field(&v, "target_url"));
            (v, t)
        }
        ServiceVerb::ListExternal => {
            let v = api.get(&[SERVICES, EXTERNAL]).await?;
            let name = |s: &Value| field(s, "service_name");
            let kind = |s: &Value| field(s, "service_type");
            let url = |s: &Value| field(s, "target_url");
            let cols: [Column<'_>; 3] = [("NAME", &name), ("TYPE", &kind), ("TARGET_URL", &url)];
            let t = table(&v, &cols, "no services");
            (v, t)
        }
        ServiceVerb::ShowExternal { name } => {
            let v = api.get(&[SERVICES, EXTERNAL, &name]).await?;
            let t = record(&v);
            (v, t)
        }
        ServiceVerb::UpdateExternal { name, url, description } => {
            let mut b = json!({ "target_url": url });
            if let Some(d) = description {
                b["description"] = json!(d);
            }
            let v = api.put(&[SERVICES, EXTERNAL, &name], &b).await?;
            let t = format!("updated service {} -> {}\n", field(&v, "service_name"), field(&v, "target_url"));
            (v, t)
        }
        ServiceVerb::Unregister { name } => {
            let v = api.delete(&[SERVICES, EXTERNAL, &name]).await?;
            let t = format!("deleted service {}\n", field(&v, "service_name"));
            (v, t)
        }
        ServiceVerb::ListAll { service_type } => {
            let q: Vec<(&str, String)> = service_type.into_iter().map(|t| ("type", t)).collect();
            let v = api.get_query(&[SERVICES, "unified"], &q).await?;
            let name = |s: &Value| field(s, "service_name");
            let kind = |s: &Value| field(s, "service_type");
            let status = |s: &Value| field(s, "status");
            let url = |s: &Value| field(s, "target_url");
            let cols: [Column<'_>; 4] = [("NAME", &name), ("TYPE", &kind), ("STATUS", &status), ("TARGET_URL", &url)];
            let t = table(&v, &cols, "no services");
            (v, t)
        }
        ServiceVerb::PortAdd {
            name,
            port,
            bind,
            source_token,
            port_name,
            container,
        } => {
            let mut b = json!({"host": port});
            for (k, val) in [
                ("bind", bind.map(|x| json!(x))),
                ("source_token", source_token.map(|x| json!(x))),
                ("name", port_name.map(|x| json!(x))),
                ("container", container.map(|x| json!(x))),
            ] {
                if let Some(val) = val {
                    b[k] = val;
                }
            }
            let v = api.post(&[SERVICES, &name, PORTS], &b).await?;
            let t = format!("added port {} ({}) to {}\n", field(&v, "host_port"), field(&v, "port_name"), name);
            (v, t)
        }
        ServiceVerb::PortRemove { name, port_name } => {
            let v = api.delete(&[SERVICES, &name, PORTS, &port_name]).await?;
            let t = format!("removed port {} ({}) from {}\n", field(&v, "host_port"), port_name, name);
            (v, t)
        }
        ServiceVerb::PortList { name } => {
            let v = api.get(&[SERVICES, &name, PORTS]).await?;
            let t = ports_table(&v);
            (v, t)
        }
        ServiceVerb::PortCheck { port, bind } => {
            let mut b = json!({"port": port});
            if let Some(x) = bind {
                b["bind_address"] = json!(x);
            }
            let v = api.post(&[SERVICES, PORTS, "check"], &b).await?;
            let t = match v.get("available").and_then(Value::as_bool) {
                Some(true) => format!("port {port} is available\n"),
                _ => format!("port {port} is not available: {}\n", field(&v, "reason")),
            };
            (v, t)
        }
        ServiceVerb::PortsGlobal { available_only: true } => {
            let v = api.get(&[SERVICES, PORTS, "available"]).await?;
            let t = record(&v);
            (v, t)
        }
        ServiceVerb::PortsGlobal { available_only: false } => {
            let v = api.get(&[SERVICES, PORTS]).await?;
            let t = ports_table(&v);
            (v, t)
        }
    };
    super::output::show(&v, &text, json_out);
    Ok(())
}
