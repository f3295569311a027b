//! The request log (issue 17): requests through the real data plane (PROXY
//! protocol clients, anonymous and authenticated, 2xx/4xx/5xx, one slow)
//! are found by every query of `/api/v1/logs/...` on both stores, `follow`
//! streams them live, retention removes them, secrets never reach a record
//! or the access log, and a user-scope token sees only its own hosts.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::admin_api::make_token;
use crate::harness::{backend, eventually, get_as, Portcullis, Redis};

/// A Redis URL on a closed port, for the embedded store.
const NO_REDIS: &str = "redis://127.0.0.1:9/0";

/// Secrets the scenario sends; none may be stored or printed.
const SECRET_CODE: &str = "SECRETCODE4711";
const SECRET_CLIENT: &str = "SHHCLIENTSECRET0815";

/// One instance on `store` (`redis` or `embedded`) and what it needs kept alive.
struct Setup {
    p: Portcullis,
    redis: Option<Redis>,
    dir: Option<tempfile::TempDir>,
}

async fn setup(store: &str, extra: &[(&str, &str)]) -> Setup {
    let mut env: Vec<(&str, &str)> = vec![("TRUSTED_PROXIES", "127.0.0.1")];
    env.extend_from_slice(extra);
    if store == "embedded" {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json").to_str().unwrap().to_string();
        env.push(("STORE", "embedded"));
        env.push(("STORE_PATH", &path));
        let p = Portcullis::start_env(NO_REDIS, &env).await;
        return Setup {
            p,
            redis: None,
            dir: Some(dir),
        };
    }
    let redis = Redis::start();
    let p = Portcullis::start_with(&redis, &env).await;
    Setup {
        p,
        redis: Some(redis),
        dir: None,
    }
}

impl Setup {
    /// Everything the request log stored, as text: every Redis key with its
    /// content, or every segment file.
    fn stored_text(&self) -> String {
        if let Some(r) = &self.redis {
            let mut out = String::new();
            for k in r.dump_keys() {
                let content = match r.cli(&["TYPE", &k]).trim() {
                    "hash" => r.cli(&["HGETALL", &k]),
                    "zset" => r.cli(&["ZRANGE", &k, "0", "-1"]),
                    "stream" => r.cli(&["XRANGE", &k, "-", "+"]),
                    "list" => r.cli(&["LRANGE", &k, "0", "-1"]),
                    "set" => r.cli(&["SMEMBERS", &k]),
                    _ => r.cli(&["GET", &k]),
                };
                out.push_str(&k);
                out.push('\n');
                out.push_str(&content);
            }
            return out;
        }
        let dir = self.dir.as_ref().unwrap().path().join("request-log");
        let mut out = String::new();
        for e in std::fs::read_dir(dir).unwrap() {
            out.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
        }
        out
    }
}

/// Sends one HTTP/1.1 request over the PROXY protocol listener as `client`.
async fn via_proxy_protocol(p: &Portcullis, client: &str, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", p.pp_port)).await.unwrap();
    let head = format!("PROXY TCP4 {client} 127.0.0.1 40000 80\r\n{request}");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// `GET /api/v1/logs{path}` with `token`; the records of the answer.
async fn records(p: &Portcullis, token: &str, path: &str) -> Vec<Value> {
    let (s, v) = p.call("GET", &format!("/api/v1/logs{path}"), Some(token), None).await;
    assert_eq!(s, 200, "{path}: {v}");
    v["records"].as_array().cloned().unwrap_or_default()
}

fn paths(rs: &[Value]) -> Vec<String> {
    rs.iter()
        .map(|r| format!("{} {}", r["host"].as_str().unwrap_or(""), r["path"].as_str().unwrap_or("")))
        .collect()
}

/// The scenario on one store.
async fn every_query_finds_the_requests(store: &str) {
    let s = setup(store, &[]).await;
    let p = &s.p;
    let admin = p.admin_token.clone();
    let b = backend::start("B").await;
    p.create_proxy(json!({"hostname": "one.test", "target_url": b.url(), "enable_https": false,
        "auth_enabled": true, "auth_mode": "passthrough"}))
        .await;
    p.create_proxy(json!({"hostname": "two.test", "target_url": b.url(), "enable_https": false}))
        .await;
    let up = eventually(Duration::from_secs(5), || async {
        (get_as(p, "two.test", "/ready", &[]).await.0 == 200 && get_as(p, "one.test", "/ready", &[]).await.0 == 200).then_some(())
    })
    .await;
    assert!(up.is_some(), "proxies never served");
    let (st, v) = p
        .admin(
            "POST",
            "/api/v1/oauth/test-token",
            Some(json!({"username": "alice", "client_id": "cli-logs", "scope": "mcp:read", "aud": ["https://one.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let token = v["access_token"].as_str().unwrap().to_string();

    // the slow one first (1.1 s), then the rest
    assert_eq!(get_as(p, "two.test", "/slow?ms=1100", &[]).await.0, 200);
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let out = via_proxy_protocol(
        p,
        "203.0.113.7",
        &format!(
            "GET /pp/a?code={SECRET_CODE}&x=1 HTTP/1.1\r\nHost: one.test\r\nAuthorization: Bearer {token}\r\n\
             traceparent: {trace}\r\nX-Request-Id: forged-by-a-client\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        !out.contains("forged-by-a-client"),
        "an untrusted client's request id is replaced: {out}"
    );
    assert!(
        out.contains("x-request-id: 4bf92f3577b34da6a3ce929d0e0e4736"),
        "the trace id is the new request id: {out}"
    );
    assert!(out.contains(trace), "traceparent passed upstream: {out}");
    let out = via_proxy_protocol(
        p,
        "198.51.100.9",
        "GET /status?code=503 HTTP/1.1\r\nHost: two.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    let out = via_proxy_protocol(
        p,
        "198.51.100.9",
        "GET /missing HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    let own_reply_id = out
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-request-id: ").map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no request id on the proxy's own 404: {out}"));
    // 127.0.0.1 is a trusted balancer: its request id is kept
    let (st, h, echo) = get_as(
        p,
        "two.test",
        &format!("/form?client_secret={SECRET_CLIENT}&keep=1"),
        &[("X-Request-Id", "from-a-trusted-peer-1"), ("traceparent", "00-not-a-valid-trace")],
    )
    .await;
    assert_eq!(st, 200);
    let rid = h["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(rid, "from-a-trusted-peer-1");
    assert_eq!(echo["headers"]["x-request-id"], json!([rid]), "the same id upstream and back");
    let parents = echo["headers"]["traceparent"].as_array().unwrap();
    assert_eq!(
        parents.len(),
        1,
        "an invalid traceparent is replaced, not kept beside ours: {parents:?}"
    );
    let started = parents[0].as_str().unwrap().to_string();
    assert!(
        started.starts_with("00-") && started.len() == 55,
        "a traceparent is started: {started}"
    );

    // within a second of the last response, the first query finds it
    let found = eventually(Duration::from_secs(1), || async {
        let rs = records(p, &admin, "/search?path=/form").await;
        (!rs.is_empty()).then_some(rs)
    })
    .await
    .unwrap_or_else(|| panic!("not found within 1 s on {store}"));
    assert_eq!(found[0]["request_id"], json!(rid));
    assert_eq!(found[0]["query"], json!("client_secret=[REDACTED]&keep=1"));

    let by_ip = records(p, &admin, "/ip/203.0.113.7").await;
    assert_eq!(paths(&by_ip), ["one.test /pp/a"], "{by_ip:?}");
    let r = &by_ip[0];
    assert_eq!(r["user"], "alice");
    assert_eq!(r["client_id"], "cli-logs");
    assert_eq!(r["status"], 200);
    assert_eq!(r["method"], "GET");
    assert_eq!(r["request_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(r["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(r["query"], json!("code=[REDACTED]&x=1"));
    assert_eq!(r["upstream"], json!(format!("127.0.0.1:{}", b.port)));
    assert!(r["upstream_ms"].as_f64().is_some() && r["duration_ms"].as_f64().is_some(), "{r}");
    assert_eq!(paths(&records(p, &admin, "/client/cli-logs").await), ["one.test /pp/a"]);
    assert_eq!(paths(&records(p, &admin, "/search?user=alice").await), ["one.test /pp/a"]);
    assert_eq!(
        paths(&records(p, &admin, "/search?client_id=cli-logs&method=get&path=/pp").await),
        ["one.test /pp/a"]
    );
    assert_eq!(
        paths(&records(p, &admin, "/search?host=two.test&status=5xx").await),
        ["two.test /status"]
    );
    let missing = records(p, &admin, "/search?ip=198.51.100.9&status=404").await;
    assert_eq!(paths(&missing), ["nowhere.test /missing"]);
    assert_eq!(missing[0]["request_id"], json!(own_reply_id), "the id returned is the one logged");
    assert_eq!(paths(&records(p, &admin, "/search?min_ms=1000").await), ["two.test /slow"]);
    assert_eq!(paths(&records(p, &admin, "/search?q=MISSING").await), ["nowhere.test /missing"]);
    let errors = paths(&records(p, &admin, "/errors").await);
    assert_eq!(errors, ["nowhere.test /missing", "two.test /status"], "newest first");
    let all = paths(&records(p, &admin, "/search?host=two.test").await);
    assert_eq!(all.first().map(String::as_str), Some("two.test /form"), "newest first: {all:?}");
    assert!(all.contains(&"two.test /slow".to_string()), "{all:?}");

    // pagination: one per page, each older than the last, nothing twice
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let (st, v) = p
            .call(
                "GET",
                &format!("/api/v1/logs/search?host=two.test&limit=1{cursor}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        seen.extend(v["records"].as_array().unwrap().iter().map(|r| r["ts"].as_i64().unwrap()));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert!(seen.len() >= 3 && seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");

    // statistics per host
    let (st, stats) = p.call("GET", "/api/v1/logs/events?hours=1", Some(&admin), None).await;
    assert_eq!(st, 200, "{stats}");
    let host = |h: &str| stats["hosts"].as_array().unwrap().iter().find(|x| x["host"] == h).cloned().unwrap();
    let two = host("two.test");
    assert!(two["requests"].as_u64().unwrap() >= 4, "{two}");
    assert!(
        two["errors"].as_u64().unwrap() >= 1 && two["error_rate"].as_f64().unwrap() > 0.0,
        "{two}"
    );
    assert!(two["p99_ms"].as_f64().unwrap() >= 1000.0, "the slow request is the p99: {two}");
    assert!(two["unique_ips"].as_u64().unwrap() >= 2, "{two}");
    assert_eq!(host("one.test")["unique_ips"], 2, "127.0.0.1 (warm-up) and 203.0.113.7");
    assert!(
        stats["hourly"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["requests"].as_u64().unwrap() >= 6),
        "{stats}"
    );

    // secrets: neither stored nor printed
    let stored = s.stored_text();
    let log = p.proc.log_text();
    assert!(
        stored.contains("/pp/a") && log.contains("\"path\":\"/pp/a\""),
        "records exist where we look"
    );
    for secret in [token.as_str(), SECRET_CODE, SECRET_CLIENT] {
        assert!(!stored.contains(secret), "{secret} stored");
        assert!(!log.contains(secret), "{secret} in the access log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_finds_the_requests_on_redis() {
    every_query_finds_the_requests("redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_finds_the_requests_on_the_embedded_store() {
    every_query_finds_the_requests("embedded").await;
}

/// Reads SSE `data:` lines from `resp` until one contains `needle`.
async fn sse_until(resp: reqwest::Response, needle: &str) -> Option<String> {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let read = async {
        while let Some(Ok(chunk)) = futures::StreamExt::next(&mut stream).await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(line) = buf.lines().find(|l| l.starts_with("data:") && l.contains(needle)) {
                return Some(line.to_string());
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.ok().flatten()
}

async fn follow_receives_requests_live(store: &str) {
    let s = setup(store, &[]).await;
    let p = &s.p;
    let b = backend::start("B").await;
    p.create_proxy(json!({"hostname": "live.test", "target_url": b.url(), "enable_https": false}))
        .await;
    p.create_proxy(json!({"hostname": "other.test", "target_url": b.url(), "enable_https": false}))
        .await;
    let resp = p
        .client
        .get(p.api("/api/v1/logs/follow?host=live.test"))
        .bearer_auth(&p.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let reader = tokio::spawn(sse_until(resp, "/wanted"));
    // keep sending until the follower has it (the proxy may need a moment to serve the host)
    let got = eventually(Duration::from_secs(10), || async {
        get_as(p, "other.test", "/not-this", &[]).await;
        get_as(p, "live.test", "/wanted", &[]).await;
        reader.is_finished().then_some(())
    })
    .await;
    assert!(got.is_some(), "follow never received the request");
    let line = reader.await.unwrap().unwrap();
    assert!(line.contains("\"host\":\"live.test\""), "{line}");
    assert!(!line.contains("other.test"), "filtered by host: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_receives_requests_live_on_redis() {
    follow_receives_requests_live("redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_receives_requests_live_on_the_embedded_store() {
    follow_receives_requests_live("embedded").await;
}

/// With a retention of 1.8 s, records and their keys disappear.
async fn short_retention_removes_old_records(store: &str) {
    let s = setup(store, &[("LOG_RETENTION_HOURS", "0.0005")]).await;
    let p = &s.p;
    let admin = p.admin_token.clone();
    get_as(p, "nowhere.test", "/old", &[]).await;
    let found = eventually(Duration::from_secs(2), || async {
        (!records(p, &admin, "/search?path=/old").await.is_empty()).then_some(())
    })
    .await;
    assert!(found.is_some(), "the record was never found");
    let gone = eventually(Duration::from_secs(15), || async {
        let listed = records(p, &admin, "/search?path=/old").await.is_empty();
        let stored = match &s.redis {
            Some(r) => r.dump_keys().iter().all(|k| !k.starts_with("req:") && !k.contains("/old")),
            None => true,
        };
        (listed && stored).then_some(())
    })
    .await;
    assert!(gone.is_some(), "old records outlived the retention:\n{}", s.stored_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_retention_removes_old_records_on_redis() {
    short_retention_removes_old_records("redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_retention_removes_old_records_on_the_embedded_store() {
    short_retention_removes_old_records("embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_token_never_sees_another_owners_hosts() {
    let s = setup("redis", &[("USER_TARGET_ALLOW_NETWORKS", "127.0.0.0/8")]).await;
    let p = &s.p;
    let b = backend::start("B").await;
    let alice = make_token(p, "alice", "user").await;
    let (st, v) = p
        .call(
            "POST",
            "/api/v1/proxy/targets/",
            Some(&alice),
            Some(json!({"hostname": "alice.test", "target_url": b.url(), "enable_https": false})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    p.create_proxy(json!({"hostname": "bob.test", "target_url": b.url(), "enable_https": false}))
        .await;
    let up = eventually(Duration::from_secs(5), || async {
        (get_as(p, "alice.test", "/a", &[]).await.0 == 200 && get_as(p, "bob.test", "/b?status=x", &[]).await.0 == 200).then_some(())
    })
    .await;
    assert!(up.is_some());
    get_as(p, "bob.test", "/status?code=500", &[]).await;
    let admin = p.admin_token.clone();
    let seen = eventually(Duration::from_secs(2), || async {
        (records(p, &admin, "/search?host=bob.test&status=500").await.len() == 1).then_some(())
    })
    .await;
    assert!(seen.is_some());
    for path in [
        "/",
        "/search",
        "/search?host=bob.test",
        "/ip/127.0.0.1",
        "/errors",
        "/search?q=bob",
        "/search?status=5xx",
    ] {
        let rs = records(p, &alice, path).await;
        assert!(rs.iter().all(|r| r["host"] == "alice.test"), "{path}: {rs:?}");
    }
    assert!(!records(p, &alice, "/").await.is_empty(), "alice sees her own");
    let (st, stats) = p.call("GET", "/api/v1/logs/events", Some(&alice), None).await;
    assert_eq!(st, 200);
    assert!(
        stats["hosts"].as_array().unwrap().iter().all(|h| h["host"] == "alice.test"),
        "{stats}"
    );
    // bad input is a 4xx in the API's error shape, never a 500
    for bad in [
        "/search?status=abc",
        "/search?limit=0",
        "/search?limit=-1",
        "/search?hours=nan",
        "/search?since=yesterday",
        "/search?cursor=x",
        "/ip/not-an-ip",
        "/search?host=a&host=b",
        "/search?nope=1",
        "/search?method=G%20T",
        "/events?hours=-1",
    ] {
        let (st, v) = p.call("GET", &format!("/api/v1/logs{bad}"), Some(&alice), None).await;
        assert!((400..500).contains(&st), "{bad}: {st} {v}");
        assert!(v["error"].is_string() && v["message"].is_string(), "{bad}: {v}");
    }
    let (st, _) = p.call("GET", "/api/v1/logs/search", None, None).await;
    assert_eq!(st, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_token_failures_are_logged_with_client_and_reason_but_no_secret() {
    let s = setup("redis", &[]).await;
    let p = &s.p;
    let admin = p.admin_token.clone();
    let body = format!("grant_type=authorization_code&code={SECRET_CODE}&client_id=cli-unknown&client_secret={SECRET_CLIENT}");
    let r = p
        .client
        .post(p.http("/token"))
        .header("Host", "auth.localhost")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "{:?}", r.text().await);
    let event = eventually(Duration::from_secs(2), || async {
        records(p, &admin, "/search?kind=oauth&client_id=cli-unknown")
            .await
            .into_iter()
            .next()
    })
    .await
    .expect("the token failure was not logged");
    assert_eq!(event["event"], "token");
    assert_eq!(event["status"], 401);
    assert!(event["reason"].as_str().unwrap().starts_with("invalid_client"), "{event}");
    assert_eq!(event["client_ip"], "127.0.0.1");
    let errors = records(p, &admin, "/errors?kind=oauth").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let stored = s.stored_text();
    let log = p.proc.log_text();
    for secret in [SECRET_CODE, SECRET_CLIENT] {
        assert!(!stored.contains(secret) && !log.contains(secret), "{secret} leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_and_store_can_be_turned_off_and_the_process_log_is_json() {
    let s = setup("redis", &[("ACCESS_LOG", "off"), ("REQUEST_LOG", "false"), ("LOG_FORMAT", "json")]).await;
    let p = &s.p;
    get_as(p, "nowhere.test", "/quiet", &[]).await;
    let (st, _, _) = get_as(p, "nowhere.test", "/quiet2", &[]).await;
    assert_eq!(st, 404);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = p.proc.log_text();
    assert!(!log.contains("/quiet"), "{log}");
    assert!(!log.contains('\u{1b}'), "no ANSI colours when stderr is a file");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(serde_json::from_str::<Value>(line).is_ok(), "not JSON: {line}");
    }
    let keys = s.redis.as_ref().unwrap().dump_keys();
    assert!(keys.iter().all(|k| !k.starts_with("req:") && !k.starts_with("idx:req")), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_verbs_show_the_request_log() {
    let s = setup("redis", &[]).await;
    let p = &s.p;
    let b = backend::start("B").await;
    p.create_proxy(json!({"hostname": "cli.test", "target_url": b.url(), "enable_https": false}))
        .await;
    let up = eventually(Duration::from_secs(5), || async {
        (get_as(p, "cli.test", "/warm", &[]).await.0 == 200).then_some(())
    })
    .await;
    assert!(up.is_some());
    via_proxy_protocol(
        p,
        "203.0.113.9",
        "GET /status?code=502 HTTP/1.1\r\nHost: cli.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    let admin = p.admin_token.clone();
    let logged = eventually(Duration::from_secs(2), || async {
        (!records(p, &admin, "/ip/203.0.113.9").await.is_empty()).then_some(())
    })
    .await;
    assert!(logged.is_some());
    let dir = tempfile::tempdir().unwrap();
    let api = p.api("");
    let env = [("API_URL", api.as_str()), ("ADMIN_TOKEN", admin.as_str())];
    let run = |args: &[&str]| {
        let out = crate::harness::run_bin(dir.path(), args, &env);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    for (args, want) in [
        (vec!["logs"], "cli.test/warm"),
        (vec!["logs", "ip", "203.0.113.9"], "502 GET cli.test/status?code=[REDACTED]"),
        (vec!["logs", "host", "cli.test", "--hours", "1"], "cli.test/warm"),
        (vec!["logs", "search", "warm", "--status", "2xx"], "200 GET cli.test/warm"),
        (vec!["logs", "errors"], "502 GET cli.test/status"),
        (vec!["logs", "stats"], "cli.test"),
    ] {
        let text = run(&args);
        assert!(text.contains(want), "{args:?}:\n{text}");
        assert!(!text.contains('\u{1b}'), "no colours into a pipe: {text}");
    }
    assert!(run(&["logs", "client", "nobody"]).contains("no requests"));
    assert!(run(&["logs", "oauth"]).contains("no requests"));
    let v: Value = serde_json::from_str(&run(&["--json", "logs", "errors"])).unwrap();
    assert_eq!(v["records"][0]["status"], 502);
    let bad = crate::harness::run_bin(dir.path(), &["logs", "search", "--status", "abc"], &env);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("status"), "{bad:?}");

    // follow: a line per new request
    let follow = crate::harness::spawn(
        &["logs", "follow", "--host", "cli.test"],
        &env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>(),
    );
    let seen = eventually(Duration::from_secs(10), || async {
        get_as(p, "cli.test", "/followed", &[]).await;
        follow.log_text().contains("cli.test/followed").then_some(())
    })
    .await;
    assert!(seen.is_some(), "follow printed: {}", follow.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_unknown_hosts_share_one_series() {
    let s = setup("redis", &[]).await;
    let p = &s.p;
    let b = backend::start("B").await;
    p.create_proxy(json!({"hostname": "m.test", "target_url": b.url(), "enable_https": false}))
        .await;
    let up = eventually(Duration::from_secs(5), || async {
        (get_as(p, "m.test", "/", &[]).await.0 == 200).then_some(())
    })
    .await;
    assert!(up.is_some());
    for i in 0..30 {
        get_as(p, &format!("random-{i}.attacker.example"), "/", &[]).await;
    }
    let text = p.metrics().await;
    let hosts: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("portcullis_requests_total{") || l.starts_with("portcullis_upstream_response_seconds_count{"))
        .filter_map(|l| l.split("host=\"").nth(1)?.split('"').next())
        .collect();
    assert!(hosts.iter().all(|h| !h.contains("attacker")), "{hosts:?}");
    assert!(hosts.contains("unknown") && hosts.contains("m.test"), "{hosts:?}");
    assert_eq!(metric_of(&text, "portcullis_request_log_dropped_total"), 0.0);
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed (the prometheus package; scripts/test.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, text.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
}

fn metric_of(text: &str, sample: &str) -> f64 {
    crate::harness::metric_value(text, sample)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_requests_record_the_version_and_the_server_name() {
    let s = setup("redis", &[]).await;
    let p = &s.p;
    let port = p.https_port;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("sni-asked.test", format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let r = client.get(format!("https://sni-asked.test:{port}/over-tls")).send().await.unwrap();
    assert_eq!(r.status(), 404, "no proxy for this host: the fallback certificate and a 404");
    let admin = p.admin_token.clone();
    let rec = eventually(Duration::from_secs(2), || async {
        records(p, &admin, "/search?path=/over-tls").await.into_iter().next()
    })
    .await
    .expect("the TLS request was not logged");
    assert_eq!(rec["sni"], "sni-asked.test", "{rec}");
    assert!(rec["tls_version"].as_str().unwrap().starts_with("TLS"), "{rec}");
    let plain = {
        get_as(p, "sni-asked.test", "/over-plain", &[]).await;
        eventually(Duration::from_secs(2), || async {
            records(p, &admin, "/search?path=/over-plain").await.into_iter().next()
        })
        .await
        .unwrap()
    };
    assert!(plain.get("sni").is_none() && plain.get("tls_version").is_none(), "{plain}");
}
