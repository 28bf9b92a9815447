//! Server-side state handed to every server function through Leptos context.

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use std::time::Duration;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub engine: engine::Engine,
    /// A session older than this is refused even while it stays active.
    pub session_absolute_timeout: Duration,
}
