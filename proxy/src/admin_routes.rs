//! The admin API of named routes (`/admin/routes…`), one per environment;
//! see [`crate::admin`] for the table of every route and [`crate::routes`]
//! for how requests are matched. The same bearer token guards them, on TCP
//! and on the unix socket.

use crate::admin::{self, AdminError, AdminState, DrainStatus};
use crate::metrics::{MetricsReport, SeriesReport};
use crate::route_table::RouteTable;
use crate::routes::RouteSpec;
use crate::routing::{RouteChange, SwitchError};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `router` with the named-route endpoints added (before the token layer).
pub(crate) fn add(router: Router<AdminState>) -> Router<AdminState> {
    router
        .route("/admin/routes", get(list))
        .route(
            "/admin/routes/{name}",
            get(get_one).put(put_one).delete(delete_one),
        )
        .route(
            "/admin/routes/{name}/routing",
            get(get_routing).put(put_routing),
        )
        .route("/admin/routes/{name}/drain", get(drain))
        .route("/admin/routes/{name}/metrics", get(metrics))
        .route("/admin/routes/{name}/metrics/series", get(series))
}

/// Body of `GET /admin/routes`: every route, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteList {
    pub routes: Vec<RouteSpec>,
}

/// Body of `PUT /admin/routes/{name}`; the name is the path's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteBody {
    hosts: Vec<String>,
    #[serde(default)]
    path_prefix: Option<String>,
    #[serde(default)]
    redirect_https: bool,
    #[serde(default)]
    table: Option<RouteTable>,
}

async fn list(State(state): State<AdminState>) -> Json<RouteList> {
    Json(RouteList {
        routes: state.routing.routes().iter().map(|r| r.spec()).collect(),
    })
}

async fn get_one(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<RouteSpec>, AdminError> {
    match state.routing.routes().get(&name) {
        Some(route) => Ok(Json(route.spec())),
        None => Err(SwitchError::NoSuchRoute(name).into()),
    }
}

/// Creates or replaces the route: 201 created, 200 replaced.
async fn put_one(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<RouteSpec>), AdminError> {
    let change = parse_route(&body)?;
    let (route, created) = state.routing.put_route(&name, change).await?;
    let table = route.table();
    tracing::info!(
        route = %name,
        hosts = ?route.spec().hosts,
        generation = table.generation,
        active = ?table.active.as_ref().map(|u| (u.slot, &u.address)),
        created,
        "route set"
    );
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(route.spec())))
}

/// A PUT body as a change to make. As for `PUT /admin/routing`, a table
/// must say `active` (`null` to clear), and a key given twice is refused.
fn parse_route(body: &[u8]) -> Result<RouteChange, AdminError> {
    let malformed = |e: serde_json::Error| AdminError::MalformedRoute(e.to_string());
    let value: serde_json::Value = serde_json::from_slice(body).map_err(malformed)?;
    if let Some(table) = value.get("table") {
        if table.is_object() && table.get("active").is_none() {
            return Err(AdminError::MalformedRoute(
                "field `table.active` is required (use null to clear the route)".to_string(),
            ));
        }
    }
    let body: RouteBody = serde_json::from_slice(body).map_err(malformed)?;
    Ok(RouteChange {
        hosts: body.hosts,
        path_prefix: body.path_prefix,
        redirect_https: body.redirect_https,
        table: body.table,
    })
}

async fn delete_one(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<RouteSpec>, AdminError> {
    let removed = state.routing.delete_route(&name).await?;
    tracing::info!(route = %name, "route removed");
    Ok(Json(removed.spec()))
}

async fn get_routing(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<RouteTable>, AdminError> {
    match state.routing.routes().get(&name) {
        Some(route) => Ok(Json(RouteTable::clone(route.table()))),
        None => Err(SwitchError::NoSuchRoute(name).into()),
    }
}

/// `PUT /admin/routing` for one route: same body, same fencing, same
/// answers; the route's hosts and prefix stay.
async fn put_routing(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<RouteTable>, AdminError> {
    let next = admin::parse_routing_table(&body, state.routing.policy())?;
    let installed = state.routing.switch_route(&name, next).await?;
    tracing::info!(
        route = %name,
        generation = installed.generation,
        active = ?installed.active.as_ref().map(|u| (u.slot, &u.address)),
        "route switched"
    );
    Ok(Json(RouteTable::clone(&installed)))
}

async fn drain(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<DrainStatus>, AdminError> {
    let routes = state.routing.routes();
    let route = routes
        .get(&name)
        .ok_or_else(|| SwitchError::NoSuchRoute(name.clone()))?;
    admin::drain_status(route.table(), route.metrics(), &query).map(Json)
}

async fn metrics(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<MetricsReport>, AdminError> {
    let routes = state.routing.routes();
    let route = routes
        .get(&name)
        .ok_or_else(|| SwitchError::NoSuchRoute(name.clone()))?;
    admin::metrics_report(route.metrics(), &query).map(Json)
}

async fn series(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<SeriesReport>, AdminError> {
    let routes = state.routing.routes();
    let route = routes
        .get(&name)
        .ok_or_else(|| SwitchError::NoSuchRoute(name.clone()))?;
    admin::series_report(route.metrics(), &query).map(Json)
}
