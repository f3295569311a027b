//! Bounded key refresh (issue 14, item 3): tokens naming unknown signing
//! keys are refused at once and cause at most one key reload per refresh
//! interval, never a full snapshot rebuild.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

use crate::harness::{backend, eventually, metric_value, Portcullis, Redis};

/// A syntactically valid RS256 token naming key `kid`, with a junk signature.
fn forged(kid: &str) -> String {
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let exp = chrono::Utc::now().timestamp() + 600;
    format!(
        "{}.{}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT", "kid": kid})),
        b64(json!({"sub": "mallory", "iss": "x", "exp": exp, "aud": ["http://kid.test"]})),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

/// Key reloads that ran (not skipped), and full snapshot rebuilds.
fn reloads_and_rebuilds(text: &str) -> (f64, f64) {
    let reloads = ["changed", "unchanged", "failed"]
        .iter()
        .map(|r| metric_value(text, &format!("portcullis_key_refreshes_total{{result=\"{r}\"}}")))
        .sum();
    let rebuilds = metric_value(text, "portcullis_snapshot_rebuilds_total{result=\"ok\"}");
    (reloads, rebuilds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_key_ids_is_refused_at_once_with_bounded_reloads() {
    let redis = Redis::start();
    let p = Portcullis::start(&redis).await;
    let b = backend::start("B").await;
    p.create_proxy(json!({"hostname": "kid.test", "target_url": b.url(), "enable_https": false, "auth_enabled": true}))
        .await;
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/oauth/test-token",
            Some(json!({"username": "alice", "aud": ["http://kid.test"]})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let good = format!("Bearer {}", v["access_token"].as_str().unwrap());
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let send = |auth: String| {
        let (client, url) = (client.clone(), p.http("/"));
        async move {
            let t = Instant::now();
            let r = client
                .get(url)
                .header("Host", "kid.test")
                .header("Authorization", auth)
                .send()
                .await;
            (r.map(|r| r.status().as_u16()).unwrap_or(0), t.elapsed())
        }
    };
    let ok = eventually(Duration::from_secs(5), || async {
        (send(good.clone()).await.0 == 200).then_some(())
    })
    .await;
    assert!(ok.is_some(), "the valid token never passed");

    let before = reloads_and_rebuilds(&p.metrics().await);
    // 300 distinct forged key ids, 30 at a time, over at most ~15 s
    let started = Instant::now();
    let mut slow = 0;
    let mut statuses = std::collections::BTreeMap::new();
    for wave in 0..10 {
        let batch: Vec<_> = (0..30)
            .map(|i| send(format!("Bearer {}", forged(&format!("forged-{wave}-{i}")))))
            .collect();
        for (status, took) in futures::future::join_all(batch).await {
            *statuses.entry(status).or_insert(0) += 1;
            if took > Duration::from_millis(700) {
                slow += 1;
            }
        }
        if started.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    // the same unknown key id again: the negative cache answers, no reload
    for _ in 0..20 {
        let (s, _) = send(format!("Bearer {}", forged("forged-0-0"))).await;
        assert_eq!(s, 401);
    }
    let elapsed = started.elapsed();
    let after = reloads_and_rebuilds(&p.metrics().await);
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), vec![401], "{statuses:?}");
    let intervals = (elapsed.as_secs_f64() / 5.0).ceil();
    let reloads = after.0 - before.0;
    assert!(
        reloads >= 1.0 && reloads <= intervals + 1.0,
        "{reloads} key reloads in {elapsed:?} (at most one per 5 s)"
    );
    assert_eq!(after.1, before.1, "a forged key id caused a full snapshot rebuild");
    assert!(
        slow as f64 <= intervals + 1.0,
        "{slow} forged requests were held (only the one that triggers a reload may wait)"
    );
    // a valid token still passes
    assert_eq!(send(good.clone()).await.0, 200);
}
