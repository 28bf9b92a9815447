//! The data plane: every user request goes to the active slot.

use crate::metrics::{InFlightGuard, SlotMetrics};
use crate::routing::Routing;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use model::Upstream;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub const SLOT_HEADER: &str = "x-switchyard-slot";

#[derive(Clone, Copy, Debug)]
pub struct ForwardConfig {
    pub connect_timeout: Duration,
    /// From sending the request until the upstream's response headers arrive.
    pub response_header_timeout: Duration,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            connect_timeout: Duration::from_secs(2),
            response_header_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
pub struct Forwarder {
    client: Client<HttpConnector, Body>,
    routing: Arc<Routing>,
    metrics: Arc<SlotMetrics>,
    response_header_timeout: Duration,
}

impl Forwarder {
    pub fn new(routing: Arc<Routing>, metrics: Arc<SlotMetrics>, config: ForwardConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        // Pooled HTTP/1 connections: a switch needs no new handshakes to the
        // slot once it has served a few requests (e.g. gate traffic).
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Forwarder {
            client,
            routing,
            metrics,
            response_header_timeout: config.response_header_timeout,
        }
    }
}

/// Every method and path is forwarded; serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so `X-Forwarded-For`
/// knows the client.
pub fn data_plane(forwarder: Forwarder) -> Router {
    Router::new().fallback(forward).with_state(forwarder)
}

async fn forward(State(f): State<Forwarder>, req: Request) -> Response {
    // One load per request: a switch affects only requests that start after it.
    let table = f.routing.current();
    let Some(upstream) = table.active.as_ref() else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "switchyard-proxy: no active slot\n".to_string(),
        );
    };
    let slot = upstream.slot;
    let guard = f.metrics.begin(slot);

    let client_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let outbound = match upstream_request(req, upstream, client_ip) {
        Ok(outbound) => outbound,
        Err(err) => {
            tracing::error!(%slot, address = %upstream.address, %err, "cannot build upstream request");
            f.metrics.record_error(slot);
            return plain(
                StatusCode::BAD_GATEWAY,
                format!(
                    "switchyard-proxy: slot {slot} at {} has an invalid address\n",
                    upstream.address
                ),
            );
        }
    };

    let answer = tokio::time::timeout(f.response_header_timeout, f.client.request(outbound)).await;
    match answer {
        Ok(Ok(response)) => {
            if response.status().is_server_error() {
                f.metrics.record_error(slot);
            }
            downstream_response(response, guard)
        }
        Ok(Err(err)) => {
            f.metrics.record_error(slot);
            if err.is_connect() {
                tracing::warn!(%slot, address = %upstream.address, error = %error_chain(&err), "upstream unreachable");
                plain(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "switchyard-proxy: slot {slot} at {} unreachable\n",
                        upstream.address
                    ),
                )
            } else {
                tracing::warn!(%slot, address = %upstream.address, error = %error_chain(&err), "upstream request failed");
                plain(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "switchyard-proxy: slot {slot} at {} failed to answer\n",
                        upstream.address
                    ),
                )
            }
        }
        Err(_elapsed) => {
            f.metrics.record_error(slot);
            tracing::warn!(%slot, address = %upstream.address, timeout = ?f.response_header_timeout, "upstream timed out");
            plain(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "switchyard-proxy: slot {slot} at {} did not answer within {} s\n",
                    upstream.address,
                    f.response_header_timeout.as_secs()
                ),
            )
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error("invalid upstream URI: {0}")]
    Uri(#[from] axum::http::uri::InvalidUri),
    #[error("invalid header value: {0}")]
    Header(#[from] axum::http::header::InvalidHeaderValue),
}

fn upstream_request(
    req: Request,
    upstream: &Upstream,
    client_ip: Option<std::net::IpAddr>,
) -> Result<Request, BuildError> {
    let (mut parts, body) = req.into_parts();

    // HTTP/2 clients carry the host in the URI authority, not a Host header.
    let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });

    strip_hop_by_hop(&mut parts.headers);

    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    parts.uri = format!("http://{}{}", upstream.address, path_and_query).parse::<Uri>()?;
    // The pool speaks HTTP/1.1 to slots whatever the client spoke to us.
    parts.version = Version::HTTP_11;

    if let Some(host) = original_host {
        // Keep the user's Host: apps build absolute links and cookies from it.
        parts.headers.insert(header::HOST, host.clone());
        parts.headers.insert("x-forwarded-host", host);
    }
    if let Some(ip) = client_ip {
        let forwarded_for = match parts.headers.get("x-forwarded-for") {
            Some(prior) => match prior.to_str() {
                Ok(prior) => format!("{prior}, {ip}"),
                Err(_) => ip.to_string(),
            },
            None => ip.to_string(),
        };
        parts
            .headers
            .insert("x-forwarded-for", HeaderValue::from_str(&forwarded_for)?);
    }
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static("http"));

    Ok(Request::from_parts(parts, body))
}

fn downstream_response(response: hyper::Response<Incoming>, guard: InFlightGuard) -> Response {
    let slot = guard.slot();
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(SLOT_HEADER, HeaderValue::from_static(slot.as_str()));
    // The guard rides along with the body: a request stays in flight (and
    // keeps draining a slot busy) until its response has been streamed out.
    Response::from_parts(
        parts,
        Body::new(GuardedBody {
            inner: body,
            _guard: guard,
        }),
    )
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

fn plain(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

struct GuardedBody {
    inner: Incoming,
    _guard: InFlightGuard,
}

impl hyper::body::Body for GuardedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::SlotColor;

    #[test]
    fn hop_by_hop_headers_are_stripped_including_named_ones() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn upstream_request_rewrites_uri_and_sets_forwarding_headers() {
        let req = Request::builder()
            .uri("/a/b?c=d")
            .header(header::HOST, "app.example")
            .header("x-forwarded-for", "10.0.0.1")
            .header(header::CONNECTION, "keep-alive")
            .body(Body::empty())
            .unwrap();
        let upstream = Upstream {
            slot: SlotColor::Green,
            address: "127.0.0.1:9002".into(),
        };
        let out = upstream_request(req, &upstream, Some("192.0.2.7".parse().unwrap())).unwrap();
        assert_eq!(out.uri(), "http://127.0.0.1:9002/a/b?c=d");
        let h = out.headers();
        assert_eq!(h[header::HOST], "app.example");
        assert_eq!(h["x-forwarded-host"], "app.example");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert!(!h.contains_key(header::CONNECTION));
    }
}
