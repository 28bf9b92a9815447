//! The console's HTTP surface: Leptos pages and server functions behind the
//! session layer; the request guards (host allow-list and same-origin check
//! for every mutation outside; form bodies only inside; refusals audited);
//! plain form posts answered post/redirect/get (`plain_forms`); security
//! headers; the login redirect for pages.

pub use crate::hosts::AllowedHosts;
use crate::refusal_audit::RefusalAudit;
use crate::{assets, audit_export, events, headers, health, plain_forms};
use app::error::AppError;
use app::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use engine::refusals::RefusedRequest;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

/// Largest request body the console reads (release notes and migration SQL
/// are the longest fields); a longer one is answered 413 unread.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every request passes before a page or server function sees it.
#[derive(Clone)]
pub struct Guard {
    hosts: AllowedHosts,
    refusals: RefusalAudit,
    /// Each server function's body check, by path.
    form_checks: Arc<HashMap<&'static str, app::form::Check>>,
}

/// A refusal: audited (rate-limited) and logged, then answered with `body`.
async fn refuse(
    guard: &Guard,
    req: &RequestFacts,
    kind: RefusedRequest,
    status: StatusCode,
    body: Response,
) -> Response {
    guard
        .refusals
        .record(kind, req.method.as_str(), &req.path, req.source_ip.clone())
        .await;
    tracing::warn!(method = %req.method, path = %req.path, %status, "refused a request ({})", kind.audit_name());
    body
}

/// What a refusal records of its request.
struct RequestFacts {
    method: Method,
    path: String,
    source_ip: Option<String>,
}

impl RequestFacts {
    fn of(req: &Request) -> Self {
        RequestFacts {
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            source_ip: req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        }
    }

    fn mutation(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// The outer check, before the session is read:
/// - the `Host` is one the console serves (421 otherwise: DNS rebinding);
/// - a state-changing request comes from this origin (403 otherwise).
async fn origin_guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let facts = RequestFacts::of(&req);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(|h| guard.hosts.allows(h)) {
        let status = StatusCode::MISDIRECTED_REQUEST;
        let body = (
            status,
            "unknown host: this console answers only to its configured origins (--public-origin)",
        )
            .into_response();
        return refuse(&guard, &facts, RefusedRequest::UnknownHost, status, body).await;
    }
    if facts.mutation() && !same_origin(req.headers()) {
        let status = StatusCode::FORBIDDEN;
        let body = (status, "cross-origin request refused").into_response();
        return refuse(&guard, &facts, RefusedRequest::CrossOrigin, status, body).await;
    }
    next.run(req).await
}

/// The inner check, inside the plain-form layer (`plain_forms`), so that a
/// browser without JavaScript gets its refusal back on the page:
/// - a server function gets a form body (415 otherwise) that fits its
///   arguments (400 naming the field otherwise), so no other encoding and no
///   malformed field reaches a function;
/// - and, after the fact, a mutation answered 401 is recorded.
async fn body_guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let facts = RequestFacts::of(&req);
    // The REST API takes JSON and checks its own bodies (server/src/api).
    let server_function =
        facts.path.starts_with("/api/") && !facts.path.starts_with(crate::api::PREFIX);
    let req = if facts.mutation() && server_function {
        match checked_form(&guard, &facts.path, req).await {
            Ok(req) => req,
            Err(refused) => return refused,
        }
    } else {
        req
    };
    let res = next.run(req).await;
    // A failed sign-in is audited by the engine as such.
    if facts.mutation() && res.status() == StatusCode::UNAUTHORIZED && facts.path != "/api/login" {
        // Includes API calls with a refused token.
        let status = res.status();
        return refuse(&guard, &facts, RefusedRequest::Unauthenticated, status, res).await;
    }
    res
}

/// A server function's request with its body read and checked against the
/// function's arguments (`app::form`), put back together for Leptos.
async fn checked_form(guard: &Guard, path: &str, req: Request) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            app_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                AppError::invalid(
                    "body",
                    format!("the body is larger than {} KiB", MAX_BODY_BYTES / 1024),
                ),
            )
        })?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // No body at all (a function without arguments called by `fetch`) is an
    // empty form; any body must say it is one.
    let no_body = content_type.is_none() && bytes.is_empty();
    if !no_body && !content_type.is_some_and(app::form::is_form) {
        return Err(app_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::invalid("content-type", app::form::UNSUPPORTED_MEDIA_TYPE),
        ));
    }
    if let Some(check) = guard.form_checks.get(path) {
        check(&bytes).map_err(|e| app_error(StatusCode::BAD_REQUEST, e))?;
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// An error answer the console's front end decodes like a server function's.
fn app_error(status: StatusCode, error: AppError) -> Response {
    let body = serde_json::to_string(&error).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Whether a state-changing request may come from where it says it comes
/// from. Browsers always send `Sec-Fetch-Site` or `Origin` on cross-site
/// POSTs, so a request with neither is not a cross-site browser request
/// (e.g. curl). The `Host` it is compared with was checked already.
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site") {
        matches!(site.to_str(), Ok("same-origin") | Ok("none"))
    } else if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        origin_host.is_some() && origin_host == host
    } else {
        true
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
    let is_page = plain_forms::is_page(req.method(), path) && path != "/login";
    if is_page && !matches!(app::auth::ssr::user_of(&state, &session).await, Ok(Some(_))) {
        return Redirect::to("/login").into_response();
    }
    next.run(req).await
}

pub fn router<Store: SessionStore + Clone>(
    state: AppState,
    sessions: SessionManagerLayer<Store>,
    hosts: AllowedHosts,
) -> Router {
    let routes = generate_route_list(app::App);
    let options = state.leptos_options.clone();
    let guard = Guard {
        hosts,
        refusals: RefusalAudit::new(state.engine.clone()),
        form_checks: Arc::new(app::form::server_function_checks().into_iter().collect()),
    };
    // The compiled front end, compressed (brotli or gzip, as the browser
    // asks; the WASM shrinks to about a third) and cached by name.
    let pkg = assets::router(
        std::path::Path::new(&*options.site_root),
        &options.site_pkg_dir,
        &options.output_name,
    );
    Router::new()
        .merge(pkg)
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
        .route("/api/health", get(health::health))
        .merge(crate::api::router())
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
        .layer(middleware::from_fn_with_state(guard.clone(), body_guard))
        .layer(middleware::from_fn(plain_forms::middleware))
        .layer(sessions)
        .layer(middleware::from_fn_with_state(guard, origin_guard))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn(headers::security_headers))
        .with_state(state)
}

/// The session cookie's name. Over HTTPS it carries the `__Host-` prefix:
/// browsers then accept it only with `Secure`, `Path=/` and no `Domain`, so
/// no other host (or plain-HTTP page) can plant or widen it.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-switchyard_session"
    } else {
        "switchyard_session"
    }
}

pub fn session_layer<Store: SessionStore + Clone>(
    store: Store,
    secure: bool,
    idle: std::time::Duration,
) -> SessionManagerLayer<Store> {
    SessionManagerLayer::new(store)
        .with_name(session_cookie_name(secure))
        .with_path("/")
        .with_http_only(true)
        .with_secure(secure)
        .with_same_site(tower_sessions::cookie::SameSite::Strict)
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(idle).unwrap_or(time::Duration::hours(8)),
        ))
}
