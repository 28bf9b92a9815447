//! The demo's HTTP routes.

use crate::knobs::Knobs;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The configuration `/config` reports: a plain variable as it is, a
/// secret only as its digest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShownConfig {
    pub greeting: Option<String>,
    pub api_secret_sha256: Option<String>,
}

impl ShownConfig {
    pub fn from_env(env: &impl Fn(&str) -> Option<String>) -> ShownConfig {
        use sha2::Digest;
        ShownConfig {
            greeting: env("GREETING"),
            api_secret_sha256: env("API_SECRET")
                .map(|s| hex_lower(&sha2::Sha256::digest(s.as_bytes()))),
        }
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct DemoState {
    version: String,
    knobs: Knobs,
    shown: ShownConfig,
    /// Non-health requests seen so far; drives the deterministic error rate.
    requests: AtomicU64,
}

impl DemoState {
    pub fn new(version: impl Into<String>, knobs: Knobs) -> Arc<DemoState> {
        Self::with_config(version, knobs, ShownConfig::default())
    }

    pub fn with_config(
        version: impl Into<String>,
        knobs: Knobs,
        shown: ShownConfig,
    ) -> Arc<DemoState> {
        Arc::new(DemoState {
            version: version.into(),
            knobs,
            shown,
            requests: AtomicU64::new(0),
        })
    }

    fn version_header(&self) -> HeaderValue {
        // A version is operator input; never let an odd byte take the route down.
        HeaderValue::from_str(&self.version).unwrap_or(HeaderValue::from_static("invalid"))
    }
}

/// Longest `/sleep/{ms}` answer: a test that forgets to stop one does not
/// hold a connection forever.
const MAX_SLEEP_MS: u64 = 60_000;

/// `/health` is the documented probe; `/sleep/{ms}` answers like `/` after
/// `ms` milliseconds (a slow report, a long download: requests that are
/// still in flight when traffic switches); every other path answers like `/`
/// so smoke-test routes configured in the console work against the demo.
pub fn app(state: Arc<DemoState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/config", get(config))
        .route("/sleep/{ms}", get(sleep_then_page))
        .fallback(page)
        .with_state(state)
}

async fn page(State(state): State<Arc<DemoState>>) -> Response {
    let n = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
    if !state.knobs.latency.is_zero() {
        tokio::time::sleep(state.knobs.latency).await;
    }
    let version = state.version_header();
    if state.knobs.fails_request(n) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("x-app-version", version)],
            format!("switchyard-demo {}: injected error\n", state.version),
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            ("x-app-version", version),
            (
                header::CONTENT_TYPE.as_str(),
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
        ],
        format!("switchyard-demo {}\n", state.version),
    )
        .into_response()
}

async fn sleep_then_page(
    State(state): State<Arc<DemoState>>,
    axum::extract::Path(ms): axum::extract::Path<u64>,
) -> Response {
    tokio::time::sleep(std::time::Duration::from_millis(ms.min(MAX_SLEEP_MS))).await;
    page(State(state)).await
}

async fn health(State(state): State<Arc<DemoState>>) -> Response {
    let (status, word) = if state.knobs.fail_health {
        (StatusCode::SERVICE_UNAVAILABLE, "failing")
    } else {
        (StatusCode::OK, "ok")
    };
    (
        status,
        [("x-app-version", state.version_header())],
        axum::Json(serde_json::json!({ "status": word, "version": state.version })),
    )
        .into_response()
}

async fn config(State(state): State<Arc<DemoState>>) -> Response {
    axum::Json(serde_json::json!({
        "greeting": state.shown.greeting,
        "api_secret_sha256": state.shown.api_secret_sha256,
    }))
    .into_response()
}
