//! A real HTTP backend for data plane tests: echo, SSE, WebSocket echo,
//! slow and streaming responses, and upload counting.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::json;

/// A running backend; `name` is echoed so tests can tell backends apart.
pub struct Backend {
    pub port: u16,
    pub name: String,
    slow_begun: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// How many `/slow` requests have reached this backend: proof that a
    /// request is in flight through the proxy, which the proxy's own gauge is
    /// not (it still counts a finished request until its logging phase).
    pub fn slow_begun(&self) -> usize {
        self.slow_begun.load(Ordering::SeqCst)
    }
}

async fn echo(name: String, req: Request) -> Json<serde_json::Value> {
    let (parts, body) = req.into_parts();
    let mut headers = BTreeMap::new();
    for (k, v) in &parts.headers {
        headers
            .entry(k.as_str().to_string())
            .or_insert_with(Vec::new)
            .push(v.to_str().unwrap_or("").to_string());
    }
    let mut n = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        n += chunk.len();
    }
    Json(json!({
        "backend": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body_len": n,
    }))
}

async fn sse() -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let s = futures::stream::unfold(0u32, |i| async move {
        if i >= 5 {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        Some((Ok(Event::default().data(format!("{i} {now}"))), i + 1))
    });
    Sse::new(s)
}

async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket: WebSocket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            let echo = matches!(msg, Message::Text(_) | Message::Binary(_));
            if matches!(msg, Message::Close(_)) || (echo && socket.send(msg).await.is_err()) {
                break;
            }
        }
    })
}

async fn slow(begun: Arc<AtomicUsize>, Query(q): Query<BTreeMap<String, u64>>) -> &'static str {
    begun.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(q.get("ms").copied().unwrap_or(1000))).await;
    "slow done"
}

async fn chunked() -> Response {
    let s = futures::stream::iter(0..10).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, Infallible>(Bytes::from(format!("chunk-{i}\n")))
    });
    Body::from_stream(s).into_response()
}

/// `mb` MiB of `x` as fast as the client takes them (64 KiB chunks).
async fn big(Query(q): Query<BTreeMap<String, usize>>) -> Response {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let n = q.get("mb").copied().unwrap_or(1) * 16;
    let s = futures::stream::iter((0..n).map(move |_| Ok::<_, Infallible>(chunk.clone())));
    Body::from_stream(s).into_response()
}

async fn status(Query(q): Query<BTreeMap<String, u16>>, _h: HeaderMap) -> Response {
    let code = axum::http::StatusCode::from_u16(q.get("code").copied().unwrap_or(500)).unwrap();
    (code, "status").into_response()
}

/// Starts a backend on a free port.
pub async fn start(name: &str) -> Backend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let n = name.to_string();
    let slow_begun = Arc::new(AtomicUsize::new(0));
    let begun = slow_begun.clone();
    let app = Router::new()
        .route("/sse", get(sse))
        .route("/ws", get(ws))
        .route("/slow", get(move |q| slow(begun.clone(), q)))
        .route("/chunked", get(chunked))
        .route("/status", get(status))
        .route("/big", get(big))
        .fallback(any(move |req: Request| echo(n.clone(), req)));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Backend {
        port,
        name: name.to_string(),
        slow_begun,
        task,
    }
}

/// The `Sec-WebSocket-Key` clients of [`start_eager_websocket`] must send.
pub const EAGER_WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A WebSocket echo server that writes its 101 the moment it accepts a
/// connection, before it has read the request (the accept key is derived
/// from the fixed [`EAGER_WS_KEY`]). The proxy then finds the 101 waiting as
/// soon as it has sent the request: the fastest upstream there can be, which
/// is what pingora #946 needs to show.
pub async fn start_eager_websocket() -> Backend {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    use tokio_tungstenite::tungstenite::protocol::Role;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(EAGER_WS_KEY.as_bytes())
    );
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let head = head.clone();
            tokio::spawn(async move {
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                // Skip the request; a WebSocket client sends nothing before the 101.
                let mut req = Vec::new();
                let mut byte = [0u8; 1];
                while !req.ends_with(b"\r\n\r\n") {
                    match sock.read(&mut byte).await {
                        Ok(1) => req.push(byte[0]),
                        _ => return,
                    }
                }
                let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(sock, Role::Server, None).await;
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && futures::SinkExt::send(&mut ws, msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Backend {
        port,
        name: "eager-ws".into(),
        slow_begun: Arc::default(),
        task,
    }
}
