//! The data plane: one Pingora `ProxyHttp` for every hostname. Each phase
//! hands off to a small module: `dispatch` decides (on the path `path`
//! normalizes, with the `builtin` routes), `headers` rewrites, `respond`
//! answers early, `failure` maps errors to 502/504, `sni` picks the TLS
//! certificate.

mod builtin;
mod dispatch;
mod failure;
mod forwarded;
mod headers;
mod path;
pub mod proxy_protocol;
pub(crate) mod respond;
mod sni;

pub use sni::SniSelector;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::config::Config;
use crate::metrics;
use crate::snapshot::{ProxyEntry, SnapshotHandle, Upstream};

/// The proxy logic shared by the HTTP, HTTPS and PROXY-protocol listeners.
pub struct Edge {
    /// Current routing snapshot.
    pub handle: SnapshotHandle,
    /// Timeouts and ports.
    pub config: Arc<Config>,
    /// Asks the snapshot sync for a key refresh (unknown signing key), at most one per interval.
    pub wake: Arc<crate::snapshot::sync::KeyRefresh>,
}

/// Per-request state.
pub struct Ctx {
    /// Request arrived over TLS (at our listener, or at a trusted balancer
    /// that said so in `X-Forwarded-Proto`).
    tls: bool,
    /// The client's address: the peer, or what a trusted balancer named.
    client_ip: Option<std::net::IpAddr>,
    /// `X-Forwarded-Host` of a trusted balancer, passed on as it is.
    forwarded_host: Option<http::HeaderValue>,
    /// The proxy serving this host.
    entry: Option<Arc<ProxyEntry>>,
    /// The chosen upstream.
    upstream: Option<Arc<Upstream>>,
    /// When the upstream request was sent.
    upstream_sent: Option<Instant>,
    /// The authenticated caller (identity headers).
    identity: Option<crate::auth::Identity>,
    /// Set when auth applied to this request: what of the caller's
    /// credentials reaches the upstream (the session cookie never does).
    pass: Option<crate::auth::Pass>,
    /// Our protected resource metadata, served if the backend has none.
    metadata_fallback: Option<bytes::Bytes>,
    /// The backend's body is being replaced by `metadata_fallback`.
    replace_body: bool,
    /// The normalized request path when it differs from the path as
    /// received; `None` (no copy) when the request's path is already normal.
    path: Option<String>,
    /// What the request log needs beyond the above (request id, timings, route).
    log: crate::reqlog::Capture,
    /// An MCP request to a protected MCP backend, counted per method and tool at the end.
    mcp: Option<crate::auth::mcp_metrics::McpCall>,
    /// Set when the MCP policy judges this request by its body: the caller's scopes.
    mcp_body_scopes: Option<String>,
    /// The header lines we add to the upstream request (`headers::upstream_request`).
    upstream_lines: Vec<u8>,
    /// The header lines we add to the response (`headers::downstream_response`).
    response_lines: Vec<u8>,
}

impl Ctx {
    /// The proxy's hostname, or the Host as sent when no proxy matched (for log lines).
    fn host(&self, session: &Session) -> String {
        match &self.entry {
            Some(e) => e.proxy.hostname.clone(),
            None => dispatch::raw_host(session.req_header()).to_string(),
        }
    }
}

impl Edge {
    /// Reads the body of an MCP request its proxy's policy judges by body
    /// (bounded in size and time), answers 403 when the policy refuses it,
    /// and otherwise lets pingora forward it intact from its retry buffer.
    async fn judge_mcp_body(&self, session: &mut Session, ctx: &mut Ctx, scopes: &str) -> Result<bool> {
        use crate::auth::mcp_policy::{error_body, judge_body, MAX_INSPECTED_BODY};
        session.enable_retry_buffering();
        let mut body = bytes::BytesMut::new();
        let read = async {
            while let Some(chunk) = session.read_request_body().await? {
                if body.len() + chunk.len() > MAX_INSPECTED_BODY {
                    return Ok::<_, Box<Error>>(false);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(true)
        };
        let why = match tokio::time::timeout(self.config.proxy_request_timeout, read).await {
            Ok(Ok(true)) => {
                let rules = ctx.entry.as_ref().and_then(|e| e.proxy.mcp_policy.as_deref()).unwrap_or_default();
                judge_body(rules, &body, scopes)
            }
            Ok(Ok(false)) => Some(format!(
                "this MCP endpoint's policy reads bodies of at most {MAX_INSPECTED_BODY} bytes"
            )),
            Ok(Err(e)) => return Err(e),
            Err(_) => Some("the request body did not arrive in time".to_string()),
        };
        let Some(why) = why else {
            return Ok(false);
        };
        let id = ctx.log.for_own_reply(session, self.peer_trusted(session));
        let reply = respond::Reply::json(403, vec![], error_body(&why));
        respond::send(session, reply.with_header("X-Request-Id", id)).await
    }

    /// Asks for a signing key refresh and waits (bounded) for it; returns at
    /// once when one ran less than a refresh interval ago.
    async fn refresh_snapshot(&self) {
        self.wake.refresh().await;
    }

    /// True when the peer (after a PROXY header, the address it names) is
    /// a trusted balancer, whose `X-Request-Id` is kept.
    fn peer_trusted(&self, session: &Session) -> bool {
        session
            .client_addr()
            .and_then(|a| a.as_inet())
            .is_some_and(|a| self.config.is_trusted_proxy(a.ip().to_canonical()))
    }
}

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = Ctx;

    /// No downstream modules: pingora's default adds a disabled compression
    /// module whose per-request calls cost ≈ 3 % of a proxied request, and
    /// portcullis offers no response compression.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    fn new_ctx(&self) -> Ctx {
        metrics::ACTIVE_REQUESTS.inc();
        Ctx {
            tls: false,
            client_ip: None,
            forwarded_host: None,
            entry: None,
            upstream: None,
            upstream_sent: None,
            identity: None,
            pass: None,
            metadata_fallback: None,
            replace_body: false,
            path: None,
            log: crate::reqlog::Capture::default(),
            mcp: None,
            mcp_body_scopes: None,
            upstream_lines: Vec::new(),
            response_lines: Vec::new(),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let mut decision = dispatch::decide(self, session, ctx, false);
        if let dispatch::Decision::RefreshKeys = decision {
            self.refresh_snapshot().await;
            decision = dispatch::decide(self, session, ctx, true);
        }
        match decision {
            dispatch::Decision::Proxy => match ctx.mcp_body_scopes.take() {
                None => Ok(false),
                Some(scopes) => self.judge_mcp_body(session, ctx, &scopes).await,
            },
            dispatch::Decision::Respond(r) => {
                let id = ctx.log.for_own_reply(session, self.peer_trusted(session));
                respond::send(session, r.with_header("X-Request-Id", id)).await
            }
            dispatch::Decision::RefreshKeys => Ok(false),
        }
    }

    /// An HTTP/2 client may end a body with an empty DATA frame. Passed on,
    /// pingora writes a chunked terminator for it and another when it finishes
    /// the body (pingora #935); the upstream then reads the second as the start
    /// of another request on a pooled connection. The empty end becomes no data.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        _ctx: &mut Ctx,
    ) -> Result<()> {
        if end_of_stream && body.as_ref().is_some_and(|b| b.is_empty()) {
            *body = None;
        }
        Ok(())
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let u = ctx
            .upstream
            .as_ref()
            .ok_or_else(|| Error::explain(InternalError, "no upstream chosen"))?;
        let sni = if u.tls { u.host.clone() } else { String::new() };
        let mut peer = HttpPeer::new(u.addr, u.tls, sni);
        peer.options.connection_timeout = Some(self.config.proxy_connect_timeout);
        peer.options.total_connection_timeout = Some(self.config.proxy_connect_timeout);
        peer.options.read_timeout = Some(self.config.proxy_request_timeout);
        // An upstream that accepts none of the request body (or of a tunnel's
        // client data) for as long is cut (nginx's proxy_send_timeout):
        // pingora's own per-write bound, whose timer starts only when a write waits.
        peer.options.write_timeout = Some(self.config.proxy_request_timeout);
        if u.tls {
            let verify = ctx.entry.as_ref().is_none_or(|e| e.proxy.verify_upstream_tls);
            peer.options.verify_cert = verify;
            peer.options.verify_hostname = verify;
        }
        Ok(Box::new(peer))
    }

    /// pingora's policy (the peer named, a retry only where it is safe), and a
    /// request body write that timed out says so: pingora's own text does not
    /// tell the request from the response.
    fn error_while_proxy(&self, peer: &HttpPeer, session: &mut Session, e: Box<Error>, _ctx: &mut Ctx, client_reused: bool) -> Box<Error> {
        let body_write = e.etype() == &WriteTimedout && e.context.as_ref().is_some_and(|c| c.as_str().contains("body"));
        let e = if body_write {
            e.more_context(format!(
                "while writing the request body upstream, timeout: {:?}",
                self.config.proxy_request_timeout
            ))
        } else {
            e
        };
        let mut e = e.more_context(format!("Peer: {peer}"));
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated() {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn upstream_request_filter(&self, session: &mut Session, req: &mut RequestHeader, ctx: &mut Ctx) -> Result<()> {
        let ids = ctx.log.upstream_ids(session, self.peer_trusted(session));
        headers::upstream_request(session, req, ctx, ids)?;
        ctx.upstream_sent = Some(Instant::now());
        Ok(())
    }

    async fn upstream_response_filter(&self, _session: &mut Session, _resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        if let Some(t) = ctx.upstream_sent {
            let took = t.elapsed();
            ctx.log.upstream_took(took);
            if let Some(e) = &ctx.entry {
                e.upstream_seconds.observe(took.as_secs_f64());
            }
        }
        Ok(())
    }

    async fn response_filter(&self, _session: &mut Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        if let Some(doc) = &ctx.metadata_fallback {
            if resp.status == http::StatusCode::NOT_FOUND {
                resp.set_status(200)?;
                resp.remove_header(&http::header::TRANSFER_ENCODING);
                resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
                resp.insert_header(http::header::CONTENT_LENGTH, doc.len().to_string())?;
                resp.insert_header("Access-Control-Allow-Origin", "*")?;
                ctx.replace_body = true;
            }
        }
        let custom = ctx.entry.as_ref().map_or(&[][..], |e| &e.response_headers[..]);
        headers::downstream_response(resp, custom, ctx.log.request_id(), &mut ctx.response_lines);
        Ok(())
    }

    fn upstream_request_header_lines<'a>(&self, ctx: &'a Ctx) -> &'a [u8] {
        &ctx.upstream_lines
    }

    fn response_header_lines(&self, ctx: &mut Ctx) -> Vec<u8> {
        std::mem::take(&mut ctx.response_lines)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        if ctx.replace_body {
            *body = if end_of_stream { ctx.metadata_fallback.clone() } else { None };
        }
        Ok(None)
    }

    /// A request head the client broke off or got wrong: counted, logged at debug only.
    fn request_head_error(&self, e: &Error) {
        metrics::client_head_error(e);
    }

    /// Clients that hang up mid-request are routine, not errors worth a log line each.
    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, e: &Error) -> bool {
        let client = e.esource() == &ErrorSource::Downstream
            && matches!(e.etype(), ConnectionClosed | ReadError | WriteError | ReadTimedout | WriteTimedout);
        if client {
            metrics::CLIENT_ERRORS.with_label_values(&["aborted"]).inc();
        }
        client
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        if let Some(doc) = ctx.metadata_fallback.take() {
            if session.response_written().is_none() {
                let reply = respond::Reply::json(
                    200,
                    vec![("Access-Control-Allow-Origin", "*".into())],
                    String::from_utf8_lossy(&doc).into_owned(),
                );
                if respond::send(session, reply).await.is_ok() {
                    return FailToProxy {
                        error_code: 200,
                        can_reuse_downstream: false,
                    };
                }
            }
        }
        let host = ctx.host(session);
        failure::answer(session, e, &host).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        metrics::ACTIVE_REQUESTS.dec();
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let class = metrics::status_class(status);
        match &ctx.entry {
            Some(e) => e.requests_by_class[class].inc(),
            None => metrics::PROXY_REQUESTS
                .with_label_values(&["unknown", metrics::STATUS_CLASSES[class]])
                .inc(),
        }
        if let Some(call) = ctx.mcp.take() {
            call.finish(metrics::STATUS_CLASSES[class]);
        }
        if let Some(e) = e {
            tracing::debug!(host = %ctx.host(session), status, error = %e, "request ended with an error");
        }
        let seen = crate::reqlog::Seen {
            client_ip: ctx.client_ip,
            entry: ctx.entry.as_ref(),
            upstream: ctx.upstream.as_ref(),
            identity: ctx.identity.as_ref(),
        };
        ctx.log.finish(session, e, seen);
    }
}
