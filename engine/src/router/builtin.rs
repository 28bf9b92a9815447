//! Drives switchyard-proxy through its admin API (loopback, bearer secret).

use super::{RouterError, SlotTraffic, TrafficRouter};
use async_trait::async_trait;
use model::{MetricPoint, RoutingTable, SlotColor, SlotSeries, TrafficSeries};
use std::time::Duration;

/// A named route as switchyard-proxy's `/admin/routes/{name}` takes and
/// shows it (`proxy/src/routes.rs`, `RouteSpec`); the table is left out of
/// a PUT so the proxy keeps the one in force.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteSpec {
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub redirect_https: bool,
}

pub struct BuiltinRouter {
    admin_url: String,
    token: String,
    /// host:port of the proxy's preview listener (`--preview`), if it has one.
    preview: Option<String>,
    /// The named route this router drives (`/admin/routes/{name}/…`), for
    /// an environment sharing its proxy by host name; `None`: the proxy's
    /// default table (`/admin/routing`, …).
    route: Option<String>,
    /// `Host` the preview address is asked with, so a shared proxy's
    /// preview listener picks this route (its first exact host).
    preview_host: Option<String>,
    transport: Transport,
}

/// How the admin API is reached: loopback TCP (`http://127.0.0.1:8081`) or
/// the proxy's unix socket (`unix:/run/switchyard/proxy.sock`, started with
/// `--admin-socket`), which spares each switch a TCP handshake.
enum Transport {
    Tcp(reqwest::Client),
    Unix(std::path::PathBuf),
}

/// Every admin request gives up after this long.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

impl BuiltinRouter {
    pub fn new(admin_url: &str, token: String) -> Self {
        let admin_url = admin_url.trim_end_matches('/').to_string();
        let transport = match admin_url.strip_prefix("unix:") {
            Some(path) => Transport::Unix(path.into()),
            None => Transport::Tcp(
                reqwest::Client::builder()
                    .timeout(ADMIN_TIMEOUT)
                    .no_proxy()
                    .build()
                    .expect("static reqwest configuration"),
            ),
        };
        BuiltinRouter {
            admin_url,
            token,
            preview: None,
            route: None,
            preview_host: None,
            transport,
        }
    }

    /// The proxy was started with `--preview address` (host:port): the
    /// table's `preview` slot is served there.
    pub fn with_preview(mut self, address: Option<String>) -> Self {
        self.preview = address;
        self
    }

    /// Drives the named route `name` instead of the default table: every
    /// read and write goes to `/admin/routes/{name}/…`, with the same
    /// bodies, the same generation fencing and the same error mapping.
    /// `preview_host`: the route's exact host the preview is reached with.
    pub fn for_route(mut self, name: &str, preview_host: Option<String>) -> Self {
        self.route = Some(name.to_string());
        self.preview_host = preview_host;
        self
    }

    /// The admin path of `what` (`routing`, `drain`, `metrics`,
    /// `metrics/series`) for this router's table.
    fn admin_path(&self, what: &str) -> String {
        match &self.route {
            Some(name) => format!("/admin/routes/{name}/{what}"),
            None => format!("/admin/{what}"),
        }
    }

    /// `PUT /admin/routes/{name}`: creates the route, or changes its hosts,
    /// prefix and redirect keeping its table (and so the slot users are on).
    pub async fn put_route(&self, name: &str, route: &RouteSpec) -> Result<(), RouterError> {
        let body = serde_json::to_vec(route)
            .map_err(|e| RouterError::Rejected(format!("unencodable route: {e}")))?;
        let (status, body) = self
            .send(
                reqwest::Method::PUT,
                &format!("/admin/routes/{name}"),
                &[],
                Some(body),
            )
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(RouterError::Rejected(error_body(status, &body)))
        }
    }

    /// `PUT /admin/routes/{name}` with a table: a route the proxy lost,
    /// put back serving the slot the console records as live. Fenced like
    /// any table write (refused unless newer than the route's).
    pub async fn put_route_with_table(
        &self,
        name: &str,
        route: &RouteSpec,
        table: &RoutingTable,
    ) -> Result<(), RouterError> {
        let unencodable = |e: serde_json::Error| RouterError::Rejected(format!("unencodable route: {e}"));
        let mut body = serde_json::to_value(route).map_err(unencodable)?;
        body["table"] = serde_json::to_value(table).map_err(unencodable)?;
        let body = serde_json::to_vec(&body).map_err(unencodable)?;
        let (status, body) = self
            .send(
                reqwest::Method::PUT,
                &format!("/admin/routes/{name}"),
                &[],
                Some(body),
            )
            .await?;
        match status {
            s if s.is_success() => Ok(()),
            reqwest::StatusCode::CONFLICT => {
                Err(RouterError::StaleGeneration(error_body(status, &body)))
            }
            _ => Err(RouterError::Rejected(error_body(status, &body))),
        }
    }

    /// The route `name` as the proxy has it; `None` when it has none.
    pub async fn get_route(&self, name: &str) -> Result<Option<RouteSpec>, RouterError> {
        let path = format!("/admin/routes/{name}");
        let (status, body) = self.send(reqwest::Method::GET, &path, &[], None).await?;
        match status {
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| RouterError::Rejected(format!("unreadable route: {e}"))),
            _ => Err(RouterError::Rejected(error_body(status, &body))),
        }
    }

    /// `DELETE /admin/routes/{name}`; a route already gone is no error.
    pub async fn delete_route(&self, name: &str) -> Result<(), RouterError> {
        let path = format!("/admin/routes/{name}");
        let (status, body) = self.send(reqwest::Method::DELETE, &path, &[], None).await?;
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(RouterError::Rejected(error_body(status, &body)))
        }
    }

    /// One admin request with the secret: its status and body. A transport
    /// failure is `Unreachable`.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), RouterError> {
        let unreachable =
            |e: String| RouterError::Unreachable(format!("switchyard-proxy at {}: {e}", self.admin_url));
        match &self.transport {
            Transport::Tcp(http) => {
                let mut req = http
                    .request(method, format!("{}{path}", self.admin_url))
                    .query(query)
                    .bearer_auth(&self.token);
                if let Some(body) = body {
                    req = req
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body);
                }
                let resp = req.send().await.map_err(|e| unreachable(e.to_string()))?;
                let status = resp.status();
                let bytes = resp.bytes().await.map_err(|e| unreachable(e.to_string()))?;
                Ok((status, bytes.to_vec()))
            }
            Transport::Unix(socket) => {
                let target = match query {
                    [] => path.to_string(),
                    q => {
                        let pairs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!("{path}?{}", pairs.join("&"))
                    }
                };
                tokio::time::timeout(
                    ADMIN_TIMEOUT,
                    unix_request(socket, method, &target, &self.token, body),
                )
                .await
                .map_err(|_| unreachable(format!("no answer within {ADMIN_TIMEOUT:?}")))?
                .map_err(unreachable)
            }
        }
    }

    /// `GET {admin_url}{path}?{query}` answered 2xx with a JSON body of type
    /// `T` (`what` names it in the error).
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        what: &str,
    ) -> Result<T, RouterError> {
        let (status, body) = self.send(reqwest::Method::GET, path, query, None).await?;
        if !status.is_success() {
            return Err(RouterError::Rejected(error_body(status, &body)));
        }
        serde_json::from_slice(&body)
            .map_err(|e| RouterError::Rejected(format!("unreadable {what}: {e}")))
    }
}

fn error_body(status: reqwest::StatusCode, body: &[u8]) -> String {
    format!("{status}: {}", String::from_utf8_lossy(body).trim())
}

/// One HTTP/1.1 request over the proxy's unix socket.
async fn unix_request(
    socket: &std::path::Path,
    method: reqwest::Method,
    target: &str,
    token: &str,
    body: Option<Vec<u8>>,
) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    use http_body_util::BodyExt;
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut req = hyper::Request::builder()
        .method(method.as_str())
        .uri(target)
        .header(hyper::header::HOST, "switchyard-proxy")
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        req = req.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = reqwest::StatusCode::from_u16(resp.status().as_u16()).map_err(|e| e.to_string())?;
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, bytes.to_vec()))
}

// Hand-written so the admin secret cannot reach a log through `{:?}`.
impl std::fmt::Debug for BuiltinRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinRouter")
            .field("admin_url", &self.admin_url)
            .field("preview", &self.preview)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TrafficRouter for BuiltinRouter {
    async fn current(&self) -> Result<RoutingTable, RouterError> {
        self.get_json(&self.admin_path("routing"), &[], "routing table")
            .await
    }

    async fn apply(&self, table: &RoutingTable) -> Result<RoutingTable, RouterError> {
        let body = serde_json::to_vec(table)
            .map_err(|e| RouterError::Rejected(format!("unencodable routing table: {e}")))?;
        let (status, body) = self
            .send(
                reqwest::Method::PUT,
                &self.admin_path("routing"),
                &[],
                Some(body),
            )
            .await?;
        match status {
            s if s.is_success() => serde_json::from_slice(&body)
                .map_err(|e| RouterError::Rejected(format!("unreadable routing table: {e}"))),
            reqwest::StatusCode::CONFLICT => {
                Err(RouterError::StaleGeneration(error_body(status, &body)))
            }
            _ => Err(RouterError::Rejected(error_body(status, &body))),
        }
    }

    fn preview_url(&self) -> Option<String> {
        self.preview.as_ref().map(|a| format!("http://{a}"))
    }

    fn preview_host(&self) -> Option<String> {
        self.preview_host.clone()
    }

    async fn in_flight(&self, slot: SlotColor) -> Result<Option<u64>, RouterError> {
        /// The part of the proxy's `GET /admin/drain` answer the drain reads.
        #[derive(serde::Deserialize)]
        struct Drain {
            in_flight: u64,
        }
        let drain: Drain = self
            .get_json(
                &self.admin_path("drain"),
                &[("slot", slot.as_str().to_string())],
                "drain status",
            )
            .await?;
        Ok(Some(drain.in_flight))
    }

    async fn slot_traffic(
        &self,
        slot: SlotColor,
        window_secs: u64,
    ) -> Result<Option<SlotTraffic>, RouterError> {
        // The parts of the proxy's `GET /admin/metrics` answer the watch reads:
        // the public listener only (the preview address is not users).
        #[derive(serde::Deserialize)]
        struct Report {
            slots: std::collections::HashMap<String, SlotReport>,
        }
        #[derive(serde::Deserialize)]
        struct SlotReport {
            listeners: Listeners,
        }
        #[derive(serde::Deserialize)]
        struct Listeners {
            public: Stats,
        }
        #[derive(serde::Deserialize)]
        struct Stats {
            responses: std::collections::HashMap<String, u64>,
            latency: Latency,
        }
        #[derive(serde::Deserialize)]
        struct Latency {
            p95_ms: Option<f64>,
        }
        let report: Report = self
            .get_json(
                &self.admin_path("metrics"),
                &[("window_secs", window_secs.to_string())],
                "metrics",
            )
            .await?;
        let stats = report
            .slots
            .get(slot.as_str())
            .map(|s| &s.listeners.public)
            .ok_or_else(|| RouterError::Rejected(format!("metrics without slot {slot}")))?;
        Ok(Some(SlotTraffic {
            responses: stats.responses.values().sum(),
            errors: stats.responses.get("5xx").copied().unwrap_or(0),
            p95_ms: stats.latency.p95_ms,
        }))
    }

    async fn traffic_series(
        &self,
        window_secs: u64,
        step_secs: u64,
    ) -> Result<Option<TrafficSeries>, RouterError> {
        // The proxy's `GET /admin/metrics/series` answer.
        #[derive(serde::Deserialize)]
        struct Report {
            window_secs: u64,
            step_secs: u64,
            points: Vec<Point>,
        }
        #[derive(serde::Deserialize)]
        struct Point {
            ago_secs: u64,
            blue: Figures,
            green: Figures,
        }
        #[derive(serde::Deserialize)]
        struct Figures {
            requests_per_sec: f64,
            error_rate: f64,
            p95_ms: Option<f64>,
        }
        let report: Report = self
            .get_json(
                &self.admin_path("metrics/series"),
                &[
                    ("window_secs", window_secs.to_string()),
                    ("step_secs", step_secs.to_string()),
                ],
                "metrics series",
            )
            .await?;
        let slots = SlotColor::ALL
            .into_iter()
            .map(|slot| SlotSeries {
                slot,
                points: report
                    .points
                    .iter()
                    .map(|p| {
                        let f = match slot {
                            SlotColor::Blue => &p.blue,
                            SlotColor::Green => &p.green,
                        };
                        MetricPoint {
                            ago_secs: p.ago_secs,
                            requests_per_sec: f.requests_per_sec,
                            error_rate: f.error_rate,
                            p95_ms: f.p95_ms,
                        }
                    })
                    .collect(),
            })
            .collect();
        Ok(Some(TrafficSeries {
            window_secs: report.window_secs,
            step_secs: report.step_secs,
            slots,
            switched_ago_secs: None,
        }))
    }
}
