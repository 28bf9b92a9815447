//! The proxy started in-process: admin API contract and data-plane behaviour.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use model::{RoutingTable, SlotColor, Upstream};
use proxy::admin::{self, AdminState};
use proxy::metrics::SlotMetrics;
use proxy::routing::Routing;
use proxy::state_file::StateFile;
use proxy::token::AdminToken;
use proxy::{ProxyConfig, RunningProxy};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const TOKEN: &str = "test-token-123";

fn table(generation: u64, slot: SlotColor, address: &str) -> RoutingTable {
    RoutingTable {
        generation,
        active: Some(Upstream {
            slot,
            address: address.to_string(),
        }),
        preview: None,
    }
}

fn admin_app(dir: &Path) -> (axum::Router, Arc<Routing>) {
    let routing = Arc::new(Routing::new(
        RoutingTable::default(),
        StateFile::new(dir.join("routing.json")),
    ));
    let app = admin::app(AdminState {
        routing: Arc::clone(&routing),
        metrics: Arc::new(SlotMetrics::default()),
        token: Arc::new(AdminToken::new(TOKEN).unwrap()),
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

    let t1 = table(1, SlotColor::Blue, "127.0.0.1:9001");
    let res = app
        .clone()
        .oneshot(put(serde_json::to_vec(&t1).unwrap(), Some(TOKEN)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await, serde_json::to_value(&t1).unwrap());
    assert_eq!(*routing.current(), t1);

    for stale in [0, 1] {
        let t = table(stale, SlotColor::Green, "127.0.0.1:9002");
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
                .load()
                .unwrap(),
            Some(t1.clone().into())
        );
    }

    // Clearing the route is a switch like any other.
    let cleared = RoutingTable {
        generation: 2,
        active: None,
        preview: None,
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
            msg.starts_with("invalid routing table") || msg.starts_with("invalid upstream address"),
            "{msg}"
        );
    }
    assert_eq!(*routing.current(), RoutingTable::default());
    assert!(!dir.path().join("routing.json").exists());
}

async fn start_proxy(dir: &Path) -> RunningProxy {
    let mut config = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        dir.join("routing.json"),
        AdminToken::new(TOKEN).unwrap(),
    );
    config.drain_timeout = Duration::from_secs(5);
    proxy::start(config).await.expect("proxy starts")
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn switch(
    c: &reqwest::Client,
    proxy: &RunningProxy,
    t: &RoutingTable,
) -> reqwest::StatusCode {
    c.put(format!("http://{}/admin/routing", proxy.admin_addr))
        .bearer_auth(TOKEN)
        .json(t)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn state_file_is_written_and_restored_by_a_new_instance() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let upstream = start_echo("blue").await;

    let first = start_proxy(dir.path()).await;
    let t = table(5, SlotColor::Blue, &upstream.to_string());
    assert_eq!(switch(&c, &first, &t).await, 200);
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
        switch(&c, &second, &table(5, SlotColor::Green, "127.0.0.1:1")).await,
        409
    );
    second.shutdown().await;
}

#[tokio::test]
async fn corrupt_state_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routing.json"), "{ not json").unwrap();
    let config = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("routing.json"),
        AdminToken::new(TOKEN).unwrap(),
    );
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
        switch(&c, &proxy, &table(1, SlotColor::Green, &green.to_string())).await,
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
        switch(&c, &proxy, &table(2, SlotColor::Blue, &dead.to_string())).await,
        200
    );
    let res = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(res.status(), 502);
    assert_eq!(
        res.text().await.unwrap(),
        format!("switchyard-proxy: slot blue at {dead} unreachable\n")
    );

    let status: serde_json::Value = c
        .get(format!("http://{}/admin/status", proxy.admin_addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
        switch(&c, &proxy, &table(1, SlotColor::Blue, &blue.to_string())).await,
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
        switch(&c, &proxy, &table(2, SlotColor::Green, &green.to_string())).await,
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

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let blue = start_echo("blue").await;
    assert_eq!(
        switch(&c, &proxy, &table(1, SlotColor::Blue, &blue.to_string())).await,
        200
    );
    let slow = tokio::spawn({
        let url = format!("http://{}/slow", proxy.listen_addr);
        async move { reqwest::get(url).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.shutdown().await;
    let res = slow.await.unwrap().expect("in-flight request completes");
    assert_eq!(res.status(), 200);
}
