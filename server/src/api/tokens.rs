//! `/api/v1/me` and `/api/v1/tokens`: who the token is, and the tokens it
//! may see (its owner's; every token for an admin's). Tokens are made in the
//! console or with `switchyard token create`, never by a token.

use super::auth::ApiActor;
use super::problem::{ApiResult, Problem};
use app::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use model::{Role, TokenView};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The token's owner: the person it acts for.
    pub username: String,
    /// The role the token acts with.
    pub role: Role,
    pub token: String,
    pub prefix: String,
    /// The environments it is limited to; absent when it reaches all.
    pub environments: Option<Vec<String>>,
}

/// The calling token: whom it acts for and with what role.
#[utoipa::path(get, path = "/api/v1/me", tag = "tokens",
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
pub async fn me(State(st): State<AppState>, ApiActor(actor): ApiActor) -> ApiResult<Json<Me>> {
    let user = actor
        .as_user()
        .ok_or_else(|| Problem::unauthenticated("no token"))?;
    let (name, prefix) = actor.token().unwrap_or_default();
    let environments = if actor.is_limited() {
        Some(st.engine.environment_names(&actor).await?)
    } else {
        None
    };
    Ok(Json(Me {
        username: user.username.clone(),
        role: user.role,
        token: name.to_string(),
        prefix: prefix.to_string(),
        environments,
    }))
}

/// The tokens its owner has (every token, for an admin's token).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = Problem)))]
pub async fn list(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<Vec<TokenView>>> {
    Ok(Json(st.engine.tokens(&actor).await?))
}

/// Revokes a token (its owner's own, or any for an admin): it stops at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path)),
    responses((status = 200, body = TokenView), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn revoke(
    State(st): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<i64>,
) -> ApiResult<Json<TokenView>> {
    Ok(Json(st.engine.revoke_token(&actor, id).await?))
}
