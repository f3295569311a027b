//! The Redis store's prefix scans read its key directory, not the whole
//! database: a database holding many request-log records (or any other
//! application's keys) must not make a snapshot build cost a SCAN of all of
//! them. Data written before the directory existed is found, and records
//! that expired leave the directory.

use std::time::Duration;

use portcullis::store::{RedisStore, Store};
use redis::AsyncCommands;
use serde_json::json;

use crate::harness::{eventually, Redis};

/// Calls of `command` in the server's statistics since the last reset.
async fn calls(conn: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_read_the_directory_and_find_data_written_before_it() {
    let r = Redis::start();
    let client = redis::Client::open(r.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // A proxy written before the directory existed (as an older version
    // did), and 30,000 request-log hashes beside it.
    let legacy = json!({"hostname": "legacy.test", "target_url": "http://127.0.0.1:1", "owner_token_hash": "o"});
    let _: () = conn.set("proxy:legacy.test", legacy.to_string()).await.unwrap();
    for chunk in 0..30 {
        let mut p = redis::pipe();
        for i in 0..1000 {
            p.cmd("HSET")
                .arg(format!("req:{}:127.0.0.1", chunk * 1000 + i))
                .arg("status")
                .arg(200)
                .ignore();
        }
        let _: () = p.query_async(&mut conn).await.unwrap();
    }

    let store = RedisStore::connect(&r.url()).await.unwrap();
    let hosts = |ps: Vec<portcullis::model::Proxy>| ps.into_iter().map(|p| p.hostname).collect::<Vec<_>>();
    assert_eq!(hosts(store.list_proxies().await.unwrap()), ["legacy.test"]);
    let dir: Vec<String> = conn.zrange("portcullis:keys", 0, -1).await.unwrap();
    assert_eq!(dir, ["proxy:legacy.test"], "only string keys enter the directory");

    let fresh =
        serde_json::from_value(json!({"hostname": "fresh.test", "target_url": "http://127.0.0.1:1", "owner_token_hash": "o"})).unwrap();
    store.create_proxy(&fresh).await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
    for _ in 0..5 {
        assert_eq!(hosts(store.list_proxies().await.unwrap()), ["fresh.test", "legacy.test"]);
        assert!(store.list_routes().await.unwrap().is_empty());
    }
    assert_eq!(calls(&mut conn, "scan").await, 0, "a listing must not SCAN the database");

    store.delete_proxy("legacy.test").await.unwrap();
    assert_eq!(hosts(store.list_proxies().await.unwrap()), ["fresh.test"]);
    let gone: Option<f64> = conn.zscore("portcullis:keys", "proxy:legacy.test").await.unwrap();
    assert_eq!(gone, None, "a deleted key leaves the directory");

    // A second instance does not rebuild the directory.
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
    let again = RedisStore::connect(&r.url()).await.unwrap();
    assert_eq!(hosts(again.list_proxies().await.unwrap()), ["fresh.test"]);
    assert_eq!(calls(&mut conn, "scan").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_record_leaves_the_directory_when_its_range_is_read() {
    let r = Redis::start();
    let client = redis::Client::open(r.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let store = RedisStore::connect(&r.url()).await.unwrap();
    store.put_challenge("short", "key-auth", 1).await.unwrap();
    store.put_challenge("long", "key-auth", 600).await.unwrap();
    let entries: Vec<String> = conn.zrange("portcullis:keys", 0, -1).await.unwrap();
    assert_eq!(entries.len(), 2);
    eventually(Duration::from_secs(10), || async {
        let found = store.list_challenges().await.unwrap();
        (found.len() == 1 && found.contains_key("long")).then_some(())
    })
    .await
    .expect("the short-lived challenge expires");
    let entries: Vec<String> = conn.zrange("portcullis:keys", 0, -1).await.unwrap();
    assert_eq!(entries.len(), 1, "the expired challenge's entry is pruned by the scan");
}
