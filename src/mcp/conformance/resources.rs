//! The suite's fixture resources (`test://...`) and their template.

use serde_json::{json, Value};

use super::PNG;

/// The template `resources-templates-read` reads through.
const TEMPLATE: &str = "test://template/{id}/data";

/// `resources/list` entries of the fixtures.
pub fn list() -> Vec<Value> {
    vec![
        json!({"uri": "test://static-text", "name": "static-text", "description": "A static text resource", "mimeType": "text/plain"}),
        json!({"uri": "test://static-binary", "name": "static-binary", "description": "A static binary resource (image)", "mimeType": "image/png"}),
        json!({"uri": "test://watched-resource", "name": "watched-resource", "description": "A resource one may subscribe to", "mimeType": "text/plain"}),
    ]
}

/// `resources/templates/list` entries of the fixtures.
pub fn templates() -> Vec<Value> {
    vec![
        json!({"uriTemplate": TEMPLATE, "name": "template", "description": "A template with one parameter", "mimeType": "application/json"}),
    ]
}

/// The id in `test://template/{id}/data`: one plain segment.
fn template_id(uri: &str) -> Option<&str> {
    uri.strip_prefix("test://template/")
        .and_then(|rest| rest.strip_suffix("/data"))
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// `resources/read` of fixture `uri`; `None` when it is not one.
pub fn read(uri: &str) -> Option<Value> {
    let content = match uri {
        "test://static-text" => json!({"uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource."}),
        "test://static-binary" => json!({"uri": uri, "mimeType": "image/png", "blob": PNG}),
        "test://watched-resource" => json!({"uri": uri, "mimeType": "text/plain", "text": "Watched resource content"}),
        _ => {
            let id = template_id(uri)?;
            let body = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
            json!({"uri": uri, "mimeType": "application/json", "text": body.to_string()})
        }
    };
    Some(json!({"contents": [content]}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_one_plain_segment() {
        assert_eq!(
            read("test://template/123/data").unwrap()["contents"][0]["uri"],
            "test://template/123/data"
        );
        for bad in [
            "test://template//data",
            "test://template/a/b/data",
            "test://template/%2e/data",
            "test://other",
        ] {
            assert!(read(bad).is_none(), "{bad}");
        }
    }
}
