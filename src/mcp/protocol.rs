//! JSON-RPC 2.0 messages and the MCP revisions this server speaks: parsing
//! a POST body into one message, and the one error type of the endpoint
//! (a JSON-RPC error object with its HTTP status).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

/// The dated revisions with the `initialize` handshake and `Mcp-Session-Id`.
pub const STATEFUL: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];

/// The stateless revision: no handshake, no session, `_meta` per request.
pub const STATELESS: &str = "2026-07-28";

/// Every revision, oldest first (what `server/discover` and
/// `UnsupportedProtocolVersionError` list).
pub const SUPPORTED: [&str; 4] = ["2025-03-26", "2025-06-18", "2025-11-25", STATELESS];

/// What `initialize` answers when the client asks for a revision it does
/// not know (the newest one with a handshake).
pub const LATEST_STATEFUL: &str = "2025-11-25";

/// `_meta` keys of the stateless revision.
pub mod meta {
    /// The revision the request speaks (required).
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    /// The client's capabilities (required).
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    /// The least severe log level the client wants for this request; no
    /// log notifications without it.
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    /// Who the server is, on results.
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
}

/// JSON-RPC and MCP error codes.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a JSON-RPC request (or a batch, which no supported revision needs).
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method (or tool).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad parameters, or missing `_meta` fields.
    pub const INVALID_PARAMS: i64 = -32602;
    /// A server-side failure (the store), said without detail.
    pub const INTERNAL: i64 = -32603;
    /// `resources/read` of an unknown URI in the dated revisions.
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// A session that does not exist (any more), or a missing one.
    pub const SESSION: i64 = -32001;
    /// Refused: origin, host, scope.
    pub const FORBIDDEN: i64 = -32003;
    /// `MCP-Protocol-Version`, `Mcp-Method` or `Mcp-Name` disagree with the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// The request needs a client capability the client did not declare
    /// (`MissingRequiredClientCapabilityError`).
    pub const MISSING_CAPABILITY: i64 = -32021;
    /// The revision is not one of [`super::SUPPORTED`].
    pub const UNSUPPORTED_VERSION: i64 = -32022;
}

/// One JSON-RPC 2.0 message a client POSTs to `/mcp`: a request (with
/// `id`) or a notification (without). Parsed by hand ([`parse`]: batches
/// refused, `params` must be an object); this type is its schema.
#[derive(ToSchema)]
pub struct JsonRpcRequest {
    /// `2.0`.
    pub jsonrpc: String,
    /// A string or number the answer echoes; absent for a notification.
    pub id: Option<Value>,
    /// `initialize`, `tools/list`, `tools/call`, `resources/read`, ...
    pub method: String,
    /// The method's parameters (an object).
    #[schema(value_type = Option<Object>)]
    pub params: Option<Map<String, Value>>,
}

/// The JSON-RPC error object of a failed request.
#[derive(ToSchema)]
pub struct JsonRpcErrorObject {
    /// A JSON-RPC or MCP error code (`code` module).
    pub code: i64,
    /// What went wrong, in words.
    pub message: String,
    /// Structured details (supported revisions, the field at fault).
    pub data: Option<Value>,
}

/// A JSON-RPC 2.0 answer from `/mcp`: `result` on success, `error` on
/// failure (also the body of the endpoint's 4xx answers). Built by
/// [`result`] and [`RpcError::body`]; this type is its schema.
#[derive(ToSchema)]
pub struct JsonRpcResponse {
    /// `2.0`.
    pub jsonrpc: String,
    /// The request's id (`null` when it could not be read).
    pub id: Value,
    /// The method's result.
    pub result: Option<Value>,
    /// Why the request failed.
    pub error: Option<JsonRpcErrorObject>,
}

/// The endpoint's error: a JSON-RPC error response with an HTTP status and
/// optional extra headers (`WWW-Authenticate` on 401/403).
#[derive(Debug)]
pub struct RpcError {
    /// HTTP status.
    pub status: StatusCode,
    /// The request id (`null` when unknown).
    pub id: Value,
    /// JSON-RPC error code.
    pub code: i64,
    /// Human-readable reason.
    pub message: String,
    /// Structured details (boxed: errors travel in `Result`s and stay small).
    pub data: Option<Box<Value>>,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
}

impl RpcError {
    /// An error with `status`, `code` and `message`, for an unknown id.
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            id: Value::Null,
            code,
            message: message.into(),
            data: None,
            headers: Vec::new(),
        }
    }

    /// A 400 with `code`.
    pub fn bad(code: i64, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The same error for request `id`.
    pub fn with_id(mut self, id: &Value) -> Self {
        self.id = id.clone();
        self
    }

    /// Adds structured details.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// `UnsupportedProtocolVersionError`: what we speak and what was asked.
    pub fn unsupported_version(requested: &str) -> Self {
        Self::bad(
            code::UNSUPPORTED_VERSION,
            format!(
                "unsupported MCP protocol version {requested:?}; supported: {}",
                SUPPORTED.join(", ")
            ),
        )
        .with_data(json!({"supported": SUPPORTED, "requested": requested}))
    }

    /// The JSON-RPC error object.
    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            error["data"] = (**d).clone();
        }
        json!({"jsonrpc": "2.0", "id": self.id, "error": error})
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}

/// One message a client POSTs.
#[derive(Debug)]
pub enum Message {
    /// Expects a response.
    Request {
        /// Echoed in the response.
        id: Value,
        /// The method.
        method: String,
        /// Parameters (an object; `{}` when absent).
        params: Map<String, Value>,
    },
    /// No response (`notifications/*`).
    Notification {
        /// The method.
        method: String,
    },
    /// A client's answer to a request this server sent on a response stream
    /// (`sampling/createMessage`, `elicitation/create`, `roots/list`).
    Response {
        /// The id of the server's request.
        id: Value,
        /// `result` on success, the `error` object otherwise.
        outcome: Result<Value, Value>,
    },
}

impl Message {
    /// The method, for requests and notifications.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method } => Some(method),
            Message::Response { .. } => None,
        }
    }
}

/// Parses one JSON-RPC message; a batch, a non-object or a malformed
/// message is a 400 with the JSON-RPC code for it.
pub fn parse(body: &[u8]) -> Result<Message, RpcError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| RpcError::bad(code::PARSE_ERROR, format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut o) = v else {
        return Err(RpcError::bad(
            code::INVALID_REQUEST,
            "send one JSON-RPC message as a JSON object (batches are not supported)",
        ));
    };
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::bad(code::INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\""));
    }
    let id = o.remove("id");
    if let Some(id) = &id {
        if !(id.is_string() || id.is_i64() || id.is_u64()) {
            return Err(RpcError::bad(code::INVALID_REQUEST, "\"id\" must be a string or an integer"));
        }
    }
    let method = match o.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => return Err(RpcError::bad(code::INVALID_REQUEST, "\"method\" must be a string")),
        None if id.is_some() && (o.contains_key("result") || o.contains_key("error")) => {
            let outcome = match o.remove("result") {
                Some(r) => Ok(r),
                None => Err(o.remove("error").unwrap_or(Value::Null)),
            };
            return Ok(Message::Response {
                id: id.unwrap_or(Value::Null),
                outcome,
            });
        }
        None => return Err(RpcError::bad(code::INVALID_REQUEST, "a request needs a \"method\"")),
    };
    let params = match o.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => {
            let e = RpcError::bad(code::INVALID_PARAMS, "\"params\" must be an object");
            return Err(match &id {
                Some(id) => e.with_id(id),
                None => e,
            });
        }
    };
    Ok(match id {
        Some(id) => Message::Request { id, method, params },
        None => Message::Notification { method },
    })
}

/// A JSON-RPC success response.
pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let r = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert!(matches!(r, Message::Request { ref method, .. } if method == "tools/list"));
        let n = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(n, Message::Notification { .. }));
        let a = parse(br#"{"jsonrpc":"2.0","id":"x","result":{}}"#).unwrap();
        assert!(matches!(a, Message::Response { ref id, outcome: Ok(_) } if id == "x"));
        let e = parse(br#"{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"no"}}"#).unwrap();
        assert!(matches!(e, Message::Response { outcome: Err(ref err), .. } if err["code"] == -1));
    }

    #[test]
    fn malformed_messages_get_their_json_rpc_codes() {
        assert_eq!(parse(b"{").unwrap_err().code, code::PARSE_ERROR);
        assert_eq!(parse(b"[]").unwrap_err().code, code::INVALID_REQUEST);
        assert_eq!(parse(br#"{"id":1,"method":"x"}"#).unwrap_err().code, code::INVALID_REQUEST);
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#).unwrap_err().code,
            code::INVALID_REQUEST
        );
        let e = parse(br#"{"jsonrpc":"2.0","id":7,"method":"x","params":[1]}"#).unwrap_err();
        assert_eq!((e.code, e.id), (code::INVALID_PARAMS, json!(7)));
        assert!(parse(br#"{"jsonrpc":"2.0","id":1}"#).is_err());
    }

    #[test]
    fn unsupported_version_lists_what_is_supported() {
        let e = RpcError::unsupported_version("v999");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body()["error"]["data"], json!({"supported": SUPPORTED, "requested": "v999"}));
    }
}
