//! The data plane: user requests go to the slot the routing table names.
//!
//! * **Public listener**: the active slot. With a canary split in the table,
//!   `percent` % of *new* clients (no valid `switchyard_slot` cookie) go to
//!   the canary (preview) slot instead; the split is exact, not random (a
//!   counter spreads the canary clients evenly), and the response tells the
//!   client `Set-Cookie: switchyard_slot=<color>`. A client whose cookie
//!   names a slot that is still routable here (the active slot, or the canary
//!   slot while the split is on) stays on it; any other cookie is ignored and
//!   the client is assigned again. Without a canary no cookie is read or set.
//!   With a tester rule in the table, a request carrying its header (name
//!   case-insensitive, exact value) or its cookie (exact name and value)
//!   goes to the preview slot whatever its slot cookie says, and nothing
//!   is pinned: testers are whoever sends the header or cookie. It is
//!   counted in the preview slot's public metrics.
//! * **Preview listener** (`--preview`): always the table's `preview` slot;
//!   503 `switchyard-proxy: no preview slot` when the table has none. The
//!   table is picked by host as on the public listener (a named route's,
//!   else the default one), so environments sharing the proxy share its
//!   preview address too; a route's HTTPS redirect does not apply there
//!   (the console's gates reach it over plain HTTP with the route's host).
//! * **Upgrades** (`Connection: upgrade`, e.g. WebSockets): the upgrade
//!   headers are forwarded; on a 101 both connections are upgraded and bytes
//!   are copied both ways until either side closes. The connection counts as
//!   in flight (and `upgraded`) for its slot until then.
//!
//! * **Console cookies**: the console's session cookie is removed from every
//!   forwarded request ([`ConsoleCookies`], `--strip-cookie`).
//!
//! * **Named routes** ([`crate::routes`]): the request's host (and path)
//!   picks the environment whose table it is routed by and whose metrics
//!   count it; one no route claims goes to the default table, or, when that
//!   was never set, is answered 404 without touching any upstream.
//!
//! One snapshot load per request and no lock anywhere: a switch affects
//! only requests that start after it.

use crate::console_cookies::ConsoleCookies;
use crate::metrics::{Listener, RequestGuard, SlotMetrics};
use crate::route_table::{RouteTable, TableRules, TesterRule};
use crate::routing::{Lookup, Routing};
use crate::upstream_conn::{ConnectError, SendError, Sender, SlotBody, UpstreamPool};
use crate::upstream_h1::Answer;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use model::{SlotColor, Upstream};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub const SLOT_HEADER: &str = "x-switchyard-slot";
/// The cookie that keeps a client on its slot while a canary split is on.
pub const SLOT_COOKIE: &str = "switchyard_slot";

#[derive(Clone, Debug)]
pub struct ForwardConfig {
    pub connect_timeout: Duration,
    /// From sending the request until the upstream's response headers arrive.
    pub response_header_timeout: Duration,
    /// Cookies removed from every forwarded request.
    pub console_cookies: ConsoleCookies,
    /// An idle upstream connection is closed after at most this long
    /// (`upstream_conn.rs`): below the 5 s after which many app servers
    /// (Node.js, uvicorn, Apache) close an idle kept-alive connection
    /// themselves, possibly under a request going out on it.
    pub upstream_idle_timeout: Duration,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            connect_timeout: Duration::from_secs(2),
            response_header_timeout: Duration::from_secs(30),
            console_cookies: ConsoleCookies::default(),
            upstream_idle_timeout: Duration::from_secs(4),
        }
    }
}

/// What every request of one listener shares: the table, the metrics, the
/// settings, and its data-plane thread's idle upstream connections. Built
/// once per listener and thread; each client connection holds an `Arc`.
#[derive(Clone)]
pub struct Forwarder {
    routing: Arc<Routing>,
    metrics: Arc<SlotMetrics>,
    /// This data-plane thread's idle upstream connections, shared by its
    /// listeners ([`Forwarder::on_another_thread`] gives a thread its own).
    pool: Arc<UpstreamPool>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    response_header_timeout: Duration,
    console_cookies: ConsoleCookies,
    listener: Listener,
    /// Connections came over TLS (`X-Forwarded-Proto: https`, no redirect).
    tls: bool,
    /// Where a route's HTTP → HTTPS redirect points ([`crate::redirect`]).
    https_port: u16,
    /// New clients seen while a canary split is on; spreads them exactly.
    new_clients: Arc<AtomicU64>,
}

impl Forwarder {
    /// A forwarder for the public listener.
    pub fn new(routing: Arc<Routing>, metrics: Arc<SlotMetrics>, config: ForwardConfig) -> Self {
        let pool = Arc::new(UpstreamPool::new(
            Arc::clone(&routing),
            config.connect_timeout,
            config.upstream_idle_timeout,
        ));
        Forwarder {
            routing,
            metrics,
            pool,
            connect_timeout: config.connect_timeout,
            idle_timeout: config.upstream_idle_timeout,
            response_header_timeout: config.response_header_timeout,
            console_cookies: config.console_cookies,
            listener: Listener::Public,
            tls: false,
            https_port: 443,
            new_clients: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same forwarder for the TLS listener: same tables, metrics and
    /// canary counter, routed exactly like plain requests.
    pub fn over_tls(&self) -> Self {
        Forwarder {
            tls: true,
            ..self.clone()
        }
    }

    /// Redirects to HTTPS name this port (the TLS listener's).
    pub fn with_https_port(self, https_port: u16) -> Self {
        Forwarder { https_port, ..self }
    }

    /// The same forwarder for another listener (of the same thread: the
    /// idle upstream connections are shared).
    pub fn for_listener(&self, listener: Listener) -> Self {
        Forwarder {
            listener,
            ..self.clone()
        }
    }

    /// The same forwarder for another data-plane thread: same tables,
    /// metrics and canary counter, its own pool of idle upstream
    /// connections (which that thread must [`UpstreamPool::maintain`]).
    pub(crate) fn on_another_thread(&self) -> Self {
        Forwarder {
            pool: Arc::new(UpstreamPool::new(
                Arc::clone(&self.routing),
                self.connect_timeout,
                self.idle_timeout,
            )),
            ..self.clone()
        }
    }

    /// This thread's idle upstream connections, for its sweep.
    pub(crate) fn pool(&self) -> Arc<UpstreamPool> {
        Arc::clone(&self.pool)
    }
}

/// One client connection: its listener's forwarder and its address (for
/// `X-Forwarded-For`, rendered once). Its requests take their upstream
/// connections from the thread's pool ([`UpstreamPool`]).
pub struct ClientConn {
    forwarder: Arc<Forwarder>,
    client_ip: HeaderValue,
}

impl ClientConn {
    pub fn new(forwarder: Arc<Forwarder>, client_ip: IpAddr) -> Self {
        let client_ip = HeaderValue::from_str(&client_ip.to_string())
            .expect("an IP address is a valid header value");
        ClientConn {
            forwarder,
            client_ip,
        }
    }
}

/// Whether `n`-th new client (from 0) goes to the canary: exactly `percent`
/// of every 100 consecutive new clients do, spread evenly.
fn takes_canary(n: u64, percent: u8) -> bool {
    let p = u64::from(percent.min(100));
    (n % 100 + 1) * p / 100 > (n % 100) * p / 100
}

/// The slot a `switchyard_slot` cookie names, if any.
fn cookie_slot(headers: &HeaderMap) -> Option<SlotColor> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(SLOT_COOKIE)?.strip_prefix('='))
        .find_map(|value| value.trim().parse().ok())
}

/// Whether a request is a tester's: it carries the rule's header with the
/// exact value, or its cookie with the exact value. Allocates nothing: the
/// header name is looked up as a borrowed `&str` (names are at most
/// [`model::MAX_TESTER_NAME`] bytes, within `http`'s stack buffer) and
/// cookies are split in place.
fn is_tester(rule: &TesterRule, headers: &HeaderMap) -> bool {
    let by_header = rule.header.as_ref().is_some_and(|h| {
        headers
            .get_all(h.name.as_str())
            .iter()
            .any(|v| v.as_bytes() == h.value.as_bytes())
    });
    by_header
        || rule.cookie.as_ref().is_some_and(|c| {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .any(|(name, value)| name == c.name && value == c.value)
        })
}

/// Where a public-listener request goes, and the slot to pin the client to
/// (`Some` only for a new client under a canary split).
fn choose_public<'t>(
    table: &'t RouteTable,
    headers: &HeaderMap,
    new_clients: &AtomicU64,
) -> Option<(&'t Upstream, Option<SlotColor>)> {
    let active = table.active.as_ref()?;
    if let Some((rule, preview)) = table.tester_upstream() {
        if is_tester(rule, headers) {
            return Some((preview, None));
        }
    }
    let Some((percent, canary)) = table.canary_upstream() else {
        return Some((active, None));
    };
    match cookie_slot(headers) {
        Some(slot) if slot == active.slot => Some((active, None)),
        Some(slot) if slot == canary.slot => Some((canary, None)),
        _ => {
            let n = new_clients.fetch_add(1, Ordering::Relaxed);
            let pick = if takes_canary(n, percent) {
                canary
            } else {
                active
            };
            Some((pick, Some(pick.slot)))
        }
    }
}

/// `Connection: upgrade` with an `Upgrade` protocol: what to ask the slot for.
fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

/// The response body the data plane sends: a slot's streamed body (with its
/// request's guard riding along), or a short text of the proxy's own.
pub enum ProxyBody {
    Slot(GuardedBody),
    Text(Option<Bytes>),
}

/// Forwards one request to the slot the table in force names.
pub async fn forward(conn: Arc<ClientConn>, mut req: Request<Incoming>) -> Response<ProxyBody> {
    let f = &*conn.forwarder;
    // Read before the lookup: a connection is kept after the request only
    // if the tables did not change since, or still route to its address.
    let epoch = f.routing.epoch();
    // One snapshot per request: a switch affects only requests that start
    // after it, and a route's requests are counted in its own metrics.
    let lookup = f.routing.lookup(|| request_host(&req), req.uri().path());
    let (table, metrics, new_clients): (&RouteTable, &Arc<SlotMetrics>, &AtomicU64) = match &lookup
    {
        Lookup::Route(route)
            if route.redirects_to_https() && !f.tls && f.listener == Listener::Public =>
        {
            return to_https(&req, f.https_port);
        }
        Lookup::Route(route) => (route.table(), route.metrics(), route.new_clients()),
        Lookup::Default(table) => (table, &f.metrics, &f.new_clients),
        Lookup::Unrouted => {
            return plain(
                StatusCode::NOT_FOUND,
                "switchyard-proxy: no environment serves this host\n".to_string(),
            )
        }
    };
    let (upstream, pin_cookie) = match f.listener {
        Listener::Public => match choose_public(table, req.headers(), new_clients) {
            Some(choice) => choice,
            None => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "switchyard-proxy: no active slot\n".to_string(),
                )
            }
        },
        Listener::Preview => match table.preview.as_ref() {
            Some(preview) => (preview, None),
            None => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "switchyard-proxy: no preview slot\n".to_string(),
                )
            }
        },
    };
    let slot = upstream.slot;
    let mut guard = metrics.begin(slot, f.listener);

    let upgrade = requested_upgrade(req.headers()).map(|protocol| {
        let client_side = hyper::upgrade::on(&mut req);
        (protocol, client_side)
    });

    let outbound = upstream_request(req, Some(&conn.client_ip), &f.console_cookies, f.tls);
    let (mut head, mut body) = outbound.into_parts();
    if let Some((protocol, _)) = &upgrade {
        head.headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        head.headers.insert(header::UPGRADE, protocol.clone());
    }

    let mut sender = match f.pool.take(&upstream.address, epoch).await {
        Ok(sender) => sender,
        Err(err) => {
            guard.upstream_error(StatusCode::BAD_GATEWAY);
            tracing::warn!(%slot, address = %upstream.address, error = %err, "upstream unreachable");
            let why = match err {
                ConnectError::Address(_) => "has an invalid address",
                _ => "unreachable",
            };
            return plain(
                StatusCode::BAD_GATEWAY,
                format!(
                    "switchyard-proxy: slot {slot} at {} {why}\n",
                    upstream.address
                ),
            );
        }
    };
    let answer = tokio::time::timeout(
        f.response_header_timeout,
        f.pool
            .exchange(&mut sender, &head, &mut body, upgrade.is_some()),
    )
    .await;
    match answer {
        Ok(Ok(answer)) => {
            guard.respond(answer.status());
            let mut response = match (answer, upgrade) {
                (Answer::Upgrade(parts), Some((_, client_side))) => {
                    // The upstream connection becomes the tunnel: not reused.
                    switch_protocols(parts, sender, client_side, guard)
                }
                (
                    Answer::Response {
                        parts,
                        framing,
                        keep_alive,
                    },
                    _,
                ) => {
                    let body = SlotBody::new(f.pool(), sender, framing, keep_alive);
                    downstream_response(parts, guard, body)
                }
                (Answer::Upgrade(_), None) => {
                    unreachable!("a 101 is an answer only to a request that asked to upgrade")
                }
            };
            f.console_cookies.strip_set_cookie(response.headers_mut());
            if let Some(pinned) = pin_cookie {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, pin_cookie_value(pinned));
            }
            response
        }
        Ok(Err(SendError::Connect(err))) => {
            guard.upstream_error(StatusCode::BAD_GATEWAY);
            tracing::warn!(%slot, address = %upstream.address, error = %err, "upstream unreachable");
            plain(
                StatusCode::BAD_GATEWAY,
                format!(
                    "switchyard-proxy: slot {slot} at {} unreachable\n",
                    upstream.address
                ),
            )
        }
        Ok(Err(SendError::Request(err))) => {
            guard.upstream_error(StatusCode::BAD_GATEWAY);
            tracing::warn!(%slot, address = %upstream.address, error = %error_chain(&err), "upstream request failed");
            plain(
                StatusCode::BAD_GATEWAY,
                format!(
                    "switchyard-proxy: slot {slot} at {} failed to answer\n",
                    upstream.address
                ),
            )
        }
        Err(_elapsed) => {
            guard.upstream_error(StatusCode::GATEWAY_TIMEOUT);
            tracing::warn!(%slot, address = %upstream.address, timeout = ?f.response_header_timeout, "upstream timed out");
            plain(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "switchyard-proxy: slot {slot} at {} did not answer within {:?}\n",
                    upstream.address, f.response_header_timeout
                ),
            )
        }
    }
}

/// The host the slot will see (`upstream_request` keeps it): the Host
/// header, else the URI's authority (HTTP/2 clients may send only that).
fn request_host<B>(req: &Request<B>) -> Option<&[u8]> {
    match req.headers().get(header::HOST) {
        Some(host) => Some(host.as_bytes()),
        None => req.uri().authority().map(|a| a.as_str().as_bytes()),
    }
}

/// `switchyard_slot=<color>; …`: built once per color.
fn pin_cookie_value(slot: SlotColor) -> HeaderValue {
    match slot {
        SlotColor::Blue => {
            HeaderValue::from_static("switchyard_slot=blue; Path=/; HttpOnly; SameSite=Lax")
        }
        SlotColor::Green => {
            HeaderValue::from_static("switchyard_slot=green; Path=/; HttpOnly; SameSite=Lax")
        }
    }
}

/// The slot agreed to upgrade: answer the client 101 with the slot's
/// headers, then splice the client's upgraded connection and the slot's
/// socket together (the bytes the slot sent after its 101 go first). The
/// guard lives as long as the spliced connection.
fn switch_protocols(
    mut parts: hyper::http::response::Parts,
    sender: Sender,
    client_side: hyper::upgrade::OnUpgrade,
    mut guard: RequestGuard,
) -> Response<ProxyBody> {
    let slot = guard.slot();
    let protocol = parts.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(protocol) = protocol {
        parts.headers.insert(header::UPGRADE, protocol);
    }
    parts
        .headers
        .insert(SLOT_HEADER, HeaderValue::from_static(slot.as_str()));
    guard.mark_upgraded();
    let (mut upstream, early) = sender.into_upgraded();
    tokio::spawn(async move {
        match client_side.await {
            Ok(client) => {
                let mut client = TokioIo::new(client);
                let spliced = async {
                    client.write_all(&early).await?;
                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                };
                match spliced.await {
                    Ok((up, down)) => {
                        tracing::debug!(%slot, bytes_up = up, bytes_down = down, "upgraded connection closed")
                    }
                    Err(err) => {
                        tracing::debug!(%slot, %err, "upgraded connection ended with an error")
                    }
                }
            }
            Err(err) => {
                tracing::warn!(%slot, error = %error_chain(&err), "upgrade failed")
            }
        }
        drop(guard);
    });
    Response::from_parts(parts, ProxyBody::Text(None))
}

/// The client's request as the slot gets it: origin-form URI, HTTP/1.1,
/// hop-by-hop headers and the console's cookies removed, the user's Host
/// kept, `X-Forwarded-*` added. Reuses the request's parts: nothing is
/// parsed again and the client address was rendered once per connection.
fn upstream_request<B>(
    req: Request<B>,
    client_ip: Option<&HeaderValue>,
    console_cookies: &ConsoleCookies,
    tls: bool,
) -> Request<B> {
    let (mut parts, body) = req.into_parts();

    // HTTP/2 clients carry the host in the URI authority, not a Host header.
    let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });

    strip_hop_by_hop(&mut parts.headers);
    console_cookies.strip(&mut parts.headers);

    let mut target = uri::Parts::default();
    target.path_and_query = Some(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| uri::PathAndQuery::from_static("/")),
    );
    parts.uri = Uri::from_parts(target).expect("a path alone is a valid origin-form URI");
    // Slots are spoken to in HTTP/1.1 whatever the client spoke to us.
    parts.version = Version::HTTP_11;

    if let Some(host) = original_host {
        // Keep the user's Host: apps build absolute links and cookies from it.
        parts.headers.insert(header::HOST, host.clone());
        parts.headers.insert(X_FORWARDED_HOST, host);
    }
    if let Some(ip) = client_ip {
        let forwarded_for = match parts.headers.get(X_FORWARDED_FOR) {
            Some(prior) => {
                let mut joined = Vec::with_capacity(prior.len() + 2 + ip.len());
                joined.extend_from_slice(prior.as_bytes());
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(ip.as_bytes());
                HeaderValue::from_bytes(&joined).unwrap_or_else(|_| ip.clone())
            }
            None => ip.clone(),
        };
        parts.headers.insert(X_FORWARDED_FOR, forwarded_for);
    }
    let proto = if tls { "https" } else { "http" };
    parts
        .headers
        .insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));

    Request::from_parts(parts, body)
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

fn downstream_response(
    mut parts: hyper::http::response::Parts,
    guard: RequestGuard,
    body: SlotBody,
) -> Response<ProxyBody> {
    let slot = guard.slot();
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(SLOT_HEADER, HeaderValue::from_static(slot.as_str()));
    // The guard rides along with the body: a request stays in flight (and
    // keeps draining a slot busy) until its response has been streamed out.
    let body = GuardedBody {
        inner: body,
        _guard: guard,
    };
    Response::from_parts(parts, ProxyBody::Slot(body))
}

/// The headers that are hop-by-hop in themselves (RFC 9110 §7.6.1); any a
/// `Connection` header names are too.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most requests and responses carry none of them: one pass over the
    // names, compared without hashing, spares nine lookups by hash on the
    // way in and nine on the way out. A `Connection` header is one of
    // them, so the headers it names are never skipped.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
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
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// 308 to the same URL over HTTPS; not counted in any slot's metrics (no
/// slot is involved), like a 404 for an unknown host.
fn to_https<B>(req: &Request<B>, https_port: u16) -> Response<ProxyBody> {
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = request_host(req)
        .and_then(|host| crate::redirect::location(host, path_and_query, https_port));
    let Some(location) = location else {
        return plain(
            StatusCode::BAD_REQUEST,
            "switchyard-proxy: cannot redirect to HTTPS: bad Host\n".to_string(),
        );
    };
    let mut response = Response::new(ProxyBody::Text(None));
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    response.headers_mut().insert(header::LOCATION, location);
    response
}

fn plain(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::Text(Some(Bytes::from(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
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

/// A slot's response body with its request's guard.
pub struct GuardedBody {
    inner: SlotBody,
    _guard: RequestGuard,
}

impl hyper::body::Body for GuardedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.inner
            .poll_data(cx)
            .map(|data| data.map(|data| data.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.inner.exact() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl hyper::body::Body for ProxyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ProxyBody::Slot(body) => Pin::new(body).poll_frame(cx),
            ProxyBody::Text(text) => Poll::Ready(text.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Slot(body) => body.is_end_stream(),
            ProxyBody::Text(text) => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Slot(body) => body.size_hint(),
            ProxyBody::Text(text) => {
                SizeHint::with_exact(text.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route_table::{Canary, NameValue};

    #[test]
    fn canary_split_is_exact_and_even() {
        for percent in [0u8, 1, 10, 25, 33, 50, 99, 100] {
            let hits = (0..100).filter(|&n| takes_canary(n, percent)).count();
            assert_eq!(hits, usize::from(percent));
            let again = (100..200).filter(|&n| takes_canary(n, percent)).count();
            assert_eq!(again, usize::from(percent));
        }
        // 50 %: every other client, not the first fifty.
        assert!(!takes_canary(0, 50) && takes_canary(1, 50) && !takes_canary(2, 50));
    }

    #[test]
    fn cookie_keeps_a_client_on_a_routable_slot() {
        let up = |slot, port: u16| Upstream {
            slot,
            address: format!("127.0.0.1:{port}"),
        };
        let mut table = RouteTable {
            generation: 1,
            active: Some(up(SlotColor::Blue, 1)),
            preview: Some(up(SlotColor::Green, 2)),
            canary: Some(Canary {
                slot: SlotColor::Green,
                percent: 100,
            }),
            testers: None,
        };
        let counter = AtomicU64::new(0);
        let with_cookie = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
            h
        };
        let (u, pin) = choose_public(&table, &HeaderMap::new(), &counter).unwrap();
        assert_eq!((u.slot, pin), (SlotColor::Green, Some(SlotColor::Green)));
        let h = with_cookie("a=1; switchyard_slot=blue; b=2");
        assert_eq!(cookie_slot(&h), Some(SlotColor::Blue));
        let (u, pin) = choose_public(&table, &h, &counter).unwrap();
        assert_eq!((u.slot, pin), (SlotColor::Blue, None));
        let (u, pin) =
            choose_public(&table, &with_cookie("switchyard_slot=purple"), &counter).unwrap();
        assert_eq!((u.slot, pin), (SlotColor::Green, Some(SlotColor::Green)));
        // Canary off: the cookie is ignored and nothing is pinned.
        table.canary = None;
        let (u, pin) =
            choose_public(&table, &with_cookie("switchyard_slot=green"), &counter).unwrap();
        assert_eq!((u.slot, pin), (SlotColor::Blue, None));
    }

    #[test]
    fn testers_reach_the_preview_by_header_or_cookie() {
        let up = |slot, port: u16| Upstream {
            slot,
            address: format!("127.0.0.1:{port}"),
        };
        let mut table = RouteTable {
            generation: 1,
            active: Some(up(SlotColor::Blue, 1)),
            preview: Some(up(SlotColor::Green, 2)),
            canary: None,
            testers: Some(TesterRule {
                header: Some(NameValue {
                    name: "X-Tester".into(),
                    value: "me".into(),
                }),
                cookie: Some(NameValue {
                    name: "tester".into(),
                    value: "yes".into(),
                }),
            }),
        };
        let counter = AtomicU64::new(0);
        let headers = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (n, v) in pairs {
                h.append(
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            h
        };
        let slot_of = |table: &RouteTable, h: &HeaderMap| {
            let (u, pin) = choose_public(table, h, &counter).unwrap();
            (u.slot, pin)
        };
        let green = (SlotColor::Green, None);
        let blue = (SlotColor::Blue, None);
        // Header name in any case, value exact; several values: any matches.
        assert_eq!(slot_of(&table, &headers(&[("x-tester", "me")])), green);
        assert_eq!(
            slot_of(&table, &headers(&[("x-tester", "you"), ("x-tester", "me")])),
            green
        );
        assert_eq!(slot_of(&table, &headers(&[("x-tester", "Me")])), blue);
        assert_eq!(slot_of(&table, &headers(&[("x-tester", "me2")])), blue);
        assert_eq!(slot_of(&table, &headers(&[("x-other", "me")])), blue);
        // Cookie among others, name and value exact.
        assert_eq!(
            slot_of(&table, &headers(&[("cookie", "a=1; tester=yes; b=2")])),
            green
        );
        assert_eq!(slot_of(&table, &headers(&[("cookie", "tester=no")])), blue);
        assert_eq!(slot_of(&table, &headers(&[("cookie", "Tester=yes")])), blue);
        assert_eq!(
            slot_of(&table, &headers(&[("cookie", "xtester=yes")])),
            blue
        );
        // A tester wins over a slot cookie pinning it to the active slot.
        table.canary = Some(Canary {
            slot: SlotColor::Green,
            percent: 0,
        });
        assert_eq!(
            slot_of(
                &table,
                &headers(&[("x-tester", "me"), ("cookie", "switchyard_slot=blue")])
            ),
            green
        );
        // No preview slot: the rule routes nobody.
        table.canary = None;
        table.preview = None;
        assert_eq!(slot_of(&table, &headers(&[("x-tester", "me")])), blue);
    }

    #[test]
    fn upgrade_needs_the_connection_token_and_a_protocol() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(requested_upgrade(&h), None);
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert_eq!(requested_upgrade(&h).unwrap(), "websocket");
        h.remove(header::UPGRADE);
        assert_eq!(requested_upgrade(&h), None);
    }

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
    fn each_hop_by_hop_header_alone_is_stripped_and_others_are_kept() {
        for name in HOP_BY_HOP {
            // Any spelling the client sends: header names are case-insensitive.
            let sent = name.as_str().to_ascii_uppercase();
            let mut h = HeaderMap::new();
            h.insert(
                HeaderName::from_bytes(sent.as_bytes()).unwrap(),
                HeaderValue::from_static("x"),
            );
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            strip_hop_by_hop(&mut h);
            assert!(!h.contains_key(&name), "{name} kept");
            assert_eq!(h.len(), 1, "{name}: {h:?}");
        }
        let mut end_to_end = HeaderMap::new();
        end_to_end.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        end_to_end.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let before = end_to_end.clone();
        strip_hop_by_hop(&mut end_to_end);
        assert_eq!(end_to_end, before);
    }

    #[test]
    fn upstream_request_rewrites_uri_and_sets_forwarding_headers() {
        let req = Request::builder()
            .uri("/a/b?c=d")
            .header(header::HOST, "app.example")
            .header("x-forwarded-for", "10.0.0.1")
            .header(header::CONNECTION, "keep-alive")
            .header(header::COOKIE, "switchyard_session=s3cret; cart=42")
            .body(())
            .unwrap();
        let out = upstream_request(
            req,
            Some(&HeaderValue::from_static("192.0.2.7")),
            &ConsoleCookies::default(),
            false,
        );
        assert_eq!(out.uri(), "/a/b?c=d");
        assert_eq!(out.version(), Version::HTTP_11);
        let h = out.headers();
        assert_eq!(h[header::HOST], "app.example");
        assert_eq!(h["x-forwarded-host"], "app.example");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert!(!h.contains_key(header::CONNECTION));
        assert_eq!(h[header::COOKIE], "cart=42");
    }
}
