//! Traffic routers decide which slot users reach. The pipeline only sees the
//! `TrafficRouter` trait; `builtin` drives switchyard-proxy,
//! `nginx` rewrites an upstream include and reloads a local nginx. Both can
//! serve the idle slot on a separate preview address (`preview_url`).

/// The response header both routers' preview listeners set to the slot that
/// answered (switchyard-proxy on every forwarded answer; the nginx router's
/// preview server block with `add_header`): how a deploy checks that its
/// preview address serves the slot it just started.
pub const SLOT_HEADER: &str = "x-switchyard-slot";

pub mod builtin;
pub mod launcher;
pub mod nginx;

use async_trait::async_trait;
use model::{RoutingTable, SlotColor, TrafficSeries};

pub use builtin::{BuiltinRouter, RouteSpec};
pub use launcher::{ProxyLauncher, ProxyProcess};
pub use nginx::{NginxRouter, NginxSettings};

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("refused a stale write: {0}")]
    StaleGeneration(String),
    #[error("rejected: {0}")]
    Rejected(String),
}

#[async_trait]
pub trait TrafficRouter: Send + Sync {
    async fn current(&self) -> Result<RoutingTable, RouterError>;
    /// Installs `table` atomically. The router refuses it unless its generation
    /// is newer than the one in force (fencing against stale workers).
    /// `table.preview`, when set, is served on the router's preview address
    /// only (never to users); a router without one refuses it.
    async fn apply(&self, table: &RoutingTable) -> Result<RoutingTable, RouterError>;
    /// The base URL (`http://host:port`, no trailing slash) where this
    /// router serves the table's `preview` slot, if it has a preview
    /// listener. Deploys run their gates there (see `crate::preview`).
    fn preview_url(&self) -> Option<String> {
        None
    }
    /// The `Host` requests to `preview_url` carry, when the preview
    /// listener is shared by several environments told apart by host
    /// (switchyard-proxy's named routes); `None`: the URL's own.
    fn preview_host(&self) -> Option<String> {
        None
    }
    /// Where a person reaches the preview: [`preview_url`](Self::preview_url)
    /// itself, or, when the listener is shared by host name, that host at
    /// the listener's port (the bare address would answer 404 there).
    fn preview_for_people(&self) -> Option<String> {
        let url = self.preview_url()?;
        let listen = url.trim_start_matches("http://");
        Some(person_preview_url(listen, self.preview_host().as_deref()))
    }
    /// Requests to `slot` still running through this router, when it can
    /// tell. `None`: it cannot count them (nginx: the old workers of a
    /// graceful reload finish their requests by themselves).
    async fn in_flight(&self, _slot: SlotColor) -> Result<Option<u64>, RouterError> {
        Ok(None)
    }
    /// What users got from `slot` over the last `window_secs` seconds, when
    /// the router measures it (`None`: it does not).
    async fn slot_traffic(
        &self,
        _slot: SlotColor,
        _window_secs: u64,
    ) -> Result<Option<SlotTraffic>, RouterError> {
        Ok(None)
    }
    /// Both slots' traffic over the last `window_secs`, one point per
    /// `step_secs`, when the router measures it.
    async fn traffic_series(
        &self,
        _window_secs: u64,
        _step_secs: u64,
    ) -> Result<Option<TrafficSeries>, RouterError> {
        Ok(None)
    }
}

/// Answers users got from one slot through the router, over a window.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotTraffic {
    pub responses: u64,
    /// 5xx answers (the slot's own, and the router's 502/504 for it).
    pub errors: u64,
    pub p95_ms: Option<f64>,
}

/// Where a person reaches a preview listener at `listen` (`host:port`):
/// `http://listen`, or, for an environment sharing the listener by host
/// name, `http://host:port` with that host (the listener picks the route
/// by `Host`, so the bare address would answer 404).
pub(crate) fn person_preview_url(listen: &str, host: Option<&str>) -> String {
    match (host, listen.rsplit_once(':')) {
        (Some(host), Some((_, port))) => format!("http://{host}:{port}"),
        _ => format!("http://{listen}"),
    }
}

#[cfg(test)]
mod preview_tests {
    #[test]
    fn a_shared_preview_is_named_by_its_host() {
        assert_eq!(
            super::person_preview_url("127.0.0.1:8082", None),
            "http://127.0.0.1:8082"
        );
        assert_eq!(
            super::person_preview_url("127.0.0.1:8082", Some("shop.example.com")),
            "http://shop.example.com:8082"
        );
    }
}
