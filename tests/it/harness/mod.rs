//! Test harness: processes that are killed on drop, free ports, readiness
//! waits with bounded patience.

#![allow(dead_code)]

pub mod backend;
pub mod cli;
pub mod docker;
pub mod github;
pub mod pebble;
pub mod raw;
pub mod router;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A port that was free a moment ago (bind to 0, read, release), never one
/// this test binary handed out before: the kernel may offer a just-released
/// port again, and one process must not get the same port for two listeners.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> = std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let p = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if GIVEN.lock().unwrap().insert(p) {
            return p;
        }
    }
}

/// A port that refuses connections for as long as the returned socket lives:
/// bound but not listening, so no server of a test running in parallel can
/// take it (a port from [`free_port`] could be reused meanwhile).
pub fn refused_port() -> (tokio::net::TcpSocket, u16) {
    let hold = tokio::net::TcpSocket::new_v4().unwrap();
    hold.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = hold.local_addr().unwrap().port();
    (hold, port)
}

/// Retries `f` until it returns `Some` or `patience` runs out.
pub async fn eventually<T, F, Fut>(patience: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + patience;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A child process killed when dropped.
pub struct Proc {
    child: Child,
    pub log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Proc {
    /// Wraps a spawned child logging to `log`.
    pub fn from_child(child: Child, log: PathBuf) -> Proc {
        Proc { child, log, _dir: None }
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
    }
    /// Waits for exit up to `limit`; returns the exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private redis-server with a password.
pub struct Redis {
    pub port: u16,
    pub password: String,
    proc: Proc,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let password = format!("pw-{}", rand::random::<u64>());
        let log = dir.path().join("redis.log");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--requirepass",
                &password,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(dir.path())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (just test installs it)");
        let r = Redis {
            port,
            password,
            proc: Proc {
                child,
                log,
                _dir: Some(dir),
            },
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if r.cli(&["PING"]).trim() == "PONG" {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on {port}");
    }

    /// `redis://:pw@127.0.0.1:port/0`
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/0", self.password, self.port)
    }

    /// Runs redis-cli with this server's credentials.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "-a", &self.password, "--no-auth-warning"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every key, sorted (to compare store state before and after).
    pub fn dump_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.cli(&["--scan"]).lines().map(String::from).filter(|k| !k.is_empty()).collect();
        keys.sort();
        keys
    }

    /// Every key with its value (strings and sets), to prove nothing changed.
    pub fn dump(&self) -> Vec<(String, String)> {
        self.dump_keys()
            .into_iter()
            .map(|k| {
                let t = self.cli(&["TYPE", &k]);
                let v = if t.trim() == "set" {
                    let mut m: Vec<String> = self.cli(&["SMEMBERS", &k]).lines().map(String::from).collect();
                    m.sort();
                    m.join(",")
                } else {
                    self.cli(&["GET", &k])
                };
                (k, v)
            })
            .collect()
    }

    pub fn kill(&mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
    }
}

/// A running `portcullis serve` on its own ports.
pub struct Portcullis {
    pub http_port: u16,
    pub https_port: u16,
    pub pp_port: u16,
    pub api_port: u16,
    pub admin_token: String,
    pub proc: Proc,
    pub client: reqwest::Client,
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// Env for a portcullis process bound to `redis`, on fresh ports.
pub fn serve_env(redis_url: &str) -> Vec<(String, String)> {
    vec![
        ("REDIS_URL".into(), redis_url.into()),
        ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        ("SERVER_HOST".into(), "127.0.0.1".into()),
        ("HTTP_PORT".into(), free_port().to_string()),
        ("HTTPS_PORT".into(), free_port().to_string()),
        ("PROXY_PROTOCOL_PORT".into(), free_port().to_string()),
        ("API_PORT".into(), free_port().to_string()),
        ("LOG_LEVEL".into(), "DEBUG".into()),
        ("PROXY_THREADS".into(), "2".into()),
        ("RECONCILE_INTERVAL".into(), "30".into()),
        ("REDIS_STARTUP_TIMEOUT".into(), "5".into()),
        // no ACME traffic leaves the machine: a closed local port unless a test runs Pebble
        ("ACME_DIRECTORY_URL".into(), "http://127.0.0.1:9/directory".into()),
        ("ACME_STAGING_URL".into(), "http://127.0.0.1:9/directory".into()),
    ]
}

/// The binary under test: `PORTCULLIS_BIN` when set (to measure a release
/// build with the same scenarios), else the debug build of this crate.
pub fn bin() -> String {
    std::env::var("PORTCULLIS_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_portcullis").to_string())
}

/// Runs the built binary to its end with exactly `env` (plus PATH) in `dir`.
pub fn run_bin(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Sends `GET path` to `p`'s HTTP listener as `host` with `headers`, not
/// following redirects: the status, the headers and the body as JSON (or as
/// a JSON string when it is not JSON).
pub async fn get_as(p: &Portcullis, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut rb = client.get(p.http(path)).header("Host", host);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (s, h, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The value of the first `/metrics` sample line starting with `sample`
/// (name and labels), 0 when there is none.
pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(sample))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Spawns the built binary with exactly `env` (plus PATH), in a temp dir (no .env).
pub fn spawn(args: &[&str], env: &[(String, String)]) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("portcullis.log");
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let f = std::fs::File::create(&log).unwrap();
    let child = cmd.stdout(f.try_clone().unwrap()).stderr(f).spawn().unwrap();
    Proc {
        child,
        log,
        _dir: Some(dir),
    }
}

impl Portcullis {
    /// The control plane's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client.get(self.api("/metrics")).send().await.unwrap().text().await.unwrap()
    }

    /// One sample of `/metrics` (see [`metric_value`]).
    pub async fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.metrics().await, sample)
    }

    /// Starts against `redis` and waits until /health answers 200 and the data plane accepts.
    pub async fn start(redis: &Redis) -> Portcullis {
        Self::start_with(redis, &[]).await
    }

    /// Like `start`, with extra or overriding env vars.
    pub async fn start_with(redis: &Redis, extra: &[(&str, &str)]) -> Portcullis {
        Self::start_env(&redis.url(), extra).await
    }

    /// Starts with `serve_env(redis_url)` plus `extra` (the URL may name no
    /// Redis at all, for the embedded store). A port taken between `free_port`
    /// and the bind (another process's outgoing connection can get it) makes
    /// portcullis exit; then it starts again on fresh ports, unless `extra`
    /// fixed the ports.
    pub async fn start_env(redis_url: &str, extra: &[(&str, &str)]) -> Portcullis {
        let fixed_ports = extra.iter().any(|(k, _)| k.ends_with("_PORT"));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut env = serve_env(redis_url);
            for (k, v) in extra {
                env.retain(|(ek, _)| ek != k);
                env.push((k.to_string(), v.to_string()));
            }
            let get = |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.parse::<u16>().unwrap()).unwrap();
            let (http_port, https_port, pp_port, api_port) =
                (get("HTTP_PORT"), get("HTTPS_PORT"), get("PROXY_PROTOCOL_PORT"), get("API_PORT"));
            let proc = spawn(&["serve"], &env);
            let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
            let p = Portcullis {
                http_port,
                https_port,
                pp_port,
                api_port,
                admin_token: ADMIN_TOKEN.into(),
                proc,
                client,
            };
            // start-up, not the assertion: generous for a debug build on a loaded 2-core machine
            let outcome = eventually(Duration::from_secs(60), || async {
                if p.proc.log_text().contains("Address already in use") {
                    return Some(false);
                }
                let r = p.client.get(p.api("/health")).send().await.ok()?;
                let http_up = tokio::net::TcpStream::connect(("127.0.0.1", p.http_port)).await.is_ok();
                (r.status() == 200 && http_up).then_some(true)
            })
            .await;
            match outcome {
                Some(true) => return p,
                Some(false) if !fixed_ports && attempt < 3 => continue,
                _ => panic!("portcullis did not become healthy; log:\n{}", p.proc.log_text()),
            }
        }
    }

    /// Control plane URL for `path`.
    pub fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.api_port, path)
    }

    /// Data plane HTTP URL for `path` (set Host yourself).
    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.http_port, path)
    }

    /// Sends an admin API request with `token`; returns (status, JSON or Null).
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.client.request(method.parse().unwrap(), self.api(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `call` with the admin token.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(&self.admin_token.clone()), body).await
    }

    /// Creates a proxy through the admin API; anything but 201 fails the test.
    pub async fn create_proxy(&self, body: Value) {
        let (s, v) = self.admin("POST", "/api/v1/proxy/targets/", Some(body)).await;
        assert_eq!(s, 201, "{v}");
    }
}
