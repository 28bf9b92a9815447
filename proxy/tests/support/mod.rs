//! Helpers shared by the proxy's integration tests: the admin token, the
//! admin API over HTTP, upstreams to route to, and the proxy itself, started
//! either in this process ([`in_process`]) or as the real binary
//! ([`spawned`]).
//!
//! Every test file compiles this module on its own; an item only some of
//! them use says so with `#[allow(dead_code)]`.

// Not every test file starts the proxy both ways.
#[allow(dead_code)]
pub mod in_process;
#[allow(dead_code)]
pub mod spawned;

use model::{RoutingTable, SlotColor, Upstream};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The admin API's bearer token, in-process and in the spawned binary's
/// token file.
pub const TOKEN: &str = "proxy-test-token";

/// `PUT /admin/routing` with the token; the whole answer.
pub async fn put_routing(
    c: &reqwest::Client,
    admin: SocketAddr,
    table: &impl Serialize,
) -> reqwest::Response {
    c.put(format!("http://{admin}/admin/routing"))
        .bearer_auth(TOKEN)
        .json(table)
        .send()
        .await
        .expect("admin API answers")
}

/// The status of [`put_routing`], for the tests that only check that.
pub async fn put_routing_status(
    c: &reqwest::Client,
    admin: SocketAddr,
    table: &impl Serialize,
) -> u16 {
    put_routing(c, admin, table).await.status().as_u16()
}

/// `GET path` on the admin API with the token.
#[allow(dead_code)] // not upstream_http1.rs
pub async fn admin_get(c: &reqwest::Client, admin: SocketAddr, path: &str) -> reqwest::Response {
    c.get(format!("http://{admin}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin API answers")
}

/// An admin API answer as JSON.
#[allow(dead_code)] // in_process.rs and switch.rs
pub async fn admin_json(c: &reqwest::Client, admin: SocketAddr, path: &str) -> serde_json::Value {
    admin_get(c, admin, path)
        .await
        .json()
        .await
        .expect("the admin API answers JSON")
}

/// A routing table with only an active slot, in the console's shape.
#[allow(dead_code)] // in_process.rs and switch.rs
pub fn route(generation: u64, slot: SlotColor, address: &str) -> RoutingTable {
    RoutingTable {
        generation,
        active: Some(Upstream {
            slot,
            address: address.to_string(),
        }),
        preview: None,
        ..RoutingTable::default()
    }
}

/// Serves `app` on a free loopback port in the background: an upstream slot
/// for the proxy to route to.
pub async fn serve_upstream(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An upstream that answers with the `Cookie` headers it received, one per
/// line, or `(none)`.
#[allow(dead_code)] // in_process.rs and switch.rs
pub async fn start_cookie_echo() -> SocketAddr {
    let app = axum::Router::new().fallback(|headers: axum::http::HeaderMap| async move {
        let cookies: Vec<String> = headers
            .get_all("cookie")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if cookies.is_empty() {
            "(none)".to_string()
        } else {
            cookies.join("\n")
        }
    });
    serve_upstream(app).await
}

/// An upstream that names itself and counts the connections it accepted and
/// still has open (`/empty` answers 204 with no body, `/slow` after 300 ms).
#[allow(dead_code)] // in_process.rs and routes.rs
pub async fn start_counting(name: &'static str) -> (SocketAddr, Arc<ConnCounts>) {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(ConnCounts::default());
    let c = Arc::clone(&counts);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            c.accepted.fetch_add(1, Ordering::SeqCst);
            c.open.fetch_add(1, Ordering::SeqCst);
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    if req.uri().path() == "/slow" {
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    }
                    let mut res = hyper::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(name.as_bytes()),
                    ));
                    if req.uri().path() == "/empty" {
                        *res.body_mut() = http_body_util::Full::new(bytes::Bytes::new());
                        *res.status_mut() = hyper::StatusCode::NO_CONTENT;
                    }
                    Ok::<_, std::convert::Infallible>(res)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                c.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, counts)
}

#[allow(dead_code)] // in_process.rs and routes.rs
#[derive(Default)]
pub struct ConnCounts {
    pub accepted: AtomicUsize,
    pub open: AtomicUsize,
}
