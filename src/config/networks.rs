//! `USER_TARGET_ALLOW_NETWORKS` and the address policy for targets of
//! non-admin owners: loopback, link-local and unspecified addresses reach this
//! machine (or its cloud metadata service) rather than a backend of the
//! owner's, so they are refused unless the operator lists those networks.
//! The control plane's own listener is refused whatever the list says.

use std::net::{IpAddr, SocketAddr};

use super::{Cidr, Config, ConfigError};

/// Parses the comma- or space-separated CIDR list of `var`.
pub(super) fn parse_networks(var: &'static str, value: Option<String>) -> Result<Vec<Cidr>, ConfigError> {
    let Some(v) = value else { return Ok(Vec::new()) };
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            Cidr::parse(s).ok_or_else(|| ConfigError {
                var,
                value: v.clone(),
                reason: format!("{s:?} is not an IP network in CIDR notation (e.g. 127.0.0.0/8)"),
            })
        })
        .collect()
}

/// Loopback, link-local (169.254/16, fe80::/10) and unspecified addresses.
fn is_local_only(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

impl Config {
    /// Why a non-admin owner may not send traffic to `addr`, or `None` when it may.
    pub fn user_target_refusal(&self, addr: SocketAddr) -> Option<String> {
        // `::ffff:a.b.c.d` counts as `a.b.c.d`, so a mapped address cannot dodge an IPv4 rule.
        let ip = addr.ip().to_canonical();
        let api = self.api_host.to_canonical();
        let api_reachable = ip == api || ((api.is_unspecified() || api.is_loopback()) && (ip.is_loopback() || ip.is_unspecified()));
        if addr.port() == self.api_port && api_reachable {
            return Some(format!("{addr} is the control plane's own listener"));
        }
        if is_local_only(ip) && !self.user_target_allow_networks.iter().any(|n| n.contains(ip)) {
            return Some(format!(
                "{ip} is a loopback, link-local or unspecified address (allowed only inside USER_TARGET_ALLOW_NETWORKS)"
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_only_addresses() {
        for ip in [
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_local_only(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.1.2.3", "8.8.8.8", "2001:db8::1", "fec0::1"] {
            assert!(!is_local_only(ip.parse().unwrap()), "{ip}");
        }
    }
}
