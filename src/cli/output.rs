//! Printing for people and scripts: pretty JSON with `--json`, otherwise
//! aligned tables for lists and `key: value` lines for single records.

use std::io::Write;

use serde_json::Value;

/// A table column: header and how to read the cell from a record.
pub type Column<'a> = (&'a str, &'a dyn Fn(&Value) -> String);

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes `text` and a newline unless it already ends with one.
pub fn emit_line(text: &str) {
    if text.ends_with('\n') {
        emit(text);
    } else {
        emit(&format!("{text}\n"));
    }
}

/// The server's JSON, pretty-printed.
/// The server's JSON (`--json`) or the text made for people.
pub fn show(v: &Value, text: &str, json_out: bool) {
    if json_out {
        json(v);
    } else {
        emit(text);
    }
}

pub fn json(v: &Value) {
    emit_line(&serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// One value as text: strings bare, `null` as `-`, lists of scalars joined
/// with `,`, anything else as compact JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            items.iter().map(text).collect::<Vec<_>>().join(",")
        }
        Value::Object(o) if o.is_empty() => "-".into(),
        other => other.to_string(),
    }
}

/// `record[field]` as text.
pub fn field(record: &Value, name: &str) -> String {
    text(record.get(name).unwrap_or(&Value::Null))
}

/// `record[field]` as `yes`/`no` (missing or non-bool is `-`).
pub fn flag(record: &Value, name: &str) -> String {
    match record.get(name).and_then(Value::as_bool) {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "-".into(),
    }
}

/// A record as aligned `key: value` lines, in the order of the parsed JSON
/// object (by key), leaving out `skip`.
pub fn fields(record: &Value, skip: &[&str]) -> String {
    let Value::Object(map) = record else {
        return format!("{}\n", text(record));
    };
    let shown: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| !skip.contains(&k.as_str())).collect();
    let width = shown.iter().map(|(k, _)| k.chars().count() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in shown {
        out.push_str(format!("{:<width$} {}", format!("{k}:"), text(v)).trim_end());
        out.push('\n');
    }
    out
}

/// A list of records as a table; `empty` is printed instead when there are none.
pub fn table(list: &Value, columns: &[Column<'_>], empty: &str) -> String {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return format!("{empty}\n");
    }
    let header: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let rows: Vec<Vec<String>> = items.iter().map(|item| columns.iter().map(|(_, f)| f(item)).collect()).collect();
    crate::table::render(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_readable() {
        assert_eq!(text(&json!(null)), "-");
        assert_eq!(text(&json!("")), "-");
        assert_eq!(text(&json!(["a", "b"])), "a,b");
        assert_eq!(text(&json!({"X-A": "1"})), r#"{"X-A":"1"}"#);
        assert_eq!(text(&json!(7)), "7");
    }

    #[test]
    fn fields_align_and_skip() {
        let out = fields(&json!({"name": "a", "scope": "user", "hash": "h"}), &["hash"]);
        assert_eq!(out, "name:  a\nscope: user\n");
    }

    #[test]
    fn tables_render_rows_or_the_empty_note() {
        let name = |v: &Value| field(v, "name");
        let admin = |v: &Value| flag(v, "admin");
        let cols: [Column<'_>; 2] = [("NAME", &name), ("ADMIN", &admin)];
        assert_eq!(table(&json!([]), &cols, "no tokens"), "no tokens\n");
        assert_eq!(
            table(&json!([{"name": "ci", "admin": true}]), &cols, ""),
            "NAME  ADMIN\nci    yes\n"
        );
    }
}
