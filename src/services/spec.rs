//! The container a service record becomes: labels, limits, network mode,
//! published ports. Only what is built here reaches the engine, so nothing
//! the API does not offer (privileged mode, mounts, capabilities, devices)
//! can be set, whatever a request carries.

use std::collections::HashMap;

use bollard::container::Config;
use bollard::models::{HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum};

use super::engine::{LABEL_OWNER, LABEL_SERVICE, LABEL_STORE};
use super::record::DockerService;
use crate::config::{memory_bytes, NetworkMode};

/// Parses a Docker restart policy (`no`, `always`, `unless-stopped`,
/// `on-failure` or `on-failure:N`).
pub fn restart_policy(s: &str) -> Option<RestartPolicy> {
    let (name, retries) = match s.split_once(':') {
        Some(("on-failure", n)) => (RestartPolicyNameEnum::ON_FAILURE, Some(n.parse::<i64>().ok().filter(|n| *n >= 0)?)),
        Some(_) => return None,
        None => (
            match s {
                "no" => RestartPolicyNameEnum::NO,
                "always" => RestartPolicyNameEnum::ALWAYS,
                "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
                "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
                _ => return None,
            },
            None,
        ),
    };
    Some(RestartPolicy {
        name: Some(name),
        maximum_retry_count: retries,
    })
}

/// The engine's container configuration for `s`, labelled for the store `store_id`.
pub fn container_config(s: &DockerService, pids_limit: i64, store_id: &str) -> Config<String> {
    let mut labels: HashMap<String, String> = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.retain(|k, _| !k.starts_with("portcullis."));
    labels.insert(LABEL_SERVICE.into(), s.service_name.clone());
    labels.insert(LABEL_OWNER.into(), s.owner_token_hash.clone());
    labels.insert(LABEL_STORE.into(), store_id.to_string());
    let mut env: Vec<String> = s.environment.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut exposed = HashMap::new();
    let mut bindings = HashMap::new();
    match s.network_mode {
        NetworkMode::Host => {
            // The container binds its ports itself: tell it which.
            env.retain(|e| !e.starts_with("PORT=") && !e.starts_with("BIND_ADDRESS="));
            env.push(format!("PORT={}", s.port));
            env.push(format!("BIND_ADDRESS={}", s.bind_address));
            for p in s.port_configs.iter().skip(1) {
                env.push(format!(
                    "PORT_{}={}",
                    p.port_name.to_ascii_uppercase().replace('-', "_"),
                    p.host_port
                ));
            }
        }
        NetworkMode::Bridge => {
            for (i, p) in s.port_configs.iter().enumerate() {
                let key = format!("{}/{}", p.container_port, p.protocol);
                exposed.insert(key.clone(), HashMap::new());
                // The first port is the proxy's target: always published.
                if s.expose_ports || i == 0 {
                    bindings.insert(
                        key,
                        Some(vec![PortBinding {
                            host_ip: Some(p.bind_address.clone()),
                            host_port: Some(p.host_port.to_string()),
                        }]),
                    );
                }
            }
        }
    }
    let memory = memory_bytes(&s.memory_limit);
    let host_config = HostConfig {
        memory,
        memory_swap: memory,
        nano_cpus: Some((s.cpu_limit * 1e9) as i64),
        pids_limit: Some(s.pids_limit.min(pids_limit)),
        network_mode: Some(match s.network_mode {
            NetworkMode::Host => "host".into(),
            NetworkMode::Bridge => s.networks.first().cloned().unwrap_or_else(|| "bridge".into()),
        }),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        restart_policy: restart_policy(&s.restart_policy),
        privileged: Some(false),
        readonly_rootfs: Some(false),
        security_opt: Some(vec!["no-new-privileges".into()]),
        cap_drop: Some(vec!["NET_RAW".into(), "SYS_ADMIN".into()]),
        ..Default::default()
    };
    Config {
        image: Some(s.image.clone()),
        cmd: s.command.clone(),
        env: Some(env),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::record::{PortRecord, ServiceType};

    fn service(mode: NetworkMode) -> DockerService {
        let port = |name: &str, host: u16, container: u16, bind: &str| PortRecord {
            service_name: "app".into(),
            port_name: name.into(),
            host_port: host,
            container_port: container,
            bind_address: bind.into(),
            protocol: "tcp".into(),
            source_token_hash: None,
            require_token: false,
            owner_token_hash: "sha256:o".into(),
            description: None,
        };
        DockerService {
            service_name: "app".into(),
            service_type: ServiceType::Docker,
            image: "busybox:latest".into(),
            dockerfile_path: None,
            internal_port: 8080,
            memory_limit: "64m".into(),
            cpu_limit: 0.5,
            pids_limit: 100,
            environment: [("PORT".to_string(), "1".to_string()), ("A".to_string(), "b".to_string())].into(),
            command: None,
            networks: vec!["proxy_network".into()],
            labels: [
                ("portcullis.owner".to_string(), "forged".to_string()),
                ("x".to_string(), "y".to_string()),
            ]
            .into(),
            expose_ports: false,
            port_configs: vec![port("http", 11001, 8080, "127.0.0.1"), port("admin", 11002, 9090, "0.0.0.0")],
            bind_address: "127.0.0.1".into(),
            restart_policy: "unless-stopped".into(),
            network_mode: mode,
            port: 11001,
            target_url: "http://127.0.0.1:11001".into(),
            container_id: None,
            status: "creating".into(),
            health: None,
            exit_code: None,
            owner_token_hash: "sha256:o".into(),
            created_by: "t".into(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn bridge_mode_publishes_the_main_port_and_exposes_the_rest_on_request() {
        let mut s = service(NetworkMode::Bridge);
        let c = container_config(&s, 50, "store1");
        let hc = c.host_config.clone().unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("proxy_network"));
        let b = hc.port_bindings.unwrap();
        assert_eq!(b.len(), 1, "only the main port without expose_ports: {b:?}");
        let main = b["8080/tcp"].clone().unwrap();
        assert_eq!(
            (main[0].host_ip.as_deref(), main[0].host_port.as_deref()),
            (Some("127.0.0.1"), Some("11001"))
        );
        assert!(c.exposed_ports.unwrap().contains_key("9090/tcp"));
        s.expose_ports = true;
        let b = container_config(&s, 50, "store1").host_config.unwrap().port_bindings.unwrap();
        let admin = b["9090/tcp"].clone().unwrap();
        assert_eq!(
            (admin[0].host_ip.as_deref(), admin[0].host_port.as_deref()),
            (Some("0.0.0.0"), Some("11002"))
        );
    }

    #[test]
    fn every_container_gets_limits_our_labels_and_no_host_access() {
        let c = container_config(&service(NetworkMode::Host), 50, "store1");
        let hc = c.host_config.unwrap();
        assert_eq!(hc.memory, Some(64 << 20));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.pids_limit, Some(50), "the configured ceiling wins");
        assert_eq!(hc.network_mode.as_deref(), Some("host"));
        assert_eq!(hc.privileged, Some(false));
        assert!(hc.binds.is_none() && hc.mounts.is_none() && hc.cap_add.is_none() && hc.devices.is_none());
        assert!(hc.port_bindings.is_none(), "host mode publishes nothing");
        let labels = c.labels.unwrap();
        assert_eq!(labels["portcullis.owner"], "sha256:o", "a forged owner label is replaced");
        assert_eq!(labels["portcullis.service"], "app");
        assert_eq!(labels["portcullis.store"], "store1");
        assert_eq!(labels["x"], "y");
        let env = c.env.unwrap();
        assert!(
            env.contains(&"PORT=11001".to_string()) && !env.contains(&"PORT=1".to_string()),
            "{env:?}"
        );
        assert!(env.contains(&"PORT_ADMIN=11002".to_string()), "{env:?}");
    }

    #[test]
    fn restart_policies_parse_like_docker() {
        assert_eq!(restart_policy("always").unwrap().name, Some(RestartPolicyNameEnum::ALWAYS));
        let p = restart_policy("on-failure:3").unwrap();
        assert_eq!((p.name, p.maximum_retry_count), (Some(RestartPolicyNameEnum::ON_FAILURE), Some(3)));
        for bad in ["", "sometimes", "always:2", "on-failure:x", "on-failure:-1"] {
            assert!(restart_policy(bad).is_none(), "{bad}");
        }
    }
}
