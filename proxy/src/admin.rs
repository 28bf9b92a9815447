//! The admin API the console drives the proxy with.
//!
//! | route                 | auth   | answer |
//! |-----------------------|--------|--------|
//! | `GET /admin/health`   | none   | 200 `{"ok":true}` |
//! | `GET /admin/routing`  | bearer | 200 `RoutingTable` |
//! | `PUT /admin/routing`  | bearer | 200 new `RoutingTable`; 409 stale generation; 400 malformed; 500 not persisted |
//! | `GET /admin/status`   | bearer | 200 `{"routing","in_flight","requests","errors"}` |
//!
//! Errors are JSON `{"error": "..."}`; 401 carries `WWW-Authenticate: Bearer`.

use crate::metrics::{MetricsSnapshot, SlotMetrics};
use crate::routing::{Routing, SwitchError};
use crate::token::AdminToken;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use model::RoutingTable;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone)]
pub struct AdminState {
    pub routing: Arc<Routing>,
    pub metrics: Arc<SlotMetrics>,
    pub token: Arc<AdminToken>,
}

/// Body of `GET /admin/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub routing: RoutingTable,
    #[serde(flatten)]
    pub metrics: MetricsSnapshot,
}

pub fn app(state: AdminState) -> Router {
    Router::new()
        .route("/admin/routing", get(get_routing).put(put_routing))
        .route("/admin/status", get(get_status))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        // Liveness for supervisors and the console's preflight; reveals nothing.
        .route(
            "/admin/health",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("invalid routing table: {0}")]
    Malformed(String),
    #[error(transparent)]
    Switch(#[from] SwitchError),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match &self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::Malformed(_) => StatusCode::BAD_REQUEST,
            AdminError::Switch(SwitchError::Stale { .. }) => StatusCode::CONFLICT,
            AdminError::Switch(SwitchError::InvalidUpstream { .. }) => StatusCode::BAD_REQUEST,
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

async fn require_token(
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

async fn get_routing(State(state): State<AdminState>) -> Json<RoutingTable> {
    Json(RoutingTable::clone(&state.routing.current()))
}

/// The body is parsed by hand rather than with the `Json` extractor so every
/// malformed body is a 400 with serde's message, whatever the content type.
async fn put_routing(
    State(state): State<AdminState>,
    body: Bytes,
) -> Result<Json<RoutingTable>, AdminError> {
    let next = parse_routing_table(&body)?;
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
    Ok(Json(RoutingTable::clone(&installed)))
}

/// `active` must be present: serde would read a missing (or misspelt) key as
/// `None`, and "no active slot" takes every user offline, so clearing the
/// route has to be said explicitly with `"active": null`.
fn parse_routing_table(body: &[u8]) -> Result<RoutingTable, AdminError> {
    let malformed = |e: serde_json::Error| AdminError::Malformed(e.to_string());
    let value: serde_json::Value = serde_json::from_slice(body).map_err(malformed)?;
    if value.get("active").is_none() {
        return Err(AdminError::Malformed(
            "field `active` is required (use null to clear the route)".to_string(),
        ));
    }
    serde_json::from_value(value).map_err(malformed)
}

async fn get_status(State(state): State<AdminState>) -> Json<Status> {
    Json(Status {
        routing: RoutingTable::clone(&state.routing.current()),
        metrics: state.metrics.snapshot(),
    })
}
