//! `portcullis route <verb>`: path routes (`/api/v1/routes`).

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use super::args::{parse_set, set_object};
use super::error::CliResult;
use super::http::Api;
use super::output::{field, fields, flag, table, Column};

const ROUTES: &str = "routes";

/// What a route's target value names.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum TargetArg {
    /// A local port (127.0.0.1:PORT over HTTP).
    #[default]
    Port,
    /// A named external service (`portcullis service register`).
    Service,
    /// Another proxy's hostname (its target_url).
    Hostname,
    /// Any http(s) URL.
    Url,
}

/// Where a route applies.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScopeArg {
    /// Every proxy.
    Global,
    /// Only the proxies named by --proxies.
    Proxy,
}

/// Options of `route create`.
#[derive(Args, Debug, Default)]
pub struct CreateRoute {
    /// Path prefix (e.g. /api/), or a regex with --regex.
    pub path: String,
    /// Kind of target.
    #[arg(value_enum)]
    pub target_type: TargetArg,
    /// Port, service name, hostname or URL.
    pub target_value: String,
    /// Route id (generated from the path when absent).
    #[arg(long)]
    pub id: Option<String>,
    /// Priority 0-1000, higher is checked first (default 50).
    #[arg(long)]
    pub priority: Option<i64>,
    /// Allowed methods, comma-separated (default: any).
    #[arg(long, value_delimiter = ',', value_name = "GET,POST")]
    pub methods: Vec<String>,
    /// PATH is a regular expression.
    #[arg(long)]
    pub regex: bool,
    /// Free text.
    #[arg(long)]
    pub description: Option<String>,
    /// Scope (default: global, or proxy when --proxies is given).
    #[arg(long, value_enum)]
    pub scope: Option<ScopeArg>,
    /// Proxies of a proxy-scoped route, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "a.com,b.com")]
    pub proxies: Vec<String>,
    /// Create the route disabled.
    #[arg(long)]
    pub disabled: bool,
}

/// Route verbs.
#[derive(Subcommand, Debug)]
pub enum RouteVerb {
    /// Create a route.
    Create(CreateRoute),
    /// List routes, highest priority first.
    List,
    /// Print the server's plain-text route table.
    Formatted,
    /// Show one route.
    Show {
        /// Route id.
        #[arg(value_parser = super::args::name)]
        id: String,
    },
    /// Change fields of a route.
    Update {
        /// Route id.
        #[arg(value_parser = super::args::name)]
        id: String,
        /// Field to change; the value is JSON, or a plain string (repeatable).
        #[arg(long = "set", value_name = "FIELD=JSON", value_parser = parse_set, required = true)]
        sets: Vec<(String, Value)>,
    },
    /// Delete a route.
    Delete {
        /// Route id.
        #[arg(value_parser = super::args::name)]
        id: String,
    },
}

fn target_type_str(t: TargetArg) -> &'static str {
    match t {
        TargetArg::Port => "port",
        TargetArg::Service => "service",
        TargetArg::Hostname => "hostname",
        TargetArg::Url => "url",
    }
}

impl CreateRoute {
    /// The creation body; absent options are left to the server's defaults.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("path_pattern".into(), json!(self.path));
        body.insert("target_type".into(), json!(target_type_str(self.target_type)));
        body.insert("target_value".into(), json!(self.target_value));
        if let Some(id) = &self.id {
            body.insert("route_id".into(), json!(id));
        }
        if let Some(p) = self.priority {
            body.insert("priority".into(), json!(p));
        }
        let methods: Vec<&str> = self.methods.iter().map(|m| m.trim()).filter(|m| !m.is_empty()).collect();
        if !methods.is_empty() {
            body.insert("methods".into(), json!(methods));
        }
        if self.regex {
            body.insert("is_regex".into(), json!(true));
        }
        if let Some(d) = &self.description {
            body.insert("description".into(), json!(d));
        }
        let proxies: Vec<&str> = self.proxies.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect();
        let scope = match (self.scope, proxies.is_empty()) {
            (Some(ScopeArg::Global), _) => Some("global"),
            (Some(ScopeArg::Proxy), _) | (None, false) => Some("proxy"),
            (None, true) => None,
        };
        if let Some(s) = scope {
            body.insert("scope".into(), json!(s));
        }
        if !proxies.is_empty() {
            body.insert("proxy_hostnames".into(), json!(proxies));
        }
        if self.disabled {
            body.insert("enabled".into(), json!(false));
        }
        Value::Object(body)
    }
}

/// `type:value`, as the formatted table shows a target.
fn target(r: &Value) -> String {
    format!("{}:{}", field(r, "target_type"), field(r, "target_value"))
}

fn list_table(v: &Value) -> String {
    let id = |r: &Value| field(r, "route_id");
    let prio = |r: &Value| field(r, "priority");
    let path = |r: &Value| {
        let p = field(r, "path_pattern");
        if r.get("is_regex").and_then(Value::as_bool) == Some(true) {
            format!("~{p}")
        } else {
            p
        }
    };
    let methods = |r: &Value| match field(r, "methods").as_str() {
        "-" => "*".to_string(),
        m => m.to_string(),
    };
    let scope = |r: &Value| match r.get("scope").and_then(Value::as_str) {
        Some("proxy") => format!("proxy:{}", field(r, "proxy_hostnames")),
        _ => "global".into(),
    };
    let enabled = |r: &Value| flag(r, "enabled");
    let description = |r: &Value| field(r, "description");
    let cols: [Column<'_>; 8] = [
        ("ROUTE_ID", &id),
        ("PRIORITY", &prio),
        ("PATH", &path),
        ("METHODS", &methods),
        ("TARGET", &target),
        ("SCOPE", &scope),
        ("ENABLED", &enabled),
        ("DESCRIPTION", &description),
    ];
    table(v, &cols, "no routes")
}

/// Runs one route verb.
pub async fn run(api: &Api, json_out: bool, verb: RouteVerb) -> CliResult {
    let (v, text) = match verb {
        RouteVerb::Create(c) => {
            let v = api.post(&[ROUTES, ""], &c.body()).await?;
            let t = format!(
                "created route {}: {} -> {}\n",
                field(&v, "route_id"),
                field(&v, "path_pattern"),
                target(&v)
            );
            (v, t)
        }
        RouteVerb::List => {
            let v = api.get(&[ROUTES, ""]).await?;
            let t = list_table(&v);
            (v, t)
        }
        // The formatted table is text; with --json the route list stands in for it.
        RouteVerb::Formatted if json_out => (api.get(&[ROUTES, ""]).await?, String::new()),
        RouteVerb::Formatted => (Value::Null, api.get_text(&[ROUTES, "formatted"]).await?),
        RouteVerb::Show { id } => {
            let v = api.get(&[ROUTES, &id]).await?;
            let t = fields(&v, &["owner_token_hash"]);
            (v, t)
        }
        RouteVerb::Update { id, sets } => {
            let patch = set_object(&sets);
            let v = api.put(&[ROUTES, &id], &Value::Object(patch.clone())).await?;
            let changes: Vec<String> = patch.iter().map(|(k, val)| format!("{k}={val}")).collect();
            let t = format!("updated route {}: {}\n", field(&v, "route_id"), changes.join(" "));
            (v, t)
        }
        RouteVerb::Delete { id } => {
            let v = api.delete(&[ROUTES, &id]).await?;
            let t = format!("deleted route {}\n", field(&v, "route_id"));
            (v, t)
        }
    };
    super::output::show(&v, &text, json_out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(path: &str, t: TargetArg, value: &str) -> CreateRoute {
        CreateRoute {
            path: path.into(),
            target_type: t,
            target_value: value.into(),
            ..Default::default()
        }
    }

    #[test]
    fn minimal_body_leaves_defaults_to_the_server() {
        assert_eq!(
            create("/api/", TargetArg::Port, "8080").body(),
            json!({"path_pattern": "/api/", "target_type": "port", "target_value": "8080"})
        );
    }

    #[test]
    fn proxies_imply_proxy_scope_and_flags_map_to_fields() {
        let mut c = create("^/v[0-9]+/", TargetArg::Url, "http://10.0.0.1");
        c.proxies = vec!["a.com".into(), " b.com".into()];
        c.methods = vec!["GET".into(), "post".into()];
        c.regex = true;
        c.disabled = true;
        c.priority = Some(90);
        c.id = Some("versioned".into());
        assert_eq!(
            c.body(),
            json!({
                "path_pattern": "^/v[0-9]+/", "target_type": "url", "target_value": "http://10.0.0.1",
                "route_id": "versioned", "priority": 90, "methods": ["GET", "post"], "is_regex": true,
                "scope": "proxy", "proxy_hostnames": ["a.com", "b.com"], "enabled": false,
            })
        );
        let mut g = create("/", TargetArg::Service, "auth");
        g.scope = Some(ScopeArg::Global);
        assert_eq!(g.body()["scope"], json!("global"));
    }
}
