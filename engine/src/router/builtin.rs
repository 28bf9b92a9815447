//! Drives switchyard-proxy through its admin API (loopback, bearer secret).

use super::{RouterError, SlotTraffic, TrafficRouter};
use async_trait::async_trait;
use model::{MetricPoint, RoutingTable, SlotColor, SlotSeries, TrafficSeries};
use std::time::Duration;

pub struct BuiltinRouter {
    admin_url: String,
    token: String,
    /// host:port of the proxy's preview listener (`--preview`), if it has one.
    preview: Option<String>,
    http: reqwest::Client,
}

impl BuiltinRouter {
    pub fn new(admin_url: &str, token: String) -> Self {
        BuiltinRouter {
            admin_url: admin_url.trim_end_matches('/').to_string(),
            token,
            preview: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .expect("static reqwest configuration"),
        }
    }

    /// The proxy was started with `--preview address` (host:port): the
    /// table's `preview` slot is served there.
    pub fn with_preview(mut self, address: Option<String>) -> Self {
        self.preview = address;
        self
    }

    /// Sends an admin request with the secret; a transport failure is
    /// `Unreachable`.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, RouterError> {
        req.bearer_auth(&self.token).send().await.map_err(|e| {
            RouterError::Unreachable(format!("switchyard-proxy at {}: {e}", self.admin_url))
        })
    }

    /// `GET {admin_url}{path}?{query}` answered 2xx with a JSON body of type
    /// `T` (`what` names it in the error).
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        what: &str,
    ) -> Result<T, RouterError> {
        let resp = self
            .send(
                self.http
                    .get(format!("{}{path}", self.admin_url))
                    .query(query),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(RouterError::Rejected(Self::error_body(resp).await));
        }
        resp.json()
            .await
            .map_err(|e| RouterError::Rejected(format!("unreadable {what}: {e}")))
    }

    async fn error_body(resp: reqwest::Response) -> String {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        format!("{status}: {}", body.trim())
    }
}

// Hand-written so the admin secret cannot reach a log through `{:?}`.
impl std::fmt::Debug for BuiltinRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinRouter")
            .field("admin_url", &self.admin_url)
            .field("preview", &self.preview)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TrafficRouter for BuiltinRouter {
    async fn current(&self) -> Result<RoutingTable, RouterError> {
        self.get_json("/admin/routing", &[], "routing table").await
    }

    async fn apply(&self, table: &RoutingTable) -> Result<RoutingTable, RouterError> {
        let resp = self
            .send(
                self.http
                    .put(format!("{}/admin/routing", self.admin_url))
                    .json(table),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => resp
                .json()
                .await
                .map_err(|e| RouterError::Rejected(format!("unreadable routing table: {e}"))),
            reqwest::StatusCode::CONFLICT => {
                Err(RouterError::StaleGeneration(Self::error_body(resp).await))
            }
            _ => Err(RouterError::Rejected(Self::error_body(resp).await)),
        }
    }

    fn preview_url(&self) -> Option<String> {
        self.preview.as_ref().map(|a| format!("http://{a}"))
    }

    async fn in_flight(&self, slot: SlotColor) -> Result<Option<u64>, RouterError> {
        /// The part of the proxy's `GET /admin/drain` answer the drain reads.
        #[derive(serde::Deserialize)]
        struct Drain {
            in_flight: u64,
        }
        let drain: Drain = self
            .get_json(
                "/admin/drain",
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
                "/admin/metrics",
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
                "/admin/metrics/series",
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
        }))
    }
}
