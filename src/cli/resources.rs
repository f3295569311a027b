//! `portcullis resource <verb>`: the protected resource registry
//! (`/api/v1/resources`). A resource URI travels as one percent-encoded
//! path segment.

use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::args::{parse_set, set_object};
use super::error::{CliError, CliResult};
use super::http::Api;
use super::output::{field, fields, table, Column};
use super::proxy_auth::parse_list_or_null;

const RESOURCES: &str = "resources";

/// Resource registry verbs.
#[derive(Subcommand, Debug)]
pub enum ResourceVerb {
    /// List registered resources.
    List,
    /// Show one resource.
    Show {
        /// Resource URI (e.g. https://mcp.example.com/mcp).
        #[arg(value_parser = super::args::name)]
        uri: String,
    },
    /// Register a protected resource served by a proxy.
    Register {
        /// Resource URI (canonical: https, no fragment, no trailing slash).
        #[arg(value_parser = super::args::name)]
        uri: String,
        /// Hostname of the proxy that serves it.
        #[arg(value_parser = super::args::name)]
        proxy: String,
        /// Display name.
        name: String,
        /// Scopes it accepts (comma-separated).
        #[arg(long, value_name = "A,B", value_parser = parse_list_or_null)]
        scopes: Option<Value>,
        /// Where its RFC 9728 metadata lives (default: derived from the URI).
        #[arg(long, value_name = "URL")]
        metadata_url: Option<String>,
    },
    /// Change fields of a resource.
    Update {
        /// Resource URI.
        #[arg(value_parser = super::args::name)]
        uri: String,
        /// Field to change; the value is JSON, or a plain string (repeatable).
        #[arg(long = "set", value_name = "FIELD=JSON", value_parser = parse_set, required = true)]
        sets: Vec<(String, Value)>,
    },
    /// Remove a resource from the registry.
    Delete {
        /// Resource URI.
        #[arg(value_parser = super::args::name)]
        uri: String,
    },
    /// Check whether a token is valid for a resource (signature, expiry, audience); exits 1 when not.
    ValidateToken {
        /// Resource URI.
        #[arg(value_parser = super::args::name)]
        uri: String,
        /// The access token (JWT). (Not named `token`: that id is the global --token.)
        #[arg(value_name = "TOKEN")]
        access_token: String,
    },
    /// Register every proxy that has protected resource settings.
    AutoRegister,
}

/// Body of `POST /api/v1/resources/`.
pub fn register_body(uri: &str, proxy: &str, name: &str, scopes: Option<&Value>, metadata_url: Option<&str>) -> Value {
    let mut body = Map::new();
    body.insert("uri".into(), json!(uri.trim()));
    body.insert("name".into(), json!(name));
    body.insert("proxy_target".into(), json!(proxy.trim()));
    if let Some(s) = scopes {
        body.insert("scopes".into(), s.clone());
    }
    if let Some(m) = metadata_url.map(str::trim).filter(|m| !m.is_empty()) {
        body.insert("metadata_url".into(), json!(m));
    }
    Value::Object(body)
}

fn list_table(v: &Value) -> String {
    // The list may come as an array or as {"resources": [...]}.
    let items = v.get("resources").unwrap_or(v);
    let uri = |r: &Value| field(r, "uri");
    let name = |r: &Value| field(r, "name");
    let proxy = |r: &Value| field(r, "proxy_target");
    let scopes = |r: &Value| field(r, "scopes");
    let cols: [Column<'_>; 4] = [("URI", &uri), ("NAME", &name), ("PROXY", &proxy), ("SCOPES", &scopes)];
    table(items, &cols, "no resources")
}

fn validation(v: &Value) -> String {
    let verdict = match v.get("valid").or_else(|| v.get("active")).and_then(Value::as_bool) {
        Some(true) => "valid",
        Some(false) => "NOT valid",
        None => "?",
    };
    format!("token is {verdict} for this resource\n{}", fields(v, &["valid"]))
}

fn auto_registered(v: &Value) -> String {
    let items = v.get("resources").or_else(|| v.get("registered")).unwrap_or(v);
    match items.as_array() {
        Some(list) if list.is_empty() => "nothing new to register (no proxy with resource settings lacks a registry entry)\n".into(),
        Some(list) => format!(
            "registered {} resource{}\n{}",
            list.len(),
            if list.len() == 1 { "" } else { "s" },
            list_table(items)
        ),
        None => fields(v, &[]),
    }
}

/// Runs one resource verb.
pub async fn run(api: &Api, json_out: bool, verb: ResourceVerb) -> CliResult {
    let check = matches!(verb, ResourceVerb::ValidateToken { .. });
    let (v, text) = match verb {
        ResourceVerb::List => {
            let v = api.get(&[RESOURCES, ""]).await?;
            let t = list_table(&v);
            (v, t)
        }
        ResourceVerb::Show { uri } => {
            let v = api.get(&[RESOURCES, &uri]).await?;
            let t = fields(&v, &[]);
            (v, t)
        }
        ResourceVerb::Register {
            uri,
            proxy,
            name,
            scopes,
            metadata_url,
        } => {
            let v = api
                .post(
                    &[RESOURCES, ""],
                    &register_body(&uri, &proxy, &name, scopes.as_ref(), metadata_url.as_deref()),
                )
                .await?;
            let t = format!("registered resource {} (proxy {})\n", field(&v, "uri"), field(&v, "proxy_target"));
            (v, t)
        }
        ResourceVerb::Update { uri, sets } => {
            let patch = set_object(&sets);
            let v = api.put(&[RESOURCES, &uri], &Value::Object(patch)).await?;
            let t = format!("updated resource {uri}\n{}", fields(&v, &[]));
            (v, t)
        }
        ResourceVerb::Delete { uri } => {
            let v = api.delete(&[RESOURCES, &uri]).await?;
            (v, format!("deleted resource {uri}\n"))
        }
        ResourceVerb::ValidateToken { uri, access_token } => {
            let v = api
                .post(&[RESOURCES, &uri, "validate-token"], &json!({ "token": access_token }))
                .await?;
            let t = validation(&v);
            (v, t)
        }
        ResourceVerb::AutoRegister => {
            let v = api.post(&[RESOURCES, "auto-register"], &json!({})).await?;
            let t = auto_registered(&v);
            (v, t)
        }
    };
    super::output::show(&v, &text, json_out);
    if check && v.get("valid").and_then(Value::as_bool) == Some(false) {
        return Err(CliError::CheckFailed(format!(
            "the token is not valid for this resource: {}",
            field(&v, "reason")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http::{endpoint, parse_base};

    #[test]
    fn register_body_sends_only_what_was_given() {
        assert_eq!(
            register_body("https://mcp.example.com/mcp", "mcp.example.com", "Tools", None, None),
            json!({"uri": "https://mcp.example.com/mcp", "name": "Tools", "proxy_target": "mcp.example.com"})
        );
        assert_eq!(
            register_body(
                "https://m.io",
                "m.io",
                "M",
                Some(&json!(["mcp:read"])),
                Some("https://m.io/.well-known/oauth-protected-resource")
            ),
            json!({"uri": "https://m.io", "name": "M", "proxy_target": "m.io", "scopes": ["mcp:read"],
                   "metadata_url": "https://m.io/.well-known/oauth-protected-resource"})
        );
    }

    #[test]
    fn a_uri_is_one_path_segment() {
        let base = parse_base("http://127.0.0.1:9000").unwrap();
        let url = endpoint(
            &base,
            &["api", "v1", RESOURCES, "https://mcp.example.com/mcp?x=1#f", "validate-token"],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/api/v1/resources/https:%2F%2Fmcp.example.com%2Fmcp%3Fx=1%23f/validate-token"
        );
        assert_eq!(url.path_segments().unwrap().count(), 5);
    }

    #[test]
    fn lists_render_either_shape() {
        let one = json!([{"uri": "https://m.io", "name": "M", "proxy_target": "m.io", "scopes": ["mcp"]}]);
        assert!(list_table(&one).contains("https://m.io  M     m.io   mcp"));
        assert_eq!(list_table(&json!({"resources": one})), list_table(&one));
        assert_eq!(list_table(&json!([])), "no resources\n");
        assert!(auto_registered(&one).starts_with("registered 1 resource\nURI"));
        assert!(auto_registered(&json!([])).starts_with("nothing new"));
    }
}
