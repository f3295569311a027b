//! What the control plane's router serves, read from the router itself
//! (`portcullis::admin::routes()`), not from a list kept beside it.

use std::collections::BTreeSet;

/// Every path registered in the control plane router, as written there
/// (`{param}`, `{*rest}`). axum has no route listing API; its `Debug` output
/// prints each path of the route table (`RouteId(n): "/path"`), which is
/// what is read here (its path router; the fallback router has paths of
/// its own). Found empty, the format changed, and this fails.
pub fn router_paths() -> BTreeSet<String> {
    let full = format!("{:?}", portcullis::admin::routes());
    // The path router only: the fallback router has paths of its own.
    let text = full.split("fallback_router").next().unwrap_or_default();
    let re = regex::Regex::new(r#"RouteId\(\d+\): "([^"]*)""#).unwrap();
    let paths: BTreeSet<String> = re
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .filter(|p| !p.contains("__private__axum"))
        .collect();
    assert!(
        paths.len() > 20,
        "cannot read the route table from the router's Debug output: {full:.400}"
    );
    paths
}

/// A path without its trailing slash (routes are served both ways).
pub fn norm(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.to_string()
    }
}
