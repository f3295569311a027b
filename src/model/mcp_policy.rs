//! A proxy's MCP policy: which MCP methods and tool (prompt, resource)
//! names a caller may use at the edge, by OAuth scope. The data plane
//! enforces it from the `Mcp-Method` and `Mcp-Name` headers
//! (`auth::mcp_policy`); this module is the stored form and its validation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ValidationError;

/// One rule; the first rule whose `method` and `name` match a request decides it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpRule {
    /// The JSON-RPC method (`tools/call`), or `*` for any.
    pub method: String,
    /// The tool, prompt or resource named by the request (`Mcp-Name`):
    /// exact, or a prefix ending in `*` (`delete_*`); absent matches any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Scopes that may make a matching request; empty: nobody may.
    #[serde(default)]
    pub allow_scopes: Vec<String>,
}

/// Most rules a proxy may have: the policy is evaluated per request.
pub const MAX_RULES: usize = 64;

fn pattern_ok(s: &str, extra: &[u8]) -> bool {
    let body = s.strip_suffix('*').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 200
        && !body.contains('*')
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b) || matches!(b, b'_' | b'-' | b'.' | b'/'))
}

/// Checks a policy: at most [`MAX_RULES`] rules, methods and names of
/// header-safe characters with `*` only at the end, scopes as OAuth scope tokens.
pub fn validate(rules: &[McpRule]) -> Result<(), ValidationError> {
    if rules.len() > MAX_RULES {
        return Err(ValidationError::new("mcp_policy", format!("at most {MAX_RULES} rules")));
    }
    for (i, r) in rules.iter().enumerate() {
        if !pattern_ok(&r.method, &[]) {
            return Err(ValidationError::new(
                format!("mcp_policy[{i}].method"),
                "a method such as tools/call, a prefix ending in *, or *",
            ));
        }
        if r.name.as_deref().is_some_and(|n| !pattern_ok(n, b":@+=~")) {
            return Err(ValidationError::new(
                format!("mcp_policy[{i}].name"),
                "a name, or a prefix ending in * (letters, digits and _-./:@+=~)",
            ));
        }
        let scope_ok = |s: &String| !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if r.allow_scopes.len() > 20 || !r.allow_scopes.iter().all(scope_ok) {
            return Err(ValidationError::new(
                format!("mcp_policy[{i}].allow_scopes"),
                "at most 20 OAuth scopes",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: &str, name: Option<&str>) -> McpRule {
        McpRule {
            method: method.into(),
            name: name.map(String::from),
            allow_scopes: vec!["mcp:admin".into()],
        }
    }

    #[test]
    fn rules_are_checked() {
        assert!(validate(&[rule("tools/call", Some("delete_*")), rule("*", None)]).is_ok());
        for bad in [
            rule("", None),
            rule("tools/*/x", None),
            rule("tools call", None),
            rule("tools/call", Some("a*b")),
        ] {
            assert!(validate(std::slice::from_ref(&bad)).is_err(), "{bad:?}");
        }
        let mut quoted = rule("tools/call", None);
        quoted.allow_scopes = vec!["a\"b".into()];
        assert!(validate(&[quoted]).is_err());
        assert!(validate(&vec![rule("*", None); MAX_RULES + 1]).is_err());
    }
}
