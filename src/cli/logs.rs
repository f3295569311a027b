//! `portcullis logs [verb]`: the request log (`/api/v1/logs/...`), one
//! line per request, newest first; `follow` streams new ones (coloured when
//! stdout is a terminal) until interrupted.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::error::{CliError, CliResult};
use super::http::Api;
use super::output::{emit, emit_line, field, json};

const LOGS: &str = "logs";

/// Window and page size shared by the views.
#[derive(Args, Debug, Default, Clone)]
pub struct Window {
    /// Hours back from now (default 24).
    #[arg(long)]
    pub hours: Option<f64>,
    /// Records to show (default 100, at most 1000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// `next_cursor` of a previous page, for older records.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// Search filters (every one optional; all given must match).
#[derive(Args, Debug, Default, Clone)]
pub struct Filters {
    /// Proxy hostname.
    #[arg(long)]
    pub host: Option<String>,
    /// Authenticated user.
    #[arg(long)]
    pub user: Option<String>,
    /// Status code (404) or class (4xx, 5xx).
    #[arg(long)]
    pub status: Option<String>,
    /// Request method.
    #[arg(long)]
    pub method: Option<String>,
    /// Path prefix.
    #[arg(long)]
    pub path: Option<String>,
    /// Client IP address.
    #[arg(long)]
    pub ip: Option<String>,
    /// OAuth client id.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Oldest time (RFC 3339 or Unix seconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Newest time (RFC 3339 or Unix seconds).
    #[arg(long)]
    pub until: Option<String>,
    /// Only requests that took at least this many milliseconds.
    #[arg(long)]
    pub min_ms: Option<f64>,
}

/// Request log views.
#[derive(Subcommand, Debug)]
pub enum LogVerb {
    /// Requests from one client address.
    Ip {
        /// The address.
        #[arg(value_parser = super::args::name)]
        ip: String,
        #[command(flatten)]
        window: Window,
    },
    /// Requests to one hostname.
    Host {
        /// The hostname.
        #[arg(value_parser = super::args::name)]
        hostname: String,
        #[command(flatten)]
        window: Window,
    },
    /// Requests and OAuth steps of one OAuth client.
    Client {
        /// The client id.
        #[arg(value_parser = super::args::name)]
        client_id: String,
        #[command(flatten)]
        window: Window,
    },
    /// Search with filters and free text.
    Search {
        /// Text anywhere in the record (path, host, user, reason, ...).
        query: Option<String>,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        window: Window,
    },
    /// 4xx/5xx responses and failed OAuth steps.
    Errors {
        #[command(flatten)]
        window: Window,
    },
    /// New requests as they happen (Ctrl-C ends).
    Follow {
        #[command(flatten)]
        filters: Filters,
    },
    /// OAuth flow steps (authorize, callback, token, refresh, revoke).
    Oauth {
        /// Only from this client address.
        ip: Option<String>,
        /// Only this OAuth client.
        #[arg(long)]
        client_id: Option<String>,
        /// Only this user.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        window: Window,
    },
    /// Hourly counts, error rates, latency percentiles and unique visitors per host.
    Stats {
        /// Hours back from now (default 24).
        #[arg(long)]
        hours: Option<f64>,
    },
}

/// `portcullis logs`: the latest requests, or one of the views.
#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(subcommand)]
    pub verb: Option<LogVerb>,
    #[command(flatten)]
    pub window: Window,
}

fn push<T: ToString>(q: &mut Vec<(&'static str, String)>, name: &'static str, v: &Option<T>) {
    if let Some(v) = v {
        q.push((name, v.to_string()));
    }
}

fn window_query(w: &Window) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    push(&mut q, "hours", &w.hours);
    push(&mut q, "limit", &w.limit);
    push(&mut q, "cursor", &w.cursor);
    q
}

fn filter_query(f: &Filters, q: &mut Vec<(&'static str, String)>) {
    push(q, "host", &f.host);
    push(q, "user", &f.user);
    push(q, "status", &f.status);
    push(q, "method", &f.method);
    push(q, "path", &f.path);
    push(q, "ip", &f.ip);
    push(q, "client_id", &f.client_id);
    push(q, "since", &f.since);
    push(q, "until", &f.until);
    push(q, "min_ms", &f.min_ms);
}

/// ANSI colour of a status (only on a terminal).
fn colour(status: u64, tty: bool) -> (&'static str, &'static str) {
    if !tty {
        return ("", "");
    }
    let c = match status {
        500.. => "\x1b[31m",
        400..=499 => "\x1b[33m",
        300..=399 => "\x1b[36m",
        _ => "\x1b[32m",
    };
    (c, "\x1b[0m")
}

/// One record as one line: time, status, method, host+path, duration, client, user/client, event.
pub fn line(r: &Value, tty: bool) -> String {
    let status = r["status"].as_u64().unwrap_or(0);
    let (on, off) = colour(status, tty);
    let query = r["query"].as_str().map(|q| format!("?{q}")).unwrap_or_default();
    let who = [field(r, "user"), field(r, "client_id")]
        .into_iter()
        .filter(|s| s != "-")
        .collect::<Vec<_>>()
        .join("/");
    let mut out = format!(
        "{} {on}{status}{off} {} {}{}{query} {:.1}ms {}",
        field(r, "timestamp"),
        if r["kind"] == "oauth" {
            format!("oauth:{}", field(r, "event"))
        } else {
            field(r, "method")
        },
        field(r, "host"),
        field(r, "path"),
        r["duration_ms"].as_f64().unwrap_or(0.0),
        field(r, "client_ip"),
    );
    if !who.is_empty() {
        out.push_str(&format!(" {who}"));
    }
    if let Some(reason) = r["reason"].as_str() {
        out.push_str(&format!(" ({reason})"));
    }
    out
}

/// The records of a page, one line each, and the cursor of the next page.
fn page_text(v: &Value) -> String {
    let tty = std::io::stdout().is_terminal();
    let records = v["records"].as_array().cloned().unwrap_or_default();
    if records.is_empty() {
        return "no requests logged in this window\n".into();
    }
    let mut out: String = records.iter().map(|r| line(r, tty) + "\n").collect();
    if let Some(c) = v["next_cursor"].as_str() {
        out.push_str(&format!("(older: --cursor {c})\n"));
    }
    out
}

fn stats_text(v: &Value) -> String {
    let mut out = format!(
        "since {}: {} requests, {} errors ({:.1} %)\n",
        field(v, "since"),
        field(v, "requests"),
        field(v, "errors"),
        v["error_rate"].as_f64().unwrap_or(0.0) * 100.0
    );
    out.push_str("HOST                            REQUESTS  ERRORS  P50 ms  P95 ms  P99 ms  UNIQUE IPS\n");
    for h in v["hosts"].as_array().cloned().unwrap_or_default() {
        out.push_str(&format!(
            "{:<32}{:>8}{:>8}{:>8.1}{:>8.1}{:>8.1}{:>12}\n",
            field(&h, "host"),
            field(&h, "requests"),
            field(&h, "errors"),
            h["p50_ms"].as_f64().unwrap_or(0.0),
            h["p95_ms"].as_f64().unwrap_or(0.0),
            h["p99_ms"].as_f64().unwrap_or(0.0),
            field(&h, "unique_ips"),
        ));
    }
    out
}

/// Prints the `data:` records of an event stream as they arrive; returns
/// when the server ends the stream.
async fn print_stream(mut resp: reqwest::Response, json_out: bool) -> CliResult {
    let tty = std::io::stdout().is_terminal();
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| CliError::Protocol(e.to_string()))? {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find('\n') {
            let l: String = buf.drain(..=end).collect();
            let Some(data) = l.trim_end().strip_prefix("data:") else { continue };
            let Ok(r) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            if json_out {
                emit_line(&r.to_string());
            } else {
                emit_line(&line(&r, tty));
            }
        }
    }
    Ok(())
}

/// Runs `portcullis logs ...`.
pub async fn run(api: &Api, json_out: bool, args: LogsArgs) -> CliResult {
    let (segments, query): (Vec<&str>, Vec<(&'static str, String)>) = match args.verb {
        None => (vec![LOGS, ""], window_query(&args.window)),
        Some(LogVerb::Ip { ip, window }) => {
            let v = api.get_query(&[LOGS, "ip", &ip], &window_query(&window)).await?;
            return show_page(&v, json_out);
        }
        Some(LogVerb::Client { client_id, window }) => {
            let v = api.get_query(&[LOGS, "client", &client_id], &window_query(&window)).await?;
            return show_page(&v, json_out);
        }
        Some(LogVerb::Host { hostname, window }) => {
            let mut q = window_query(&window);
            q.push(("host", hostname));
            (vec![LOGS, "search"], q)
        }
        Some(LogVerb::Search { query, filters, window }) => {
            let mut q = window_query(&window);
            filter_query(&filters, &mut q);
            push(&mut q, "q", &query);
            (vec![LOGS, "search"], q)
        }
        Some(LogVerb::Errors { window }) => (vec![LOGS, "errors"], window_query(&window)),
        Some(LogVerb::Oauth {
            ip,
            client_id,
            user,
            window,
        }) => {
            let mut q = window_query(&window);
            q.push(("kind", "oauth".into()));
            push(&mut q, "ip", &ip);
            push(&mut q, "client_id", &client_id);
            push(&mut q, "user", &user);
            (vec![LOGS, "search"], q)
        }
        Some(LogVerb::Stats { hours }) => {
            let mut q = Vec::new();
            push(&mut q, "hours", &hours);
            let v = api.get_query(&[LOGS, "events"], &q).await?;
            if json_out {
                json(&v);
            } else {
                emit(&stats_text(&v));
            }
            return Ok(());
        }
        Some(LogVerb::Follow { filters }) => {
            let mut q = Vec::new();
            filter_query(&filters, &mut q);
            // The client's request timeout ends a stream after a while: reconnect.
            loop {
                let resp = api.stream(&[LOGS, "follow"], &q).await?;
                print_stream(resp, json_out).await.ok();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let v = api.get_query(&segments, &query).await?;
    show_page(&v, json_out)
}

fn show_page(v: &Value, json_out: bool) -> CliResult {
    if json_out {
        json(v);
    } else {
        emit(&page_text(v));
    }
    Ok(())
}
