//! Signing-key rotation across instances (issue 19): rotations on two
//! instances at once are serialized, so none is lost and no key that signed
//! (or was about to sign) tokens is dropped from the ring.

use std::collections::HashSet;

use serde_json::Value;

use crate::harness::{Portcullis, Redis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_on_two_instances_lose_nothing() {
    let redis = Redis::start();
    let (a, b) = (Portcullis::start(&redis).await, Portcullis::start(&redis).await);
    let rotate = |p: &Portcullis| {
        let (url, token) = (p.api("/api/v1/oauth/keys/rotate"), p.admin_token.clone());
        tokio::spawn(async move {
            // A rotation waits 10 s for the lock, then answers 503 "retry";
            // on a loaded machine twenty queued rotations can exceed that,
            // so the client retries as told (what is asserted is that no
            // rotation that succeeded is lost).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            loop {
                let r = reqwest::Client::new().post(&url).bearer_auth(&token).send().await.unwrap();
                let s = r.status().as_u16();
                let v = r.json::<Value>().await.unwrap_or(Value::Null);
                if s != 503 || v["error"] != "temporarily_unavailable" || std::time::Instant::now() > deadline {
                    return (s, v);
                }
            }
        })
    };
    let calls: Vec<_> = (0..10).flat_map(|_| [rotate(&a), rotate(&b)]).collect();
    let mut currents = Vec::new();
    for c in calls {
        let (s, v) = c.await.unwrap();
        assert_eq!(s, 200, "{v}");
        currents.push(v["current_kid"].as_str().unwrap().to_string());
    }
    let distinct: HashSet<&String> = currents.iter().collect();
    assert_eq!(distinct.len(), 20, "rotations were lost: {currents:?}");
    // Every key that was current is still published (retired keys are kept
    // while tokens they signed may live).
    let jwks: Value = reqwest::get(a.api("/jwks")).await.unwrap().json().await.unwrap();
    let published: HashSet<&str> = jwks["keys"].as_array().unwrap().iter().filter_map(|k| k["kid"].as_str()).collect();
    for kid in &currents {
        assert!(published.contains(kid.as_str()), "key {kid} was dropped from the ring");
    }
}
