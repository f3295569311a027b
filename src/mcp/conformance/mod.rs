//! The official MCP conformance suite's fixtures (`@modelcontextprotocol/conformance`,
//! `server` mode): the tools, prompts and resources its scenarios call by
//! name: the `test_*` tools and prompts, `json_schema_2020_12_tool`, the
//! tasks extension's `greet`, `slow_compute`, `failing_job`,
//! `protocol_error_job`, `confirm_delete` and `multi_input`, and the
//! `test://` resources (every name is in `tools::TOOLS`,
//! `prompts::list` and `resources::list`). Registered only when
//! `MCP_CONFORMANCE_FIXTURES=true` (for running the suite; never in
//! production). They are harmless by construction: they echo their
//! arguments, return static content, or sample, elicit and list roots from
//! the calling client; none reaches the store or tells anything about the
//! server. The protocol machinery they exercise (progress, logging,
//! server-to-client requests, `InputRequiredResult`) is the endpoint's own
//! and lives beside the transport.

/// A fixture's boxed behaviour from an async block.
macro_rules! call {
    (|$p:ident, $a:ident| $body:expr) => {
        |$p, $a| Box::pin(async move { $body })
    };
}

mod asking_tools;
pub mod prompts;
pub mod resources;
mod task_tools;
pub mod tools;

/// A 1×1 PNG, for image content.
pub const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mP4z8AAAAMBAQD3A0FDAAAAAElFTkSuQmCC";

/// Two samples of silence as a WAV file, for audio content.
pub const WAV: &str = "UklGRigAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQQAAAAAAAAA";
