//! The connection gate in front of every data plane listener: the PROXY
//! protocol (v1 text and v2 binary, from a load balancer) and the per-address
//! connection cap.
//!
//! A PROXY header is read only from a trusted load balancer (`TRUSTED_PROXIES`):
//! any other peer of a PROXY-protocol listener is closed at once, since it
//! could otherwise claim any client address. The header's source becomes the
//! client address, then the connection is served exactly like the plain
//! listener's. A trusted peer without a valid header is closed too: behind a
//! PROXY-speaking balancer a missing header means something is wrong.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::PreTlsProcess;
use pingora::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest, Stream, UniqueID};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::Config;
use crate::metrics;

/// How long a trusted balancer has to send its PROXY header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

const V2_SIGNATURE: [u8; 12] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];
const V1_MAX: usize = 107;

/// A PROXY header that cannot be accepted.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    /// Reading failed or the peer closed early.
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a PROXY header.
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
}

/// The source address announced by a header; `None` for `UNKNOWN`/`LOCAL`.
pub type Source = Option<SocketAddr>;

fn parse_v1(line: &str) -> Result<Source, ProxyHeaderError> {
    let mut parts = line.split(' ');
    if parts.next() != Some("PROXY") {
        return Err(ProxyHeaderError::Malformed("v1 must start with PROXY"));
    }
    match parts.next() {
        Some("UNKNOWN") => Ok(None),
        Some(fam @ ("TCP4" | "TCP6")) => {
            let src: IpAddr = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or(ProxyHeaderError::Malformed("bad source address"))?;
            let _dst: IpAddr = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or(ProxyHeaderError::Malformed("bad destination address"))?;
            let sport: u16 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or(ProxyHeaderError::Malformed("bad source port"))?;
            let _dport: u16 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or(ProxyHeaderError::Malformed("bad destination port"))?;
            if parts.next().is_some() || (fam == "TCP4") != src.is_ipv4() {
                return Err(ProxyHeaderError::Malformed("v1 fields do not match the family"));
            }
            Ok(Some(SocketAddr::new(src, sport)))
        }
        _ => Err(ProxyHeaderError::Malformed("unknown v1 family")),
    }
}

fn parse_v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Result<Source, ProxyHeaderError> {
    if ver_cmd >> 4 != 2 {
        return Err(ProxyHeaderError::Malformed("v2 version must be 2"));
    }
    match ver_cmd & 0x0F {
        0 => return Ok(None),
        1 => {}
        _ => return Err(ProxyHeaderError::Malformed("unknown v2 command")),
    }
    match fam >> 4 {
        1 if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([body[8], body[9]]))))
        }
        2 if body.len() >= 36 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&body[..16]);
            Ok(Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(b)),
                u16::from_be_bytes([body[32], body[33]]),
            )))
        }
        0 | 3 => Ok(None),
        _ => Err(ProxyHeaderError::Malformed("v2 address block too short")),
    }
}

/// Reads exactly one PROXY header (v1 or v2) from the start of `s`.
pub async fn read_header<S: AsyncRead + Unpin + ?Sized>(s: &mut S) -> Result<Source, ProxyHeaderError> {
    let mut start = [0u8; 12];
    s.read_exact(&mut start).await?;
    if start == V2_SIGNATURE {
        let mut hdr = [0u8; 4];
        s.read_exact(&mut hdr).await?;
        let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await?;
        return parse_v2(hdr[0], hdr[1], &body);
    }
    if &start[..6] != b"PROXY " {
        return Err(ProxyHeaderError::Malformed("no PROXY header"));
    }
    let mut line = start.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(ProxyHeaderError::Malformed("v1 header longer than 107 bytes"));
        }
        line.push(s.read_u8().await?);
    }
    let text = std::str::from_utf8(&line[..line.len() - 2]).map_err(|_| ProxyHeaderError::Malformed("v1 header is not text"))?;
    parse_v1(text)
}

fn set_client_addr<S: GetSocketDigest + UniqueID + ?Sized>(s: &mut S, addr: SocketAddr) {
    let d = SocketDigest::from_raw_fd(s.id());
    let _ = d.peer_addr.set(Some(PSocketAddr::Inet(addr)));
    s.set_socket_digest(d);
}

/// The connection's peer (client) address, if it is an IP socket.
fn peer_ip<S: GetSocketDigest + ?Sized>(s: &S) -> Option<IpAddr> {
    let d = s.get_socket_digest()?;
    d.peer_addr()?.as_inet().map(|a| a.ip())
}

/// Reads the PROXY header of a connection from a trusted balancer and makes
/// its source the client address; `false` means close the connection.
async fn accept_proxy_header<S>(stream: &mut S, config: &Config) -> bool
where
    S: AsyncRead + GetSocketDigest + UniqueID + Unpin + ?Sized,
{
    let peer = peer_ip(stream);
    if !peer.is_some_and(|ip| config.is_trusted_proxy(ip)) {
        metrics::CONNECTIONS_REFUSED.with_label_values(&["untrusted_proxy"]).inc();
        tracing::debug!(peer = ?peer, "closing a PROXY-protocol connection from a peer not in TRUSTED_PROXIES");
        return false;
    }
    match tokio::time::timeout(HEADER_TIMEOUT, read_header(stream)).await {
        Ok(Ok(Some(addr))) => set_client_addr(stream, addr),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => {
            metrics::CONNECTIONS_REFUSED.with_label_values(&["bad_proxy_header"]).inc();
            tracing::debug!(error = %e, peer = ?peer, "closing a PROXY-protocol connection");
            return false;
        }
        Err(_) => {
            metrics::CONNECTIONS_REFUSED.with_label_values(&["bad_proxy_header"]).inc();
            tracing::debug!(peer = ?peer, "closing a PROXY-protocol connection: no header within 5 s");
            return false;
        }
    }
    true
}

/// Open connections per client address, for `MAX_CONNECTIONS_PER_IP`; one
/// set shared by every listener.
pub struct PerIpLimit {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIpLimit {
    /// The shared counter, or `None` when `limit` is 0 (no limit).
    pub fn new(limit: usize) -> Option<Arc<PerIpLimit>> {
        (limit > 0).then(|| {
            Arc::new(PerIpLimit {
                limit,
                open: Mutex::new(HashMap::new()),
            })
        })
    }

    /// Counts one more connection from `ip`, unless it has `limit` open already.
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<PerIpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(PerIpSlot { set: self.clone(), ip })
    }
}

/// One counted connection; released when the connection ends.
struct PerIpSlot {
    set: Arc<PerIpLimit>,
    ip: IpAddr,
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut open = self.set.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Wraps the HTTP app of a listener: the PROXY header first (on PROXY
/// listeners), then the per-address cap, then ordinary HTTP.
pub struct Gate<A> {
    /// The HTTP proxy app.
    pub inner: Arc<A>,
    /// Expect a PROXY header (only trusted peers may send one).
    pub proxy_protocol: bool,
    /// `TRUSTED_PROXIES`.
    pub config: Arc<Config>,
    /// `MAX_CONNECTIONS_PER_IP`, if set.
    pub per_ip: Option<Arc<PerIpLimit>>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Gate<A> {
    async fn process_new(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        if self.proxy_protocol && !accept_proxy_header(&mut *stream, &self.config).await {
            return None;
        }
        let _slot = match self.per_ip.as_ref().and_then(|set| Some((set, peer_ip(&*stream)?))) {
            Some((set, ip)) => match set.acquire(ip) {
                Some(slot) => Some(slot),
                None => {
                    metrics::CONNECTIONS_REFUSED.with_label_values(&["per_ip_limit"]).inc();
                    tracing::debug!(client = %ip, "closing a connection: MAX_CONNECTIONS_PER_IP reached");
                    return None;
                }
            },
            None => None,
        };
        self.inner.process_new(stream, shutdown).await
    }

    /// Passes the shutdown on, so kept-alive connections waiting for a next
    /// request are closed at once.
    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// The PROXY header on the HTTPS listener (`HTTPS_PROXY_PROTOCOL`), read
/// before the TLS handshake, from trusted balancers only.
pub struct ProxyHeaderBeforeTls {
    /// `TRUSTED_PROXIES`.
    pub config: Arc<Config>,
}

#[async_trait]
impl PreTlsProcess for ProxyHeaderBeforeTls {
    async fn process(&self, stream: &mut L4Stream) -> pingora::Result<()> {
        if accept_proxy_header(stream, &self.config).await {
            Ok(())
        } else {
            pingora::Error::e_explain(pingora::ErrorType::ReadError, "PROXY header refused")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_v1_and_v2_and_rejects_garbage() {
        let mut v1: &[u8] = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\nGET / HTTP/1.1\r\n";
        assert_eq!(read_header(&mut v1).await.unwrap(), Some("203.0.113.7:5555".parse().unwrap()));
        assert_eq!(v1, b"GET / HTTP/1.1\r\n");

        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend([0x21, 0x11, 0, 12, 192, 0, 2, 44, 10, 0, 0, 1, 0x1F, 0x90, 0, 80]);
        v2.extend(b"rest");
        let mut r: &[u8] = &v2;
        assert_eq!(read_header(&mut r).await.unwrap(), Some("192.0.2.44:8080".parse().unwrap()));
        assert_eq!(r, b"rest");

        let mut unknown: &[u8] = b"PROXY UNKNOWN\r\n";
        assert_eq!(read_header(&mut unknown).await.unwrap(), None);
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 80\r\n",
        ] {
            let mut b: &[u8] = bad;
            assert!(read_header(&mut b).await.is_err());
        }
    }
}
