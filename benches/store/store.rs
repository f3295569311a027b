//! Store write benchmark, run by hand (not part of `just bench`): loads a
//! state of P proxies, R routes and O OAuth token records (with their index
//! keys and owner sets), then times W single writes one after another
//! through the record layer: a new route (record, two index keys, owner
//! set), a proxy update, an OAuth record with expiry, in turn. Prints one
//! JSON line: writes/s and latency percentiles.
//!
//! ```sh
//! cargo build --example bench-store
//! target/debug/examples/bench-store embedded /tmp/bench-store 10000 100000 100000 300
//! target/debug/examples/bench-store redis redis://127.0.0.1:6379/0 10000 100000 100000 3000
//! ```
//!
//! `embedded DIR`: the state is written as the JSON store's state file
//! `DIR/bench.json` (format 1) and opened there: the JSON store reads it,
//! the redb store migrates it in place. Only the same record-layer calls are
//! used, so this file also builds against the commit before redb (the JSON
//! store). `redis URL`: the state is loaded through the store (into an empty
//! database: the numbers assume nothing else is in it).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use portcullis::model::{Proxy, Route};
use portcullis::store::{EmbeddedStore, RedisStore, Store};
use serde_json::{json, Value};

/// Owners the records are spread over (owner sets of ~1 % of the records each).
const OWNERS: usize = 100;

/// Concurrent writers while loading a Redis state.
const LOAD_CONCURRENCY: usize = 64;

struct Sizes {
    proxies: usize,
    routes: usize,
    oauth: usize,
    writes: usize,
}

fn owner(i: usize) -> String {
    format!("sha256:bench-owner-{}", i % OWNERS)
}

fn proxy(i: usize) -> anyhow::Result<Proxy> {
    Ok(serde_json::from_value(json!({
        "hostname": format!("p{i}.bench.test"), "target_url": "http://127.0.0.1:1", "owner_token_hash": owner(i)
    }))?)
}

fn route(id: &str, path: &str, i: usize) -> anyhow::Result<Route> {
    Ok(serde_json::from_value(json!({
        "route_id": id, "path_pattern": path, "target_type": "port", "target_value": "8080",
        "priority": 100, "owner_token_hash": owner(i)
    }))?)
}

fn oauth_record(jti: &str) -> String {
    json!({"jti": jti, "client_id": "client_bench", "sub": "github:1", "username": "bench",
        "scope": "mcp user", "aud": ["https://p1.bench.test/mcp"], "iat": 1_800_000_000_i64,
        "exp": 1_800_003_600_i64, "family": "family-bench"})
    .to_string()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The state as the JSON store's file (format 1): every key, index and owner set.
fn json_state(n: &Sizes) -> anyhow::Result<Value> {
    let mut entries = BTreeMap::new();
    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let str_entry = |v: String| json!({"value": {"str": v}});
    for i in 0..n.proxies {
        let p = proxy(i)?;
        let key = format!("proxy:{}", p.hostname);
        owners.entry(format!("owner:{}", owner(i))).or_default().push(key.clone());
        entries.insert(key, str_entry(serde_json::to_string(&p)?));
    }
    for i in 0..n.routes {
        let (id, path) = (format!("r{i}"), format!("/bench/{i}/"));
        let r = route(&id, &path, i)?;
        let key = format!("route:{id}");
        owners.entry(format!("owner:{}", owner(i))).or_default().push(key.clone());
        entries.insert(key, str_entry(serde_json::to_string(&r)?));
        entries.insert(format!("route:unique:{path}:100"), str_entry(id.clone()));
        entries.insert(format!("route:priority:100:{id}"), str_entry(id));
    }
    let expires = now_ms() + 86_400_000;
    for i in 0..n.oauth {
        let jti = format!("jti-{i}");
        entries.insert(
            format!("oauth:token:{jti}"),
            json!({"value": {"str": oauth_record(&jti)}, "expires_ms": expires}),
        );
    }
    for (k, members) in owners {
        entries.insert(k, json!({"value": {"set": members}}));
    }
    Ok(json!({"format": 1, "entries": entries}))
}

async fn load_redis(store: Arc<dyn Store>, n: &Sizes) -> anyhow::Result<()> {
    let sem = Arc::new(tokio::sync::Semaphore::new(LOAD_CONCURRENCY));
    let mut tasks = Vec::new();
    for i in 0..n.proxies.max(n.routes).max(n.oauth) {
        let (store, permit) = (store.clone(), sem.clone().acquire_owned().await?);
        let (do_proxy, do_route, do_oauth) = (i < n.proxies, i < n.routes, i < n.oauth);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            if do_proxy {
                store.create_proxy(&proxy(i)?).await?;
            }
            if do_route {
                store.create_route(&route(&format!("r{i}"), &format!("/bench/{i}/"), i)?).await?;
            }
            if do_oauth {
                let jti = format!("jti-{i}");
                store
                    .kv_set(&format!("oauth:token:{jti}"), &oauth_record(&jti), Some(86_400))
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench-store (embedded DIR | redis URL) PROXIES ROUTES OAUTH WRITES";
    let [_, backend, place, proxies, routes, oauth, writes] = args.as_slice() else {
        bail!(usage);
    };
    let n = Sizes {
        proxies: proxies.parse().context(usage)?,
        routes: routes.parse().context(usage)?,
        oauth: oauth.parse().context(usage)?,
        writes: writes.parse().context(usage)?,
    };
    let started = Instant::now();
    let store: Arc<dyn Store> = match backend.as_str() {
        "embedded" => {
            std::fs::create_dir_all(place)?;
            let path = Path::new(place).join("bench.json");
            std::fs::write(&path, serde_json::to_vec(&json_state(&n)?)?)?;
            EmbeddedStore::open(&path)?
        }
        "redis" => {
            let store: Arc<dyn Store> = Arc::new(RedisStore::connect(place).await?);
            load_redis(store.clone(), &n).await?;
            store
        }
        _ => bail!(usage),
    };
    let load_secs = started.elapsed().as_secs_f64();

    let mut latencies = Vec::with_capacity(n.writes);
    let run = Instant::now();
    for i in 0..n.writes {
        let t = Instant::now();
        match i % 3 {
            0 => store.create_route(&route(&format!("w{i}"), &format!("/w/{i}/"), i)?).await?,
            1 => store.update_proxy(&proxy(i % n.proxies.max(1))?).await?,
            _ => {
                let jti = format!("w-{i}");
                store.kv_set(&format!("oauth:token:{jti}"), &oauth_record(&jti), Some(3600)).await?
            }
        }
        latencies.push(t.elapsed());
    }
    let secs = run.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{}",
        json!({
            "backend": backend, "proxies": n.proxies, "routes": n.routes, "oauth": n.oauth,
            "load_or_open_s": (load_secs * 10.0).round() / 10.0,
            "writes": n.writes, "writes_per_s": (n.writes as f64 / secs).round(),
            "p50_ms": (percentile(&latencies, 0.50) * 100.0).round() / 100.0,
            "p99_ms": (percentile(&latencies, 0.99) * 100.0).round() / 100.0,
            "max_ms": (percentile(&latencies, 1.0) * 100.0).round() / 100.0,
        })
    );
    Ok(())
}
