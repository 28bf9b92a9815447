//! The proxy started in-process: admin API contract and data-plane behaviour.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use model::{RoutingTable, SlotColor};
use proxy::admin::AdminState;
use proxy::admin_api;
use proxy::metrics::SlotMetrics;
use proxy::routing::Routing;
use proxy::state_file::StateFile;
use proxy::token::AdminToken;
use proxy::upstream_policy::UpstreamPolicy;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::in_process::{self, start_proxy, start_proxy_with};
use support::{
    admin_get, admin_json, put_routing, put_routing_status, route, serve_upstream,
    start_cookie_echo, start_counting, TOKEN,
};
use tower::ServiceExt;

fn admin_app(dir: &Path) -> (axum::Router, Arc<Routing>) {
    let routing = Arc::new(Routing::new(
        RoutingTable::default(),
        StateFile::new(dir.join("routing.json")),
        UpstreamPolicy::loopback_only(),
    ));
    let app = admin_api::app(AdminState {
        routing: Arc::clone(&routing),
        metrics: Arc::new(SlotMetrics::default()),
        token: Arc::new(AdminToken::new(TOKEN).unwrap()),
        threads: Arc::from([proxy::serve::ThreadLoad::default()]),
    });
    (app, routing)
}

fn put(body: impl Into<Body>, token: Option<&str>) -> Request<Body> {
    let mut req = Request::put("/admin/routing").header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.body(body.into()).unwrap()
}

async fn json(res: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn every_admin_route_but_health_requires_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = admin_app(dir.path());

    let res = app
        .clone()
        .oneshot(Request::get("/admin/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await, serde_json::json!({"ok": true}));

    for (method, path) in [
        ("GET", "/admin/routing"),
        ("PUT", "/admin/routing"),
        ("GET", "/admin/status"),
        ("GET", "/admin/metrics"),
        ("GET", "/admin/metrics?window_secs=30"),
        ("GET", "/admin/metrics/prometheus"),
        ("GET", "/admin/metrics/series"),
        ("GET", "/admin/drain?slot=blue"),
    ] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some(TOKEN),
            Some("Basic dGVzdA=="),
        ] {
            let mut req = Request::builder().method(method).uri(path);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let res = app
                .clone()
                .oneshot(req.body(Body::from("{}")).unwrap())
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} {auth:?}"
            );
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
        }
    }

    let res = app
        .clone()
        .oneshot(
            Request::get("/admin/routing")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        json(res).await,
        serde_json::json!({"generation": 0, "active": null})
    );

    // The console's charts: 30 points of 10 s by default; bad steps are 400.
    let get = |path: &str| {
        Request::get(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap()
    };
    let res = app
        .clone()
        .oneshot(get("/admin/metrics/series"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = json(res).await;
    assert_eq!(body["step_secs"], 10);
    assert_eq!(body["points"].as_array().unwrap().len(), 30);
    assert_eq!(body["points"][29]["ago_secs"], 0);
    assert_eq!(body["points"][29]["blue"]["requests_per_sec"], 0.0);
    for bad in [
        "/admin/metrics/series?step_secs=0",
        "/admin/metrics/series?window_secs=601",
        "/admin/metrics/series?window_secs=60&step_secs=61",
        "/admin/metrics/series?step_secs=ten",
    ] {
        let res = app.clone().oneshot(get(bad)).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn put_installs_newer_generation_and_refuses_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (app, routing) = admin_app(dir.path());

    let t1 = route(1, SlotColor::Blue, "127.0.0.1:9001");
    let res = app
        .clone()
        .oneshot(put(serde_json::to_vec(&t1).unwrap(), Some(TOKEN)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await, serde_json::to_value(&t1).unwrap());
    assert_eq!(*routing.current(), t1);

    for stale in [0, 1] {
        let t = route(stale, SlotColor::Green, "127.0.0.1:9002");
        let res = app
            .clone()
            .oneshot(put(serde_json::to_vec(&t).unwrap(), Some(TOKEN)))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let body = json(res).await;
        assert_eq!(
            body["error"],
            format!("stale generation {stale}: current generation is 1")
        );
        assert_eq!(body["current_generation"], 1);
        assert_eq!(*routing.current(), t1, "a stale PUT changes nothing");
        assert_eq!(
            StateFile::new(dir.path().join("routing.json"))
                .load(&UpstreamPolicy::loopback_only())
                .unwrap(),
            Some(t1.clone())
        );
    }

    // Clearing the route is a switch like any other.
    let cleared = RoutingTable {
        generation: 2,
        active: None,
        preview: None,
        ..RoutingTable::default()
    };
    let res = app
        .oneshot(put(serde_json::to_vec(&cleared).unwrap(), Some(TOKEN)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(*routing.current(), cleared);
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (app, routing) = admin_app(dir.path());
    for body in [
        "not json",
        "{\"generation\": 1}",
        "{\"generation\": -1, \"active\": null}",
        "{\"generation\": 1, \"active\": {\"slot\": \"purple\", \"address\": \"127.0.0.1:1\"}}",
        "{\"generation\": 1, \"active\": {\"slot\": \"blue\", \"address\": \"no-port\"}}",
        "",
    ] {
        let res = app.clone().oneshot(put(body, Some(TOKEN))).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "body {body:?}");
        let msg = json(res).await["error"].as_str().unwrap().to_string();
        assert!(
            msg.starts_with("invalid routing table")
                || msg.starts_with("active upstream \"no-port\""),
            "{msg}"
        );
    }
    assert_eq!(*routing.current(), RoutingTable::default());
    assert!(!dir.path().join("routing.json").exists());
}

/// An upstream that answers with what it received, slowly for `/slow`.
async fn start_echo(name: &'static str) -> SocketAddr {
    use axum::extract::Request;
    let app = axum::Router::new().fallback(move |req: Request| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        if req.uri().path() == "/boom" {
            return (StatusCode::INTERNAL_SERVER_ERROR, "boom".to_string());
        }
        let headers: serde_json::Map<String, serde_json::Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
            .collect();
        let method = req.method().to_string();
        let uri = req.uri().to_string();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        let echo = serde_json::json!({
            "name": name,
            "method": method,
            "uri": uri,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        (StatusCode::OK, echo.to_string())
    });
    serve_upstream(app).await
}

#[tokio::test]
async fn state_file_is_written_and_restored_by_a_new_instance() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let upstream = start_echo("blue").await;

    let first = start_proxy(dir.path()).await;
    let t = route(5, SlotColor::Blue, &upstream.to_string());
    assert_eq!(put_routing_status(&c, first.admin_addr, &t).await, 200);
    let on_disk: RoutingTable =
        serde_json::from_slice(&std::fs::read(dir.path().join("routing.json")).unwrap()).unwrap();
    assert_eq!(on_disk, t);
    first.shutdown().await;

    let second = start_proxy(dir.path()).await;
    assert_eq!(*second.routing.current(), t);
    let res = c
        .get(format!("http://{}/hello", second.listen_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-switchyard-slot"], "blue");
    // The restored generation still fences: the old one is stale.
    assert_eq!(
        put_routing_status(
            &c,
            second.admin_addr,
            &route(5, SlotColor::Green, "127.0.0.1:1")
        )
        .await,
        409
    );
    second.shutdown().await;
}

#[tokio::test]
async fn corrupt_state_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routing.json"), "{ not json").unwrap();
    let config = in_process::config(dir.path().join("routing.json"));
    let err = proxy::start(config).await.err().expect("refuses to start");
    assert!(err.to_string().contains("is corrupt"), "{err}");
}

#[tokio::test]
async fn forwards_with_forwarding_headers_and_reports_failures_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let base = format!("http://{}", proxy.listen_addr);

    let res = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.text().await.unwrap(),
        "switchyard-proxy: no active slot\n"
    );

    let green = start_echo("green").await;
    assert_eq!(
        put_routing_status(
            &c,
            proxy.admin_addr,
            &route(1, SlotColor::Green, &green.to_string())
        )
        .await,
        200
    );
    let res = c
        .post(format!("{base}/orders/42?expand=items"))
        .header("host", "shop.example")
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "secret")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-switchyard-slot"], "green");
    let echo: serde_json::Value = res.json().await.unwrap();
    assert_eq!(echo["name"], "green");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["uri"], "/orders/42?expand=items");
    assert_eq!(echo["body"], "payload");
    let h = &echo["headers"];
    assert_eq!(h["host"], "shop.example");
    assert_eq!(h["x-forwarded-host"], "shop.example");
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(
        h.get("x-hop").is_none(),
        "headers named by Connection are stripped"
    );

    // Upstream 5xx passes through and counts as an error for the slot.
    let res = c.get(format!("{base}/boom")).send().await.unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.headers()["x-switchyard-slot"], "green");

    // A slot that is gone: bind a port, then free it so nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(
        put_routing_status(
            &c,
            proxy.admin_addr,
            &route(2, SlotColor::Blue, &dead.to_string())
        )
        .await,
        200
    );
    let res = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(res.status(), 502);
    assert_eq!(
        res.text().await.unwrap(),
        format!("switchyard-proxy: slot blue at {dead} unreachable\n")
    );

    let status = admin_json(&c, proxy.admin_addr, "/admin/status").await;
    assert_eq!(status["routing"]["generation"], 2);
    assert_eq!(
        status["requests"],
        serde_json::json!({"blue": 1, "green": 2})
    );
    assert_eq!(status["errors"], serde_json::json!({"blue": 1, "green": 1}));
    assert_eq!(
        status["in_flight"],
        serde_json::json!({"blue": 0, "green": 0})
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_switch_leaves_in_flight_requests_on_their_slot_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let base = format!("http://{}", proxy.listen_addr);
    let blue = start_echo("blue").await;
    let green = start_echo("green").await;
    assert_eq!(
        put_routing_status(
            &c,
            proxy.admin_addr,
            &route(1, SlotColor::Blue, &blue.to_string())
        )
        .await,
        200
    );

    let slow = tokio::spawn({
        let c = c.clone();
        let url = format!("{base}/slow");
        async move { c.get(url).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.metrics.in_flight(SlotColor::Blue), 1);

    assert_eq!(
        put_routing_status(
            &c,
            proxy.admin_addr,
            &route(2, SlotColor::Green, &green.to_string())
        )
        .await,
        200
    );
    let res = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(res.headers()["x-switchyard-slot"], "green");

    let res = slow.await.unwrap();
    assert_eq!(res.headers()["x-switchyard-slot"], "blue");
    let echo: serde_json::Value = res.json().await.unwrap();
    assert_eq!(echo["name"], "blue");
    assert_eq!(proxy.metrics.in_flight(SlotColor::Blue), 0);
    proxy.shutdown().await;
}

/// Starts an echo server named blue and routes the proxy to it.
async fn route_to_blue_echo(c: &reqwest::Client, admin: SocketAddr) {
    let blue = start_echo("blue").await;
    let table = route(1, SlotColor::Blue, &blue.to_string());
    assert_eq!(put_routing_status(c, admin, &table).await, 200);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    route_to_blue_echo(&c, proxy.admin_addr).await;
    let slow = tokio::spawn({
        let url = format!("http://{}/slow", proxy.listen_addr);
        async move { reqwest::get(url).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.shutdown().await;
    let res = slow.await.unwrap().expect("in-flight request completes");
    assert_eq!(res.status(), 200);
}

/// On stop an idle keep-alive connection is closed at once (the stop does
/// not wait for its client to hang up), while a connection with a request
/// in flight finishes it first, on every data-plane thread.
#[tokio::test]
async fn on_stop_idle_connections_close_and_busy_ones_finish_first() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy_with(dir.path(), |config| config.extra_workers = 1).await;
    route_to_blue_echo(&c, proxy.admin_addr).await;
    // Four kept-alive connections, answered once each, then idle: spread
    // over both threads.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(proxy.listen_addr)
            .await
            .unwrap();
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: shop\r\n\r\n")
            .await
            .unwrap();
        // Read the whole answer (head, then Content-Length bytes), so
        // nothing is left unread on the connection.
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let whole = loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .expect("a sized answer")
                    .trim()
                    .parse()
                    .unwrap();
                if got.len() >= end + 4 + length {
                    break got.len() == end + 4 + length;
                }
            }
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the answer");
            got.extend_from_slice(&buf[..n]);
        };
        assert!(whole, "more than one answer");
        assert!(String::from_utf8_lossy(&got).contains("\"name\":\"blue\""));
        idle.push(s);
    }
    let slow = tokio::spawn({
        let url = format!("http://{}/slow", proxy.listen_addr);
        async move { reqwest::get(url).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The drain bound is 30 s: a stop that waited on the idle clients
    // would take that long; this one takes the slow request's time.
    tokio::time::timeout(Duration::from_secs(15), proxy.shutdown())
        .await
        .expect("the stop waited for idle connections");
    let res = slow.await.unwrap().expect("in-flight request completes");
    assert_eq!(res.status(), 200);
    for mut s in idle {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("the idle connection was left open")
            .unwrap_or(0);
        assert_eq!(n, 0, "an idle connection got {:?}", &buf[..n]);
    }
}

/// Every class of refused upstream, PUT over HTTP as `active` and as
/// `preview`: 400 naming the field and the reason, and neither the table
/// nor the state file changes.
#[tokio::test]
async fn refused_upstreams_are_400_name_the_field_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy_with(dir.path(), |config| {
        config.preview = Some("127.0.0.1:0".parse().unwrap());
        config.allow_upstream = vec!["172.17.0.0/16".parse().unwrap()];
    })
    .await;
    let public = proxy.listen_addr.to_string();
    let admin = proxy.admin_addr.to_string();
    let preview = proxy.preview_addr.unwrap().to_string();

    let installed = serde_json::json!({
        "generation": 1,
        "active": {"slot": "blue", "address": "127.0.0.1:9001"},
        "preview": {"slot": "green", "address": "172.17.0.2:8080"},
    });
    let res = put_routing(&c, proxy.admin_addr, &installed).await;
    assert_eq!(res.status(), 200, "loopback and an allowed network pass");
    let state_file = dir.path().join("routing.json");
    let on_disk = std::fs::read(&state_file).unwrap();

    let never = "are never allowed";
    let outside =
        "not on loopback and not inside any --allow-upstream network (allowed: 172.17.0.0/16)";
    let host_name = "host names are not allowed, only IP addresses (ip:port, IPv6 as [::1]:port)";
    let cases: Vec<(String, String)> = vec![
        (
            "169.254.169.254:80".into(),
            format!("link-local/metadata addresses {never}"),
        ),
        (
            "[fe80::1]:80".into(),
            format!("link-local/metadata addresses {never}"),
        ),
        (
            "[::ffff:169.254.169.254]:80".into(),
            format!("link-local/metadata addresses {never}"),
        ),
        (
            "0.0.0.0:8080".into(),
            format!("unspecified addresses (0.0.0.0, ::) {never}"),
        ),
        (
            "[::]:8080".into(),
            format!("unspecified addresses (0.0.0.0, ::) {never}"),
        ),
        (
            "224.0.0.1:80".into(),
            format!("multicast/broadcast addresses {never}"),
        ),
        (
            "255.255.255.255:80".into(),
            format!("multicast/broadcast addresses {never}"),
        ),
        (
            "[ff02::1]:80".into(),
            format!("multicast/broadcast addresses {never}"),
        ),
        ("127.0.0.1:0".into(), "port 0 is never allowed".into()),
        ("10.0.0.1:80".into(), outside.into()),
        ("192.168.1.10:80".into(), outside.into()),
        ("172.18.0.2:80".into(), outside.into()),
        ("8.8.8.8:80".into(), outside.into()),
        ("localhost:9001".into(), host_name.into()),
        ("metadata.google.internal:80".into(), host_name.into()),
        (
            "127.0.0.1".into(),
            "expected ip:port (IPv6 as [::1]:port)".into(),
        ),
        (
            "127.0.0.1:09001".into(),
            "write it as \"127.0.0.1:9001\"".into(),
        ),
        (
            public.clone(),
            format!("that is this proxy's own public listener ({public})"),
        ),
        (
            admin.clone(),
            format!("that is this proxy's own admin listener ({admin})"),
        ),
        (
            preview.clone(),
            format!("that is this proxy's own preview listener ({preview})"),
        ),
        (
            format!("[::1]:{}", proxy.admin_addr.port()),
            format!("that is this proxy's own admin listener ({admin})"),
        ),
    ];
    for (address, reason) in &cases {
        for field in ["active", "preview"] {
            let mut table = installed.clone();
            table["generation"] = 2.into();
            table[field]["address"] = address.as_str().into();
            let res = put_routing(&c, proxy.admin_addr, &table).await;
            assert_eq!(res.status(), 400, "{field} {address}");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(
                body["error"],
                format!("{field} upstream {address:?}: {reason}"),
                "{field} {address}"
            );
            let current: serde_json::Value = admin_get(&c, proxy.admin_addr, "/admin/routing")
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(current, installed, "{field} {address}: table unchanged");
            assert_eq!(
                std::fs::read(&state_file).unwrap(),
                on_disk,
                "{field} {address}"
            );
        }
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_state_file_with_a_refused_upstream_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routing.json");
    std::fs::write(
        &path,
        r#"{"generation": 3, "active": {"slot": "green", "address": "10.0.0.5:80"}}"#,
    )
    .unwrap();
    let config = |allow: &str| {
        let mut config = in_process::config(path.clone());
        config.allow_upstream = vec![allow.parse().unwrap()];
        config
    };
    let err = proxy::start(config("172.17.0.0/16"))
        .await
        .err()
        .expect("refuses to start");
    assert_eq!(
        err.to_string(),
        format!(
            "state file {} holds a routing table this proxy refuses: active upstream \"10.0.0.5:80\": \
             not on loopback and not inside any --allow-upstream network (allowed: 172.17.0.0/16); \
             fix or remove it, refusing to start",
            path.display()
        )
    );
    // The same file is fine where the operator allowed that network.
    let proxy = proxy::start(config("10.0.0.0/8")).await.expect("starts");
    assert_eq!(proxy.routing.current().generation, 3);
    proxy.shutdown().await;
}

#[tokio::test]
async fn the_console_session_cookie_never_reaches_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let app = start_cookie_echo().await;
    assert_eq!(
        put_routing_status(
            &c,
            proxy.admin_addr,
            &route(1, SlotColor::Blue, &app.to_string())
        )
        .await,
        200
    );
    let url = format!("http://{}/", proxy.listen_addr);
    let app_sees = |cookies: &[&str]| {
        let mut req = c.get(&url);
        for cookie in cookies {
            req = req.header("cookie", *cookie);
        }
        async move { req.send().await.unwrap().text().await.unwrap() }
    };

    assert_eq!(
        app_sees(&["theme=dark; switchyard_session=s3cret;cart=\"a b\""]).await,
        "theme=dark;cart=\"a b\""
    );
    assert_eq!(
        app_sees(&["__Host-switchyard_session=s3cret; theme=dark"]).await,
        "theme=dark"
    );
    assert_eq!(app_sees(&["switchyard_session=s3cret"]).await, "(none)");
    assert_eq!(
        app_sees(&["switchyard_session=a; __Host-switchyard_session=b"]).await,
        "(none)"
    );
    // Two Cookie headers (HTTP/2 clients split them): each is cleaned, and
    // the one left empty is dropped.
    assert_eq!(
        app_sees(&[
            "a=1; switchyard_session=s3cret",
            "switchyard_session=s3cret"
        ])
        .await,
        "a=1"
    );
    // Untouched when no console cookie is there, look-alikes included.
    for untouched in [
        "a=1;b=2 ;  c=3",
        "my_switchyard_session=1; switchyard_slot=blue",
        "note=switchyard_session",
    ] {
        assert_eq!(app_sees(&[untouched]).await, untouched);
    }
    assert_eq!(app_sees(&[]).await, "(none)");
    proxy.shutdown().await;
}

#[tokio::test]
async fn cookie_names_to_strip_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy_with(dir.path(), |config| {
        config.forward.console_cookies =
            proxy::console_cookies::ConsoleCookies::new(["console_sid"]).unwrap();
    })
    .await;
    let app = start_cookie_echo().await;
    assert_eq!(
        put_routing_status(
            &c,
            proxy.admin_addr,
            &route(1, SlotColor::Blue, &app.to_string())
        )
        .await,
        200
    );
    let res = c
        .get(format!("http://{}/", proxy.listen_addr))
        .header("cookie", "console_sid=x; switchyard_session=y")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "switchyard_session=y");
    proxy.shutdown().await;
}

/// A kept-alive client's requests ride one upstream connection, reused
/// (no handshake per request, bodiless answers included); after a switch
/// its very next request goes to the new slot and the connection to the
/// old one is closed.
#[tokio::test]
async fn a_client_keeps_its_upstream_connection_until_a_switch() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy(dir.path()).await;
    let (blue, blue_conns) = start_counting("blue").await;
    let (green, green_conns) = start_counting("green").await;
    let admin = reqwest::Client::new();
    assert_eq!(
        put_routing_status(
            &admin,
            proxy.admin_addr,
            &route(1, SlotColor::Blue, &blue.to_string())
        )
        .await,
        200
    );
    // One client, one kept-alive connection to the proxy.
    let user = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let url = |path: &str| format!("http://{}{path}", proxy.listen_addr);
    for i in 0..30 {
        let path = match i % 3 {
            0 => "/",
            1 => "/empty",
            _ => "/head",
        };
        let res = if path == "/head" {
            user.head(url(path)).send().await.unwrap()
        } else {
            user.get(url(path)).send().await.unwrap()
        };
        assert!(res.status().is_success(), "{path}: {}", res.status());
        let body = res.text().await.unwrap();
        if path == "/" {
            assert_eq!(body, "blue");
        }
    }
    assert_eq!(
        blue_conns.accepted.load(Ordering::SeqCst),
        1,
        "30 requests of one kept-alive client, one upstream connection"
    );

    assert_eq!(
        put_routing_status(
            &admin,
            proxy.admin_addr,
            &route(2, SlotColor::Green, &green.to_string())
        )
        .await,
        200
    );
    assert_eq!(
        user.get(url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "green"
    );
    assert_eq!(green_conns.accepted.load(Ordering::SeqCst), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while blue_conns.open.load(Ordering::SeqCst) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle connection to the old slot stays open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing is left counted in flight on either slot.
    let drain = admin_get(&admin, proxy.admin_addr, "/admin/drain?slot=blue").await;
    let drain: serde_json::Value = drain.json().await.unwrap();
    assert_eq!(drain["in_flight"], 0, "{drain}");
    proxy.shutdown().await;
}

/// Waits until `counter` is 0, at most `within`; how long it took.
async fn until_zero(
    counter: &std::sync::atomic::AtomicUsize,
    within: Duration,
    what: &str,
) -> Duration {
    let t = std::time::Instant::now();
    while counter.load(Ordering::SeqCst) > 0 {
        assert!(t.elapsed() < within, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

/// A named route `name` for `host` to `address`, generation 1.
async fn put_named_route(
    admin: &reqwest::Client,
    proxy: &proxy::RunningProxy,
    name: &str,
    address: SocketAddr,
) {
    let res = admin
        .put(format!("http://{}/admin/routes/{name}", proxy.admin_addr))
        .bearer_auth(support::TOKEN)
        .json(&serde_json::json!({
            "hosts": [format!("{name}.test")],
            "table": route(1, SlotColor::Blue, &address.to_string()),
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
}

/// A client of its own: its own connection to the proxy.
fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

/// `GET path` with `Host: host` through the proxy: the body.
async fn ask(user: &reqwest::Client, proxy: SocketAddr, host: &str, path: &str) -> String {
    let res = user
        .get(format!("http://{proxy}{path}"))
        .header("host", host)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{host}{path}: {}", res.status());
    res.text().await.unwrap()
}

/// Idle upstream connections are shared by the client connections of a
/// data-plane thread (one here): 20 clients one after the other, each on a
/// connection of its own and asking two environments in turn, cost one
/// upstream connection per environment; clients at once cost at most one
/// per request in flight, reused afterwards. Switching one environment
/// closes the connections to its old slot only.
#[tokio::test]
async fn clients_share_upstream_connections_bounded_by_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy(dir.path()).await;
    let (shop, shop_conns) = start_counting("shop").await;
    let (blog, blog_conns) = start_counting("blog").await;
    let (shop_v2, shop_v2_conns) = start_counting("shop-v2").await;
    let admin = reqwest::Client::new();
    put_named_route(&admin, &proxy, "shop", shop).await;
    put_named_route(&admin, &proxy, "blog", blog).await;
    let at = proxy.listen_addr;

    for _ in 0..20 {
        let user = new_client();
        assert_eq!(ask(&user, at, "shop.test", "/").await, "shop");
        assert_eq!(ask(&user, at, "blog.test", "/").await, "blog");
        assert_eq!(ask(&user, at, "shop.test", "/empty").await, "");
    }
    assert_eq!(
        shop_conns.accepted.load(Ordering::SeqCst),
        1,
        "20 clients one after the other: one connection to shop"
    );
    assert_eq!(
        blog_conns.accepted.load(Ordering::SeqCst),
        1,
        "20 clients one after the other: one connection to blog"
    );

    // Eight clients at once, three slow requests each.
    let burst: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async move {
                let user = new_client();
                for _ in 0..3 {
                    assert_eq!(ask(&user, at, "shop.test", "/slow").await, "shop");
                }
            })
        })
        .collect();
    for client in burst {
        client.await.unwrap();
    }
    let after_burst = shop_conns.accepted.load(Ordering::SeqCst);
    assert!(
        (2..=8).contains(&after_burst),
        "8 requests in flight at once, {after_burst} connections to shop"
    );
    for _ in 0..10 {
        assert_eq!(ask(&new_client(), at, "shop.test", "/").await, "shop");
    }
    assert_eq!(
        shop_conns.accepted.load(Ordering::SeqCst),
        after_burst,
        "the burst's connections are reused"
    );
    assert_eq!(blog_conns.accepted.load(Ordering::SeqCst), 1);

    // Shop switches: its next request goes to the new slot, blog keeps its
    // connection, and the idle ones to shop's old slot are closed.
    let res = admin
        .put(format!(
            "http://{}/admin/routes/shop/routing",
            proxy.admin_addr
        ))
        .bearer_auth(support::TOKEN)
        .json(&route(2, SlotColor::Green, &shop_v2.to_string()))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let user = new_client();
    assert_eq!(ask(&user, at, "shop.test", "/").await, "shop-v2");
    assert_eq!(ask(&user, at, "blog.test", "/").await, "blog");
    assert_eq!(shop_v2_conns.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(
        blog_conns.accepted.load(Ordering::SeqCst),
        1,
        "blog's connection kept"
    );
    until_zero(
        &shop_conns.open,
        Duration::from_secs(5),
        "idle connections to shop's old slot stay open",
    )
    .await;
    assert_eq!(blog_conns.open.load(Ordering::SeqCst), 1);
    assert_eq!(
        shop_conns.accepted.load(Ordering::SeqCst),
        after_burst,
        "nothing reached shop's old slot after the switch"
    );
    proxy.shutdown().await;
}

/// A switch closes the idle connections to the old slot within a sweep
/// (1 s with the default 4 s idle timeout) even when no request comes
/// after it, long before the idle timeout would.
#[tokio::test]
async fn a_switch_closes_idle_connections_to_the_old_slot_without_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy(dir.path()).await;
    let (blue, blue_conns) = start_counting("blue").await;
    let (green, green_conns) = start_counting("green").await;
    let admin = reqwest::Client::new();
    let table = route(1, SlotColor::Blue, &blue.to_string());
    assert_eq!(
        put_routing_status(&admin, proxy.admin_addr, &table).await,
        200
    );
    let at = proxy.listen_addr;
    assert_eq!(ask(&new_client(), at, "app.test", "/").await, "blue");
    let used = std::time::Instant::now();
    assert_eq!(blue_conns.open.load(Ordering::SeqCst), 1);

    let table = route(2, SlotColor::Green, &green.to_string());
    assert_eq!(
        put_routing_status(&admin, proxy.admin_addr, &table).await,
        200
    );
    until_zero(
        &blue_conns.open,
        Duration::from_secs(3),
        "the idle connection to the old slot stays open",
    )
    .await;
    assert!(
        used.elapsed() < Duration::from_secs(3),
        "closed by the switch, not by the idle timeout"
    );
    assert_eq!(green_conns.accepted.load(Ordering::SeqCst), 0);
    proxy.shutdown().await;
}

/// An idle upstream connection is closed after the idle timeout (between
/// ¾ of it and all of it), and the next request opens a new one.
#[tokio::test]
async fn idle_upstream_connections_are_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy_with(dir.path(), |config| {
        config.forward.upstream_idle_timeout = Duration::from_millis(400);
    })
    .await;
    let (blue, blue_conns) = start_counting("blue").await;
    let admin = reqwest::Client::new();
    let table = route(1, SlotColor::Blue, &blue.to_string());
    assert_eq!(
        put_routing_status(&admin, proxy.admin_addr, &table).await,
        200
    );
    let at = proxy.listen_addr;
    let user = new_client();
    assert_eq!(ask(&user, at, "app.test", "/").await, "blue");
    let used = std::time::Instant::now();
    until_zero(
        &blue_conns.open,
        Duration::from_secs(3),
        "the idle connection outlives the idle timeout",
    )
    .await;
    assert!(
        used.elapsed() >= Duration::from_millis(300),
        "{:?}",
        used.elapsed()
    );
    assert_eq!(ask(&user, at, "app.test", "/").await, "blue");
    assert_eq!(blue_conns.accepted.load(Ordering::SeqCst), 2);
    proxy.shutdown().await;
}

/// A slot that takes the request and never answers: the user gets a 504
/// naming the slot once the response-header timeout passes (not before),
/// counted as the slot's error, and nothing stays in flight.
#[tokio::test]
async fn a_slot_that_never_answers_is_a_504_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy_with(dir.path(), |config| {
        config.forward.response_header_timeout = Duration::from_millis(500);
    })
    .await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut kept = Vec::new();
        loop {
            let (mut stream, _) = silent.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut request).await;
            kept.push(stream);
        }
    });
    let c = reqwest::Client::new();
    let table = route(1, SlotColor::Blue, &address.to_string());
    assert_eq!(put_routing_status(&c, proxy.admin_addr, &table).await, 200);

    let asked = std::time::Instant::now();
    let res = c
        .get(format!("http://{}/", proxy.listen_addr))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the proxy answers within the client's 10 s");
    let waited = asked.elapsed();
    assert_eq!(res.status(), 504);
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(
        res.text().await.unwrap(),
        format!("switchyard-proxy: slot blue at {address} did not answer within 500ms\n")
    );
    let status = admin_json(&c, proxy.admin_addr, "/admin/status").await;
    assert_eq!(status["errors"]["blue"], 1);
    assert_eq!(status["in_flight"]["blue"], 0);
    held.abort();
    proxy.shutdown().await;
}

/// A slot that answers `name` on `listener` until its task is aborted,
/// which closes every connection it has (a stopping process).
fn serve_until_aborted(
    listener: tokio::net::TcpListener,
    name: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            connections.spawn(async move {
                let service = hyper::service::service_fn(|_req| async move {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(name.as_bytes())),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// A slot restarted on the same address: the idle connections to the old
/// process are dead, and the next requests reach the new one on a new
/// connection, none failing.
#[tokio::test]
async fn a_restarted_slot_is_reached_on_a_new_connection() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy(dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let old = serve_until_aborted(listener, "v1");
    let admin = reqwest::Client::new();
    let table = route(1, SlotColor::Blue, &addr.to_string());
    assert_eq!(
        put_routing_status(&admin, proxy.admin_addr, &table).await,
        200
    );
    let at = proxy.listen_addr;
    let user = new_client();
    assert_eq!(ask(&user, at, "app.test", "/").await, "v1");

    old.abort();
    let _ = old.await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let new = serve_until_aborted(listener, "v2");
    for _ in 0..5 {
        assert_eq!(ask(&user, at, "app.test", "/").await, "v2");
    }
    new.abort();
    proxy.shutdown().await;
}

/// An HTTP/2 client's requests in flight together each ride an upstream
/// connection of their own (HTTP/1.1 to the slot), and those connections
/// are reused by its next requests.
#[tokio::test]
async fn http2_requests_in_flight_together_each_get_a_connection() {
    use http_body_util::BodyExt;
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy(dir.path()).await;
    let (blue, blue_conns) = start_counting("blue").await;
    let admin = reqwest::Client::new();
    let table = route(1, SlotColor::Blue, &blue.to_string());
    assert_eq!(
        put_routing_status(&admin, proxy.admin_addr, &table).await,
        200
    );
    let stream = tokio::net::TcpStream::connect(proxy.listen_addr)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for round in 0..2 {
        let requests: Vec<_> = (0..4)
            .map(|_| {
                let mut sender = sender.clone();
                tokio::spawn(async move {
                    let req = hyper::Request::get("http://app.test/slow")
                        .body(http_body_util::Empty::<bytes::Bytes>::new())
                        .unwrap();
                    let res = sender.send_request(req).await.unwrap();
                    assert_eq!(res.status(), 200);
                    res.into_body().collect().await.unwrap().to_bytes()
                })
            })
            .collect();
        for request in requests {
            assert_eq!(request.await.unwrap(), "blue");
        }
        assert_eq!(
            blue_conns.accepted.load(Ordering::SeqCst),
            4,
            "round {round}: four requests in flight, four connections"
        );
    }
    proxy.shutdown().await;
}

/// `method path` on the admin API over its unix socket, with `token`:
/// status and body.
async fn over_socket(
    socket: &Path,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    use http_body_util::BodyExt;
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "proxy")
        .header("content-type", "application/json");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The admin API on a unix socket: mode 0600, the same routes and the same
/// token as on TCP, a switch through it reaches users; a second proxy on a
/// socket the first still answers on refuses to start, and a socket file
/// left behind by a dead one is replaced.
#[tokio::test]
async fn the_admin_api_answers_on_a_private_unix_socket() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let proxy = start_proxy_with(dir.path(), |c| c.admin_socket = Some(socket.clone())).await;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only its owner may connect");

    let (status, _) = over_socket(&socket, "GET", "/admin/routing", None, "").await;
    assert_eq!(status, 401, "the token is still required");
    let upstream = start_echo("over-the-socket").await;
    let table = serde_json::to_string(&route(1, SlotColor::Blue, &upstream.to_string())).unwrap();
    let (status, body) = over_socket(&socket, "PUT", "/admin/routing", Some(TOKEN), &table).await;
    assert_eq!(status, 200, "{body}");
    let users = reqwest::get(format!("http://{}/", proxy.listen_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(users.contains("over-the-socket"), "{users}");
    // The TCP admin API sees the same table.
    let tcp = admin_get(&reqwest::Client::new(), proxy.admin_addr, "/admin/routing").await;
    assert_eq!(
        tcp.json::<serde_json::Value>().await.unwrap()["generation"],
        1
    );
    // Named routes too, with the same token.
    let named = serde_json::json!({"hosts": ["shop.test"], "table": route(1, SlotColor::Green, &upstream.to_string())});
    let (status, _) = over_socket(
        &socket,
        "PUT",
        "/admin/routes/shop",
        None,
        &named.to_string(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = over_socket(
        &socket,
        "PUT",
        "/admin/routes/shop",
        Some(TOKEN),
        &named.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = over_socket(&socket, "GET", "/admin/routes", Some(TOKEN), "").await;
    assert_eq!(status, 200);
    assert!(body.contains("shop.test"), "{body}");
    let res = reqwest::Client::new()
        .get(format!("http://{}/", proxy.listen_addr))
        .header("host", "shop.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-switchyard-slot"], "green");

    let mut second = in_process::config(dir.path().join("other.json"));
    second.admin_socket = Some(socket.clone());
    let second = proxy::start(second).await;
    match second {
        Err(err) => assert!(
            err.to_string()
                .contains("another switchyard-proxy answers there"),
            "{err}"
        ),
        Ok(_) => panic!("a second proxy took a live admin socket"),
    }
    proxy.shutdown().await;

    // The first one is gone; its socket file stays behind and is replaced.
    assert!(socket.exists());
    let again = start_proxy_with(dir.path(), |c| c.admin_socket = Some(socket.clone())).await;
    let (status, body) = over_socket(&socket, "GET", "/admin/routing", Some(TOKEN), "").await;
    assert_eq!(status, 200, "{body}");
    again.shutdown().await;
}
