//! The proxy started in-process on real sockets: metrics, the preview
//! listener, drain status, upgrade (WebSocket) passthrough and the canary split.

mod support;

use axum::http::StatusCode;
use model::{SlotColor, Upstream};
use proxy::route_table::{Canary, RouteTable};
use proxy::RunningProxy;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::in_process::{start_proxy, start_proxy_with};
use support::{admin_get, put_routing_status, serve_upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answers `<name> <path>`; `/slow` after 800 ms, `/boom` with a 500,
/// `/missing` with a 404.
async fn start_upstream(name: &'static str) -> SocketAddr {
    use axum::extract::Request;
    let app = axum::Router::new().fallback(move |req: Request| async move {
        let path = req.uri().path().to_string();
        let status = match path.as_str() {
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(800)).await;
                StatusCode::OK
            }
            "/boom" => StatusCode::INTERNAL_SERVER_ERROR,
            "/missing" => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        };
        (status, format!("{name} {path}"))
    });
    serve_upstream(app).await
}

fn up(slot: SlotColor, addr: SocketAddr) -> Upstream {
    Upstream {
        slot,
        address: addr.to_string(),
    }
}

/// `GET path` on the admin API, which must answer 200, as JSON.
async fn admin_json(c: &reqwest::Client, proxy: &RunningProxy, path: &str) -> serde_json::Value {
    let res = admin_get(c, proxy.admin_addr, path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn metrics_count_classes_latency_and_windows_in_json_and_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let blue = start_upstream("blue").await;
    let table = serde_json::json!({"generation": 1, "active": up(SlotColor::Blue, blue)});
    assert_eq!(put_routing_status(&c, proxy.admin_addr, &table).await, 200);

    let base = format!("http://{}", proxy.listen_addr);
    for path in ["/", "/", "/", "/missing", "/boom"] {
        c.get(format!("{base}{path}")).send().await.unwrap();
    }

    let m = admin_json(&c, &proxy, "/admin/metrics").await;
    assert_eq!(m["window_secs"], serde_json::Value::Null);
    let b = &m["slots"]["blue"];
    assert_eq!(b["requests"], 5);
    assert_eq!(
        b["responses"],
        serde_json::json!({"1xx": 0, "2xx": 3, "3xx": 0, "4xx": 1, "5xx": 1})
    );
    assert_eq!(b["upstream_errors"], 0);
    assert_eq!(b["in_flight"], 0);
    assert!((b["error_rate"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    assert_eq!(b["latency"]["count"], 5);
    let p50 = b["latency"]["p50_ms"].as_f64().unwrap();
    let p99 = b["latency"]["p99_ms"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= p99 && p99 < 1000.0, "{p50} {p99}");
    assert_eq!(b["listeners"]["public"]["requests"], 5);
    assert_eq!(b["listeners"]["preview"]["requests"], 0);
    assert_eq!(m["slots"]["green"]["requests"], 0);
    assert_eq!(
        m["slots"]["green"]["latency"]["p99_ms"],
        serde_json::Value::Null
    );

    // Windowed: the ticker runs once a second; after the window has passed
    // with no traffic, the window is empty while totals stay.
    let w = admin_json(&c, &proxy, "/admin/metrics?window_secs=1").await;
    assert_eq!(w["window_secs"], 1);
    assert!(w["covered_secs"].as_f64().unwrap() <= 2.5);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let w = admin_json(&c, &proxy, "/admin/metrics?window_secs=1").await;
    let covered = w["covered_secs"].as_f64().unwrap();
    assert!((1.0..2.2).contains(&covered), "{covered}");
    assert_eq!(w["slots"]["blue"]["requests"], 0);
    assert_eq!(w["slots"]["blue"]["requests_per_sec"], 0.0);
    c.get(format!("{base}/")).send().await.unwrap();
    let w = admin_json(&c, &proxy, "/admin/metrics?window_secs=1").await;
    assert_eq!(w["slots"]["blue"]["requests"], 1);
    assert_eq!(w["slots"]["blue"]["responses"]["2xx"], 1);
    let w = admin_json(&c, &proxy, "/admin/metrics?window_secs=60").await;
    assert_eq!(
        w["slots"]["blue"]["requests"], 6,
        "younger than the window: all"
    );

    for bad in ["0", "601", "ten", "-1"] {
        let res = admin_get(
            &c,
            proxy.admin_addr,
            &format!("/admin/metrics?window_secs={bad}"),
        )
        .await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "window_secs must be between 1 and 600");
    }

    let res = admin_get(&c, proxy.admin_addr, "/admin/metrics/prometheus").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    for line in [
        "# TYPE switchyard_proxy_requests_total counter",
        "switchyard_proxy_requests_total{slot=\"blue\",listener=\"public\",class=\"2xx\"} 4",
        "switchyard_proxy_requests_total{slot=\"blue\",listener=\"public\",class=\"5xx\"} 1",
        "switchyard_proxy_in_flight{slot=\"blue\",listener=\"public\"} 0",
        "# TYPE switchyard_proxy_request_duration_seconds histogram",
        "switchyard_proxy_request_duration_seconds_bucket{slot=\"blue\",listener=\"public\",le=\"+Inf\"} 6",
        "switchyard_proxy_request_duration_seconds_count{slot=\"blue\",listener=\"public\"} 6",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn preview_listener_serves_the_idle_slot_and_is_counted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy_with(dir.path(), |config| {
        config.preview = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let preview = format!("http://{}", proxy.preview_addr.expect("preview listener"));
    let public = format!("http://{}", proxy.listen_addr);
    let blue = start_upstream("blue").await;
    let green = start_upstream("green").await;

    let res = c.get(format!("{preview}/")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.text().await.unwrap(),
        "switchyard-proxy: no preview slot\n"
    );

    // The console's old shape (no preview): still no preview slot.
    let t = serde_json::json!({"generation": 1, "active": up(SlotColor::Blue, blue)});
    assert_eq!(put_routing_status(&c, proxy.admin_addr, &t).await, 200);
    assert_eq!(
        c.get(format!("{preview}/")).send().await.unwrap().status(),
        503
    );
    let routing = admin_json(&c, &proxy, "/admin/routing").await;
    assert_eq!(routing, t, "absent fields stay absent in answers");

    let t = serde_json::json!({
        "generation": 2,
        "active": up(SlotColor::Blue, blue),
        "preview": up(SlotColor::Green, green),
    });
    assert_eq!(put_routing_status(&c, proxy.admin_addr, &t).await, 200);
    assert_eq!(admin_json(&c, &proxy, "/admin/routing").await, t);
    let res = c.get(format!("{preview}/try")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-switchyard-slot"], "green");
    assert_eq!(res.text().await.unwrap(), "green /try");
    let res = c.get(format!("{public}/")).send().await.unwrap();
    assert!(
        res.headers().get("set-cookie").is_none(),
        "no canary, no cookie"
    );
    assert_eq!(res.text().await.unwrap(), "blue /");

    // After the switch the old slot is the preview one.
    let t = serde_json::json!({
        "generation": 3,
        "active": up(SlotColor::Green, green),
        "preview": up(SlotColor::Blue, blue),
    });
    assert_eq!(put_routing_status(&c, proxy.admin_addr, &t).await, 200);
    assert_eq!(
        c.get(format!("{preview}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "blue /"
    );
    assert_eq!(
        c.get(format!("{public}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "green /"
    );

    let m = admin_json(&c, &proxy, "/admin/metrics").await;
    let g = &m["slots"]["green"];
    assert_eq!(g["requests"], 2);
    assert_eq!(g["listeners"]["preview"]["requests"], 1);
    assert_eq!(g["listeners"]["public"]["requests"], 1);
    let b = &m["slots"]["blue"];
    assert_eq!(b["listeners"]["preview"]["requests"], 1);
    assert_eq!(b["listeners"]["public"]["requests"], 1);
    let text = admin_get(&c, proxy.admin_addr, "/admin/metrics/prometheus")
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains(
        "switchyard_proxy_requests_total{slot=\"green\",listener=\"preview\",class=\"2xx\"} 1\n"
    ));

    // Invalid tables are refused with 400 and change nothing.
    for bad in [
        serde_json::json!({"generation": 9, "active": up(SlotColor::Green, green), "preview": up(SlotColor::Green, blue)}),
        serde_json::json!({"generation": 9, "active": up(SlotColor::Green, green), "preview": {"slot": "blue", "address": "nope"}}),
        serde_json::json!({"generation": 9, "active": up(SlotColor::Green, green), "canary": {"slot": "blue", "percent": 10}}),
        serde_json::json!({"generation": 9, "active": up(SlotColor::Green, green), "preview": up(SlotColor::Blue, blue), "canary": {"slot": "blue", "percent": 101}}),
    ] {
        assert_eq!(
            put_routing_status(&c, proxy.admin_addr, &bad).await,
            400,
            "{bad}"
        );
    }
    assert_eq!(admin_json(&c, &proxy, "/admin/routing").await, t);
    proxy.shutdown().await;
}

#[tokio::test]
async fn drain_status_counts_in_flight_requests_of_the_old_slot() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let blue = start_upstream("blue").await;
    let green = start_upstream("green").await;
    let t = serde_json::json!({"generation": 1, "active": up(SlotColor::Blue, blue)});
    assert_eq!(put_routing_status(&c, proxy.admin_addr, &t).await, 200);

    let slow: Vec<_> = (0..3)
        .map(|_| {
            let url = format!("http://{}/slow", proxy.listen_addr);
            tokio::spawn(async move { reqwest::get(url).await.unwrap().text().await.unwrap() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = serde_json::json!({"generation": 2, "active": up(SlotColor::Green, green)});
    assert_eq!(put_routing_status(&c, proxy.admin_addr, &t).await, 200);

    let d = admin_json(&c, &proxy, "/admin/drain?slot=blue").await;
    assert_eq!(
        d,
        serde_json::json!({"slot": "blue", "in_flight": 3, "upgraded": 0, "routed": []})
    );
    let d = admin_json(&c, &proxy, "/admin/drain?slot=green").await;
    assert_eq!(d["routed"], serde_json::json!(["active"]));

    // What the console does: poll until drained.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let d = admin_json(&c, &proxy, "/admin/drain?slot=blue").await;
        if d["in_flight"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "blue never drained: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for s in slow {
        assert_eq!(s.await.unwrap(), "blue /slow");
    }

    for bad in ["/admin/drain", "/admin/drain?slot=purple"] {
        let res = admin_get(&c, proxy.admin_addr, bad).await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("slot"));
    }
    proxy.shutdown().await;
}

/// A raw-TCP upstream that accepts `Upgrade: echo` with a 101 and then echoes
/// bytes back; anything else gets a 400.
async fn start_upgrade_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let head = read_head(&mut sock).await;
                let lower = head.to_ascii_lowercase();
                if lower.contains("\r\nupgrade: echo\r\n") && lower.contains("connection: upgrade")
                {
                    sock.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nX-Echo: yes\r\n\r\n")
                        .await
                        .unwrap();
                    let (mut r, mut w) = sock.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                } else {
                    let _ = sock
                        .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")
                        .await;
                }
            });
        }
    });
    addr
}

/// Reads an HTTP head up to and including the blank line.
async fn read_head(sock: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = sock.read(&mut byte).await.unwrap();
        assert_eq!(
            n,
            1,
            "connection closed inside the head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn upgrades_are_passed_through_and_counted_until_closed() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy(dir.path()).await;
    let echo = start_upgrade_echo().await;
    let t = serde_json::json!({"generation": 1, "active": up(SlotColor::Blue, echo)});
    assert_eq!(put_routing_status(&c, proxy.admin_addr, &t).await, 200);

    let mut sock = TcpStream::connect(proxy.listen_addr).await.unwrap();
    sock.write_all(
        b"GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut sock).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nupgrade: echo\r\n"), "{head}");
    assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(lower.contains("\r\nx-echo: yes\r\n"), "{head}");
    assert!(lower.contains("\r\nx-switchyard-slot: blue\r\n"), "{head}");

    for msg in [&b"hello"[..], b"second message", &[0u8, 255, 10, 13]] {
        sock.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        sock.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
    }
    let d = admin_json(&c, &proxy, "/admin/drain?slot=blue").await;
    assert_eq!(d["in_flight"], 1);
    assert_eq!(d["upgraded"], 1);
    let m = admin_json(&c, &proxy, "/admin/metrics").await;
    assert_eq!(m["slots"]["blue"]["responses"]["1xx"], 1);
    assert_eq!(m["slots"]["blue"]["upgraded"], 1);

    drop(sock);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let d = admin_json(&c, &proxy, "/admin/drain?slot=blue").await;
        if d["in_flight"] == 0 && d["upgraded"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "upgraded connection never ended: {d}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Without the upgrade headers the slot refuses, and that passes through.
    let res = c
        .get(format!("http://{}/ws", proxy.listen_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    proxy.shutdown().await;
}

#[tokio::test]
async fn canary_sends_a_share_of_new_clients_and_keeps_them_by_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy(dir.path()).await;
    let admin = reqwest::Client::new();
    let blue = start_upstream("blue").await;
    let green = start_upstream("green").await;
    let base = format!("http://{}", proxy.listen_addr);
    let canary = |generation: u64, percent: u8| RouteTable {
        generation,
        active: Some(up(SlotColor::Blue, blue)),
        preview: Some(up(SlotColor::Green, green)),
        canary: Some(Canary {
            slot: SlotColor::Green,
            percent,
        }),
        testers: None,
    };
    let t = serde_json::to_value(canary(1, 20)).unwrap();
    assert_eq!(put_routing_status(&admin, proxy.admin_addr, &t).await, 200);

    // 20 new clients: exactly 4 on green, each pinned by a cookie.
    let c = reqwest::Client::new();
    let get = |cookie: Option<String>| {
        let mut req = c.get(format!("{base}/"));
        if let Some(cookie) = cookie {
            req = req.header("cookie", format!("theme=dark; {cookie}"));
        }
        async move {
            let res = req.send().await.unwrap();
            let slot = res.headers()["x-switchyard-slot"]
                .to_str()
                .unwrap()
                .to_string();
            let set = res
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap().to_string());
            (slot, set)
        }
    };
    let mut clients = Vec::new();
    for _ in 0..20 {
        let (slot, set) = get(None).await;
        let set = set.expect("a new client is pinned");
        assert_eq!(
            set,
            format!("switchyard_slot={slot}; Path=/; HttpOnly; SameSite=Lax")
        );
        let cookie = set.split(';').next().unwrap().to_string();
        clients.push((cookie, slot));
    }
    let on_green = clients.iter().filter(|(_, s)| s == "green").count();
    assert_eq!(on_green, 4);

    // Sticky: every client stays where it was put, and is not re-pinned.
    for (cookie, slot) in &clients {
        for _ in 0..3 {
            assert_eq!(get(Some(cookie.clone())).await, (slot.clone(), None));
        }
    }

    // Canary at 0 %: new clients all blue, but canary clients keep green.
    let t = serde_json::to_value(canary(2, 0)).unwrap();
    assert_eq!(put_routing_status(&admin, proxy.admin_addr, &t).await, 200);
    for _ in 0..5 {
        assert_eq!(get(None).await.0, "blue");
    }
    let green_cookie = "switchyard_slot=green".to_string();
    assert_eq!(
        get(Some(green_cookie.clone())).await,
        ("green".into(), None)
    );

    // Canary off: the green cookie no longer routes; everyone is on active.
    let t = serde_json::json!({
        "generation": 3,
        "active": up(SlotColor::Blue, blue),
        "preview": up(SlotColor::Green, green),
    });
    assert_eq!(put_routing_status(&admin, proxy.admin_addr, &t).await, 200);
    assert_eq!(get(Some(green_cookie)).await, ("blue".into(), None));
    assert_eq!(get(None).await, ("blue".into(), None));

    let m = admin_json(&admin, &proxy, "/admin/metrics").await;
    assert_eq!(
        m["slots"]["green"]["listeners"]["public"]["requests"],
        4 * 4 + 1
    );
    assert_eq!(m["slots"]["green"]["listeners"]["preview"]["requests"], 0);
    proxy.shutdown().await;
}

/// A burst of new connections is spread evenly over the data-plane threads,
/// each served where it was handed; closed ones are counted off.
#[tokio::test]
async fn a_burst_of_connections_is_spread_over_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let proxy = start_proxy_with(dir.path(), |config| config.extra_workers = 1).await;
    let blue = start_upstream("blue").await;
    let table = serde_json::json!({"generation": 1, "active": up(SlotColor::Blue, blue)});
    assert_eq!(put_routing_status(&c, proxy.admin_addr, &table).await, 200);

    let mut socks = Vec::new();
    for _ in 0..10 {
        socks.push(TcpStream::connect(proxy.listen_addr).await.unwrap());
    }
    for sock in &mut socks {
        sock.write_all(b"GET /hi HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
    }
    for sock in &mut socks {
        let head = read_head(sock).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    let threads = admin_json(&c, &proxy, "/admin/threads").await;
    assert_eq!(
        threads["open_connections"],
        serde_json::json!([5, 5]),
        "{threads}"
    );
    drop(socks);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let threads = admin_json(&c, &proxy, "/admin/threads").await;
        if threads["open_connections"] == serde_json::json!([0, 0]) {
            break;
        }
        assert!(Instant::now() < deadline, "still counted open: {threads}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.shutdown().await;
}
