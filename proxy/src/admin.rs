//! The admin API the console drives the proxy with.
//!
//! | route                                   | auth   | answer |
//! |-----------------------------------------|--------|--------|
//! | `GET /admin/health`                     | none   | 200 `{"ok":true}` |
//! | `GET /admin/routing`                    | bearer | 200 [`RouteTable`] |
//! | `PUT /admin/routing`                    | bearer | 200 new [`RouteTable`]; 409 stale generation; 400 malformed or invalid; 500 not persisted |
//! | `GET /admin/status`                     | bearer | 200 `{"routing","in_flight","requests","errors"}` |
//! | `GET /admin/metrics[?window_secs=N]`    | bearer | 200 [`MetricsReport`]; 400 N outside 1..=600 |
//! | `GET /admin/metrics/prometheus`         | bearer | 200 text/plain; version=0.0.4 |
//! | `GET /admin/metrics/series[?window_secs=N&step_secs=S]` | bearer | 200 [`SeriesReport`] (defaults 300 / 10); 400 bad window or step |
//! | `GET /admin/drain?slot=blue`            | bearer | 200 [`DrainStatus`]; 400 missing or unknown slot |
//! | `GET /admin/threads`                    | bearer | 200 [`Threads`]: open client connections per data-plane thread |
//! | `GET /admin/routes`                     | bearer | 200 `{"routes": [RouteSpec…]}` by name |
//! | `GET /admin/routes/{name}`              | bearer | 200 [`RouteSpec`]; 404 unknown route |
//! | `PUT /admin/routes/{name}`              | bearer | 201 created / 200 replaced [`RouteSpec`]; 400 malformed or invalid (names the field); 409 stale `table.generation` or a host+prefix another route holds (names it); 500 not persisted |
//! | `DELETE /admin/routes/{name}`           | bearer | 200 the removed [`RouteSpec`]; 404 unknown route |
//! | `GET`/`PUT /admin/routes/{name}/routing` | bearer | as `/admin/routing`, for that route's table; 404 unknown route |
//! | `GET /admin/routes/{name}/drain?slot=`  | bearer | as `/admin/drain`, that route's traffic only |
//! | `GET /admin/routes/{name}/metrics[?window_secs=N]` | bearer | as `/admin/metrics`, that route's traffic only |
//! | `GET /admin/routes/{name}/metrics/series[?window_secs=N&step_secs=S]` | bearer | as `/admin/metrics/series`, that route's traffic only |
//!
//! A route is `{"name","hosts":[…],"path_prefix"?,"table"}` (see
//! [`crate::routes`]); a PUT body is the same without `name` (the path's),
//! with `table` optional: left out, the route keeps its table (a new route
//! starts with none, answering 503 until one is set); given, it must have a
//! newer generation than the route's, exactly as `PUT /admin/routing`. The
//! default table and its metrics (`/admin/routing`, `/admin/status`,
//! `/admin/metrics`, `/admin/drain`) count only the requests no named route
//! claims; Prometheus shows every route's series with an
//! `environment="name"` label beside the default's unlabelled ones.
//!
//! The routing table is `{"generation", "active", "preview"?, "canary"?}`:
//! `preview` (an `Upstream`, the idle slot) and `canary` (`{"slot","percent"}`,
//! `slot` must be the preview slot, `percent` 0..=100) are optional, absent
//! from answers when unset, and set with the same generation-fenced PUT.
//! `active` must be present in a PUT (`null` clears the route).
//!
//! Upstream addresses must pass [`crate::upstream_policy`]: `ip:port` on
//! loopback or in an `--allow-upstream` network, never link-local,
//! unspecified, multicast/broadcast, port 0 or this proxy's own listeners.
//! A refused table is a 400 naming the field and the reason, and changes
//! nothing.
//!
//! Metrics are per slot, both listeners together and per listener
//! (`listeners.public`, `listeners.preview`); see [`crate::metrics`] for what
//! each number means and how windows are computed.
//!
//! Errors are JSON `{"error": "..."}`; 401 carries `WWW-Authenticate: Bearer`.

use crate::metrics::{self, BadWindow, MetricsReport, MetricsSnapshot, SeriesReport, SlotMetrics};
use crate::route_table::{RouteTable, TableRules};
use crate::routes::RouteError;
#[cfg(doc)]
use crate::routes::RouteSpec;
use crate::routing::{Routing, SwitchError};
use crate::serve::ThreadLoad;
use crate::token::AdminToken;
use crate::upstream_policy::UpstreamPolicy;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use model::SlotColor;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone)]
pub struct AdminState {
    pub routing: Arc<Routing>,
    pub metrics: Arc<SlotMetrics>,
    pub token: Arc<AdminToken>,
    /// Each data-plane thread's open client connections, the caller's first.
    pub threads: Arc<[ThreadLoad]>,
}

/// Body of `GET /admin/threads`: how evenly the client connections are
/// spread (see [`crate::serve`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threads {
    /// Per data-plane thread, the caller's (which also accepts) first.
    pub open_connections: Vec<usize>,
}

/// Body of `GET /admin/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub routing: RouteTable,
    #[serde(flatten)]
    pub metrics: MetricsSnapshot,
}

/// The default table's endpoints, before the token check (`admin_api::app`
/// puts them together with the named routes' and guards them all).
pub(crate) fn default_table_routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/routing", get(get_routing).put(put_routing))
        .route("/admin/status", get(get_status))
        .route("/admin/metrics", get(get_metrics))
        .route("/admin/threads", get(get_threads))
        .route("/admin/metrics/prometheus", get(get_prometheus))
        .route("/admin/metrics/series", get(get_series))
        .route("/admin/drain", get(get_drain))
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("invalid routing table: {0}")]
    Malformed(String),
    #[error("invalid route: {0}")]
    MalformedRoute(String),
    #[error(transparent)]
    Switch(#[from] SwitchError),
    #[error("{0}")]
    BadQuery(String),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match &self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::Malformed(_) | AdminError::MalformedRoute(_) | AdminError::BadQuery(_) => {
                StatusCode::BAD_REQUEST
            }
            AdminError::Switch(SwitchError::Stale { .. }) => StatusCode::CONFLICT,
            AdminError::Switch(SwitchError::Route(e))
                if matches!(**e, RouteError::Conflict { .. }) =>
            {
                StatusCode::CONFLICT
            }
            AdminError::Switch(SwitchError::Invalid(_) | SwitchError::Route(_)) => {
                StatusCode::BAD_REQUEST
            }
            AdminError::Switch(SwitchError::NoSuchRoute(_)) => StatusCode::NOT_FOUND,
            AdminError::Switch(SwitchError::Persist(_) | SwitchError::PersistInterrupted) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "admin request failed");
        }
        let mut body = serde_json::json!({ "error": self.to_string() });
        if let AdminError::Switch(SwitchError::Stale { current, .. }) = &self {
            body["current_generation"] = (*current).into();
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

pub(crate) async fn require_token(
    State(state): State<AdminState>,
    req: Request,
    next: Next,
) -> Result<Response, AdminError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match presented {
        Some(token) if state.token.matches(token) => Ok(next.run(req).await),
        _ => Err(AdminError::Unauthorized),
    }
}

async fn get_routing(State(state): State<AdminState>) -> Json<RouteTable> {
    Json(RouteTable::clone(&state.routing.current()))
}

/// The body is parsed by hand rather than with the `Json` extractor so every
/// malformed body is a 400 with serde's message, whatever the content type.
async fn put_routing(
    State(state): State<AdminState>,
    body: Bytes,
) -> Result<Json<RouteTable>, AdminError> {
    let next = parse_routing_table(&body, state.routing.policy())?;
    let installed = state.routing.switch(next).await?;
    match &installed.active {
        Some(up) => tracing::info!(
            generation = installed.generation,
            slot = %up.slot,
            address = %up.address,
            "routing switched"
        ),
        None => tracing::info!(
            generation = installed.generation,
            "routing cleared: no active slot"
        ),
    }
    if let Some(preview) = &installed.preview {
        tracing::info!(generation = installed.generation, slot = %preview.slot, address = %preview.address, "preview slot set");
    }
    if let Some(canary) = &installed.canary {
        tracing::info!(generation = installed.generation, slot = %canary.slot, percent = canary.percent, "canary split on");
    }
    Ok(Json(RouteTable::clone(&installed)))
}

/// A PUT body as a table that may be installed: well-formed and valid
/// under `policy`.
///
/// `active` must be present: serde would read a missing (or misspelt) key as
/// `None`, and "no active slot" takes every user offline, so clearing the
/// route has to be said explicitly with `"active": null`.
pub fn parse_routing_table(body: &[u8], policy: &UpstreamPolicy) -> Result<RouteTable, AdminError> {
    let malformed = |e: serde_json::Error| AdminError::Malformed(e.to_string());
    let value: serde_json::Value = serde_json::from_slice(body).map_err(malformed)?;
    if value.get("active").is_none() {
        return Err(AdminError::Malformed(
            "field `active` is required (use null to clear the route)".to_string(),
        ));
    }
    // Decoded from the bytes, not the value: a key given twice is refused
    // (a value keeps the last one silently), as the state file refuses it.
    let table: RouteTable = serde_json::from_slice(body).map_err(malformed)?;
    table.validate(policy).map_err(SwitchError::Invalid)?;
    Ok(table)
}

async fn get_threads(State(state): State<AdminState>) -> Json<Threads> {
    Json(Threads {
        open_connections: state.threads.iter().map(ThreadLoad::open).collect(),
    })
}

async fn get_status(State(state): State<AdminState>) -> Json<Status> {
    Json(Status {
        routing: RouteTable::clone(&state.routing.current()),
        metrics: state.metrics.snapshot(),
    })
}

async fn get_metrics(
    State(state): State<AdminState>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<MetricsReport>, AdminError> {
    metrics_report(&state.metrics, &query).map(Json)
}

/// `metrics` over the `window_secs` the query asks for (all time without).
pub(crate) fn metrics_report(
    metrics: &SlotMetrics,
    query: &std::collections::HashMap<String, String>,
) -> Result<MetricsReport, AdminError> {
    let window = match query.get("window_secs") {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| AdminError::BadQuery(BadWindow.to_string()))?,
        ),
    };
    metrics
        .report(window)
        .map_err(|e| AdminError::BadQuery(e.to_string()))
}

async fn get_series(
    State(state): State<AdminState>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<SeriesReport>, AdminError> {
    series_report(&state.metrics, &query).map(Json)
}

/// `metrics` as chart points over the query's `window_secs` and `step_secs`
/// (300 and 10 by default).
pub(crate) fn series_report(
    metrics: &SlotMetrics,
    query: &std::collections::HashMap<String, String>,
) -> Result<SeriesReport, AdminError> {
    let number = |name: &str, default: u64| match query.get(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| AdminError::BadQuery(format!("{name} must be a whole number of seconds"))),
    };
    metrics
        .series_at(
            std::time::Instant::now(),
            number("window_secs", 300)?,
            number("step_secs", 10)?,
        )
        .map_err(|e| AdminError::BadQuery(e.to_string()))
}

async fn get_prometheus(State(state): State<AdminState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let routes = state.routing.routes();
            let labelled: Vec<(&str, &SlotMetrics)> =
                routes.iter().map(|r| (r.name(), &**r.metrics())).collect();
            metrics::prometheus_text(&state.metrics, &labelled)
        },
    )
        .into_response()
}

/// Body of `GET /admin/drain?slot=…`: the slot is drained when `in_flight`
/// is 0 and the routing table no longer sends it traffic (`routed` empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainStatus {
    pub slot: SlotColor,
    /// Requests to the slot still running, on either listener, upgraded
    /// connections included.
    pub in_flight: u64,
    /// Of those, upgraded connections (WebSockets), which may never end by
    /// themselves.
    pub upgraded: u64,
    /// Where the current table still routes new requests to the slot:
    /// `"active"`, `"preview"`, `"canary"`.
    pub routed: Vec<String>,
}

async fn get_drain(
    State(state): State<AdminState>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<DrainStatus>, AdminError> {
    drain_status(&state.routing.current(), &state.metrics, &query).map(Json)
}

/// The drain status of the `slot` the query names, for the traffic `table`
/// routes and `metrics` counts (the default table's, or one route's).
pub(crate) fn drain_status(
    table: &RouteTable,
    metrics: &SlotMetrics,
    query: &std::collections::HashMap<String, String>,
) -> Result<DrainStatus, AdminError> {
    let slot: SlotColor = query
        .get("slot")
        .ok_or_else(|| {
            AdminError::BadQuery("query parameter `slot` is required (blue or green)".into())
        })?
        .parse()
        .map_err(|_| AdminError::BadQuery("`slot` must be blue or green".into()))?;
    let mut routed = Vec::new();
    if table.active.as_ref().is_some_and(|u| u.slot == slot) {
        routed.push("active".to_string());
    }
    if table.preview.as_ref().is_some_and(|u| u.slot == slot) {
        routed.push("preview".to_string());
    }
    if table.canary_upstream().is_some_and(|(_, u)| u.slot == slot) {
        routed.push("canary".to_string());
    }
    if table.tester_upstream().is_some_and(|(_, u)| u.slot == slot) {
        routed.push("testers".to_string());
    }
    Ok(DrainStatus {
        slot,
        in_flight: metrics.in_flight(slot),
        upgraded: metrics.upgraded(slot),
        routed,
    })
}
