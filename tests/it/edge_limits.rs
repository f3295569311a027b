//! Client deadlines and limits (issue 14, item 4), trusted load balancers
//! (item 5): raw sockets against a real `portcullis serve`, since what
//! matters is when the connection closes and which bytes come back.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{backend, eventually, Portcullis, Redis};

/// Portcullis with `extra` settings proxying `host` to a new backend "A".
async fn proxied(extra: &[(&str, &str)], host: &str) -> (Redis, Portcullis, backend::Backend) {
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, extra).await;
    let a = backend::start("A").await;
    p.create_proxy(json!({"hostname": host, "target_url": a.url()})).await;
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let up = eventually(Duration::from_secs(5), || async {
        let mut s = TcpStream::connect(("127.0.0.1", p.http_port)).await.ok()?;
        s.write_all(req.as_bytes()).await.ok()?;
        read_response(&mut s).await.starts_with("HTTP/1.1 200").then_some(())
    })
    .await;
    assert!(up.is_some(), "{host} never answered 200");
    (redis, p, a)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one response (head, then a `Content-Length` body) or up to EOF,
/// within 10 s.
async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if len.is_some_and(|n| buf.len() >= end + 4 + n) {
                    return;
                }
            }
            match s.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// How long until the peer closes the connection (EOF or reset), reading
/// and dropping anything it sends; `None` if still open after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut tmp = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(t.elapsed()), s.read(&mut tmp)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_close_idle_partial_and_trickling_connections() {
    let (_r, p, _a) = proxied(
        &[
            ("CLIENT_HEADER_TIMEOUT", "2"),
            ("KEEPALIVE_TIMEOUT", "2"),
            ("CLIENT_BODY_TIMEOUT", "2"),
        ],
        "dl.test",
    )
    .await;
    let get = b"GET / HTTP/1.1\r\nHost: dl.test\r\n\r\n";
    let patience = Duration::from_secs(10);

    // A kept-alive connection serves a request after a pause within the idle timeout...
    let mut s = TcpStream::connect(("127.0.0.1", p.http_port)).await.unwrap();
    s.write_all(get).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    s.write_all(get).await.unwrap();
    assert!(
        read_response(&mut s).await.starts_with("HTTP/1.1 200"),
        "reuse within the idle timeout"
    );
    // ...and is closed once idle for KEEPALIVE_TIMEOUT.
    let idle = closed_within(&mut s, patience)
        .await
        .expect("an idle keep-alive connection was never closed");
    assert!(idle >= Duration::from_millis(1500), "closed too early: {idle:?}");

    // A partial next request line on a kept-alive connection: closed by the head deadline.
    let mut s = TcpStream::connect(("127.0.0.1", p.http_port)).await.unwrap();
    s.write_all(get).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    s.write_all(b"GET /next HT").await.unwrap();
    closed_within(&mut s, patience)
        .await
        .expect("a partial next request line was never closed");

    // A new connection that trickles its head one byte every 300 ms (it
    // would take ~25 s): closed by CLIENT_HEADER_TIMEOUT although bytes keep coming.
    let s = TcpStream::connect(("127.0.0.1", p.http_port)).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let head = format!("GET / HTTP/1.1\r\nHost: dl.test\r\nX-Pad: {}\r\n\r\n", "a".repeat(40));
    let trickle = tokio::spawn(async move {
        for b in head.bytes() {
            if wr.write_all(&[b]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        true
    });
    let t = Instant::now();
    let mut tmp = [0u8; 1024];
    let closed = tokio::time::timeout(patience, rd.read(&mut tmp)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a trickling head was not closed within {patience:?}: {closed:?}"
    );
    assert!(t.elapsed() >= Duration::from_millis(1500), "closed too early: {:?}", t.elapsed());
    trickle.abort();

    // A request body that stops: closed by CLIENT_BODY_TIMEOUT.
    let mut s = TcpStream::connect(("127.0.0.1", p.http_port)).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: dl.test\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    closed_within(&mut s, patience)
        .await
        .expect("a stalled request body was never closed");

    assert!(p.metric("portcullis_client_errors_total{kind=\"head_timeout\"}").await >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_head_gets_431() {
    let (_r, p, _a) = proxied(&[("MAX_REQUEST_HEADER_BYTES", "4096")], "big.test").await;
    let head = |pad: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: big.test\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(pad)
        )
    };
    let mut s = TcpStream::connect(("127.0.0.1", p.http_port)).await.unwrap();
    s.write_all(head(3000).as_bytes()).await.unwrap();
    let out = read_response(&mut s).await;
    assert!(out.starts_with("HTTP/1.1 200"), "a head under the limit: {out}");

    // one big header, then many small ones adding up over the limit
    let many = format!(
        "GET / HTTP/1.1\r\nHost: big.test\r\n{}Connection: close\r\n\r\n",
        (0..60).map(|i| format!("X-H{i}: {}\r\n", "b".repeat(80))).collect::<String>()
    );
    for req in [head(5000), many] {
        let mut s = TcpStream::connect(("127.0.0.1", p.http_port)).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let out = read_response(&mut s).await;
        assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    }
    // a head that never ends is cut at the limit, not read up to pingora's 1 MiB
    let mut s = TcpStream::connect(("127.0.0.1", p.http_port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: big.test\r\nX-Endless: ").await.unwrap();
    let mut sent = 0;
    let chunk = vec![b'c'; 1024];
    while sent < 64 * 1024 && s.write_all(&chunk).await.is_ok() {
        sent += chunk.len();
    }
    let out = read_response(&mut s).await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    assert!(p.metric("portcullis_client_errors_total{kind=\"head_too_large\"}").await >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_per_ip_closes_the_extra_connection() {
    let (_r, p, _a) = proxied(&[("MAX_CONNECTIONS_PER_IP", "3")], "cap.test").await;
    let get = b"GET / HTTP/1.1\r\nHost: cap.test\r\n\r\n";
    // the start-up probe's connection may still be counted for a moment
    let mut open = Vec::new();
    for _ in 0..3 {
        let s = eventually(Duration::from_secs(5), || async {
            let mut s = TcpStream::connect(("127.0.0.1", p.http_port)).await.ok()?;
            s.write_all(get).await.ok()?;
            read_response(&mut s).await.starts_with("HTTP/1.1 200").then_some(s)
        })
        .await
        .expect("a connection under the cap");
        open.push(s);
    }
    let mut extra = TcpStream::connect(("127.0.0.1", p.http_port)).await.unwrap();
    let _ = extra.write_all(get).await;
    let out = read_response(&mut extra).await;
    assert!(out.is_empty(), "the 4th connection from one address got: {out}");
    assert!(p.metric("portcullis_connections_refused_total{reason=\"per_ip_limit\"}").await >= 1.0);
    // the kept-alive ones still work, and a closed one frees its slot
    let mut first = open.remove(0);
    first.write_all(get).await.unwrap();
    assert!(read_response(&mut first).await.starts_with("HTTP/1.1 200"));
    drop(first);
    let again = eventually(Duration::from_secs(5), || async {
        let mut s = TcpStream::connect(("127.0.0.1", p.http_port)).await.ok()?;
        s.write_all(get).await.ok()?;
        read_response(&mut s).await.starts_with("HTTP/1.1 200").then_some(())
    })
    .await;
    assert!(again.is_some(), "a freed slot was never reused");
}

/// Sends a PROXY v1 header claiming 203.0.113.7, then a GET of `host`
/// (over TLS when `tls`); returns what came back.
fn through_proxy_header(port: u16, host: &str, tls: bool) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n").unwrap();
    let req = format!("GET /who HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut out = Vec::new();
    if tls {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        let Ok(mut s) = b.build().configure().unwrap().verify_hostname(false).connect(host, tcp) else {
            return String::new();
        };
        let _ = s.write_all(req.as_bytes());
        let _ = s.read_to_end(&mut out);
    } else {
        let _ = tcp.write_all(req.as_bytes());
        let _ = tcp.read_to_end(&mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_headers_are_taken_from_trusted_balancers_only() {
    // TRUSTED_PROXIES empty (the default): the PROXY listener believes nobody
    let (_r, p, _a) = proxied(&[], "lb.test").await;
    let pp = p.pp_port;
    let out = tokio::task::spawn_blocking(move || through_proxy_header(pp, "lb.test", false))
        .await
        .unwrap();
    assert!(out.is_empty(), "an untrusted peer's PROXY header was served: {out}");
    assert!(p.metric("portcullis_connections_refused_total{reason=\"untrusted_proxy\"}").await >= 1.0);

    // a trusted balancer on the PROXY listener and, with HTTPS_PROXY_PROTOCOL, on HTTPS
    let (_r, p, _a) = proxied(
        &[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1/32"), ("HTTPS_PROXY_PROTOCOL", "true")],
        "lb.test",
    )
    .await;
    let (pp, https) = (p.pp_port, p.https_port);
    for (port, tls) in [(pp, false), (https, true)] {
        let out = tokio::task::spawn_blocking(move || through_proxy_header(port, "lb.test", tls))
            .await
            .unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "port {port}: {out}");
        assert!(out.contains("203.0.113.7"), "the client address from the PROXY header: {out}");
    }
    // HTTPS without a PROXY header is refused once the listener expects one
    let refused = tokio::task::spawn_blocking(move || {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let tcp = std::net::TcpStream::connect(("127.0.0.1", https)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        b.build()
            .configure()
            .unwrap()
            .verify_hostname(false)
            .connect("lb.test", tcp)
            .is_err()
    })
    .await
    .unwrap();
    assert!(refused, "a TLS handshake without a PROXY header succeeded");

    // a balancer outside TRUSTED_PROXIES is refused even with a valid header
    let (_r, p, _a) = proxied(&[("TRUSTED_PROXIES", "10.0.0.0/8")], "lb.test").await;
    let pp = p.pp_port;
    let out = tokio::task::spawn_blocking(move || through_proxy_header(pp, "lb.test", false))
        .await
        .unwrap();
    assert!(out.is_empty(), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_breaking_off_log_no_error_lines_and_are_counted() {
    let (_r, p, _a) = proxied(&[("LOG_LEVEL", "INFO")], "quiet.test").await;
    let port = p.http_port;
    for i in 0..60 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let bytes: &[u8] = match i % 3 {
            // mid-head
            0 => b"GET / HTTP/1.1\r\nHost: quiet.test\r\nX-Half: ",
            // mid-body
            1 => b"POST / HTTP/1.1\r\nHost: quiet.test\r\nContent-Length: 100000\r\n\r\npartial",
            // mid-response: 8 MiB the client stops reading after the first bytes
            _ => b"GET /big?mb=8 HTTP/1.1\r\nHost: quiet.test\r\n\r\n",
        };
        s.write_all(bytes).await.unwrap();
        if i % 3 == 2 {
            let mut first = [0u8; 1024];
            let _ = s.read(&mut first).await;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // a reset, not a polite close (a zero linger does not block the drop)
        #[allow(deprecated)]
        let _ = s.set_linger(Some(Duration::ZERO));
        drop(s);
    }
    // a TLS client that gives up mid-handshake
    for _ in 0..10 {
        let mut s = TcpStream::connect(("127.0.0.1", p.https_port)).await.unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x50, 0x01]).await.unwrap();
        drop(s);
    }
    let counted = eventually(Duration::from_secs(5), || async {
        (p.metric("portcullis_client_errors_total{kind=\"closed\"}").await >= 15.0).then_some(())
    })
    .await;
    // every request still works afterwards
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: quiet.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let errors: Vec<String> = p
        .proc
        .log_text()
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(String::from)
        .collect();
    assert!(errors.is_empty(), "client-caused failures logged as errors:\n{}", errors.join("\n"));
    assert!(counted.is_some(), "aborted heads were not counted");
    // The handshakes and aborts end on the server after the client's drop:
    // poll until they are counted instead of reading once.
    for kind in ["tls_handshake", "aborted"] {
        let metric = format!("portcullis_client_errors_total{{kind=\"{kind}\"}}");
        let seen = eventually(Duration::from_secs(10), || async {
            (p.metric(&metric).await >= 10.0).then_some(())
        })
        .await;
        assert!(seen.is_some(), "{metric} stayed below 10: {}", p.metric(&metric).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    let (_r, p, _a) = proxied(&[("HTTP2_IDLE_TIMEOUT", "2")], "h2.test").await;
    let https = p.https_port;
    let closed_after = tokio::task::spawn_blocking(move || {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        use std::io::{Read, Write};
        let tcp = std::net::TcpStream::connect(("127.0.0.1", https)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        b.set_alpn_protos(b"\x02h2").unwrap();
        let mut s = b
            .build()
            .configure()
            .unwrap()
            .verify_hostname(false)
            .connect("h2.test", tcp)
            .unwrap();
        assert_eq!(s.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
        // the client preface and an empty SETTINGS frame, then nothing
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .unwrap();
        let t = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return t.elapsed(),
                Ok(_) => {} // SETTINGS, its ACK, the GOAWAY
            }
        }
    })
    .await
    .unwrap();
    assert!(
        closed_after >= Duration::from_millis(1500) && closed_after < Duration::from_secs(9),
        "closed after {closed_after:?}, HTTP2_IDLE_TIMEOUT=2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_cut_by_the_head_timeout() {
    let (_r, p, _a) = proxied(&[("CLIENT_HEADER_TIMEOUT", "2")], "tls.test").await;
    // a ClientHello record header promising 80 bytes, then nothing
    let mut s = TcpStream::connect(("127.0.0.1", p.https_port)).await.unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x50]).await.unwrap();
    let closed = closed_within(&mut s, Duration::from_secs(10))
        .await
        .expect("a stalled TLS handshake was never closed (pingora's default is 60 s)");
    assert!(closed >= Duration::from_millis(1500), "closed too early: {closed:?}");
}
