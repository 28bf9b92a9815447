//! `/api/v1/environments`: status, history, deploy and rollback.

use super::auth::ApiActor;
use super::body::ApiJson;
use super::problem::{ApiResult, Problem};
use app::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use engine::pipeline::DeployOptions;
use model::{DeploymentDetail, DeploymentView, EnvironmentView, FreezeView, NewFreeze};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Every environment the token reaches, with its slots and lock.
#[utoipa::path(get, path = "/api/v1/environments", tag = "environments",
    responses((status = 200, body = Vec<EnvironmentView>), (status = 401, body = Problem)))]
pub async fn list(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<Vec<EnvironmentView>>> {
    let mut out = Vec::new();
    for name in st.engine.environment_names(&actor).await? {
        out.push(st.engine.environment(&actor, &name).await?);
    }
    Ok(Json(out))
}

/// One environment: which slot is live, both slots' versions and health.
#[utoipa::path(get, path = "/api/v1/environments/{name}", tag = "environments",
    params(("name" = String, Path, description = "the environment's name")),
    responses((status = 200, body = EnvironmentView), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn show(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
) -> ApiResult<Json<EnvironmentView>> {
    Ok(Json(st.engine.environment(&actor, &name).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// How many deployments, newest first (1 to 500; 20 when absent).
    limit: Option<i64>,
}

/// Deployments and rollbacks, newest first.
#[utoipa::path(get, path = "/api/v1/environments/{name}/deployments", tag = "environments",
    params(("name" = String, Path), HistoryQuery),
    responses((status = 200, body = Vec<DeploymentView>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn history(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Vec<DeploymentView>>> {
    let limit = q.limit.unwrap_or(20);
    Ok(Json(st.engine.history(&actor, &name, limit).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The version to deploy (in an environment with a checklist: the
    /// version of an approved release).
    pub version: String,
    /// Admins: why to deploy although a freeze window holds (audited).
    #[serde(default)]
    pub override_freeze: Option<String>,
}

/// Starts a deploy and answers at once with the running deployment
/// (`Location` is where to follow it). Every check the console makes is made
/// before the answer: role, token scope, approvals, the lock.
#[utoipa::path(post, path = "/api/v1/environments/{name}/deployments", tag = "environments",
    params(("name" = String, Path)), request_body = DeployRequest,
    responses((status = 202, body = DeploymentDetail), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn deploy(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<DeployRequest>,
) -> ApiResult<impl IntoResponse> {
    let options = DeployOptions {
        override_freeze: req.override_freeze,
    };
    let prepared = st
        .engine
        .prepare_deploy(&actor, &name, &req.version, &options)
        .await?;
    started(&st, &actor, prepared).await
}

/// Runs a prepared deploy in the background and answers with it.
pub(super) async fn started(
    st: &AppState,
    actor: &engine::Actor,
    prepared: engine::pipeline::PreparedDeploy,
) -> ApiResult<impl IntoResponse> {
    let id = prepared.deployment_id();
    let engine = st.engine.clone();
    // The deploy outlives the request: a pipeline that disconnects does
    // not stop it (the lock and recovery cover a console that dies).
    tokio::spawn(async move {
        if let Err(e) = engine.execute(prepared).await {
            tracing::warn!(error = %e, deployment = id, "API deploy ended with an error");
        }
    });
    let detail = st.engine.deployment(actor, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/v1/deployments/{id}"))],
        Json(detail),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Why (required; it goes to the audit log).
    pub reason: String,
}

/// Switches users back to the warm standby (well under a second).
#[utoipa::path(post, path = "/api/v1/environments/{name}/rollback", tag = "environments",
    params(("name" = String, Path)), request_body = RollbackRequest,
    responses((status = 200, body = DeploymentView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn rollback(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<RollbackRequest>,
) -> ApiResult<Json<DeploymentView>> {
    Ok(Json(st.engine.rollback(&actor, &name, &req.reason).await?))
}

/// The environment's freeze windows, and which holds now.
#[utoipa::path(get, path = "/api/v1/environments/{name}/freezes", tag = "environments",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<FreezeView>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn freezes(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<FreezeView>>> {
    Ok(Json(st.engine.freezes(&actor, &name).await?))
}

/// Adds a freeze window (admins): no deploys while it holds; rollbacks go
/// through.
#[utoipa::path(post, path = "/api/v1/environments/{name}/freezes", tag = "environments",
    params(("name" = String, Path)), request_body = NewFreeze,
    responses((status = 201, body = FreezeView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn add_freeze(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<NewFreeze>,
) -> ApiResult<impl IntoResponse> {
    let view = st.engine.add_freeze(&actor, &name, &req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Removes a freeze window (admins).
#[utoipa::path(delete, path = "/api/v1/environments/{name}/freezes/{id}", tag = "environments",
    params(("name" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn remove_freeze(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((name, id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    st.engine.remove_freeze(&actor, &name, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
