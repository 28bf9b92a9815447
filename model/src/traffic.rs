//! Where users go (the routing table a router serves) and what they got
//! from each slot (the dashboard's traffic series).

use crate::SlotColor;
use serde::{Deserialize, Serialize};

/// Where switchyard-proxy sends user traffic. `generation` fences writers:
/// the proxy refuses a table whose generation is not newer than its own, so a
/// stale deploy worker cannot switch traffic back behind a newer one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RoutingTable {
    pub generation: u64,
    pub active: Option<Upstream>,
    /// The idle slot, published on the router's preview address (never
    /// users' traffic) while a deploy's gates run. Absent from the JSON when
    /// unset, so a router that knows only `{generation, active}` reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Upstream>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub slot: SlotColor,
    /// host:port of the slot.
    pub address: String,
}

/// One point of a slot's traffic chart: what users got from it through the
/// router during one step.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// The step ended this many seconds ago.
    pub ago_secs: u64,
    pub requests_per_sec: f64,
    /// 5xx / responses, 0.0..=1.0.
    pub error_rate: f64,
    pub p95_ms: Option<f64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotSeries {
    pub slot: SlotColor,
    /// Oldest first.
    pub points: Vec<MetricPoint>,
}

/// Both slots' traffic over the last minutes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficSeries {
    pub window_secs: u64,
    pub step_secs: u64,
    pub slots: Vec<SlotSeries>,
}

/// The dashboard's metrics panel: the series, or why there is none (a router
/// that does not count per slot, a proxy that does not answer).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficView {
    pub series: Option<TrafficSeries>,
    pub unavailable: Option<String>,
}
