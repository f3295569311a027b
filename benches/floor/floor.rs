//! The framework floor for `benches/run.sh`: the smallest Pingora proxy of the
//! same version portcullis uses. No routing, no header rules, no metrics:
//! `upstream_peer` returns one fixed plain-HTTP peer.
//!
//! Usage: `bench-floor <listen addr> <backend addr>` (or env `FLOOR_LISTEN`,
//! `FLOOR_BACKEND`), e.g. `bench-floor 127.0.0.1:18080 127.0.0.1:18081`.
//! Threads: `FLOOR_THREADS` (default 1).

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{http_proxy_service, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;

/// The same allocator as portcullis, so the ratio compares our code, not allocators.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Floor {
    backend: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.backend, false, String::new())))
    }
}

fn arg_or_env(pos: usize, var: &str) -> Option<String> {
    std::env::args().nth(pos).or_else(|| std::env::var(var).ok())
}

fn main() {
    let (Some(listen), Some(backend)) = (arg_or_env(1, "FLOOR_LISTEN"), arg_or_env(2, "FLOOR_BACKEND")) else {
        eprintln!("usage: bench-floor <listen addr> <backend addr>");
        std::process::exit(2);
    };
    let Ok(backend) = backend.parse::<SocketAddr>() else {
        eprintln!("backend must be ip:port, got {backend:?}");
        std::process::exit(2);
    };
    let threads = std::env::var("FLOOR_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);

    let conf = ServerConf {
        threads,
        graceful_shutdown_timeout_seconds: Some(1),
        grace_period_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = http_proxy_service(&server.configuration, Floor { backend });
    svc.add_tcp(&listen);
    server.add_service(svc);
    server.run_forever()
}
