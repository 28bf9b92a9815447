//! `GET /api/health`: whether this console can serve — it answers, and its
//! database does. For a load balancer in front of several consoles sharing
//! one PostgreSQL database (README, "Several consoles"): a console that has
//! lost its database answers 503 and is taken out of rotation, while the
//! others go on. It says nothing else, and needs no session.

use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub async fn health(State(state): State<AppState>) -> Response {
    match state.engine.check_store().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
    }
}
