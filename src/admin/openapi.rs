//! The control plane's routes and their OpenAPI 3.1 entries, registered
//! together: a handler is added with its [`Op`] (summary, request and result
//! types), so the document served at `GET /api/v1/openapi.json` lists what
//! the router serves. Schemas come from the request and result types
//! themselves (`utoipa::ToSchema`, see `manage::schema`).
//!
//! The document is public: it holds the API's shape only (no data, no
//! secrets), and a new user's tools need it before they hold a token.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::{MethodFilter, MethodRouter};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::AppState;
use crate::manage::schema::{inline, referenced, COMPONENTS_PREFIX};
use crate::oauth::error::OAuthErrorBody;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The error body every `/api/v1/` failure answers with (`admin::error`).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `validation_error`, `invalid_json`, `body_too_large`, ...
    pub error: String,
    /// What went wrong, in words.
    pub message: String,
    /// The request field at fault (validation errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// How a result is answered.
enum Answer {
    /// JSON with a schema.
    Json(Value),
    /// JSON with a schema, or the same value as one Server-Sent Event.
    JsonOrStream(Value),
    /// Another media type (text, HTML) with a string body.
    Media(&'static str),
    /// A redirect: where to is in `Location`, no body to speak of.
    Redirect,
    /// No body at all (204, 202).
    Empty,
}

/// Who may call an operation, as the document tells it.
#[derive(Clone, Copy, PartialEq)]
enum Access {
    /// Any caller; errors in the API's shape.
    Public,
    /// A bearer token; errors in the API's shape.
    Bearer,
    /// The OAuth authorization server's endpoints: errors per RFC 6749.
    OAuth,
    /// A JSON-RPC endpoint behind a bearer token (`/mcp`): errors are
    /// JSON-RPC error responses.
    JsonRpc,
}

/// One operation's entry: what it takes and what it answers.
pub struct Op {
    summary: String,
    access: Access,
    body: Option<(Value, &'static str, bool)>,
    answers: Vec<(StatusCode, Answer)>,
    query: Vec<Value>,
    /// The schema of the error answers when not the access's default.
    error: Option<Value>,
    schemas: BTreeMap<String, Value>,
}

impl Op {
    /// An operation needing a bearer token, summarised in a line.
    pub fn new(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            access: Access::Bearer,
            body: None,
            answers: Vec::new(),
            query: Vec::new(),
            error: None,
            schemas: BTreeMap::new(),
        }
    }

    /// Callable without a token.
    pub fn public(mut self) -> Self {
        self.access = Access::Public;
        self
    }

    /// An endpoint of the OAuth authorization server (public, RFC 6749 errors).
    pub fn oauth(mut self) -> Self {
        self.access = Access::OAuth;
        self
    }

    /// A JSON-RPC endpoint needing a bearer token, whose errors are `E`
    /// (a JSON-RPC error response) instead of the API's error body.
    pub fn json_rpc<E: ToSchema>(mut self) -> Self {
        let e = self.named::<E>();
        self.access = Access::JsonRpc;
        self.error = Some(e);
        self
    }

    /// A reference to `T`'s named schema, registering it and what it names.
    fn named<T: ToSchema>(&mut self) -> Value {
        self.schemas.extend(referenced::<T>());
        self.schemas.insert(T::name().into_owned(), inline::<T>());
        json!({"$ref": format!("{COMPONENTS_PREFIX}{}", T::name())})
    }

    /// Takes a JSON object body of type `T`.
    pub fn body<T: ToSchema>(mut self) -> Self {
        let s = self.named::<T>();
        self.body = Some((s, "application/json", true));
        self
    }

    /// Takes a JSON object body of type `T`, or none (all defaults).
    pub fn optional_body<T: ToSchema>(mut self) -> Self {
        let s = self.named::<T>();
        self.body = Some((s, "application/json", false));
        self
    }

    /// Takes an `application/x-www-form-urlencoded` body of type `T`.
    pub fn form<T: ToSchema>(mut self) -> Self {
        let s = self.named::<T>();
        self.body = Some((s, "application/x-www-form-urlencoded", true));
        self
    }

    /// Takes the query parameter `name` (a string).
    pub fn query(mut self, name: &str, description: &str, required: bool) -> Self {
        self.query.push(json!({
            "name": name, "in": "query", "required": required, "description": description, "schema": {"type": "string"}
        }));
        self
    }

    /// Answers `status` with a `T`.
    pub fn ok<T: ToSchema>(mut self, status: StatusCode) -> Self {
        let s = self.named::<T>();
        self.answers.push((status, Answer::Json(s)));
        self
    }

    /// Answers `status` with a list of `T`.
    pub fn ok_list<T: ToSchema>(mut self, status: StatusCode) -> Self {
        let s = self.named::<T>();
        self.answers.push((status, Answer::Json(json!({"type": "array", "items": s}))));
        self
    }

    /// Answers `status` with a `T`, as JSON or as one Server-Sent Event
    /// (whichever the request's `Accept` prefers).
    pub fn ok_or_stream<T: ToSchema>(mut self, status: StatusCode) -> Self {
        let s = self.named::<T>();
        self.answers.push((status, Answer::JsonOrStream(s)));
        self
    }

    /// Answers `status` with a JSON value of the given schema, for an
    /// answer no Rust type describes (this document itself).
    pub fn ok_schema(mut self, status: StatusCode, schema: Value) -> Self {
        self.answers.push((status, Answer::Json(schema)));
        self
    }

    /// Answers `status` with a body of `media_type` (text, HTML).
    pub fn ok_media(mut self, status: StatusCode, media_type: &'static str) -> Self {
        self.answers.push((status, Answer::Media(media_type)));
        self
    }

    /// Answers with a redirect.
    pub fn redirect(mut self, status: StatusCode) -> Self {
        self.answers.push((status, Answer::Redirect));
        self
    }

    /// Answers `status` without a body.
    pub fn empty(mut self, status: StatusCode) -> Self {
        self.answers.push((status, Answer::Empty));
        self
    }

    /// The OpenAPI operation object for `method path`.
    fn operation(&self, method: &str, path: &str) -> Value {
        let mut params: Vec<Value> = path_params(path)
            .into_iter()
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(self.query.iter().cloned());
        let mut responses = Map::new();
        for (status, a) in &self.answers {
            let desc = status.canonical_reason().unwrap_or("answer");
            let r = match a {
                Answer::Json(s) => json!({"description": desc, "content": {"application/json": {"schema": s}}}),
                Answer::JsonOrStream(s) => json!({"description": desc, "content": {
                    "application/json": {"schema": s},
                    "text/event-stream": {"schema": {"type": "string", "description": "One `message` event whose data is the JSON answer"}},
                }}),
                Answer::Media(t) => json!({"description": desc, "content": {*t: {"schema": {"type": "string"}}}}),
                Answer::Redirect => json!({"description": desc, "headers": {"Location": {
                    "description": "Where the browser goes next", "required": true, "schema": {"type": "string", "format": "uri-reference"},
                }}}),
                Answer::Empty => json!({"description": desc}),
            };
            responses.insert(status.as_u16().to_string(), r);
        }
        let error = |name: &str| json!({"$ref": format!("{COMPONENTS_PREFIX}{name}")});
        let errors: &[(u16, &str)] = match self.access {
            Access::Bearer => &[
                (400, "Malformed JSON, or not an object"),
                (401, "Missing or invalid bearer token"),
                (403, "The token may not do this"),
                (404, "No such object visible to the caller"),
                (409, "Conflicts with the current state"),
                (413, "Body too large"),
                (422, "A field is invalid; `field` names it"),
                (503, "The store is unavailable"),
            ],
            Access::Public => &[(400, "Malformed request"), (404, "Not found"), (503, "The store is unavailable")],
            Access::OAuth => &[
                (400, "RFC 6749 error"),
                (401, "Client authentication failed"),
                (403, "Not allowed"),
                (404, "Not found"),
                (413, "Body too large"),
                (429, "Too many requests from this address"),
                (503, "Temporarily unavailable"),
            ],
            Access::JsonRpc => &[
                (400, "Not one JSON-RPC message, or the MCP headers disagree with it"),
                (401, "Missing or invalid bearer token"),
                (403, "Origin, host or scope refused"),
                (404, "No such session"),
                (406, "Accept allows neither JSON nor an event stream"),
                (413, "Body too large"),
                (415, "Not JSON"),
                (503, "The store is unavailable"),
            ],
        };
        let error_schema = match (&self.error, self.access) {
            (Some(e), _) => e.clone(),
            (None, Access::OAuth) => error("OAuthErrorBody"),
            (None, _) => error("ErrorBody"),
        };
        for (code, desc) in errors {
            responses
                .entry(code.to_string())
                .or_insert_with(|| json!({"description": desc, "content": {"application/json": {"schema": error_schema}}}));
        }
        let mut op = json!({
            "operationId": operation_id(method, path),
            "summary": self.summary,
            "tags": [tag(path)],
            "responses": responses,
        });
        if !params.is_empty() {
            op["parameters"] = json!(params);
        }
        if let Some((schema, media, required)) = &self.body {
            op["requestBody"] = json!({"required": required, "content": {*media: {"schema": schema}}});
        }
        op["security"] = match self.access {
            Access::Bearer | Access::JsonRpc => json!([{"bearer": []}]),
            _ => json!([]),
        };
        op
    }
}

/// Names of the `{param}` segments of a route path (`{*rest}` too).
fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|p| p.trim_start_matches('*').to_string())
        .collect()
}

/// A route path as OpenAPI writes it (`{*rest}` is `{rest}`).
pub fn document_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// A unique operation id: the method and the path's words.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && *w != "api" && *w != "v1")
        .collect();
    format!("{method}_{}", words.join("_"))
}

/// The document section an operation is listed under.
fn tag(path: &str) -> String {
    let rest = path.strip_prefix("/api/v1/").unwrap_or("");
    match rest.split('/').next().unwrap_or("") {
        "" => "server".into(),
        "proxy" if path.contains("/auth") || path.ends_with("/mcp") => "resources".into(),
        "proxy" => "proxies".into(),
        t => t.trim_end_matches(".json").into(),
    }
}

/// The routes under construction and their entries.
pub struct Api {
    router: Router<Arc<AppState>>,
    paths: BTreeMap<String, Map<String, Value>>,
    schemas: BTreeMap<String, Value>,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

impl Api {
    /// No routes yet.
    pub fn new() -> Self {
        let mut schemas = BTreeMap::new();
        schemas.insert("ErrorBody".to_string(), inline::<ErrorBody>());
        schemas.insert("OAuthErrorBody".to_string(), inline::<OAuthErrorBody>());
        Self {
            router: Router::new(),
            paths: BTreeMap::new(),
            schemas,
        }
    }

    /// Starts the operations of one path. A path ending in `/` is served
    /// with and without it (clients differ; no redirects).
    pub fn at(self, path: &'static str) -> At {
        At {
            api: self,
            path,
            methods: MethodRouter::new(),
        }
    }

    /// Adds the routes and entries of `other`.
    pub fn merge(mut self, other: Api) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self.schemas.extend(other.schemas);
        self
    }

    /// Limits the request bodies of the routes registered so far to `bytes`.
    pub fn limit_body(mut self, bytes: usize) -> Self {
        self.router = self.router.layer(axum::extract::DefaultBodyLimit::max(bytes));
        self
    }

    /// The OpenAPI 3.1 document of what is registered.
    fn document(&self) -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Portcullis",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "The control plane of Portcullis: proxies, routes, tokens, certificates, protected resources, \
                    OAuth administration and the OAuth authorization server. Errors answer `{\"error\", \"message\"}` \
                    (OAuth endpoints: RFC 6749 `{\"error\", \"error_description\"}`).",
            },
            "paths": self.paths,
            "components": {
                "schemas": self.schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API token or an OAuth access token"}},
            },
        })
    }

    /// The routes, with `GET /api/v1/openapi.json` serving the document of
    /// all of them (itself included).
    pub fn finish(self) -> (Router<Arc<AppState>>, Arc<Value>) {
        let mut api = self;
        let op = Op::new("This document: the OpenAPI 3.1 description of the API").public().ok_schema(
            StatusCode::OK,
            json!({"type": "object", "required": ["openapi", "info", "paths"],
                    "properties": {"openapi": {"type": "string"}, "info": {"type": "object"}, "paths": {"type": "object"}}}),
        );
        let entry = op.operation("get", OPENAPI_PATH);
        api.paths.entry(OPENAPI_PATH.into()).or_default().insert("get".into(), entry);
        let doc = Arc::new(api.document());
        let served = doc.clone();
        let router = api.router.route(
            OPENAPI_PATH,
            axum::routing::get(move || async move { Json(served.as_ref().clone()) }),
        );
        (router, doc)
    }
}

/// The operations of one path being registered.
pub struct At {
    api: Api,
    path: &'static str,
    methods: MethodRouter<Arc<AppState>>,
}

impl At {
    /// Adds `handler` for `method`, documented by `op`.
    fn on<H, T>(mut self, filter: MethodFilter, method: &str, handler: H, op: Op) -> Self
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        self.methods = self.methods.on(filter, handler);
        let entry = op.operation(method, &document_path(self.path));
        self.api.schemas.extend(op.schemas);
        self.api
            .paths
            .entry(document_path(self.path))
            .or_default()
            .insert(method.into(), entry);
        self
    }

    /// Adds a GET handler.
    pub fn get<H: Handler<T, Arc<AppState>>, T: 'static>(self, handler: H, op: Op) -> Self {
        self.on(MethodFilter::GET, "get", handler, op)
    }

    /// Adds a POST handler.
    pub fn post<H: Handler<T, Arc<AppState>>, T: 'static>(self, handler: H, op: Op) -> Self {
        self.on(MethodFilter::POST, "post", handler, op)
    }

    /// Adds a PUT handler.
    pub fn put<H: Handler<T, Arc<AppState>>, T: 'static>(self, handler: H, op: Op) -> Self {
        self.on(MethodFilter::PUT, "put", handler, op)
    }

    /// Adds a PATCH handler.
    pub fn patch<H: Handler<T, Arc<AppState>>, T: 'static>(self, handler: H, op: Op) -> Self {
        self.on(MethodFilter::PATCH, "patch", handler, op)
    }

    /// Adds a DELETE handler.
    pub fn delete<H: Handler<T, Arc<AppState>>, T: 'static>(self, handler: H, op: Op) -> Self {
        self.on(MethodFilter::DELETE, "delete", handler, op)
    }

    /// Registers the path's handlers and returns to the route list.
    pub fn done(self) -> Api {
        let mut api = self.api;
        let bare = self.path.trim_end_matches('/');
        if bare.len() < self.path.len() && !bare.is_empty() {
            api.router = api.router.route(bare, self.methods.clone());
        }
        api.router = api.router.route(self.path, self.methods);
        api
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_and_operation_ids_come_from_the_path() {
        assert_eq!(path_params("/api/v1/a/{x}/b/{*rest}"), ["x", "rest"]);
        assert_eq!(document_path("/x/{*rest}"), "/x/{rest}");
        assert_eq!(
            operation_id("get", "/api/v1/proxy/targets/{hostname}"),
            "get_proxy_targets_hostname"
        );
        assert_eq!(tag("/api/v1/proxy/targets/{hostname}/auth"), "resources");
        assert_eq!(tag("/api/v1/openapi.json"), "openapi");
        assert_eq!(tag("/token"), "server");
    }
}
