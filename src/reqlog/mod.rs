//! The request log: every data plane request (and every OAuth flow step)
//! becomes one [`Record`], printed as a JSON access log line on stdout and
//! stored for the query API, `follow` and the CLI. The request path only
//! captures values and hands them to a bounded queue ([`capture`]); a
//! background service ([`writer`]) batches, formats and stores them, so a
//! slow store costs dropped records (counted), never slower requests.

pub mod capture;
pub mod events;
mod json_line;
pub mod query;
pub mod record;
mod redis_log;
mod resp;
mod segments;
pub mod store;
pub mod writer;

pub use capture::{Capture, Seen, ServerName};
pub use query::{Filter, Page, Stats, StatusFilter};
pub use record::Record;
pub use store::{LogError, LogStore, TailPos};
pub use writer::RequestLogService;
