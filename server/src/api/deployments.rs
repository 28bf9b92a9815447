//! `/api/v1/deployments/{id}`: one deployment with its steps, to follow,
//! and the decision on a deploy held at preview (and its canary).

use super::auth::{bearer, ApiActor};
use super::body::ApiJson;
use super::problem::{ApiResult, Problem};
use crate::events::{self, Viewer};
use app::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use model::{CanarySetting, DeploymentDetail, HoldView, NameValue};
use serde::Deserialize;
use utoipa::ToSchema;

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

/// The same detail as server-sent events while it changes: an unnamed event
/// per change (steps, progress, status, watch figures), then a `done` event
/// with the final detail once the deployment and its watch window have
/// ended. The token is checked again before every read: revoking it ends
/// the stream. A stream lives at most 15 minutes; reconnect to go on.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/events", tag = "deployments",
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/event-stream", body = DeploymentDetail,
            description = "`data:` lines, each a DeploymentDetail; the last event is named `done`"),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn events(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    // Access and existence are decided here, before the first byte.
    let first = st.engine.deployment(&actor, id).await?;
    let secret = bearer(&headers)
        .map_err(Problem::unauthenticated)?
        .to_string();
    Ok(events::stream(
        st.engine.clone(),
        Viewer::Token { secret },
        actor.source_ip.clone(),
        first,
    ))
}

/// Promotes a deploy held at preview (its environment holds deploys after
/// the gates): the pipeline goes on to the switch. Needs the deploy role on
/// the environment. `409 not_held` when it is not (or no longer) held:
/// timed out, already decided, ended, or never held; nothing changes.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/hold/promote", tag = "deployments",
    params(("id" = i64, Path)),
    responses((status = 200, body = HoldView), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn promote_hold(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
) -> ApiResult<Json<HoldView>> {
    Ok(Json(st.engine.promote_hold(&actor, id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortHoldRequest {
    /// Why the held release is not promoted (required, at most 500
    /// characters; audited).
    pub reason: String,
}

/// Aborts a deploy held at preview: the preview is withdrawn and the new
/// slot stopped; users stay where they are. Refused like a promote.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/hold/abort", tag = "deployments",
    params(("id" = i64, Path)), request_body = AbortHoldRequest,
    responses((status = 200, body = HoldView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn abort_hold(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<AbortHoldRequest>,
) -> ApiResult<Json<HoldView>> {
    Ok(Json(st.engine.abort_hold(&actor, id, &req.reason).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryRequest {
    /// The share of new users sent to the held slot, 0 (off) to 100; each
    /// keeps its slot by a cookie.
    pub percent: u8,
    /// Requests with this header (name any case, exact value) reach the
    /// held slot: testers. Omit for none.
    #[serde(default)]
    pub header: Option<NameValue>,
    /// Requests with this cookie (exact name and value) reach the held slot.
    #[serde(default)]
    pub cookie: Option<NameValue>,
}

/// Sets the canary of a deploy held at preview: a share of new users and
/// testers chosen by a header or cookie reach the held slot on the public
/// address until the hold is promoted, aborted or times out. Replaces any
/// earlier setting (send `{"percent": 0}` to end it). Needs the deploy role
/// on the environment; `409 not_held` when it is not (or no longer) held;
/// `400` naming the field (`percent`, `tester_header`, `tester_cookie`) for
/// a bad value. Audited as `deploy.canary`.
#[utoipa::path(put, path = "/api/v1/deployments/{id}/canary", tag = "deployments",
    params(("id" = i64, Path)), request_body = CanaryRequest,
    responses((status = 200, body = HoldView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn set_canary(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<CanaryRequest>,
) -> ApiResult<Json<HoldView>> {
    let setting = CanarySetting {
        percent: req.percent,
        header: req.header,
        cookie: req.cookie,
    };
    Ok(Json(st.engine.set_canary(&actor, id, &setting).await?))
}
