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
    /// The console's own switchyard-proxy: what an environment created in
    /// the browser is switched by.
    pub proxy: ProxyAddress,
}

#[derive(Clone, Debug)]
pub struct ProxyAddress {
    /// Its admin API, `http://127.0.0.1:8081`.
    pub admin_url: String,
    /// The file holding its admin token (read by the engine, never sent to
    /// a browser).
    pub token_file: String,
}
