//! The source token of a service port (`port_configs[].source_token`),
//! enforced by the data plane on the hostnames proxied to that port: a
//! request must carry the token as `Authorization: Bearer <token>` or in
//! the `X-Service-Token` header. Only its `sha256:` hash is stored and put
//! in the snapshot; the comparison is constant-time; neither header with
//! the token reaches the container, and the token is never logged.
//!
//! A port published directly (`expose_ports`, or host network mode on a
//! non-loopback `bind_address`) is a raw TCP port: the proxy never sees
//! that traffic, so the token protects only the proxied path.

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};

use crate::secrets::{constant_time_eq, token_hash};

/// The header a client may use instead of `Authorization`.
pub const HEADER: &str = "x-service-token";

/// The answer to a request without the right token (no hint which part was wrong).
pub const REFUSAL: &str =
    r#"{"error":"unauthorized","message":"this service requires its source token: send Authorization: Bearer <token> or X-Service-Token"}"#;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn matches(token: &str, hash: &str) -> bool {
    constant_time_eq(&token_hash(token), hash)
}

/// True when `headers` carry the token whose hash is `hash`.
pub fn presented(headers: &HeaderMap, hash: &str) -> bool {
    let header = headers.get(HEADER).and_then(|v| v.to_str().ok()).map(str::trim);
    header.is_some_and(|t| matches(t, hash)) || bearer(headers).is_some_and(|t| matches(t, hash))
}

/// The headers to remove from a request going upstream: `X-Service-Token`
/// always, `Authorization` when it is the token (another credential there,
/// such as the proxy's own auth, is left to the auth rules).
pub fn carriers(headers: &HeaderMap, hash: &str) -> impl Iterator<Item = HeaderName> {
    let authorization = bearer(headers).is_some_and(|t| matches(t, hash));
    [Some(HeaderName::from_static(HEADER)), authorization.then_some(AUTHORIZATION)]
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn either_header_carries_the_token_and_neither_goes_upstream() {
        let hash = token_hash("right-token-0123456789");
        for h in [
            with("x-service-token", "right-token-0123456789"),
            with("authorization", "Bearer right-token-0123456789"),
            with("authorization", "bearer right-token-0123456789"),
        ] {
            assert!(presented(&h, &hash), "{h:?}");
            let mut h = h;
            for k in carriers(&h.clone(), &hash) {
                h.remove(k);
            }
            assert!(h.is_empty(), "{h:?}");
        }
        for h in [
            HeaderMap::new(),
            with("x-service-token", "wrong-token-0123456789"),
            with("authorization", "Basic right-token-0123456789"),
            with("authorization", "Bearer right-token-01234567890"),
        ] {
            assert!(!presented(&h, &hash), "{h:?}");
        }
        let other = with("authorization", "Bearer someone-elses-jwt");
        let carriers: Vec<_> = carriers(&other, &hash).collect();
        assert!(!carriers.contains(&AUTHORIZATION), "another credential is not ours to strip");
    }
}
