//! `Mcp-Param-*` headers (SEP-2243, `2026-07-28`): a tool argument whose
//! schema says `"x-mcp-header": "Name"` is repeated in the header
//! `Mcp-Param-Name`, so that a proxy can route or decide on it without
//! reading the body. Like `Mcp-Method` and `Mcp-Name`, the header must
//! say what the body says: a missing header for a present argument, an
//! undecodable `=?base64?…?=` value or a different value is a 400 with
//! `HeaderMismatch` (-32020).

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};

use super::protocol::{code, RpcError};

/// The header value as text: `=?base64?…?=` decoded (strictly: padding and
/// alphabet), anything else literal; `None` when it does not decode.
fn decode(raw: &str) -> Option<String> {
    match raw.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(encoded) => String::from_utf8(STANDARD.decode(encoded).ok()?).ok(),
        None => Some(raw.to_string()),
    }
}

/// An argument value as the header carries it (strings bare, others as JSON).
fn as_header_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks every `x-mcp-header` argument of `schema` in `args` against its
/// `Mcp-Param-*` header in `headers`.
pub fn check(schema: &Value, args: &Map<String, Value>, headers: &HeaderMap) -> Result<(), RpcError> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    let mismatch = |m: String| RpcError::bad(code::HEADER_MISMATCH, m);
    for (arg, prop) in props {
        let Some(suffix) = prop.get("x-mcp-header").and_then(Value::as_str) else {
            continue;
        };
        let name = format!("mcp-param-{}", suffix.to_ascii_lowercase());
        let header = headers.get(&name).map(|h| h.to_str().map(str::trim));
        match (header, args.get(arg).filter(|v| !v.is_null())) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(mismatch(format!(
                    "argument {arg:?} must be repeated in the Mcp-Param-{suffix} header"
                )))
            }
            (Some(Err(_)), _) => return Err(mismatch(format!("Mcp-Param-{suffix} is not text"))),
            (Some(Ok(raw)), body) => {
                let Some(value) = decode(raw) else {
                    return Err(mismatch(format!("Mcp-Param-{suffix} is not valid =?base64?...?=")));
                };
                if body.map(as_header_text).as_deref() != Some(value.as_str()) {
                    return Err(mismatch(format!("Mcp-Param-{suffix} does not match the argument {arg:?}")));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(header: Option<&str>, body: Option<&str>) -> Result<(), RpcError> {
        let schema =
            json!({"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "n": {"type": "integer"}}});
        let mut h = HeaderMap::new();
        if let Some(v) = header {
            h.insert("mcp-param-region", v.parse().unwrap());
        }
        let mut args = Map::new();
        if let Some(b) = body {
            args.insert("region".into(), json!(b));
        }
        check(&schema, &args, &h)
    }

    #[test]
    fn headers_must_repeat_their_arguments() {
        assert!(run(Some("eu"), Some("eu")).is_ok());
        assert!(run(Some("=?base64?SGVsbG8=?="), Some("Hello")).is_ok());
        assert!(run(Some("SGVsbG8="), Some("SGVsbG8=")).is_ok(), "no wrapper: literal");
        assert!(
            run(Some("=?base64?SGVsbG8="), Some("=?base64?SGVsbG8=")).is_ok(),
            "no suffix: literal"
        );
        assert!(run(None, None).is_ok());
        for (header, body) in [
            (Some("=?base64?SGVsbG8?="), Some("Hello")),
            (Some("=?base64?SGVs!!!bG8=?="), Some("Hello")),
            (Some("us"), Some("eu")),
            (None, Some("eu")),
            (Some("eu"), None),
        ] {
            let e = run(header, body).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, code::HEADER_MISMATCH), "{header:?} {body:?}");
        }
    }
}
