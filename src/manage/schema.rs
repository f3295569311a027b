//! JSON Schemas of the typed requests and results of `manage`, for every
//! front end that describes them: the OpenAPI document of the REST API
//! (`admin::openapi`) and the input and output schemas of the MCP tools.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

/// Where the OpenAPI document keeps named schemas; `utoipa` writes its
/// references in this form.
pub const COMPONENTS_PREFIX: &str = "#/components/schemas/";

/// The named schemas `T` refers to (not `T` itself), by name.
pub fn referenced<T: ToSchema>() -> BTreeMap<String, Value> {
    let mut found: Vec<(String, RefOr<Schema>)> = Vec::new();
    T::schemas(&mut found);
    found.into_iter().map(|(name, s)| (name, to_value(&s))).collect()
}

/// `T`'s own schema, inline (its fields may refer to named schemas).
pub fn inline<T: ToSchema>() -> Value {
    to_value(&T::schema())
}

/// A self-contained JSON Schema (draft 2020-12, as OpenAPI 3.1 uses) of
/// `T`: its own schema at the root and every schema it refers to under
/// `$defs`, references rewritten to point there. This is what an MCP tool
/// declares as its `inputSchema` or `outputSchema`.
pub fn json_schema_of<T: ToSchema>() -> Value {
    let mut root = inline::<T>();
    let defs = referenced::<T>();
    if !defs.is_empty() {
        if let Value::Object(o) = &mut root {
            o.insert("$defs".into(), json!(defs));
        }
    }
    rewrite_refs(&mut root, COMPONENTS_PREFIX, "#/$defs/");
    root.as_object_mut()
        .map(|o| o.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema")));
    root
}

/// Replaces the prefix `from` by `to` in every `$ref` under `v`.
fn rewrite_refs(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match x {
                    Value::String(s) if k == "$ref" => {
                        if let Some(rest) = s.strip_prefix(from) {
                            *s = format!("{to}{rest}");
                        }
                    }
                    _ => rewrite_refs(x, from, to),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_refs(x, from, to)),
        _ => {}
    }
}

/// A schema as JSON; utoipa's types always serialize.
fn to_value(s: &RefOr<Schema>) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Proxy, ProxySpec};

    /// Every `$ref` in `v`.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => o.iter().for_each(|(k, x)| match x {
                Value::String(s) if k == "$ref" => out.push(s.clone()),
                _ => refs(x, out),
            }),
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn a_schema_of_a_request_resolves_every_reference_inside_itself() {
        for s in [json_schema_of::<ProxySpec>(), json_schema_of::<Proxy>()] {
            let mut found = Vec::new();
            refs(&s, &mut found);
            assert!(!found.is_empty(), "the proxy refers to its enums: {s}");
            for r in found {
                let name = r.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("{r} is not local"));
                assert!(s["$defs"][name].is_object(), "{r} unresolved in {s}");
            }
        }
    }

    #[test]
    fn a_request_schema_lists_required_fields_and_refuses_unknown_ones() {
        let s = json_schema_of::<ProxySpec>();
        assert_eq!(s["type"], "object");
        let required: Vec<&str> = s["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(required.contains(&"hostname") && required.contains(&"target_url"), "{s}");
        assert!(!required.contains(&"enabled"), "a defaulted field is optional: {s}");
        assert!(s["properties"].get("owner_token_hash").is_none(), "{s}");
    }
}
