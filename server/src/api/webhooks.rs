//! `/api/v1/.../webhooks` and `/api/v1/deliveries`: an environment's webhook
//! subscriptions and their delivery log (admins; never a limited token).

use super::auth::ApiActor;
use super::body::ApiJson;
use super::problem::{ApiResult, Problem};
use app::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use model::{CreatedWebhook, DeliveryView, NewWebhook, WebhookView};

/// The environment's webhook subscriptions (admins).
#[utoipa::path(get, path = "/api/v1/environments/{name}/webhooks", tag = "webhooks",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<WebhookView>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<WebhookView>>> {
    Ok(Json(st.engine.webhooks(&actor, &name).await?))
}

/// Subscribes a URL to the environment's events (admins). The answer holds
/// the signing secret, shown this once.
#[utoipa::path(post, path = "/api/v1/environments/{name}/webhooks", tag = "webhooks",
    params(("name" = String, Path)), request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn create(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<NewWebhook>,
) -> ApiResult<impl IntoResponse> {
    let created = st.engine.add_webhook(&actor, &name, &req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Removes a subscription (admins); its pending deliveries are given up.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path)),
    responses((status = 200, body = WebhookView), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn remove(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(st.engine.remove_webhook(&actor, id).await?))
}

/// A subscription's delivery log, newest first (admins).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<DeliveryView>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn deliveries(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    Ok(Json(st.engine.webhook_deliveries(&actor, id).await?))
}

/// Sends a delivery's message again, with the same `webhook-id` (admins).
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/redeliver", tag = "webhooks",
    params(("id" = i64, Path)),
    responses((status = 202, body = DeliveryView), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn redeliver(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    let d = st.engine.redeliver_webhook(&actor, id).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}
