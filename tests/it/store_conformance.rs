//! One conformance suite for both store backends: every case runs against a
//! real redis-server on a free port and against the embedded database in a
//! temporary directory, through the same record layer. CRUD, indexes, owner
//! sets, cascades, conflicts and their messages, expiry, atomicity, events,
//! and the OAuth server's typed operations.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use portcullis::model::{Certificate, Proxy, Route, Token};
use portcullis::store::backend::{Applied, Batch, Check};
use portcullis::store::{ChangeEvent, EmbeddedStore, EventKind, OAuthStore, Parked, Redemption, RedisStore, Store, StoreError};
use serde_json::json;

use crate::harness::{eventually, Redis};

/// A store of one backend, and what keeps it alive.
pub struct Subject {
    pub store: Arc<dyn Store>,
    _redis: Option<Redis>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn redis() -> Subject {
    let r = Redis::start();
    let store = Arc::new(RedisStore::connect(&r.url()).await.unwrap());
    Subject {
        store,
        _redis: Some(r),
        _dir: None,
    }
}

pub async fn embedded() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    Subject {
        store,
        _redis: None,
        _dir: Some(dir),
    }
}

/// One test per backend for each case: `conformance!(name, |store| async move { .. })`.
macro_rules! conformance {
    ($name:ident, $case:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_redis() {
                let s = redis().await;
                ($case)(s.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_embedded() {
                let s = embedded().await;
                ($case)(s.store.clone()).await;
            }
        }
    };
}

fn proxy(host: &str, owner: &str) -> Proxy {
    serde_json::from_value(json!({"hostname": host, "target_url": "http://127.0.0.1:1", "owner_token_hash": owner})).unwrap()
}

fn route(id: &str, path: &str, priority: i64, owner: &str) -> Route {
    serde_json::from_value(json!({
        "route_id": id, "path_pattern": path, "target_type": "port", "target_value": "8080",
        "priority": priority, "owner_token_hash": owner
    }))
    .unwrap()
}

fn scoped_route(id: &str, path: &str, hosts: &[&str], owner: &str) -> Route {
    serde_json::from_value(json!({
        "route_id": id, "path_pattern": path, "target_type": "port", "target_value": "8080", "priority": 10,
        "scope": "proxy", "proxy_hostnames": hosts, "owner_token_hash": owner
    }))
    .unwrap()
}

fn token(name: &str, hash: &str) -> Token {
    serde_json::from_value(json!({"name": name, "hash": hash, "token_encrypted": "sealed", "created_at": "2026-11-24T00:00:00Z"})).unwrap()
}

fn cert(name: &str, domains: &[&str], owner: &str) -> Certificate {
    serde_json::from_value(json!({
        "cert_name": name, "domains": domains, "status": "active", "source": "upload",
        "expires_at": "", "not_before": "", "serial": "01", "issuer": "test",
        "fingerprint_sha256": "00", "fullchain_pem": "", "owner_token_hash": owner
    }))
    .unwrap()
}

fn conflict_message(r: Result<(), StoreError>) -> String {
    match r {
        Err(StoreError::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// The next event, within a bound a loaded machine keeps.
async fn next_event(events: &mut futures::stream::BoxStream<'static, ChangeEvent>) -> (EventKind, String, String) {
    let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event")
        .expect("the stream is open");
    (ev.kind, ev.id, ev.op)
}

conformance!(proxies_and_owner_sets, |s: Arc<dyn Store>| async move {
    s.create_proxy(&proxy("a.test", "h1")).await.unwrap();
    assert_eq!(
        conflict_message(s.create_proxy(&proxy("a.test", "h2")).await),
        "proxy a.test already exists"
    );
    assert_eq!(s.get_proxy("a.test").await.unwrap().unwrap().owner_token_hash, "h1");
    assert!(s.get_proxy("b.test").await.unwrap().is_none());
    assert!(matches!(s.update_proxy(&proxy("b.test", "h1")).await, Err(StoreError::NotFound(m)) if m == "proxy b.test"));
    let mut p = proxy("a.test", "h1");
    p.target_url = "http://127.0.0.1:2".into();
    s.update_proxy(&p).await.unwrap();
    assert_eq!(s.get_proxy("a.test").await.unwrap().unwrap().target_url, "http://127.0.0.1:2");
    s.create_proxy(&proxy("b.test", "h1")).await.unwrap();
    assert_eq!(s.members("owner:h1").await.unwrap(), ["proxy:a.test", "proxy:b.test"]);
    let hosts: Vec<String> = s.list_proxies().await.unwrap().into_iter().map(|p| p.hostname).collect();
    assert_eq!(hosts, ["a.test", "b.test"]);
    s.delete_proxy("a.test").await.unwrap();
    assert!(matches!(s.delete_proxy("a.test").await, Err(StoreError::NotFound(m)) if m == "proxy a.test"));
    assert_eq!(s.members("owner:h1").await.unwrap(), ["proxy:b.test"], "the owner set follows");
});

conformance!(route_indexes_and_conflicts, |s: Arc<dyn Store>| async move {
    s.create_route(&route("r1", "/x", 10, "h1")).await.unwrap();
    assert_eq!(s.get("route:unique:/x:10").await.unwrap().as_deref(), Some("r1"));
    assert_eq!(s.get("route:priority:10:r1").await.unwrap().as_deref(), Some("r1"));
    assert_eq!(
        conflict_message(s.create_route(&route("r2", "/x", 10, "h1")).await),
        "a route for path /x at priority 10 already exists"
    );
    assert_eq!(
        conflict_message(s.create_route(&route("r1", "/other", 1, "h1")).await),
        "route id r1 already exists"
    );
    s.create_route(&route("r2", "/x", 11, "h1")).await.unwrap();
    assert_eq!(
        conflict_message(s.update_route(&route("r2", "/x", 10, "h1")).await),
        "a route for path /x at priority 10 already exists"
    );
    s.update_route(&route("r2", "/y", 10, "h1")).await.unwrap();
    assert_eq!(s.get("route:unique:/x:11").await.unwrap(), None, "the old index moved");
    assert_eq!(s.get("route:priority:11:r2").await.unwrap(), None);
    assert_eq!(s.get("route:unique:/y:10").await.unwrap().as_deref(), Some("r2"));
    assert!(matches!(
        s.update_route(&route("nope", "/z", 1, "h1")).await,
        Err(StoreError::NotFound(_))
    ));
    let ids: Vec<String> = s.list_routes().await.unwrap().into_iter().map(|r| r.route_id).collect();
    assert_eq!(ids, ["r1", "r2"], "index keys are not records");

    // Proxy-scoped routes are unique per hostname, not globally.
    s.create_route(&scoped_route("s1", "/p", &["a.test"], "h1")).await.unwrap();
    s.create_route(&scoped_route("s2", "/p", &["b.test"], "h2")).await.unwrap();
    assert!(s.get("route:unique-host:a.test:/p:10").await.unwrap().is_some());
    assert!(matches!(
        s.create_route(&scoped_route("s3", "/p", &["c.test", "b.test"], "h2")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.get("route:unique-host:c.test:/p:10").await.unwrap(),
        None,
        "a refused write leaves nothing"
    );

    s.delete_route("r1").await.unwrap();
    assert_eq!(s.get("route:unique:/x:10").await.unwrap(), None);
    assert_eq!(s.get("route:priority:10:r1").await.unwrap(), None);
    assert_eq!(s.members("owner:h1").await.unwrap(), ["route:r2", "route:s1"]);
    assert!(matches!(s.delete_route("r1").await, Err(StoreError::NotFound(m)) if m == "route r1"));
    s.create_route(&route("r9", "/x", 10, "h2")).await.unwrap();
});

conformance!(token_cascade_takes_what_it_owns, |s: Arc<dyn Store>| async move {
    s.create_token(&token("t", "h1")).await.unwrap();
    assert_eq!(conflict_message(s.create_token(&token("u", "h1")).await), "token u already exists");
    assert_eq!(conflict_message(s.create_token(&token("t", "h9")).await), "token t already exists");
    assert_eq!(s.get_token_by_hash("h1").await.unwrap().unwrap().name, "t");
    assert!(s.get_token_by_hash("h9").await.unwrap().is_none());
    s.create_token(&token("other", "h2")).await.unwrap();
    s.create_proxy(&proxy("a.test", "h1")).await.unwrap();
    s.create_proxy(&proxy("b.test", "h2")).await.unwrap();
    s.create_route(&route("r1", "/x", 10, "h1")).await.unwrap();
    s.create_route(&scoped_route("r2", "/p", &["a.test"], "h1")).await.unwrap();
    s.put_cert(&cert("c1", &["a.test"], "h1")).await.unwrap();
    s.put_cert(&cert("c2", &["b.test"], "h2")).await.unwrap();

    let report = s.delete_token_cascade("t").await.unwrap();
    assert_eq!(report.proxies, ["a.test"]);
    assert_eq!(report.routes, ["r1", "r2"]);
    assert_eq!(report.certificates, ["c1"]);
    assert!(s.get_token("t").await.unwrap().is_none());
    assert!(s.get_token_by_hash("h1").await.unwrap().is_none());
    assert!(s.members("owner:h1").await.unwrap().is_empty());
    for gone in [
        "route:unique:/x:10",
        "route:priority:10:r1",
        "route:unique-host:a.test:/p:10",
        "cert:domain:a.test",
    ] {
        assert_eq!(s.get(gone).await.unwrap(), None, "{gone} went with its record");
    }
    assert!(s.get_proxy("b.test").await.unwrap().is_some(), "another owner's records stay");
    assert_eq!(s.get("cert:domain:b.test").await.unwrap().as_deref(), Some("c2"));
    assert!(matches!(s.delete_token_cascade("t").await, Err(StoreError::NotFound(m)) if m == "token t"));
    s.create_route(&route("r3", "/x", 10, "h2")).await.unwrap();
});

conformance!(certificates_and_their_domain_index, |s: Arc<dyn Store>| async move {
    let mut events = s.subscribe().await.unwrap();
    s.put_cert(&cert("c1", &["a.test", "b.test"], "h1")).await.unwrap();
    s.put_cert(&cert("c1", &["b.test", "c.test"], "h2")).await.unwrap();
    assert_eq!(next_event(&mut events).await, (EventKind::Cert, "c1".into(), "create".into()));
    assert_eq!(next_event(&mut events).await, (EventKind::Cert, "c1".into(), "update".into()));
    assert_eq!(
        s.get("cert:domain:a.test").await.unwrap(),
        None,
        "a dropped domain leaves the index"
    );
    assert_eq!(s.get("cert:domain:c.test").await.unwrap().as_deref(), Some("c1"));
    assert!(s.members("owner:h1").await.unwrap().is_empty(), "the old owner's set lost it");
    assert_eq!(s.members("owner:h2").await.unwrap(), ["cert:c1"]);
    // Another certificate took over b.test: deleting c1 must not remove that entry.
    s.put_cert(&cert("c2", &["b.test"], "h2")).await.unwrap();
    s.delete_cert("c1").await.unwrap();
    assert_eq!(s.get("cert:domain:b.test").await.unwrap().as_deref(), Some("c2"));
    assert_eq!(s.get("cert:domain:c.test").await.unwrap(), None);
    assert!(matches!(s.delete_cert("c1").await, Err(StoreError::NotFound(m)) if m == "certificate c1"));
    let names: Vec<String> = s.list_certs().await.unwrap().into_iter().map(|c| c.cert_name).collect();
    assert_eq!(names, ["c2"]);
});

conformance!(values_locks_counters_and_single_use, |s: Arc<dyn Store>| async move {
    assert!(s.set_value_if_absent("v", "1").await.unwrap());
    assert!(!s.set_value_if_absent("v", "2").await.unwrap());
    assert_eq!(s.get_value("v").await.unwrap().as_deref(), Some("1"));
    assert_eq!(s.get("internal:v").await.unwrap().as_deref(), Some("1"), "the reference key");
    s.set_value("v", "3").await.unwrap();
    assert_eq!(s.get_value("v").await.unwrap().as_deref(), Some("3"));

    assert!(s.acquire_lock("l", "me", 30).await.unwrap());
    assert!(!s.acquire_lock("l", "you", 30).await.unwrap());
    s.release_lock("l", "you").await.unwrap();
    assert!(!s.acquire_lock("l", "you", 30).await.unwrap(), "only the owner releases");
    s.release_lock("l", "me").await.unwrap();
    assert!(s.acquire_lock("l", "you", 30).await.unwrap());

    s.put_service_url("svc", "http://127.0.0.1:2").await.unwrap();
    assert_eq!(
        s.list_service_urls().await.unwrap().get("svc").map(String::as_str),
        Some("http://127.0.0.1:2")
    );
    s.delete_service_url("svc").await.unwrap();
    assert!(matches!(s.delete_service_url("svc").await, Err(StoreError::NotFound(m)) if m == "service svc"));

    // Concurrent increments all count; concurrent takers: exactly one wins.
    let incs = (0..20).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.kv_incr("count", 60).await.unwrap() })
    });
    let mut seen: Vec<i64> = futures::future::join_all(incs).await.into_iter().map(|r| r.unwrap()).collect();
    seen.sort();
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    s.kv_set("once", "v", None).await.unwrap();
    let takes = (0..10).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.kv_take("once").await.unwrap() })
    });
    let won: Vec<String> = futures::future::join_all(takes)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    assert_eq!(won, ["v"]);
    assert!(s.kv_set_nx("nx", "a", 30).await.unwrap());
    assert!(!s.kv_set_nx("nx", "b", 30).await.unwrap());
    s.kv_del("nx").await.unwrap();
    assert_eq!(s.kv_get("nx").await.unwrap(), None);

    // Prefix scans take the prefix literally, glob characters included.
    s.kv_set("scan:a*[1]", "1", None).await.unwrap();
    s.kv_set("scan:ab", "2", None).await.unwrap();
    s.kv_sadd("scan:a*set", "m", 60).await.unwrap();
    assert_eq!(s.kv_scan("scan:a*").await.unwrap(), [("scan:a*[1]".to_string(), "1".to_string())]);
    assert_eq!(s.kv_scan("scan:").await.unwrap().len(), 2, "sets are not listed");
});

conformance!(expiry, |s: Arc<dyn Store>| async move {
    s.kv_set("short", "v", Some(1)).await.unwrap();
    s.kv_sadd("short-set", "m", 1).await.unwrap();
    s.put_challenge("tok", "answer", 1).await.unwrap();
    s.put_revocation("jti-1", 1).await.unwrap();
    s.kv_set("long", "v", Some(600)).await.unwrap();
    assert_eq!(s.kv_get("short").await.unwrap().as_deref(), Some("v"));
    assert_eq!(s.list_challenges().await.unwrap().get("tok").map(String::as_str), Some("answer"));
    assert_eq!(s.list_revocations().await.unwrap(), ["jti-1"]);
    assert_eq!(s.kv_incr("window", 1).await.unwrap(), 1);
    assert_eq!(s.kv_incr("window", 1).await.unwrap(), 2, "an increment keeps the window");
    let gone = eventually(Duration::from_secs(10), || async {
        let all_gone = s.kv_get("short").await.unwrap().is_none()
            && s.kv_smembers("short-set").await.unwrap().is_empty()
            && s.list_challenges().await.unwrap().is_empty()
            && s.list_revocations().await.unwrap().is_empty()
            && s.kv_get("window").await.unwrap().is_none();
        all_gone.then_some(())
    })
    .await;
    assert!(gone.is_some(), "expired keys read as absent");
    assert_eq!(s.kv_incr("window", 60).await.unwrap(), 1, "a new window starts after expiry");
    assert!(s.kv_set_nx("short", "w", 30).await.unwrap(), "an expired key can be set again");
    assert_eq!(s.kv_get("long").await.unwrap().as_deref(), Some("v"));
    s.kv_set("long", "w", None).await.unwrap();
    assert_eq!(
        s.kv_get("long").await.unwrap().as_deref(),
        Some("w"),
        "a plain set drops the expiry"
    );
});

conformance!(a_batch_is_all_or_nothing, |s: Arc<dyn Store>| async move {
    let mut events = s.subscribe().await.unwrap();
    s.kv_set("held", "1", None).await.unwrap();
    let mut b = Batch::with_event(EventKind::Service, "x", "update");
    b.put("w1", "1").sadd("w-set", "m", None).check(Check::Absent("held".into()));
    assert_eq!(s.apply(&b).await.unwrap(), Applied::Conflict("held".into()));
    let mut b = Batch::default();
    b.check(Check::Equals("held".into(), "2".into())).del("held");
    assert_eq!(s.apply(&b).await.unwrap(), Applied::Changed("held".into()));
    let mut b = Batch::default();
    b.check(Check::Members("w-set".into(), vec!["m".into()])).put("w2", "1");
    assert_eq!(s.apply(&b).await.unwrap(), Applied::Changed("w-set".into()));
    assert_eq!(s.get("w1").await.unwrap(), None);
    assert!(s.members("w-set").await.unwrap().is_empty());
    assert_eq!(s.get("held").await.unwrap().as_deref(), Some("1"));

    // Of many concurrent creates of one path and priority, exactly one wins.
    let creates = (0..12).map(|i| {
        let s = s.clone();
        tokio::spawn(async move { s.create_route(&route(&format!("c{i}"), "/race", 5, "h1")).await.is_ok() })
    });
    let won = futures::future::join_all(creates)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(won, 1);

    // A cascade that meets an undecodable record fails whole.
    s.create_token(&token("t", "h7")).await.unwrap();
    s.create_proxy(&proxy("a.test", "h7")).await.unwrap();
    s.kv_set("route:bad", "{not json", None).await.unwrap();
    let mut b = Batch::default();
    b.sadd("owner:h7", "route:bad", None);
    assert_eq!(s.apply(&b).await.unwrap(), Applied::Ok);
    assert!(matches!(s.delete_token_cascade("t").await, Err(StoreError::Corrupt(_))));
    assert!(s.get_proxy("a.test").await.unwrap().is_some(), "the proxy is still there");
    assert!(s.get_token("t").await.unwrap().is_some(), "and so is the token");

    // Only the successful writes above published: one route, the token, the proxy.
    let first = next_event(&mut events).await;
    assert_eq!((first.0, first.2.as_str()), (EventKind::Route, "create"));
    assert_eq!(next_event(&mut events).await, (EventKind::Token, "t".into(), "create".into()));
    assert_eq!(next_event(&mut events).await, (EventKind::Proxy, "a.test".into(), "create".into()));
});

conformance!(events_one_per_write, |s: Arc<dyn Store>| async move {
    let mut events = s.subscribe().await.unwrap();
    s.create_proxy(&proxy("a.test", "h1")).await.unwrap();
    let _ = s.create_proxy(&proxy("a.test", "h1")).await;
    s.update_proxy(&proxy("a.test", "h1")).await.unwrap();
    s.create_route(&route("r1", "/x", 1, "h1")).await.unwrap();
    s.update_route(&route("r1", "/y", 1, "h1")).await.unwrap();
    s.delete_route("r1").await.unwrap();
    s.put_service_url("svc", "http://127.0.0.1:3").await.unwrap();
    s.put_challenge("tok", "ans", 60).await.unwrap();
    s.delete_challenge("tok").await.unwrap();
    s.put_revocation("j1", 60).await.unwrap();
    s.publish(EventKind::Keys, "ring", "rotate").await.unwrap();
    s.kv_set("quiet", "no event", None).await.unwrap();
    s.delete_proxy("a.test").await.unwrap();
    let want = [
        (EventKind::Proxy, "a.test", "create"),
        (EventKind::Proxy, "a.test", "update"),
        (EventKind::Route, "r1", "create"),
        (EventKind::Route, "r1", "update"),
        (EventKind::Route, "r1", "delete"),
        (EventKind::Service, "svc", "update"),
        (EventKind::Challenge, "tok", "create"),
        (EventKind::Challenge, "tok", "delete"),
        (EventKind::Revocation, "j1", "create"),
        (EventKind::Keys, "ring", "rotate"),
        (EventKind::Proxy, "a.test", "delete"),
    ];
    for (kind, id, op) in want {
        assert_eq!(next_event(&mut events).await, (kind, id.to_string(), op.to_string()));
    }
});

conformance!(oauth_codes_and_parked_values_are_single_use, |s: Arc<dyn Store>| async move {
    let grant = json!({"family": "fam-1", "client_id": "c"});
    s.put_code("code-digest", &grant, 60).await.unwrap();
    assert_eq!(
        s.get("oauth:code:code-digest").await.unwrap().map(|v| v.contains("fam-1")),
        Some(true)
    );
    let redeem = (0..8).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            s.redeem_code(
                "code-digest",
                |g: &serde_json::Value| g["family"].as_str().unwrap_or("").to_string(),
                120,
            )
            .await
            .unwrap()
        })
    });
    let (mut fresh, mut replayed) = (0, 0);
    for r in futures::future::join_all(redeem).await {
        match r.unwrap() {
            Redemption::Fresh(g) => {
                assert_eq!(g, grant);
                fresh += 1;
            }
            Redemption::Replayed(family) => {
                assert_eq!(family, "fam-1");
                replayed += 1;
            }
            Redemption::Unknown => panic!("a redeemed code must read as replayed"),
        }
    }
    assert_eq!((fresh, replayed), (1, 7));
    assert!(matches!(
        s.redeem_code("never-issued", |_: &serde_json::Value| String::new(), 60)
            .await
            .unwrap(),
        Redemption::Unknown
    ));

    s.park(Parked::Login("sid"), &json!({"n": 1}), 60).await.unwrap();
    assert_eq!(s.get("oauth:state:sid").await.unwrap().as_deref(), Some(r#"{"n":1}"#));
    assert_eq!(
        s.unpark::<serde_json::Value>(Parked::Login("sid")).await.unwrap(),
        Some(json!({"n": 1}))
    );
    assert_eq!(s.unpark::<serde_json::Value>(Parked::Login("sid")).await.unwrap(), None);
});

conformance!(oauth_family_revocation_is_one_write, |s: Arc<dyn Store>| async move {
    for jti in ["j1", "j2"] {
        let rec = json!({"jti": jti, "exp": 4_000_000_000_i64});
        s.put_access(jti, "fam", "user-1", &rec, 600, 3600).await.unwrap();
    }
    s.put_access("other", "fam-2", "user-1", &json!({"jti": "other"}), 600, 3600)
        .await
        .unwrap();
    s.issue_grant("client-1", "fam", Some(("r-digest", &json!({"family": "fam"}))), 3600)
        .await
        .unwrap();
    assert_eq!(s.members("oauth:family:fam:jtis").await.unwrap(), ["j1", "j2"]);
    assert_eq!(s.members("oauth:user_tokens:user-1").await.unwrap(), ["j1", "j2", "other"]);
    assert_eq!(s.members("oauth:client_families:client-1").await.unwrap(), ["fam"]);
    assert_eq!(s.members("oauth:family:fam:refresh").await.unwrap(), ["r-digest"]);
    assert_eq!(s.list_access::<serde_json::Value>().await.unwrap().len(), 3);

    let mut events = s.subscribe().await.unwrap();
    let ttl_of = |record: Option<&str>| if record.is_some_and(|r| r.contains("4000000000")) { 900 } else { 1 };
    assert_eq!(s.revoke_family("fam", 3600, ttl_of).await.unwrap(), 2);
    assert_eq!(
        next_event(&mut events).await,
        (EventKind::Revocation, "fam".into(), "create".into())
    );
    assert!(s.family_revoked("fam").await.unwrap());
    assert!(!s.family_revoked("fam-2").await.unwrap());
    for jti in ["j1", "j2"] {
        assert!(s.access_revoked(jti).await.unwrap());
        assert!(s.get_access::<serde_json::Value>(jti).await.unwrap().is_none());
    }
    assert!(!s.access_revoked("other").await.unwrap(), "another family is untouched");
    assert!(s.get_refresh::<serde_json::Value>("r-digest").await.unwrap().is_none());
    let mut revoked = s.list_revocations().await.unwrap();
    revoked.sort();
    assert_eq!(revoked, ["j1", "j2"]);

    s.revoke_access("other", 60).await.unwrap();
    assert!(s.access_revoked("other").await.unwrap());
    assert!(s.list_access::<serde_json::Value>().await.unwrap().is_empty());
    assert_eq!(s.take_client_families("client-1").await.unwrap(), ["fam"]);
    assert!(s.take_client_families("client-1").await.unwrap().is_empty());
    assert!(s.lock_refresh("r", 30).await.unwrap());
    assert!(!s.lock_refresh("r", 30).await.unwrap());
    s.unlock_refresh("r").await.unwrap();
    assert!(s.lock_refresh("r", 30).await.unwrap());
});

conformance!(oauth_devices_consents_clients_and_keys, |s: Arc<dyn Store>| async move {
    s.start_device("dev-digest", "ABCD-EFGH", &json!({"state": "pending"}), 600)
        .await
        .unwrap();
    let (digest, grant) = s.device_by_user_code::<serde_json::Value>("ABCD-EFGH").await.unwrap().unwrap();
    assert_eq!((digest.as_str(), grant), ("dev-digest", json!({"state": "pending"})));
    assert!(s
        .decide_device("dev-digest", "alice", &json!({"state": "approved"}), 600)
        .await
        .unwrap());
    assert!(
        !s.decide_device("dev-digest", "mallory", &json!({"state": "denied"}), 600)
            .await
            .unwrap(),
        "the first answer wins"
    );
    assert_eq!(
        s.get_device::<serde_json::Value>("dev-digest").await.unwrap(),
        Some(json!({"state": "approved"}))
    );
    assert!(s.finish_device("dev-digest", "ABCD-EFGH").await.unwrap());
    assert!(!s.finish_device("dev-digest", "ABCD-EFGH").await.unwrap(), "used once");
    assert!(s.device_by_user_code::<serde_json::Value>("ABCD-EFGH").await.unwrap().is_none());
    s.count_device_failure("127.0.0.1", "code-d", 60).await.unwrap();
    s.count_device_failure("127.0.0.1", "code-e", 60).await.unwrap();
    assert_eq!(s.device_failures("127.0.0.1", "code-d").await.unwrap(), (2, 1));

    for (c, u) in [("c1", "u1"), ("c1", "u2"), ("c2", "u1")] {
        s.put_consent(c, u, &json!({"client": c, "user": u}), 600).await.unwrap();
    }
    assert_eq!(s.list_consents::<serde_json::Value>().await.unwrap().len(), 3);
    assert_eq!(s.forget_client_consents("c1").await.unwrap(), 2);
    assert!(s.forget_consent("c2", "u1").await.unwrap());
    assert!(!s.forget_consent("c2", "u1").await.unwrap());
    assert!(s.list_consents::<serde_json::Value>().await.unwrap().is_empty());

    s.put_client("client_a", &json!({"client_id": "client_a"}), Some(600))
        .await
        .unwrap();
    s.put_client("client_b", &json!({"client_id": "client_b"}), None).await.unwrap();
    s.kv_set("oauth:client:broken", "{not json", None).await.unwrap();
    assert_eq!(
        s.list_clients::<serde_json::Value>().await.unwrap().len(),
        2,
        "an undecodable record is skipped"
    );
    assert!(s.delete_client("client_a").await.unwrap());
    assert!(!s.delete_client("client_a").await.unwrap());
    assert_eq!(s.count_registration("1.2.3.4", 7).await.unwrap(), 1);
    assert_eq!(s.count_registration("1.2.3.4", 7).await.unwrap(), 2);
    s.kv_set("resource:https://mcp.test/", "{}", None).await.unwrap();
    assert!(s.resource_registered("https://mcp.test/").await.unwrap());

    let mut events = s.subscribe().await.unwrap();
    assert!(s.create_key_ring("ring-1").await.unwrap());
    assert!(!s.create_key_ring("ring-2").await.unwrap());
    s.store_rotated_key_ring("ring-3").await.unwrap();
    assert_eq!(s.key_ring().await.unwrap().as_deref(), Some("ring-3"));
    assert_eq!(s.get("internal:oauth:keys").await.unwrap().as_deref(), Some("ring-3"));
    assert_eq!(next_event(&mut events).await, (EventKind::Keys, "ring".into(), "rotate".into()));
    assert!(s.lock_key_rotation("me", 30).await.unwrap());
    assert!(!s.lock_key_rotation("you", 30).await.unwrap());
    s.unlock_key_rotation("you").await.unwrap();
    assert!(!s.lock_key_rotation("you", 30).await.unwrap(), "only the holder releases");
    s.unlock_key_rotation("me").await.unwrap();
    assert!(s.lock_key_rotation("you", 30).await.unwrap());
});

/// The store benchmark (`benches/store/store.rs`, run by hand at full size)
/// still runs: a tiny state on the embedded store, one JSON line of figures.
#[test]
fn the_store_benchmark_runs_on_a_tiny_state() {
    let exe = std::env::current_exe().unwrap();
    let bench = exe.parent().unwrap().parent().unwrap().join("examples").join("bench-store");
    if !bench.exists() {
        // `cargo test --all-targets` (just test) builds it first; a filtered run may not have.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = std::process::Command::new(cargo)
            .args(["build", "--example", "bench-store"])
            .status()
            .unwrap();
        assert!(built.success());
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&bench)
        .args(["embedded", dir.path().to_str().unwrap(), "5", "20", "20", "6"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (line["backend"].as_str(), line["writes"].as_u64()),
        (Some("embedded"), Some(6)),
        "{line}"
    );
    assert!(line["writes_per_s"].as_f64().unwrap() > 0.0, "{line}");
    assert!(dir.path().join("bench.json.migrated").exists(), "the JSON state was migrated");
}
