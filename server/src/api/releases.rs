//! `/api/v1/releases`: request a release, read, edit or cancel it, sign its
//! items, deploy it once approved, promote a succeeded deploy downstream.

use super::auth::ApiActor;
use super::body::ApiJson;
use super::environments::started;
use super::problem::{ApiResult, Problem};
use app::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use model::{DeploymentDetail, ReleaseRequest, ReleaseSummary, ReleaseView};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this environment's releases.
    environment: Option<String>,
}

/// Releases, newest first (at most 100).
#[utoipa::path(get, path = "/api/v1/releases", tag = "releases", params(ListQuery),
    responses((status = 200, body = Vec<ReleaseSummary>), (status = 401, body = Problem)))]
pub async fn list(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<ReleaseSummary>>> {
    Ok(Json(
        st.engine.releases(&actor, q.environment.as_deref()).await?,
    ))
}

/// Requests a release: its checklist is copied from the environment's.
#[utoipa::path(post, path = "/api/v1/releases", tag = "releases",
    request_body = ReleaseRequest,
    responses((status = 201, body = ReleaseView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn create(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(req): ApiJson<ReleaseRequest>,
) -> ApiResult<impl IntoResponse> {
    let release = st.engine.request_release(&actor, &req).await?;
    Ok((StatusCode::CREATED, Json(release)))
}

/// A release with its checklist evaluated now.
#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "releases",
    params(("id" = i64, Path)),
    responses((status = 200, body = ReleaseView), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn show(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
) -> ApiResult<Json<ReleaseView>> {
    Ok(Json(st.engine.release(&actor, id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// The revision the editor read (a release changed since is refused).
    pub revision: i64,
    /// New notes; unchanged when absent.
    #[serde(default)]
    pub notes: Option<String>,
    /// New migration SQL; unchanged when absent.
    #[serde(default)]
    pub migration_sql: Option<String>,
}

/// Changes a release's notes or migration SQL (its requester or an admin).
/// Every signature is voided: signers approved what they saw.
#[utoipa::path(patch, path = "/api/v1/releases/{id}", tag = "releases",
    params(("id" = i64, Path)), request_body = EditRequest,
    responses((status = 200, body = ReleaseView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn edit(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<EditRequest>,
) -> ApiResult<Json<ReleaseView>> {
    // What is left out stays as it is; reading it is authorized like
    // showing the release, and the edit itself is checked by the engine.
    let (notes, sql) = match (req.notes, req.migration_sql) {
        (Some(n), Some(s)) => (n, s),
        (n, s) => {
            let now = st.engine.release(&actor, id).await?;
            (n.unwrap_or(now.notes), s.unwrap_or(now.migration_sql))
        }
    };
    Ok(Json(
        st.engine
            .edit_release(&actor, id, req.revision, &notes, &sql)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// The revision the canceller read.
    pub revision: i64,
    /// Why (required; shown on the release and in the audit log).
    pub reason: String,
}

/// Cancels a release that has not been deployed (its requester or an
/// admin).
#[utoipa::path(post, path = "/api/v1/releases/{id}/cancel", tag = "releases",
    params(("id" = i64, Path)), request_body = CancelRequest,
    responses((status = 200, body = ReleaseView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<CancelRequest>,
) -> ApiResult<Json<ReleaseView>> {
    Ok(Json(
        st.engine
            .cancel_release(&actor, id, req.revision, &req.reason)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The release revision the signer reviewed (a release edited since is
    /// refused).
    pub revision: i64,
    #[serde(default)]
    pub note: String,
}

/// Signs one checklist item. Four-eyes holds: a token cannot sign what its
/// owner requested.
#[utoipa::path(post, path = "/api/v1/releases/{id}/items/{item}/sign", tag = "releases",
    params(("id" = i64, Path), ("item" = i64, Path)), request_body = SignRequest,
    responses((status = 200, body = ReleaseView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn sign(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, item)): Path<(i64, i64)>,
    ApiJson(req): ApiJson<SignRequest>,
) -> ApiResult<Json<ReleaseView>> {
    Ok(Json(
        st.engine
            .sign_item(&actor, id, item, req.revision, &req.note)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseDeployRequest {
    /// The release revision the deployer reviewed.
    pub revision: i64,
    /// Admins: why to deploy although a freeze window holds (audited).
    #[serde(default)]
    pub override_freeze: Option<String>,
}

/// Deploys an approved release; answers at once with the running
/// deployment, like the environment's deploy.
#[utoipa::path(post, path = "/api/v1/releases/{id}/deploy", tag = "releases",
    params(("id" = i64, Path)), request_body = ReleaseDeployRequest,
    responses((status = 202, body = DeploymentDetail), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn deploy(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ReleaseDeployRequest>,
) -> ApiResult<impl IntoResponse> {
    let prepared = st
        .engine
        .prepare_release_deploy(
            &actor,
            id,
            req.revision,
            &engine::pipeline::DeployOptions {
                override_freeze: req.override_freeze,
            },
        )
        .await?;
    started(&st, &actor, prepared).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    /// The environment downstream of the deployment's (its `upstream`).
    pub target: String,
}

/// Requests a release of a succeeded deployment's version in the
/// environment downstream of it.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/promote", tag = "releases",
    params(("id" = i64, Path)), request_body = PromoteRequest,
    responses((status = 201, body = ReleaseView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn promote(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<PromoteRequest>,
) -> ApiResult<impl IntoResponse> {
    let release = st.engine.promote(&actor, id, &req.target).await?;
    Ok((StatusCode::CREATED, Json(release)))
}
