//! The PROXY protocol listener (v1 text and v2 binary, from a load balancer):
//! reads the header, makes its source address the client address, then
//! serves the connection exactly like the plain HTTP listener. Connections
//! without a valid header are closed: behind a PROXY-speaking balancer a
//! missing header means a client bypassed it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora::protocols::{GetSocketDigest, SocketDigest, Stream, UniqueID};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncReadExt};

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

/// Wraps the HTTP app: PROXY header first, then ordinary HTTP.
pub struct ProxyProtocolApp<A> {
    /// The HTTP proxy app.
    pub inner: Arc<A>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ProxyProtocolApp<A> {
    async fn process_new(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        match tokio::time::timeout(Duration::from_secs(5), read_header(&mut stream)).await {
            Ok(Ok(Some(addr))) => set_client_addr(&mut *stream, addr),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "closing a PROXY-protocol connection");
                return None;
            }
            Err(_) => {
                tracing::warn!("closing a PROXY-protocol connection: no header within 5 s");
                return None;
            }
        }
        self.inner.process_new(stream, shutdown).await
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
