//! Drives switchyard-proxy through its admin API (loopback, bearer secret).

use super::{RouterError, SlotTraffic, TrafficRouter};
use async_trait::async_trait;
use model::{RoutingTable, SlotColor};
use std::time::Duration;

pub struct BuiltinRouter {
    admin_url: String,
    token: String,
    http: reqwest::Client,
}

impl BuiltinRouter {
    pub fn new(admin_url: &str, token: String) -> Self {
        BuiltinRouter {
            admin_url: admin_url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .expect("static reqwest configuration"),
        }
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
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TrafficRouter for BuiltinRouter {
    async fn current(&self) -> Result<RoutingTable, RouterError> {
        let resp = self
            .http
            .get(format!("{}/admin/routing", self.admin_url))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| {
                RouterError::Unreachable(format!("switchyard-proxy at {}: {e}", self.admin_url))
            })?;
        if !resp.status().is_success() {
            return Err(RouterError::Rejected(Self::error_body(resp).await));
        }
        resp.json()
            .await
            .map_err(|e| RouterError::Rejected(format!("unreadable routing table: {e}")))
    }

    async fn apply(&self, table: &RoutingTable) -> Result<RoutingTable, RouterError> {
        let resp = self
            .http
            .put(format!("{}/admin/routing", self.admin_url))
            .bearer_auth(&self.token)
            .json(table)
            .send()
            .await
            .map_err(|e| {
                RouterError::Unreachable(format!("switchyard-proxy at {}: {e}", self.admin_url))
            })?;
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

    async fn in_flight(&self, slot: SlotColor) -> Result<Option<u64>, RouterError> {
        /// The part of the proxy's `GET /admin/drain` answer the drain reads.
        #[derive(serde::Deserialize)]
        struct Drain {
            in_flight: u64,
        }
        let resp = self
            .http
            .get(format!("{}/admin/drain", self.admin_url))
            .query(&[("slot", slot.as_str())])
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| {
                RouterError::Unreachable(format!("switchyard-proxy at {}: {e}", self.admin_url))
            })?;
        if !resp.status().is_success() {
            return Err(RouterError::Rejected(Self::error_body(resp).await));
        }
        let drain: Drain = resp
            .json()
            .await
            .map_err(|e| RouterError::Rejected(format!("unreadable drain status: {e}")))?;
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
        let resp = self
            .http
            .get(format!("{}/admin/metrics", self.admin_url))
            .query(&[("window_secs", window_secs.to_string())])
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| {
                RouterError::Unreachable(format!("switchyard-proxy at {}: {e}", self.admin_url))
            })?;
        if !resp.status().is_success() {
            return Err(RouterError::Rejected(Self::error_body(resp).await));
        }
        let report: Report = resp
            .json()
            .await
            .map_err(|e| RouterError::Rejected(format!("unreadable metrics: {e}")))?;
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
}
