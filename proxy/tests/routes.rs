//! Named routes: many environments behind one proxy, told apart by Host
//! (and path prefix), on real sockets with real upstreams in-process.

mod support;

use proxy::RunningProxy;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::in_process::start_proxy;
use support::{admin_get, put_routing_status, serve_upstream, start_counting, TOKEN};

/// `{generation, active: {slot, address}}`.
fn table(generation: u64, slot: &str, address: SocketAddr) -> Value {
    json!({"generation": generation, "active": {"slot": slot, "address": address.to_string()}})
}

/// `method path` on the admin API with the token and a JSON body.
async fn admin(
    c: &reqwest::Client,
    proxy: &RunningProxy,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = c
        .request(method, format!("http://{}{path}", proxy.admin_addr))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        req = req.json(body);
    }
    let res = req.send().await.expect("admin API answers");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn put_route(
    c: &reqwest::Client,
    proxy: &RunningProxy,
    name: &str,
    body: Value,
) -> (u16, Value) {
    let path = format!("/admin/routes/{name}");
    admin(c, proxy, reqwest::Method::PUT, &path, Some(&body)).await
}

async fn get_json(c: &reqwest::Client, proxy: &RunningProxy, path: &str) -> Value {
    let res = admin_get(c, proxy.admin_addr, path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

/// (status, body) of `GET path` through the proxy with this Host.
async fn send(c: &reqwest::Client, proxy: &RunningProxy, host: &str, path: &str) -> (u16, String) {
    let res = c
        .get(format!("http://{}{path}", proxy.listen_addr))
        .header("host", host)
        .send()
        .await
        .expect("proxy answers");
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Answers `<name>`, `/slow` after 800 ms.
async fn start_named(name: &'static str) -> SocketAddr {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| async move {
        if uri.path() == "/slow" {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        name
    });
    serve_upstream(app).await
}

#[tokio::test]
async fn host_and_path_pick_the_environment_and_unclaimed_hosts_touch_no_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let (shop, shop_conns) = start_counting("shop").await;
    let (api, api_conns) = start_counting("shop-api").await;
    let (eu, eu_conns) = start_counting("eu").await;
    let (any, any_conns) = start_counting("any").await;
    let default = start_named("default").await;

    for (name, body) in [
        (
            "shop",
            json!({"hosts": ["shop.test"], "table": table(1, "blue", shop)}),
        ),
        (
            "shop-api",
            json!({"hosts": ["shop.test"], "path_prefix": "/api", "table": table(1, "blue", api)}),
        ),
        (
            "eu",
            json!({"hosts": ["*.eu.test"], "table": table(1, "green", eu)}),
        ),
        (
            "any",
            json!({"hosts": ["*.test"], "table": table(1, "blue", any)}),
        ),
    ] {
        let (status, answer) = put_route(&c, &proxy, name, body).await;
        assert_eq!(status, 201, "{name}: {answer}");
        assert_eq!(answer["name"], name);
    }

    for (host, path, expected) in [
        ("shop.test", "/", "shop"),
        ("SHOP.Test:8080", "/cart", "shop"),
        ("shop.test.", "/", "shop"),
        ("shop.test", "/api", "shop-api"),
        ("shop.test", "/api/orders?x=1", "shop-api"),
        ("shop.test", "/apix", "shop"),
        ("a.eu.test", "/", "eu"),
        ("a.b.eu.test", "/api", "eu"),
        ("eu.test", "/", "any"),
        ("cart.test", "/", "any"),
    ] {
        assert_eq!(
            send(&c, &proxy, host, path).await,
            (200, expected.to_string()),
            "{host}{path}"
        );
    }

    // No route claims these and the default table was never set: 404, and
    // no upstream hears of it. A fresh client each time, so a request sent
    // anywhere would have to open a new upstream connection.
    let accepted = || {
        [&shop_conns, &api_conns, &eu_conns, &any_conns]
            .iter()
            .map(|c| c.accepted.load(Ordering::SeqCst))
            .sum::<usize>()
    };
    let before = accepted();
    for host in ["shop.example", "test", "localhost", "[::1]:80"] {
        let fresh = reqwest::Client::new();
        let (status, body) = send(&fresh, &proxy, host, "/").await;
        assert_eq!(status, 404, "{host}");
        assert_eq!(body, "switchyard-proxy: no environment serves this host\n");
    }
    assert_eq!(accepted(), before, "an unclaimed host reached an upstream");
    let status = get_json(&c, &proxy, "/admin/status").await;
    assert_eq!(status["requests"], json!({"blue": 0, "green": 0}));

    // Once the default table is set, it serves every host no route claims.
    assert_eq!(
        put_routing_status(&c, proxy.admin_addr, &table(1, "blue", default)).await,
        200
    );
    assert_eq!(
        send(&c, &proxy, "shop.example", "/").await,
        (200, "default".into())
    );
    assert_eq!(
        send(&c, &proxy, "shop.test", "/").await,
        (200, "shop".into())
    );

    // A removed route's hosts fall to the next pattern that claims them.
    let (status, removed) = admin(
        &c,
        &proxy,
        reqwest::Method::DELETE,
        "/admin/routes/eu",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(removed["hosts"], json!(["*.eu.test"]));
    assert_eq!(
        send(&c, &proxy, "a.eu.test", "/").await,
        (200, "any".into())
    );
    let (status, _) = admin(
        &c,
        &proxy,
        reqwest::Method::DELETE,
        "/admin/routes/any",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        send(&c, &proxy, "a.eu.test", "/").await,
        (200, "default".into())
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn the_routes_admin_api_validates_fences_and_names_what_is_wrong() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let blue = start_named("blue").await;
    let green = start_named("green").await;

    // The token guards every new route.
    for (method, path) in [
        (Method::GET, "/admin/routes"),
        (Method::GET, "/admin/routes/a"),
        (Method::PUT, "/admin/routes/a"),
        (Method::DELETE, "/admin/routes/a"),
        (Method::GET, "/admin/routes/a/routing"),
        (Method::PUT, "/admin/routes/a/routing"),
        (Method::GET, "/admin/routes/a/drain?slot=blue"),
        (Method::GET, "/admin/routes/a/metrics"),
    ] {
        for token in [None, Some("wrong")] {
            let mut req = c.request(method.clone(), format!("http://{}{path}", proxy.admin_addr));
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            let res = req.body("{}").send().await.unwrap();
            assert_eq!(res.status(), 401, "{method} {path}");
        }
    }

    let (status, body) = put_route(&c, &proxy, "a", json!({"hosts": ["a.test"]})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({"name": "a", "hosts": ["a.test"], "table": {"generation": 0, "active": null}})
    );
    // Created without a table: the environment exists, no slot yet.
    assert_eq!(send(&c, &proxy, "a.test", "/").await.0, 503);
    let state_file = dir.path().join("routing.json");
    let on_disk = std::fs::read(&state_file).unwrap();

    let refused: Vec<(&str, Value, u16, &str)> = vec![
        (
            "Bad",
            json!({"hosts": ["x.test"]}),
            400,
            r#"name "Bad": use 1 to 63 of a-z, 0-9 and `-`"#,
        ),
        (
            "b",
            json!({"hosts": []}),
            400,
            "hosts: a route needs at least one host",
        ),
        (
            "b",
            json!({"hosts": ["x.test", "X.test"]}),
            400,
            r#"hosts[1] "X.test": must be lowercase"#,
        ),
        (
            "b",
            json!({"hosts": ["x.test:80"]}),
            400,
            r#"hosts[0] "x.test:80": must not carry a port (the port in a request's Host is ignored)"#,
        ),
        (
            "b",
            json!({"hosts": ["a.*.test"]}),
            400,
            r#"hosts[0] "a.*.test": a wildcard is only allowed as the whole first label (`*.example.com`)"#,
        ),
        (
            "b",
            json!({"hosts": ["x.test"], "path_prefix": "api"}),
            400,
            r#"path_prefix "api": must start with `/`"#,
        ),
        (
            "b",
            json!({"hosts": ["x.test"], "path_prefix": "/api/"}),
            400,
            r#"path_prefix "/api/": must not end with `/` (`/api` matches `/api` and `/api/…`)"#,
        ),
        (
            "b",
            json!({"hots": ["x.test"]}),
            400,
            "invalid route: unknown field `hots`",
        ),
        (
            "b",
            json!({"hosts": "x.test"}),
            400,
            "invalid route: invalid type: string",
        ),
        (
            "b",
            json!({"hosts": ["x.test"], "table": {"generation": 1}}),
            400,
            "invalid route: field `table.active` is required (use null to clear the route)",
        ),
        (
            "b",
            json!({"hosts": ["x.test"], "table": {"generation": 1, "active": {"slot": "blue", "address": "169.254.169.254:80"}}}),
            400,
            r#"table: active upstream "169.254.169.254:80": link-local/metadata addresses are never allowed"#,
        ),
        (
            "b",
            json!({"hosts": ["y.test", "a.test"]}),
            409,
            r#"hosts[1] "a.test" with no path prefix is already routed by route "a""#,
        ),
        (
            "a",
            json!({"hosts": ["a.test"], "table": {"generation": 0, "active": null}}),
            409,
            "stale generation 0: current generation is 0",
        ),
    ];
    for (name, body, want_status, want_error) in &refused {
        let (status, answer) = put_route(&c, &proxy, name, body.clone()).await;
        assert_eq!(status, *want_status, "{name} {body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(want_error), "{name} {body}: {error}");
        assert_eq!(
            std::fs::read(&state_file).unwrap(),
            on_disk,
            "{body}: nothing written"
        );
    }
    let (status, answer) = admin(&c, &proxy, Method::PUT, "/admin/routes/b", None).await;
    assert_eq!(status, 400, "no body: {answer}");
    let list = get_json(&c, &proxy, "/admin/routes").await;
    assert_eq!(list["routes"].as_array().unwrap().len(), 1, "{list}");

    // Fencing per route, exactly as /admin/routing: newer generations only.
    let (status, _) = put_route(
        &c,
        &proxy,
        "a",
        json!({"hosts": ["a.test"], "table": table(3, "blue", blue)}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, answer) = put_route(
        &c,
        &proxy,
        "a",
        json!({"hosts": ["a.test"], "table": table(3, "green", green)}),
    )
    .await;
    assert_eq!(
        (status, answer["current_generation"].clone()),
        (409, json!(3)),
        "{answer}"
    );
    // Hosts alone change without touching the table.
    let (status, answer) = put_route(
        &c,
        &proxy,
        "a",
        json!({"hosts": ["a.test", "*.a.test"], "path_prefix": "/"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["table"]["generation"], 3);
    assert_eq!(answer["path_prefix"], "/");
    assert_eq!(
        send(&c, &proxy, "x.a.test", "/").await,
        (200, "blue".into())
    );
    // The route's own /routing mirrors /admin/routing.
    let (status, answer) = admin(
        &c,
        &proxy,
        Method::PUT,
        "/admin/routes/a/routing",
        Some(&table(2, "green", green)),
    )
    .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (409, json!("stale generation 2: current generation is 3"))
    );
    let (status, answer) = admin(
        &c,
        &proxy,
        Method::PUT,
        "/admin/routes/a/routing",
        Some(&table(4, "green", green)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, table(4, "green", green));
    assert_eq!(
        get_json(&c, &proxy, "/admin/routes/a/routing").await,
        table(4, "green", green)
    );
    assert_eq!(send(&c, &proxy, "a.test", "/").await, (200, "green".into()));
    let got = get_json(&c, &proxy, "/admin/routes/a").await;
    assert_eq!(got["hosts"], json!(["a.test", "*.a.test"]));
    // The default table is untouched by all of it.
    assert_eq!(
        get_json(&c, &proxy, "/admin/routing").await,
        json!({"generation": 0, "active": null})
    );

    // Unknown routes are 404 everywhere.
    for (method, path, body) in [
        (Method::GET, "/admin/routes/nope", None),
        (Method::DELETE, "/admin/routes/nope", None),
        (Method::GET, "/admin/routes/nope/routing", None),
        (
            Method::PUT,
            "/admin/routes/nope/routing",
            Some(table(1, "blue", blue)),
        ),
        (Method::GET, "/admin/routes/nope/drain?slot=blue", None),
        (Method::GET, "/admin/routes/nope/metrics", None),
    ] {
        let (status, answer) = admin(&c, &proxy, method.clone(), path, body.as_ref()).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(answer["error"], r#"no route named "nope""#);
    }
    let (status, _) = admin(&c, &proxy, Method::DELETE, "/admin/routes/a", None).await;
    assert_eq!(status, 200);
    let (status, _) = admin(&c, &proxy, Method::GET, "/admin/routes/a", None).await;
    assert_eq!(status, 404);
    assert_eq!(
        get_json(&c, &proxy, "/admin/routes").await,
        json!({"routes": []})
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn routes_come_back_from_the_state_file_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let shop = start_named("shop").await;
    let docs = start_named("docs").await;
    let default = start_named("default").await;

    let first = start_proxy(dir.path()).await;
    assert_eq!(
        put_routing_status(&c, first.admin_addr, &table(2, "blue", default)).await,
        200
    );
    let (status, _) = put_route(
        &c,
        &first,
        "shop",
        json!({"hosts": ["shop.test", "*.shop.test"], "table": table(5, "green", shop)}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = put_route(
        &c,
        &first,
        "docs",
        json!({"hosts": ["shop.test"], "path_prefix": "/docs", "table": table(1, "blue", docs)}),
    )
    .await;
    assert_eq!(status, 201);
    let routes = get_json(&c, &first, "/admin/routes").await;
    first.shutdown().await;

    let second = start_proxy(dir.path()).await;
    assert_eq!(get_json(&c, &second, "/admin/routes").await, routes);
    assert_eq!(second.routing.current().generation, 2);
    assert_eq!(
        send(&c, &second, "www.shop.test", "/").await,
        (200, "shop".into())
    );
    assert_eq!(
        send(&c, &second, "shop.test", "/docs/a").await,
        (200, "docs".into())
    );
    assert_eq!(
        send(&c, &second, "elsewhere", "/").await,
        (200, "default".into())
    );
    // Each route's generation still fences after the restart.
    let (status, _) = put_route(
        &c,
        &second,
        "shop",
        json!({"hosts": ["shop.test"], "table": table(5, "blue", shop)}),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = put_route(
        &c,
        &second,
        "shop",
        json!({"hosts": ["shop.test"], "table": table(6, "blue", shop)}),
    )
    .await;
    assert_eq!(status, 200);
    second.shutdown().await;

    // The latest change is what the next start finds.
    let third = start_proxy(dir.path()).await;
    assert_eq!(
        get_json(&c, &third, "/admin/routes/shop/routing").await,
        table(6, "blue", shop)
    );
    assert_eq!(
        send(&c, &third, "www.shop.test", "/").await,
        (200, "default".into()),
        "the PUT dropped *.shop.test, and the restart knows"
    );
    third.shutdown().await;
}

/// Each route's requests are counted in its metrics only, exactly: JSON per
/// route, the default table's views untouched, Prometheus series labelled
/// by environment beside the unlabelled default ones, drain per route.
#[tokio::test]
async fn metrics_and_drain_are_per_environment_and_exact() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let a = start_named("a").await;
    let b = start_named("b").await;
    let default = start_named("default").await;
    assert_eq!(
        put_routing_status(&c, proxy.admin_addr, &table(1, "blue", default)).await,
        200
    );
    let (status, _) = put_route(
        &c,
        &proxy,
        "env-a",
        json!({"hosts": ["a.test"], "table": table(1, "blue", a)}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = put_route(
        &c,
        &proxy,
        "env-b",
        json!({"hosts": ["b.test"], "table": table(1, "green", b)}),
    )
    .await;
    assert_eq!(status, 201);

    for (host, n) in [("a.test", 7), ("b.test", 5), ("other.test", 3)] {
        for _ in 0..n {
            assert_eq!(send(&c, &proxy, host, "/").await.0, 200);
        }
    }
    let m = get_json(&c, &proxy, "/admin/routes/env-a/metrics").await;
    assert_eq!(m["slots"]["blue"]["requests"], 7, "{m}");
    assert_eq!(m["slots"]["blue"]["responses"]["2xx"], 7);
    assert_eq!(m["slots"]["green"]["requests"], 0);
    let m = get_json(&c, &proxy, "/admin/routes/env-b/metrics?window_secs=60").await;
    assert_eq!(m["slots"]["green"]["requests"], 5, "{m}");
    assert_eq!(m["slots"]["blue"]["requests"], 0);
    let status = get_json(&c, &proxy, "/admin/status").await;
    assert_eq!(
        status["requests"],
        json!({"blue": 3, "green": 0}),
        "default only"
    );
    let (code, _) = admin(
        &c,
        &proxy,
        reqwest::Method::GET,
        "/admin/routes/env-a/metrics?window_secs=0",
        None,
    )
    .await;
    assert_eq!(code, 400);

    let text = admin_get(&c, proxy.admin_addr, "/admin/metrics/prometheus")
        .await
        .text()
        .await
        .unwrap();
    for line in [
        r#"switchyard_proxy_requests_total{slot="blue",listener="public",class="2xx"} 3"#,
        r#"switchyard_proxy_requests_total{environment="env-a",slot="blue",listener="public",class="2xx"} 7"#,
        r#"switchyard_proxy_requests_total{environment="env-b",slot="green",listener="public",class="2xx"} 5"#,
        r#"switchyard_proxy_requests_received_total{environment="env-b",slot="blue",listener="public"} 0"#,
        r#"switchyard_proxy_request_duration_seconds_count{environment="env-a",slot="blue",listener="public"} 7"#,
    ] {
        assert!(text.contains(&format!("{line}\n")), "missing {line}");
    }
    // One TYPE per family, and every sample under the TYPE of its family.
    let mut families: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let family = rest.split(' ').next().unwrap();
            assert!(!families.contains(&family), "{family} twice");
            families.push(family);
        } else if !line.starts_with('#') {
            let family = families.last().expect("a sample before any TYPE");
            assert!(line.starts_with(family), "{line} under {family}");
        }
    }
    assert_eq!(families.len(), 6, "{families:?}");

    // Drain: a slow request on env-a is env-a's alone.
    let slow = tokio::spawn({
        let c = c.clone();
        let url = format!("http://{}/slow", proxy.listen_addr);
        async move {
            c.get(url)
                .header("host", "a.test")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let d = get_json(&c, &proxy, "/admin/routes/env-a/drain?slot=blue").await;
        if d["in_flight"] == 1 {
            assert_eq!(d["routed"], json!(["active"]));
            break;
        }
        assert!(Instant::now() < deadline, "never in flight: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        get_json(&c, &proxy, "/admin/drain?slot=blue").await["in_flight"],
        0
    );
    assert_eq!(
        get_json(&c, &proxy, "/admin/routes/env-b/drain?slot=blue").await["in_flight"],
        0
    );
    let (code, answer) = admin(
        &c,
        &proxy,
        reqwest::Method::GET,
        "/admin/routes/env-a/drain?slot=purple",
        None,
    )
    .await;
    assert_eq!(code, 400, "{answer}");
    // Switching env-a away keeps its counters: the old slot drains there.
    let other = start_named("a2").await;
    let (status, _) = put_route(
        &c,
        &proxy,
        "env-a",
        json!({"hosts": ["a.test"], "table": table(2, "green", other)}),
    )
    .await;
    assert_eq!(status, 200);
    let d = get_json(&c, &proxy, "/admin/routes/env-a/drain?slot=blue").await;
    assert_eq!(
        d,
        json!({"slot": "blue", "in_flight": 1, "upgraded": 0, "routed": []})
    );
    assert_eq!(slow.await.unwrap(), "a");
    let d = get_json(&c, &proxy, "/admin/routes/env-a/drain?slot=blue").await;
    assert_eq!(d["in_flight"], 0);
    let m = get_json(&c, &proxy, "/admin/routes/env-a/metrics").await;
    assert_eq!(
        m["slots"]["blue"]["requests"], 8,
        "kept across the switch: {m}"
    );
    proxy.shutdown().await;
}

/// Load on two environments at once while one is switched 24 times: no
/// request fails on either, and the other's answers never change upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_one_environment_never_disturbs_another() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Arc::new(start_proxy(dir.path()).await);
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let a_blue = start_named("a-blue").await;
    let a_green = start_named("a-green").await;
    let b_blue = start_named("b-blue").await;
    let (status, _) = put_route(
        &c,
        &proxy,
        "a",
        json!({"hosts": ["a.test"], "table": table(1, "blue", a_blue)}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = put_route(
        &c,
        &proxy,
        "b",
        json!({"hosts": ["b.test"], "table": table(1, "blue", b_blue)}),
    )
    .await;
    assert_eq!(status, 201);

    #[derive(Default)]
    struct Seen {
        ok: AtomicU64,
        failed: AtomicU64,
        a_blue: AtomicU64,
        a_green: AtomicU64,
        b_blue: AtomicU64,
        unexpected: AtomicU64,
    }
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for host in ["a.test", "a.test", "b.test", "b.test"] {
        let (c, proxy, seen, stop) = (
            c.clone(),
            Arc::clone(&proxy),
            Arc::clone(&seen),
            Arc::clone(&stop),
        );
        workers.push(tokio::spawn(async move {
            // Bounded so a hung switch cannot turn this into a load test.
            for _ in 0..50_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let res = c
                    .get(format!("http://{}/", proxy.listen_addr))
                    .header("host", host)
                    .send()
                    .await;
                let body = match res {
                    Ok(res) if res.status().is_success() => res.text().await.ok(),
                    _ => None,
                };
                let Some(body) = body else {
                    seen.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                seen.ok.fetch_add(1, Ordering::Relaxed);
                let counter = match (host, body.as_str()) {
                    ("a.test", "a-blue") => &seen.a_blue,
                    ("a.test", "a-green") => &seen.a_green,
                    ("b.test", "b-blue") => &seen.b_blue,
                    _ => &seen.unexpected,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    for generation in 2..=25u64 {
        let t = if generation % 2 == 0 {
            table(generation, "green", a_green)
        } else {
            table(generation, "blue", a_blue)
        };
        let (status, answer) =
            put_route(&c, &proxy, "a", json!({"hosts": ["a.test"], "table": t})).await;
        assert_eq!(status, 200, "{answer}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker finished");
    }

    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    assert_eq!(load(&seen.failed), 0, "failed requests during the switches");
    assert_eq!(
        load(&seen.unexpected),
        0,
        "an answer from the wrong upstream"
    );
    assert!(
        load(&seen.a_blue) > 0 && load(&seen.a_green) > 0,
        "a was switched"
    );
    assert!(
        load(&seen.b_blue) > 100,
        "b carried load: {}",
        load(&seen.b_blue)
    );

    // Counted exactly, each environment on its own.
    let b = get_json(&c, &proxy, "/admin/routes/b/metrics").await;
    assert_eq!(b["slots"]["blue"]["requests"], load(&seen.b_blue), "{b}");
    assert_eq!(b["slots"]["blue"]["responses"]["5xx"], 0);
    assert_eq!(b["slots"]["green"]["requests"], 0);
    let a = get_json(&c, &proxy, "/admin/routes/a/metrics").await;
    assert_eq!(a["slots"]["blue"]["requests"], load(&seen.a_blue), "{a}");
    assert_eq!(a["slots"]["green"]["requests"], load(&seen.a_green));
    assert_eq!(
        get_json(&c, &proxy, "/admin/routes/a/routing").await["generation"],
        25
    );
    let b_table = get_json(&c, &proxy, "/admin/routes/b/routing").await;
    assert_eq!(b_table, table(1, "blue", b_blue), "b was never touched");
}

/// HTTP/2 clients name the host in `:authority`, usually without a Host
/// header: that picks the route too.
#[tokio::test]
async fn http2_requests_are_routed_by_their_authority() {
    use http_body_util::BodyExt;
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let shop = start_named("shop").await;
    let (status, _) = put_route(
        &c,
        &proxy,
        "shop",
        json!({"hosts": ["shop.test"], "table": table(1, "blue", shop)}),
    )
    .await;
    assert_eq!(status, 201);

    let stream = tokio::net::TcpStream::connect(proxy.listen_addr)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for (uri, status, body) in [
        ("http://Shop.Test:9999/", 200, "shop"),
        (
            "http://other.test/",
            404,
            "switchyard-proxy: no environment serves this host\n",
        ),
    ] {
        let req = hyper::Request::get(uri)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        assert!(req.headers().get("host").is_none());
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{uri}");
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(bytes, body.as_bytes(), "{uri}");
    }
    proxy.shutdown().await;
}

/// The preview listener finds the route by host too and serves that
/// route's preview slot; each route has its own chart points.
#[tokio::test]
async fn the_preview_listener_and_charts_are_per_environment() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = support::in_process::start_proxy_with(dir.path(), |config| {
        config.preview = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let a_blue = start_named("a-blue").await;
    let a_green = start_named("a-green").await;
    let b_blue = start_named("b-blue").await;
    let mut a_table = table(1, "blue", a_blue);
    a_table["preview"] = json!({"slot": "green", "address": a_green.to_string()});
    let (status, _) = put_route(
        &c,
        &proxy,
        "a",
        json!({"hosts": ["a.test"], "table": a_table}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = put_route(
        &c,
        &proxy,
        "b",
        json!({"hosts": ["b.test"], "table": table(1, "blue", b_blue)}),
    )
    .await;
    assert_eq!(status, 201);

    let preview = proxy.preview_addr.unwrap();
    let via_preview = |host: &'static str| {
        let c = c.clone();
        async move {
            let res = c
                .get(format!("http://{preview}/"))
                .header("host", host)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    assert_eq!(via_preview("a.test").await, (200, "a-green".into()));
    assert_eq!(
        via_preview("b.test").await,
        (503, "switchyard-proxy: no preview slot\n".into())
    );
    assert_eq!(
        send(&c, &proxy, "a.test", "/").await,
        (200, "a-blue".into())
    );

    let m = get_json(&c, &proxy, "/admin/routes/a/metrics").await;
    assert_eq!(
        m["slots"]["green"]["listeners"]["preview"]["requests"], 1,
        "{m}"
    );
    assert_eq!(
        m["slots"]["blue"]["listeners"]["public"]["requests"], 1,
        "{m}"
    );
    let s = get_json(
        &c,
        &proxy,
        "/admin/routes/a/metrics/series?window_secs=10&step_secs=1",
    )
    .await;
    assert_eq!(s["points"].as_array().unwrap().len(), 10, "{s}");
    let s = get_json(&c, &proxy, "/admin/routes/b/metrics/series").await;
    assert_eq!(s["points"].as_array().unwrap().len(), 30, "{s}");
    let (status, _) = admin(
        &c,
        &proxy,
        reqwest::Method::GET,
        "/admin/routes/nope/metrics/series",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = admin(
        &c,
        &proxy,
        reqwest::Method::GET,
        "/admin/routes/a/metrics/series?step_secs=0",
        None,
    )
    .await;
    assert_eq!(status, 400);
    proxy.shutdown().await;
}

/// On a shared proxy the preview listener answers like the public one
/// does for hosts: a host no route claims is the default table's preview
/// (404 while that table was never set), and a route that redirects plain
/// HTTP to HTTPS is not redirected there (the console's gates reach it
/// over plain HTTP with the route's host).
#[tokio::test]
async fn the_preview_listener_falls_back_to_the_default_table_and_never_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = support::in_process::start_proxy_with(dir.path(), |config| {
        config.preview = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let a_blue = start_named("a-blue").await;
    let a_green = start_named("a-green").await;
    let d_green = start_named("default-green").await;
    let mut a_table = table(1, "blue", a_blue);
    a_table["preview"] = json!({"slot": "green", "address": a_green.to_string()});
    let (status, body) = put_route(
        &c,
        &proxy,
        "a",
        json!({"hosts": ["a.test"], "redirect_https": true, "table": a_table}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let preview = proxy.preview_addr.unwrap();
    let via_preview = |host: &'static str| {
        let c = c.clone();
        async move {
            let res = c
                .get(format!("http://{preview}/"))
                .header("host", host)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    assert_eq!(via_preview("a.test").await, (200, "a-green".into()));
    assert_eq!(via_preview("other.test").await.0, 404);
    // The public listener redirects the same host.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(send(&no_redirects, &proxy, "a.test", "/").await.0, 308);

    let mut default_table = table(1, "blue", a_blue);
    default_table["preview"] = json!({"slot": "green", "address": d_green.to_string()});
    let (status, body) = admin(
        &c,
        &proxy,
        reqwest::Method::PUT,
        "/admin/routing",
        Some(&default_table),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        via_preview("other.test").await,
        (200, "default-green".into())
    );
    assert_eq!(via_preview("a.test").await, (200, "a-green".into()));
}

/// A table with a tester rule: `blue` active, `green` on preview.
fn with_testers(generation: u64, blue: SocketAddr, green: SocketAddr) -> Value {
    json!({
        "generation": generation,
        "active": {"slot": "blue", "address": blue.to_string()},
        "preview": {"slot": "green", "address": green.to_string()},
        "testers": {
            "header": {"name": "X-Tester", "value": "me"},
            "cookie": {"name": "tester", "value": "yes"}
        }
    })
}

/// (status, body) of `GET /` with this Host and extra headers.
async fn send_as(
    c: &reqwest::Client,
    proxy: &RunningProxy,
    host: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut req = c
        .get(format!("http://{}/", proxy.listen_addr))
        .header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("proxy answers");
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn testers_reach_the_preview_slot_on_a_route_and_the_default_table() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let shop_blue = start_named("shop-blue").await;
    let shop_green = start_named("shop-green").await;
    let blue = start_named("blue").await;
    let green = start_named("green").await;

    let (status, answer) = put_route(
        &c,
        &proxy,
        "shop",
        json!({"hosts": ["shop.test"], "table": with_testers(1, shop_blue, shop_green)}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["table"]["testers"]["header"]["name"], "X-Tester");
    assert_eq!(
        put_routing_status(&c, proxy.admin_addr, &with_testers(1, blue, green)).await,
        200
    );

    let ok = |body: &str| (200, body.to_string());
    for (host, prefix) in [("shop.test", "shop-"), ("other.test", "")] {
        let blue = format!("{prefix}blue");
        let green = format!("{prefix}green");
        assert_eq!(send_as(&c, &proxy, host, &[]).await, ok(&blue), "{host}");
        assert_eq!(
            send_as(&c, &proxy, host, &[("x-tester", "me")]).await,
            ok(&green)
        );
        assert_eq!(
            send_as(&c, &proxy, host, &[("X-TESTER", "me")]).await,
            ok(&green)
        );
        assert_eq!(
            send_as(&c, &proxy, host, &[("x-tester", "not-me")]).await,
            ok(&blue)
        );
        assert_eq!(
            send_as(&c, &proxy, host, &[("cookie", "a=1; tester=yes")]).await,
            ok(&green)
        );
        assert_eq!(
            send_as(&c, &proxy, host, &[("cookie", "tester=no")]).await,
            ok(&blue)
        );
    }

    // Testers are counted in the preview slot's public metrics, per route.
    for path in ["/admin/metrics", "/admin/routes/shop/metrics"] {
        let m = get_json(&c, &proxy, path).await;
        let public = |slot: &str| m["slots"][slot]["listeners"]["public"]["requests"].clone();
        assert_eq!(
            (public("green"), public("blue")),
            (json!(3), json!(3)),
            "{path}: {m}"
        );
    }

    // A bad rule is refused naming the field, and the rule in force stays.
    let mut bad = with_testers(2, blue, green);
    bad["testers"]["header"]["name"] = json!("X Tester");
    let res = support::put_routing(&c, proxy.admin_addr, &bad).await;
    assert_eq!(res.status(), 400);
    let why: Value = res.json().await.unwrap();
    let why = why["error"].as_str().unwrap();
    assert!(
        why.contains("testers.header: header name \"X Tester\""),
        "{why}"
    );
    let mut no_preview = with_testers(2, blue, green);
    no_preview.as_object_mut().unwrap().remove("preview");
    let (status, why) = put_route(
        &c,
        &proxy,
        "shop",
        json!({"hosts": ["shop.test"], "table": no_preview}),
    )
    .await;
    assert!(status == 400 || status == 409, "{status} {why}");
    assert!(
        why["error"]
            .as_str()
            .unwrap()
            .contains("testers need an active and a preview slot"),
        "{why}"
    );
    assert_eq!(
        send_as(&c, &proxy, "shop.test", &[("x-tester", "me")]).await,
        ok("shop-green")
    );
    proxy.shutdown().await;
}
