// portcullis patch: see PATCHED.md, "The speed-up".

//! The upstream response reads of one HTTP/1 exchange, bounded by how long
//! the exchange is silent rather than by a timer per read.

use futures::FutureExt;
use pingora_core::protocols::http::v1::client::HttpSession as HttpSessionV1;
use pingora_core::protocols::http::HttpTask;
use pingora_core::silence::Silence;
use pingora_error::{Error, ErrorType::ReadTimedout, Result};
use std::time::Duration;

/// Reads response tasks within `limit` of the previous pass of the exchange
/// loop: one `Silence` for the whole exchange, restarted per read, where
/// upstream armed and cancelled a timer around every socket read.
pub(crate) struct SilentRead {
    silence: Silence,
    limit: Option<Duration>,
}

impl SilentRead {
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        SilentRead {
            silence: Silence::new(limit),
            limit,
        }
    }

    /// `read_response_task`, failing with `ReadTimedout` when nothing came for
    /// the limit. Data that is already there wins over a passed deadline (as
    /// upstream's timeout polled the read before its timer), e.g. when this
    /// task is polled late under load.
    pub(crate) async fn read_response_task(&mut self, session: &mut HttpSessionV1) -> Result<HttpTask> {
        self.silence.restart();
        if let Some(res) = self.silence.bound(session.read_response_task()).await {
            return res;
        }
        session.read_response_task().now_or_never().unwrap_or_else(|| {
            Error::e_explain(
                ReadTimedout,
                format!("while reading the upstream response, timeout: {:?}", self.limit),
            )
        })
    }
}
