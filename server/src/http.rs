//! The console's HTTP surface: Leptos pages and server functions behind the
//! session layer, the same-origin guard for every mutation, and the login
//! redirect for pages.

use crate::{audit_export, events};
use app::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

/// Refuses state-changing requests that a browser sent from another origin.
/// Browsers always send `Sec-Fetch-Site` or `Origin` on cross-site POSTs, so
/// a request with neither is not a cross-site browser request (e.g. curl).
pub async fn same_origin_guard(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let allowed = if let Some(site) = headers.get("sec-fetch-site") {
        matches!(site.to_str(), Ok("same-origin") | Ok("none"))
    } else if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        origin_host.is_some() && origin_host == host
    } else {
        true
    };
    if allowed {
        next.run(req).await
    } else {
        tracing::warn!(method = %req.method(), path = %req.uri().path(), "refused a cross-origin request");
        (StatusCode::FORBIDDEN, "cross-origin request refused").into_response()
    }
}

/// Sends visitors without a valid session (none, expired, disabled account,
/// reset password) to the sign-in page. Server functions authorize on their
/// own; this only spares people an empty page.
async fn login_redirect(
    State(state): State<AppState>,
    session: Session,
    req: Request<Body>,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let is_page = req.method() == Method::GET
        && !path.starts_with("/api/")
        && !path.starts_with("/pkg/")
        && path != "/login"
        && !path.contains('.');
    if is_page && !matches!(app::auth::ssr::user_of(&state, &session).await, Ok(Some(_))) {
        return Redirect::to("/login").into_response();
    }
    next.run(req).await
}

pub fn router<Store: SessionStore + Clone>(
    state: AppState,
    sessions: SessionManagerLayer<Store>,
) -> Router {
    let routes = generate_route_list(app::App);
    let options = state.leptos_options.clone();
    Router::new()
        .route(
            "/audit/export.jsonl",
            get(|s, session, q| {
                audit_export::export(audit_export::Format::JsonLines, s, session, q)
            }),
        )
        .route(
            "/audit/export.csv",
            get(|s, session, q| audit_export::export(audit_export::Format::Csv, s, session, q)),
        )
        .route(
            "/api/deployments/{id}/events",
            get(events::deployment_events),
        )
        .leptos_routes(&state, routes, {
            let options = options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            login_redirect,
        ))
        .layer(sessions)
        .layer(middleware::from_fn(same_origin_guard))
        .with_state(state)
}

pub fn session_layer<Store: SessionStore + Clone>(
    store: Store,
    secure: bool,
    idle: std::time::Duration,
) -> SessionManagerLayer<Store> {
    SessionManagerLayer::new(store)
        .with_name("switchyard_session")
        .with_http_only(true)
        .with_secure(secure)
        .with_same_site(tower_sessions::cookie::SameSite::Strict)
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(idle).unwrap_or(time::Duration::hours(8)),
        ))
}
