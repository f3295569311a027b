//! `X-Forwarded-For`, `-Proto` and `-Host` from a trusted load balancer
//! (`TRUSTED_PROXIES`). From anyone else they are ignored and replaced; from
//! a trusted peer they say who the client is, whether it reached the edge
//! over TLS and which host it asked for, so redirects, protected-resource
//! metadata and the authorization server behind a TLS-terminating balancer
//! see `https` and the public host.

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};

use super::dispatch::valid_authority;

/// What a trusted balancer said about the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// The client: the rightmost `X-Forwarded-For` address that is not a
    /// trusted proxy (nginx's `real_ip_recursive on`); the peer when the
    /// header is absent or unreadable.
    pub client: IpAddr,
    /// `X-Forwarded-Proto` of the nearest balancer: `Some(true)` for https.
    pub https: Option<bool>,
    /// `X-Forwarded-Host` of the nearest balancer, when it is a valid host[:port].
    pub host: Option<HeaderValue>,
}

/// The comma-separated entries of every `name` header, in order.
fn entries<'h>(h: &'h HeaderMap, name: &'static str) -> impl DoubleEndedIterator<Item = &'h str> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .into_iter()
}

/// An `X-Forwarded-For` entry: an address, optionally with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn address(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let host = match entry.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => entry.rsplit_once(':')?.0,
    };
    host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// Reads the forwarding headers of a request whose peer `peer` is trusted.
pub fn from_trusted(h: &HeaderMap, peer: IpAddr, trusted: impl Fn(IpAddr) -> bool) -> Forwarded {
    let mut client = peer;
    for entry in entries(h, "x-forwarded-for").rev() {
        let Some(ip) = address(entry) else { break };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    let https = entries(h, "x-forwarded-proto").next_back().and_then(|p| {
        if p.eq_ignore_ascii_case("https") {
            Some(true)
        } else if p.eq_ignore_ascii_case("http") {
            Some(false)
        } else {
            None
        }
    });
    let host = entries(h, "x-forwarded-host")
        .next_back()
        .filter(|v| valid_authority(v))
        .and_then(|v| HeaderValue::from_str(v).ok());
    Forwarded { client, https, host }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// 10.0.0.0/8 are our balancers.
    fn ours(a: IpAddr) -> bool {
        matches!(a, IpAddr::V4(v) if v.octets()[0] == 10)
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_address() {
        let peer = ip("10.0.0.1");
        // A client forging a chain gets its forgery skipped: the balancer appended the real address.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(from_trusted(&h, peer, ours).client, ip("203.0.113.7"));
        // Several header lines read as one list; ports and brackets are understood.
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "[2001:db8::7]:4711")]);
        assert_eq!(from_trusted(&h, peer, ours).client, ip("2001:db8::7"));
        let h = headers(&[("x-forwarded-for", "198.51.100.9:80")]);
        assert_eq!(from_trusted(&h, peer, ours).client, ip("198.51.100.9"));
        // Absent: the peer. Garbage stops the walk at the last readable hop.
        assert_eq!(from_trusted(&HeaderMap::new(), peer, ours).client, peer);
        let h = headers(&[("x-forwarded-for", "203.0.113.7, unknown, 10.0.0.2")]);
        assert_eq!(from_trusted(&h, peer, ours).client, ip("10.0.0.2"));
        // IPv4-mapped addresses are the IPv4 address.
        let h = headers(&[("x-forwarded-for", "::ffff:203.0.113.7")]);
        assert_eq!(from_trusted(&h, peer, ours).client, ip("203.0.113.7"));
    }

    #[test]
    fn authorities_are_host_and_optional_decimal_port() {
        for ok in [
            "a",
            "bench-50.test",
            "app.example.com:443",
            "x_y.test:0",
            "127.0.0.1:65535",
            "[::1]",
            "[2001:db8::1]:8443",
        ] {
            assert!(valid_authority(ok), "{ok}");
        }
        let long = "a".repeat(254);
        for bad in [
            "",
            ":80",
            "a:",
            "a:65536",
            "a:123456",
            "a:+80",
            "a:8 0",
            "a b",
            "a/b",
            "a\"",
            "a:1\", resource_metadata=\"https://evil.example/x",
            "[::1",
            "[::1]x",
            "[nope]",
            "é.test",
            long.as_str(),
        ] {
            assert!(!valid_authority(bad), "{bad}");
        }
        assert!(valid_authority(&"a".repeat(253)));
    }

    #[test]
    fn proto_and_host_come_from_the_nearest_balancer_and_must_be_valid() {
        let peer = ip("10.0.0.1");
        let h = headers(&[
            ("x-forwarded-proto", "http, HTTPS"),
            ("x-forwarded-host", "evil.example, app.example.com"),
        ]);
        let f = from_trusted(&h, peer, ours);
        assert_eq!(f.https, Some(true));
        assert_eq!(f.host.as_ref().map(|v| v.to_str().unwrap()), Some("app.example.com"));
        let h = headers(&[("x-forwarded-proto", "gopher"), ("x-forwarded-host", "a.example\", x=\"y")]);
        let f = from_trusted(&h, peer, ours);
        assert_eq!((f.https, f.host), (None, None));
        assert_eq!(
            from_trusted(&headers(&[("x-forwarded-proto", "http")]), peer, ours).https,
            Some(false)
        );
    }
}
