//! One request (or OAuth flow event) as it is logged, stored and queried.

use serde::{Deserialize, Serialize};

/// Query parameters whose values are secrets: replaced by `[REDACTED]`
/// before a query string reaches the access log or the store.
const SECRET_PARAMS: [&str; 5] = ["code", "access_token", "refresh_token", "client_secret", "password"];

/// Longest path or query kept in a record; longer ones are cut (an attacker
/// controls both, and a path becomes part of an index key).
pub const MAX_TEXT: usize = 512;

/// One request as the data plane saw it, or one OAuth flow event
/// (`kind = "oauth"`). Optional fields are absent when unknown.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Record {
    /// Microseconds since the Unix epoch, unique per instance: the sort key and the cursor.
    pub ts: i64,
    /// The same instant as RFC 3339 (UTC).
    pub timestamp: String,
    /// `request` or `oauth`.
    pub kind: String,
    /// `X-Request-Id`, as sent upstream and returned to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// W3C trace id of the request (from `traceparent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The client address as the proxy determined it (PROXY header, trusted `X-Forwarded-For`, peer).
    pub client_ip: String,
    /// Request method.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// The proxy's hostname, or the Host as sent when no proxy serves it.
    pub host: String,
    /// The path, without the query.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// The query with secret values redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Response status (0 when none was written).
    pub status: u16,
    /// Request body bytes read from the client.
    #[serde(default)]
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    #[serde(default)]
    pub bytes_out: u64,
    /// The upstream's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Time from sending the request upstream to the response header, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ms: Option<f64>,
    /// Time from the request head to the end of the response, in ms.
    #[serde(default)]
    pub duration_ms: f64,
    /// The route that chose the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_id: Option<String>,
    /// The proxy (hostname) that served the request; absent for unknown hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The authenticated user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The OAuth client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The token's scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
    /// TLS version of the client connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// The server name the client asked for in its TLS handshake (SNI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// For `kind = "oauth"`: `authorize`, `callback`, `token`, `refresh`, `revoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Why a request or flow step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `Some(s)` unless `s` is empty.
fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// A field's name, with the two forms the writer copies for every
/// request as they are instead of framing the name each time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Name {
    /// The name, as the hash and the JSON object hold it.
    pub plain: &'static str,
    /// `,"name":`, the JSON key between its neighbours (the first one
    /// without its comma).
    pub json: &'static str,
    /// `$<length>\r\nname\r\n`, the name as a RESP bulk string.
    pub resp: &'static str,
}

/// A [`Name`] from the name and its length in decimal (checked by a test:
/// `concat!` cannot count).
macro_rules! name {
    ($n:literal, $len:literal) => {
        Name {
            plain: $n,
            json: concat!(",\"", $n, "\":"),
            resp: concat!("$", $len, "\r\n", $n, "\r\n"),
        }
    };
}

/// One field's value as [`Record::each_field`] hands it out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field<'a> {
    /// Text, as is.
    Text(&'a str),
    /// An integer.
    Int(i64),
    /// A float (milliseconds).
    Float(f64),
}

/// Fields stored as numbers (the Redis hash keeps strings; these are parsed back).
const NUMERIC: [&str; 6] = ["ts", "status", "bytes_in", "bytes_out", "upstream_ms", "duration_ms"];

impl Record {
    /// True for 4xx and 5xx responses and failed OAuth steps.
    pub fn is_error(&self) -> bool {
        self.status >= 400 || (self.kind == "oauth" && self.reason.is_some())
    }

    /// Visits the record's fields as its Redis hash holds them, absent ones
    /// left out, without building a string per field: the writer encodes
    /// them straight into its pipeline and its JSON line for every request.
    /// The order is the struct's, so the JSON line is the one serde writes.
    pub fn each_field(&self, mut f: impl FnMut(Name, Field<'_>)) {
        let mut emit = |name: Name, v: Option<Field<'_>>| {
            if let Some(v) = v {
                f(name, v);
            }
        };
        fn text(v: Option<&str>) -> Option<Field<'_>> {
            v.map(Field::Text)
        }
        let int = |n: i64| Some(Field::Int(n));
        emit(name!("ts", "2"), int(self.ts));
        emit(name!("timestamp", "9"), text(Some(&self.timestamp)));
        emit(name!("kind", "4"), text(Some(&self.kind)));
        emit(name!("request_id", "10"), text(self.request_id.as_deref()));
        emit(name!("trace_id", "8"), text(self.trace_id.as_deref()));
        emit(name!("client_ip", "9"), text(Some(&self.client_ip)));
        emit(name!("method", "6"), text(nonempty(&self.method)));
        emit(name!("host", "4"), text(Some(&self.host)));
        emit(name!("path", "4"), text(nonempty(&self.path)));
        emit(name!("query", "5"), text(self.query.as_deref()));
        emit(name!("status", "6"), int(i64::from(self.status)));
        emit(name!("bytes_in", "8"), int(i64::try_from(self.bytes_in).unwrap_or(i64::MAX)));
        emit(name!("bytes_out", "9"), int(i64::try_from(self.bytes_out).unwrap_or(i64::MAX)));
        emit(name!("upstream", "8"), text(self.upstream.as_deref()));
        emit(name!("upstream_ms", "11"), self.upstream_ms.map(Field::Float));
        emit(name!("duration_ms", "11"), Some(Field::Float(self.duration_ms)));
        emit(name!("route_id", "8"), text(self.route_id.as_deref()));
        emit(name!("proxy", "5"), text(self.proxy.as_deref()));
        emit(name!("user", "4"), text(self.user.as_deref()));
        emit(name!("client_id", "9"), text(self.client_id.as_deref()));
        emit(name!("scopes", "6"), text(self.scopes.as_deref()));
        emit(name!("tls_version", "11"), text(self.tls_version.as_deref()));
        emit(name!("sni", "3"), text(self.sni.as_deref()));
        emit(name!("event", "5"), text(self.event.as_deref()));
        emit(name!("reason", "6"), text(self.reason.as_deref()));
    }

    /// The record from flat pairs; `None` when required fields are missing.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Record> {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .into_iter()
            .map(|(k, v)| {
                let value = if NUMERIC.contains(&k) {
                    serde_json::from_str(v).unwrap_or(serde_json::Value::Null)
                } else {
                    serde_json::Value::String(v.to_string())
                };
                (k.to_string(), value)
            })
            .filter(|(_, v)| !v.is_null())
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).ok()
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The query string with the values of [`SECRET_PARAMS`] replaced, cut to
/// [`MAX_TEXT`]. Names are compared after percent-decoding, so `%63ode`
/// is redacted too.
pub fn redact_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len().min(MAX_TEXT));
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (name, value) = match pair.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (pair, None),
        };
        let decoded: String = url::form_urlencoded::parse(name.as_bytes()).map(|(k, _)| k.into_owned()).collect();
        out.push_str(name);
        if let Some(v) = value {
            out.push('=');
            if SECRET_PARAMS.iter().any(|s| decoded.eq_ignore_ascii_case(s)) {
                out.push_str("[REDACTED]");
            } else {
                out.push_str(v);
            }
        }
    }
    truncate(&out, MAX_TEXT).to_string()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn secret_query_values_are_redacted_whatever_their_spelling() {
        let q = redact_query("state=s1&code=abc123&%63ode=x9&Access_Token=t0k&keep=1&password&client_secret=shh");
        assert_eq!(
            q,
            "state=s1&code=[REDACTED]&%63ode=[REDACTED]&Access_Token=[REDACTED]&keep=1&password&client_secret=[REDACTED]"
        );
        assert!(!q.contains("abc123") && !q.contains("x9") && !q.contains("t0k") && !q.contains("shh"));
    }

    /// The flat form as text pairs, as Redis hands the hash back.
    fn to_fields(r: &Record) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        r.each_field(|name, v| {
            let text = match v {
                Field::Text(t) => t.to_string(),
                Field::Int(n) => n.to_string(),
                Field::Float(f) => zmij::Buffer::new().format(f).to_string(),
            };
            out.push((name.plain, text));
        });
        out
    }

    #[test]
    fn a_record_survives_the_flat_hash_form() {
        let r = Record {
            ts: 1_765_000_000_123_456,
            timestamp: "2025-12-06T05:46:40.123456Z".into(),
            kind: "request".into(),
            client_ip: "203.0.113.7".into(),
            method: "GET".into(),
            host: "a.example".into(),
            path: "/x".into(),
            status: 502,
            upstream_ms: Some(1.5),
            duration_ms: 2.25,
            user: Some("alice".into()),
            ..Record::default()
        };
        let fields = to_fields(&r);
        let back = Record::from_fields(fields.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!(back, r);
        assert!(back.is_error());
    }

    /// A record with every field set (the JSON line's tests use it too).
    pub(in crate::reqlog) fn full_record() -> Record {
        let s = |v: &str| Some(v.to_string());
        Record {
            ts: 1,
            timestamp: "t".into(),
            kind: "request".into(),
            request_id: s("r"),
            trace_id: s("t"),
            client_ip: "127.0.0.1".into(),
            method: "GET".into(),
            host: "h".into(),
            path: "/".into(),
            query: s("a=1"),
            status: 200,
            bytes_in: 1,
            bytes_out: 2,
            upstream: s("127.0.0.1:1"),
            upstream_ms: Some(0.5),
            duration_ms: 1.0,
            route_id: s("r1"),
            proxy: s("h"),
            user: s("u"),
            client_id: s("c"),
            scopes: s("mcp"),
            tls_version: s("TLSv1.3"),
            sni: s("h"),
            event: s("token"),
            reason: s("x"),
        }
    }

    /// The hand-written flat form names exactly the fields serde writes, so
    /// a field added to [`Record`] cannot be left out of the Redis hash.
    #[test]
    fn the_flat_form_has_every_serialized_field() {
        let r = full_record();
        let serde_json::Value::Object(json) = serde_json::to_value(&r).unwrap() else {
            panic!()
        };
        let mut flat: Vec<&str> = to_fields(&r).into_iter().map(|(k, _)| k).collect();
        let mut names: Vec<&str> = json.keys().map(String::as_str).collect();
        flat.sort_unstable();
        names.sort_unstable();
        assert_eq!(flat, names);
        let fields = to_fields(&r);
        assert_eq!(Record::from_fields(fields.iter().map(|(k, v)| (*k, v.as_str()))), Some(r));
    }

    #[test]
    fn every_name_form_is_framed_right() {
        let mut seen = 0;
        full_record().each_field(|name, _| {
            assert_eq!(name.resp, format!("${}\r\n{}\r\n", name.plain.len(), name.plain));
            assert_eq!(name.json, format!(",\"{}\":", name.plain));
            seen += 1;
        });
        assert_eq!(seen, 25);
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
