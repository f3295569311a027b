//! Options and request bodies of the per-proxy auth and protected-resource
//! verbs (`proxy auth-*`, `proxy resource-*`). Pure: the HTTP calls are in
//! `proxies.rs`.

use clap::builder::BoolishValueParser;
use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};

use super::args::{parse_set, set_object};

/// How a proxy treats requests without a valid token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthModeArg {
    /// 401 with WWW-Authenticate (APIs, MCP).
    Forward,
    /// Browsers are sent to log in; API clients get the 401.
    Redirect,
    /// Always forwarded; identity headers only with a valid token.
    Passthrough,
}

impl AuthModeArg {
    fn as_str(self) -> &'static str {
        match self {
            AuthModeArg::Forward => "forward",
            AuthModeArg::Redirect => "redirect",
            AuthModeArg::Passthrough => "passthrough",
        }
    }
}

/// Parses a comma-separated list: `a,b` → `["a","b"]`, `*` → `["*"]`, and
/// `""` (or `null`) → `null`, which means "the global default".
pub fn parse_list_or_null(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if t.is_empty() || t == "null" {
        return Ok(Value::Null);
    }
    let items: Vec<&str> = t.split(',').map(str::trim).filter(|i| !i.is_empty()).collect();
    if items.is_empty() {
        return Err(format!("no items in {s:?}"));
    }
    Ok(json!(items))
}

/// Parses a JSON object argument.
pub fn parse_json_object(s: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(s) {
        Ok(v @ Value::Object(_)) | Ok(v @ Value::Null) => Ok(v),
        Ok(_) => Err("expected a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

fn put(body: &mut Map<String, Value>, key: &str, v: Option<&Value>) {
    if let Some(v) = v {
        body.insert(key.into(), v.clone());
    }
}

/// Options of `proxy auth-enable`.
#[derive(Args, Debug, Clone)]
pub struct AuthEnable {
    /// Hostname of the proxy to protect.
    #[arg(value_parser = super::args::name)]
    pub hostname: String,
    /// Host of the authorization server (e.g. auth.example.com).
    pub auth_proxy: String,
    /// forward, redirect or passthrough.
    #[arg(value_enum)]
    pub mode: AuthModeArg,
    /// Token scopes allowed in (comma-separated; "" = any).
    #[arg(long, value_name = "A,B", value_parser = parse_list_or_null)]
    pub scopes: Option<Value>,
    /// Token audiences accepted besides the proxy's own resource URI (comma-separated; "" = none).
    #[arg(long, value_name = "X,Y", value_parser = parse_list_or_null)]
    pub audiences: Option<Value>,
}

impl AuthEnable {
    /// Body of `POST /proxy/targets/{hostname}/auth`.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("auth_enabled".into(), json!(true));
        body.insert("auth_proxy".into(), json!(self.auth_proxy.trim()));
        body.insert("auth_mode".into(), json!(self.mode.as_str()));
        put(&mut body, "auth_allowed_scopes", self.scopes.as_ref());
        put(&mut body, "auth_allowed_audiences", self.audiences.as_ref());
        Value::Object(body)
    }
}

/// Options of `proxy auth-config`.
#[derive(Args, Debug, Clone, Default)]
pub struct AuthConfig {
    /// Hostname.
    #[arg(value_parser = super::args::name)]
    pub hostname: String,
    #[command(flatten)]
    pub changes: AuthChanges,
}

/// The changes of `proxy auth-config` (at least one): each list is
/// comma-separated, `*` means anyone, and `""` resets it to null (the
/// global default).
#[derive(Args, Debug, Clone, Default)]
#[group(id = "changes", required = true, multiple = true)]
pub struct AuthChanges {
    /// User allowlist (null = OAUTH_ALLOWED_GITHUB_USERS, * = anyone).
    #[arg(long, value_name = "A,B|*|\"\"", value_parser = parse_list_or_null)]
    pub users: Option<Value>,
    /// E-mail allowlist (*@example.com patterns allowed).
    #[arg(long, value_name = "A,B|\"\"", value_parser = parse_list_or_null)]
    pub emails: Option<Value>,
    /// Group allowlist (e.g. GitHub org/team).
    #[arg(long, value_name = "A,B|\"\"", value_parser = parse_list_or_null)]
    pub groups: Option<Value>,
    /// Token scopes allowed in.
    #[arg(long, value_name = "A,B|\"\"", value_parser = parse_list_or_null)]
    pub scopes: Option<Value>,
    /// Extra accepted token audiences.
    #[arg(long, value_name = "X,Y|\"\"", value_parser = parse_list_or_null)]
    pub audiences: Option<Value>,
    /// Paths (prefixes) that skip the check.
    #[arg(long, value_name = "P,Q|\"\"", value_parser = parse_list_or_null)]
    pub excluded_paths: Option<Value>,
    /// Any other auth_* field; the value is JSON, or a plain string (repeatable).
    #[arg(long = "set", value_name = "FIELD=JSON", value_parser = parse_set)]
    pub sets: Vec<(String, Value)>,
}

impl AuthConfig {
    /// The fields to change (a partial update of the proxy).
    pub fn patch(&self) -> Map<String, Value> {
        self.changes.patch()
    }
}

impl AuthChanges {
    /// The fields to change; empty when no option was given.
    pub fn patch(&self) -> Map<String, Value> {
        let mut body = Map::new();
        put(&mut body, "auth_required_users", self.users.as_ref());
        put(&mut body, "auth_required_emails", self.emails.as_ref());
        put(&mut body, "auth_required_groups", self.groups.as_ref());
        put(&mut body, "auth_allowed_scopes", self.scopes.as_ref());
        put(&mut body, "auth_allowed_audiences", self.audiences.as_ref());
        put(&mut body, "auth_excluded_paths", self.excluded_paths.as_ref());
        body.extend(set_object(&self.sets));
        body
    }
}

/// Options of `proxy resource-set` (RFC 9728 protected resource metadata).
#[derive(Args, Debug, Clone)]
pub struct ResourceSet {
    /// Hostname.
    #[arg(value_parser = super::args::name)]
    pub hostname: String,
    /// Path of the protected endpoint; the resource URI is https://HOST{endpoint}.
    #[arg(long, default_value = "/mcp")]
    pub endpoint: String,
    /// scopes_supported (comma-separated; "" = none).
    #[arg(long, value_name = "A,B", value_parser = parse_list_or_null)]
    pub scopes: Option<Value>,
    /// The MCP server keeps session state (--stateful or --stateful=false).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub stateful: Option<bool>,
    /// MCP protocol versions (comma-separated).
    #[arg(long, value_name = "V1,V2", value_parser = parse_list_or_null)]
    pub versions: Option<Value>,
    /// Serve our metadata even when the backend has its own.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub override_backend: Option<bool>,
    /// bearer_methods_supported (comma-separated, e.g. header).
    #[arg(long, value_name = "M,N", value_parser = parse_list_or_null)]
    pub bearer_methods: Option<Value>,
    /// Suffix of resource_documentation (appended to https://HOST).
    #[arg(long = "doc-suffix", value_name = "PATH")]
    pub documentation_suffix: Option<String>,
    /// Server info as a JSON object, e.g. '{"name":"tools","version":"1.0"}'.
    #[arg(long, value_name = "JSON", value_parser = parse_json_object)]
    pub server_info: Option<Value>,
    /// Extra metadata fields as a JSON object.
    #[arg(long, value_name = "JSON", value_parser = parse_json_object)]
    pub custom_metadata: Option<Value>,
}

impl ResourceSet {
    /// Body of `POST /proxy/targets/{hostname}/mcp`.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("endpoint".into(), json!(self.endpoint.trim()));
        put(&mut body, "scopes", self.scopes.as_ref());
        put(&mut body, "stateful", self.stateful.map(Value::Bool).as_ref());
        put(&mut body, "versions", self.versions.as_ref());
        put(&mut body, "server_info", self.server_info.as_ref());
        put(&mut body, "override_backend", self.override_backend.map(Value::Bool).as_ref());
        put(&mut body, "bearer_methods", self.bearer_methods.as_ref());
        if let Some(s) = &self.documentation_suffix {
            let s = s.trim();
            body.insert("documentation_suffix".into(), if s.is_empty() { Value::Null } else { json!(s) });
        }
        put(&mut body, "custom_metadata", self.custom_metadata.as_ref());
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_comma_separated_with_star_and_null() {
        assert_eq!(parse_list_or_null("alice, bob,,").unwrap(), json!(["alice", "bob"]));
        assert_eq!(parse_list_or_null("*").unwrap(), json!(["*"]));
        assert_eq!(parse_list_or_null("").unwrap(), Value::Null);
        assert_eq!(parse_list_or_null("null").unwrap(), Value::Null);
        assert!(parse_list_or_null(",").is_err());
    }

    #[test]
    fn auth_enable_body() {
        let a = AuthEnable {
            hostname: "api.example.com".into(),
            auth_proxy: "auth.example.com".into(),
            mode: AuthModeArg::Forward,
            scopes: None,
            audiences: None,
        };
        assert_eq!(
            a.body(),
            json!({"auth_enabled": true, "auth_proxy": "auth.example.com", "auth_mode": "forward"})
        );
        let a = AuthEnable {
            mode: AuthModeArg::Redirect,
            scopes: Some(json!(["mcp:read", "mcp:write"])),
            audiences: Some(Value::Null),
            ..a
        };
        assert_eq!(
            a.body(),
            json!({"auth_enabled": true, "auth_proxy": "auth.example.com", "auth_mode": "redirect",
                   "auth_allowed_scopes": ["mcp:read", "mcp:write"], "auth_allowed_audiences": null})
        );
    }

    #[test]
    fn auth_config_patches_only_given_fields() {
        let c = AuthChanges {
            users: Some(Value::Null),
            emails: Some(json!(["*@example.com"])),
            sets: vec![("auth_pass_token".into(), json!(true))],
            ..Default::default()
        };
        assert_eq!(
            Value::Object(c.patch()),
            json!({"auth_required_users": null, "auth_required_emails": ["*@example.com"], "auth_pass_token": true})
        );
        assert!(AuthChanges::default().patch().is_empty());
    }

    #[test]
    fn resource_set_body() {
        let r = ResourceSet {
            hostname: "mcp.example.com".into(),
            endpoint: "/mcp".into(),
            scopes: None,
            stateful: None,
            versions: None,
            override_backend: None,
            bearer_methods: None,
            documentation_suffix: None,
            server_info: None,
            custom_metadata: None,
        };
        assert_eq!(r.body(), json!({"endpoint": "/mcp"}));
        let r = ResourceSet {
            scopes: Some(json!(["mcp:read"])),
            stateful: Some(true),
            versions: Some(json!(["2025-06-18"])),
            override_backend: Some(false),
            bearer_methods: Some(json!(["header"])),
            documentation_suffix: Some("/docs".into()),
            server_info: Some(json!({"name": "tools"})),
            custom_metadata: Some(json!({"x": 1})),
            ..r
        };
        assert_eq!(
            r.body(),
            json!({"endpoint": "/mcp", "scopes": ["mcp:read"], "stateful": true, "versions": ["2025-06-18"],
                   "override_backend": false, "bearer_methods": ["header"], "documentation_suffix": "/docs",
                   "server_info": {"name": "tools"}, "custom_metadata": {"x": 1}})
        );
        assert!(parse_json_object("[1]").is_err());
        assert!(parse_json_object("{").is_err());
    }
}
