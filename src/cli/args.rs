//! Pure parsing of command-line values, used as clap value parsers: names
//! that become URL path segments, `K=V` headers and `FIELD=JSON` field
//! assignments.

use serde_json::{Map, Value};

/// A name (hostname, token, service, id...) that becomes one URL path
/// segment. An empty name would address the collection (`proxy show ""`
/// listed every proxy) and URL parsers drop `.` and `..` (`proxy
/// auth-disable ..` would reach the proxy named `auth`), so all three are a
/// bad command line (exit 2), refused before any request with the message
/// the request layer's own check (`http::check_segments`) gives.
pub fn name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() || matches!(s, "." | "..") {
        return Err(super::error::CliError::BadName(s.to_string()).to_string());
    }
    Ok(s.to_string())
}

/// Parses `K=V` (split at the first `=`; the value may contain more `=`).
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("empty key in {s:?}"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// Parses `FIELD=JSON`: the value is JSON when it parses as JSON
/// (`true`, `8080`, `["a"]`, `null`, `"x"`), otherwise the raw text as a string.
pub fn parse_set(s: &str) -> Result<(String, Value), String> {
    let (k, raw) = parse_kv(s)?;
    Ok((k, json_or_string(&raw)))
}

/// The JSON value of `raw`, or `raw` itself as a JSON string.
pub fn json_or_string(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// A JSON object from `K=V` pairs; a repeated key keeps its last value.
pub fn headers_object(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

/// A JSON object from `FIELD=JSON` pairs; a repeated field keeps its last value.
pub fn set_object(pairs: &[(String, Value)]) -> Map<String, Value> {
    pairs.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_and_dot_names_are_refused() {
        for bad in ["", " ", ".", ".."] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
        for good in ["a..b", ".well-known", "app.test", "https://h/mcp"] {
            assert_eq!(name(good).as_deref(), Ok(good));
        }
    }

    #[test]
    fn kv_splits_at_the_first_equals() {
        assert_eq!(parse_kv("X-Api-Key=a=b").unwrap(), ("X-Api-Key".into(), "a=b".into()));
        assert_eq!(parse_kv(" X-Empty =").unwrap(), ("X-Empty".into(), String::new()));
        assert!(parse_kv("no-equals").is_err());
        assert!(parse_kv("=value").is_err());
    }

    #[test]
    fn set_values_are_json_or_fall_back_to_strings() {
        assert_eq!(parse_set("enabled=false").unwrap(), ("enabled".into(), json!(false)));
        assert_eq!(parse_set("priority=90").unwrap(), ("priority".into(), json!(90)));
        assert_eq!(parse_set("methods=[\"GET\",\"POST\"]").unwrap().1, json!(["GET", "POST"]));
        assert_eq!(parse_set("cert_name=null").unwrap().1, Value::Null);
        assert_eq!(parse_set("target_url=http://x:8080/a?b=c").unwrap().1, json!("http://x:8080/a?b=c"));
        assert_eq!(parse_set("description=\"quoted\"").unwrap().1, json!("quoted"));
        assert_eq!(parse_set("auth_mode=redirect").unwrap().1, json!("redirect"));
        assert_eq!(parse_set("description=").unwrap().1, json!(""));
        assert_eq!(parse_set("resource_custom_metadata={\"a\":1}").unwrap().1, json!({"a": 1}));
        assert!(parse_set("novalue").is_err());
    }

    #[test]
    fn objects_keep_the_last_repeated_key() {
        let h = headers_object(&[("A".into(), "1".into()), ("B".into(), "2".into()), ("A".into(), "3".into())]);
        assert_eq!(h, json!({"A": "3", "B": "2"}));
        let s = set_object(&[("enabled".into(), json!(true)), ("enabled".into(), json!(false))]);
        assert_eq!(Value::Object(s), json!({"enabled": false}));
    }
}
