//! The `/mcp` management server: the Model Context Protocol over Streamable
//! HTTP on the control plane, with the same operations as the REST API as
//! MCP tools (`tools`), each a thin adapter over `manage`.
//!
//! JSON-RPC is handled here by hand rather than with an SDK crate: sessions
//! of the dated revisions live in the store (any instance serves them), and
//! the stateless `2026-07-28` revision (per-request `_meta`, `Mcp-Method` /
//! `Mcp-Name` headers, `server/discover`) needs header checks before any
//! dispatch; both are a few hundred lines over axum, and the protocol layer
//! an SDK would add is the part we must control.

mod access;
mod conformance;
mod input_state;
mod listen;
mod methods;
mod oauth_tools;
mod param_headers;
mod peer;
mod prompts;
mod protocol;
mod replay;
mod reply;
mod resources;
mod service_tools;
mod session;
mod tasks;
mod tools;
mod transport;

use axum::http::StatusCode;

use crate::admin::openapi::{Api, Op};
use access::ProtectedResourceMetadata;

pub use access::is_mcp_resource;
/// The JSON-RPC envelope of `/mcp`, as the OpenAPI document describes it.
pub use protocol::{JsonRpcErrorObject, JsonRpcRequest, JsonRpcResponse};

/// The path of the endpoint; the data plane forwards it on `localhost` and
/// `auth.{BASE_DOMAIN}` (`proxy::builtin`).
pub const ENDPOINT: &str = "/mcp";

/// Where the endpoint's protected resource metadata (RFC 9728) is served.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// Adds `/mcp` and its protected resource metadata to the control plane.
pub fn routes(api: Api) -> Api {
    api.at(ENDPOINT)
        .post(
            transport::post,
            Op::new("MCP over Streamable HTTP: one JSON-RPC message, answered as JSON or one SSE event")
                .json_rpc::<JsonRpcResponse>()
                .body::<JsonRpcRequest>()
                .ok_or_stream::<JsonRpcResponse>(StatusCode::OK)
                .empty(StatusCode::ACCEPTED),
        )
        .get(
            listen::get,
            Op::new("A session's stream of notifications/resources/updated for its subscriptions (SSE)")
                .json_rpc::<JsonRpcResponse>()
                .ok_media(StatusCode::OK, "text/event-stream"),
        )
        .delete(
            transport::delete,
            Op::new("End the MCP session named in Mcp-Session-Id")
                .json_rpc::<JsonRpcResponse>()
                .empty(StatusCode::NO_CONTENT),
        )
        .done()
        .at(METADATA_PATH)
        .get(
            access::metadata,
            Op::new("Protected resource metadata of /mcp (RFC 9728)")
                .public()
                .ok::<ProtectedResourceMetadata>(StatusCode::OK),
        )
        .done()
}
