//! The whole admin API as one router: the default table's endpoints
//! (`admin`) and the named routes' (`admin_routes`), all behind the bearer
//! token, plus the unauthenticated liveness probe. Put together here so that
//! neither of the two modules needs the other's router.

use crate::admin::{self, AdminState};
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};

pub fn app(state: AdminState) -> Router {
    crate::admin_routes::add(admin::default_table_routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            admin::require_token,
        ))
        // Liveness for supervisors and the console's preflight; reveals nothing.
        .route(
            "/admin/health",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
        .with_state(state)
}
