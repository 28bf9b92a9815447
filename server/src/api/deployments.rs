//! `/api/v1/deployments/{id}`: one deployment with its steps, to follow.

use super::auth::ApiActor;
use super::problem::{ApiResult, Problem};
use app::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use model::DeploymentDetail;

/// A deployment with its steps, status and watch window; poll it until
/// `deployment.status` is no longer `running`.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments",
    params(("id" = i64, Path)),
    responses((status = 200, body = DeploymentDetail), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
pub async fn show(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
) -> ApiResult<Json<DeploymentDetail>> {
    Ok(Json(st.engine.deployment(&actor, id).await?))
}
