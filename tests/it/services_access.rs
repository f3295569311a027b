//! Who may do what with services (issue 18), against the real engine:
//! owners are isolated (404), host access is never accepted (422), a port
//! is claimed by exactly one of two concurrent creates on two instances
//! sharing Redis, and the port and external-service endpoints.

use serde_json::{json, Value};

use crate::admin_api::{assert_error, make_token};
use crate::harness::{free_port, get_as, Redis};
use crate::services::{httpd, start, wait_status, DOMAIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cannot_see_stop_or_read_logs_of_another_owners_service() {
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let alice = make_token(&p, "alice", "user").await;
    let bob = make_token(&p, "bob", "user").await;

    let (s, v) = p
        .call(
            "POST",
            "/api/v1/services/",
            Some(&alice),
            Some(httpd("iso-alice", json!({"auto_proxy": true}))),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // Alice's own proxy to her own container's loopback port is served.
    let host = format!("iso-alice.{DOMAIN}");
    wait_status(&p, &host, "/", 200).await;

    for (method, path) in [
        ("GET", "/api/v1/services/iso-alice"),
        ("POST", "/api/v1/services/iso-alice/stop"),
        ("POST", "/api/v1/services/iso-alice/start"),
        ("POST", "/api/v1/services/iso-alice/restart"),
        ("GET", "/api/v1/services/iso-alice/logs"),
        ("GET", "/api/v1/services/iso-alice/stats"),
        ("GET", "/api/v1/services/iso-alice/ports"),
        ("POST", "/api/v1/services/iso-alice/proxy"),
        ("PUT", "/api/v1/services/iso-alice"),
        ("DELETE", "/api/v1/services/iso-alice"),
    ] {
        let body = matches!(method, "PUT").then(|| json!({"memory_limit": "128m"}));
        let got = p.call(method, path, Some(&bob), body).await;
        assert_error(&got, 404, None);
    }
    let (s, v) = p.call("GET", "/api/v1/services/", Some(&bob), None).await;
    assert_eq!((s, v), (200, json!([])));
    let (s, v) = p.call("GET", "/api/v1/services/ports", Some(&bob), None).await;
    assert_eq!((s, v), (200, json!([])));
    let (s, v) = p.call("GET", "/api/v1/services/unified", Some(&bob), None).await;
    assert_eq!(
        (s, v),
        (200, json!([])),
        "users see neither others' services nor the admin's external ones"
    );
    // Still running: nothing Bob did reached it.
    let (_, _, b) = get_as(&p, &host, "/", &[]).await;
    assert_eq!(b.as_str().map(str::trim), Some("hello-iso-alice"));

    // Alice and the admin see it.
    let (s, v) = p.call("GET", "/api/v1/services/", Some(&alice), None).await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let (s, _) = p.admin("GET", "/api/v1/services/iso-alice", None).await;
    assert_eq!(s, 200);
    let (s, v) = p.call("DELETE", "/api/v1/services/iso-alice", Some(&alice), None).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_mode_host_mounts_and_capabilities_are_422() {
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let user = make_token(&p, "mallory", "user").await;
    for (field, value) in [
        ("privileged", json!(true)),
        ("volumes", json!(["/:/host"])),
        ("binds", json!(["/etc:/etc"])),
        ("mounts", json!([{"Type": "bind", "Source": "/", "Target": "/host"}])),
        ("cap_add", json!(["SYS_ADMIN"])),
        ("devices", json!(["/dev/sda"])),
        ("host_config", json!({"Privileged": true})),
        ("network_mode", json!("container:x")),
    ] {
        let mut body = httpd("evil", json!({}));
        body[field] = value;
        for token in [user.as_str(), p.admin_token.as_str()] {
            let got = p.call("POST", "/api/v1/services/", Some(token), Some(body.clone())).await;
            assert_error(&got, 422, Some(field));
        }
    }
    // Labels cannot forge ownership; networks cannot name the host's.
    let got = p
        .call(
            "POST",
            "/api/v1/services/",
            Some(&user),
            Some(httpd("evil", json!({"labels": {"portcullis.owner": "sha256:someone"}}))),
        )
        .await;
    assert_error(&got, 422, Some("labels.portcullis.owner"));
    let got = p
        .call(
            "POST",
            "/api/v1/services/",
            Some(&user),
            Some(httpd("evil", json!({"networks": ["host"]}))),
        )
        .await;
    assert_error(&got, 422, Some("networks"));
    // Bad input is a 4xx in the API's shape.
    for (body, field) in [
        (httpd("Bad_Name", json!({})), "service_name"),
        (httpd("ports", json!({})), "service_name"),
        (httpd("evil", json!({"memory_limit": "1k"})), "memory_limit"),
        (httpd("evil", json!({"cpu_limit": 0})), "cpu_limit"),
        (httpd("evil", json!({"restart_policy": "sometimes"})), "restart_policy"),
        (httpd("evil", json!({"port_configs": [{"host": 22}]})), "port_configs[0].host"),
        (httpd("evil", json!({"environment": {"A B": "x"}})), "environment.A B"),
        (json!({"service_name": "evil"}), "image"),
    ] {
        assert_error(
            &p.call("POST", "/api/v1/services/", Some(&user), Some(body)).await,
            422,
            Some(field),
        );
    }
    // A Dockerfile build reads the server's disk: the admin's only.
    let got = p
        .call(
            "POST",
            "/api/v1/services/",
            Some(&user),
            Some(json!({"service_name": "evil", "dockerfile_path": "x"})),
        )
        .await;
    assert_error(&got, 403, None);
    let (s, v) = p.admin("GET", "/api/v1/services/ports", None).await;
    assert_eq!((s, v), (200, json!([])), "no refused request kept a port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_creates_for_one_port_on_two_instances_exactly_one_wins() {
    let redis = Redis::start();
    let a = start(&redis, &[]).await;
    let b = start(&redis, &[]).await;
    let port = free_port();
    let body = |name: &str| httpd(name, json!({"port_configs": [{"name": "http", "host": port}]}));
    let (ra, rb) = tokio::join!(
        a.admin("POST", "/api/v1/services/", Some(body("race-a"))),
        b.admin("POST", "/api/v1/services/", Some(body("race-b"))),
    );
    let statuses = [ra.0, rb.0];
    assert!(statuses.contains(&201) && statuses.contains(&409), "{ra:?} {rb:?}");
    let (winner, loser) = if ra.0 == 201 { (&ra, &rb) } else { (&rb, &ra) };
    assert!(
        loser.1["message"].as_str().unwrap().contains(&format!("port {port}")),
        "{}",
        loser.1
    );
    assert_eq!(winner.1["port"], port);
    let (s, v) = a.admin("GET", "/api/v1/services/ports", None).await;
    assert_eq!(s, 200);
    let claims: Vec<&Value> = v.as_array().unwrap().iter().filter(|p| p["host_port"] == port).collect();
    assert_eq!(claims.len(), 1, "{v}");
    assert_eq!(claims[0]["service_name"], winner.1["service_name"]);
    // The loser left no record and no container.
    let name = winner.1["service_name"].as_str().unwrap();
    let (s, v) = b.admin("GET", "/api/v1/services/", None).await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let (s, _) = a.admin("DELETE", &format!("/api/v1/services/{name}"), None).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_are_listed_added_checked_and_removed_per_service() {
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let main_port = free_port();
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/",
            Some(httpd(
                "ported",
                json!({"port_configs": [{"name": "web", "host": main_port, "source_token": "source-token-0123456789"}]}),
            )),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = p.admin("GET", "/api/v1/services/ported/ports", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["port_name"], "web");
    assert_eq!(v[0]["require_token"], true);
    assert_eq!(v[0].get("source_token_hash"), None, "the hash is not shown");
    assert!(!v.to_string().contains("source-token-0123456789"), "the token is never returned");

    let extra = free_port();
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/ported/ports",
            Some(json!({"name": "metrics", "host": extra})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["host_port"], extra);
    let (s, v) = p.admin("POST", "/api/v1/services/ports/check", Some(json!({"port": extra}))).await;
    assert_eq!(s, 200);
    assert_eq!(v["available"], false, "{v}");
    let (s, v) = p.admin("POST", "/api/v1/services/ports/check", Some(json!({"port": 443}))).await;
    assert_eq!(s, 200);
    assert!(v["reason"].as_str().unwrap().contains("restricted"), "{v}");
    let (s, v) = p.admin("GET", "/api/v1/services/ports/available", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["exposed"], json!([11000, 65535]));
    assert_eq!(v["allocated_count"], 2, "{v}");
    // The recreated container got PORT_METRICS and still serves on its main port.
    let inspect = crate::harness::docker::Engine::shared().docker(&["inspect", "ported"]);
    assert!(inspect.contains(&format!("PORT_METRICS={extra}")), "{inspect}");

    assert_error(&p.admin("DELETE", "/api/v1/services/ported/ports/web", None).await, 409, None);
    let (s, v) = p.admin("DELETE", "/api/v1/services/ported/ports/metrics", None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = p.admin("POST", "/api/v1/services/ports/check", Some(json!({"port": extra}))).await;
    assert_eq!((s, v["available"].clone()), (200, json!(true)));
    let (s, _) = p.admin("DELETE", "/api/v1/services/ported", None).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_services_have_the_full_schema_and_the_api_service_is_built_in() {
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/services/external",
            Some(json!({"service_name": "billing", "target_url": "http://127.0.0.1:9", "description": "the billing backend"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["service_type"], "external");
    let (s, v) = p.admin("GET", "/api/v1/services/external/billing", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["description"], "the billing backend");
    assert_eq!(v["created_by"], "ADMIN_TOKEN");
    let (s, v) = p
        .admin(
            "PUT",
            "/api/v1/services/external/billing",
            Some(json!({"target_url": "http://127.0.0.1:10"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["target_url"].as_str(), v["description"].as_str()),
        (Some("http://127.0.0.1:10"), Some("the billing backend"))
    );

    let (s, v) = p.admin("GET", "/api/v1/services/external/api", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["service_type"], "internal");
    assert_eq!(v["target_url"], format!("http://127.0.0.1:{}", p.api_port));
    assert_error(&p.admin("DELETE", "/api/v1/services/external/api", None).await, 409, None);
    let (s, v) = p.admin("GET", "/api/v1/services/unified?type=internal", None).await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");

    // A `service` route to the built-in api reaches the control plane.
    p.create_proxy(json!({"hostname": "apiroute.test", "target_url": "http://127.0.0.1:9", "enable_https": false}))
        .await;
    let (s, v) = p
        .admin(
            "POST",
            "/api/v1/routes/",
            Some(json!({"path_pattern": "/health", "target_type": "service", "target_value": "api", "priority": 50})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let body = wait_status(&p, "apiroute.test", "/health", 200).await;
    assert_eq!(body["status"], "healthy", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_requests_are_typed_documented_and_refuse_strangers() {
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    let (s, doc) = p.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, 200);
    let body_ref = |path: &str, method: &str| {
        doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for (path, method, schema) in [
        ("/api/v1/services/", "post", "ServiceSpec"),
        ("/api/v1/services/{name}", "put", "ServicePatch"),
        ("/api/v1/services/ports/check", "post", "CheckPort"),
        ("/api/v1/services/external/", "post", "RegisterExternal"),
        ("/api/v1/services/{name}/ports/{port_name}", "put", "UpdatePort"),
    ] {
        assert!(
            body_ref(path, method).ends_with(schema),
            "{method} {path}: {}",
            body_ref(path, method)
        );
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let logs = &doc["paths"]["/api/v1/services/{name}/logs"]["get"]["responses"]["200"];
    assert!(logs.to_string().contains("ServiceLogText"), "{logs}");

    // An unknown field is named; a host-access field says why, also in an update.
    let got = p
        .admin("POST", "/api/v1/services/", Some(httpd("typed", json!({"colour": "red"}))))
        .await;
    assert_error(&got, 422, Some("colour"));
    let got = p.admin("PUT", "/api/v1/services/typed", Some(json!({"privileged": true}))).await;
    assert_error(&got, 422, Some("privileged"));
    assert!(
        got.1["message"].as_str().unwrap_or_default().contains("never accepted"),
        "{}",
        got.1
    );
    // The path names the service; a query parameter cannot name another.
    let got = p.admin("DELETE", "/api/v1/services/typed?service_name=other", None).await;
    assert_error(&got, 422, Some("service_name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_protected_port_asks_for_its_token_and_never_forwards_it() {
    const TOKEN: &str = "source-token-0123456789abcdef";
    let redis = Redis::start();
    let p = start(&redis, &[]).await;
    // A CGI script shows what reached the container.
    let script = "mkdir -p /www/cgi-bin; \
        printf '#!/bin/busybox sh\\nprintf \"Content-Type: text/plain\\\\r\\\\n\\\\r\\\\n\"\\necho \"token=[$HTTP_X_SERVICE_TOKEN] auth=[$HTTP_AUTHORIZATION]\"\\n' > /www/cgi-bin/h; \
        chmod +x /www/cgi-bin/h; echo hello > /www/index.html; \
        exec /bin/busybox httpd -f -p $BIND_ADDRESS:$PORT -h /www";
    let body = json!({
        "service_name": "guarded",
        "image": "busybox:latest",
        "command": ["/bin/busybox", "sh", "-c", script],
        "port_configs": [{"name": "http", "source_token": TOKEN}],
        "auto_proxy": true,
    });
    let (s, v) = p.admin("POST", "/api/v1/services/", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    assert!(!v.to_string().contains(TOKEN), "the token is never returned: {v}");
    let host = format!("guarded.{DOMAIN}");
    let bearer = format!("Bearer {TOKEN}");
    let up = crate::harness::eventually(std::time::Duration::from_secs(20), || async {
        let (s, _, _) = get_as(&p, &host, "/", &[("Authorization", bearer.as_str())]).await;
        (s == 200).then_some(())
    })
    .await;
    assert!(
        up.is_some(),
        "the service never answered with its token; log:\n{}",
        p.proc.log_text()
    );

    for headers in [
        vec![],
        vec![("X-Service-Token", "source-token-0123456789abcdeX")],
        vec![("Authorization", "Bearer source-token-0123456789abcdeX")],
        vec![("Authorization", "Basic c291cmNlLXRva2Vu")],
    ] {
        let (s, h, b) = get_as(&p, &host, "/cgi-bin/h", &headers).await;
        assert_eq!(s, 401, "{headers:?}: {b}");
        assert_eq!(b["error"], "unauthorized", "{b}");
        assert!(b["message"].as_str().unwrap_or_default().contains("X-Service-Token"), "{b}");
        assert_eq!(h.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    }
    let (s, _, b) = get_as(&p, &host, "/cgi-bin/h", &[("X-Service-Token", TOKEN)]).await;
    assert_eq!((s, b.as_str().map(str::trim)), (200, Some("token=[] auth=[]")));
    let (s, _, b) = get_as(&p, &host, "/cgi-bin/h", &[("Authorization", bearer.as_str())]).await;
    assert_eq!((s, b.as_str().map(str::trim)), (200, Some("token=[] auth=[]")));
    // Another credential next to the token is the backend's business.
    let (s, _, b) = get_as(
        &p,
        &host,
        "/cgi-bin/h",
        &[("X-Service-Token", TOKEN), ("Authorization", "Bearer app-session")],
    )
    .await;
    assert_eq!((s, b.as_str().map(str::trim)), (200, Some("token=[] auth=[Bearer app-session]")));
    assert!(!p.proc.log_text().contains(TOKEN), "the token is never logged");
    let (s, v) = p.admin("DELETE", "/api/v1/services/guarded", None).await;
    assert_eq!(s, 200, "{v}");
}
