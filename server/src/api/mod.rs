//! The REST API, `/api/v1`: what the console's pages do, for pipelines and
//! the remote CLI. Every handler authenticates a bearer token
//! ([`auth::ApiActor`]) and makes the same engine call a page makes, so the
//! engine decides alone who may do what; errors are
//! `application/problem+json` with stable codes ([`problem::Problem`]).
//!
//! The OpenAPI 3.1 document is generated from the handlers' annotations as
//! they are registered ([`utoipa_axum::routes!`]): a route cannot be served
//! without being documented, and `GET /api/v1/openapi.json` serves it.

mod audit;
mod auth;
mod body;
mod deployments;
mod environments;
pub mod problem;
mod releases;
mod tokens;
mod webhooks;

pub use auth::{RateLimit, BAD_TOKEN_LIMIT, TOKEN_LIMIT};

use app::state::AppState;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use problem::Problem;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, SecurityRequirement};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the API lives; nothing else of the console is under it.
pub const PREFIX: &str = "/api/v1/";

/// The API's routes and their OpenAPI document, built together.
fn parts() -> (Router<AppState>, OpenApi) {
    let (router, mut doc) = OpenApiRouter::<AppState>::new()
        .routes(routes!(tokens::me))
        .routes(routes!(tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(environments::list))
        .routes(routes!(environments::show))
        .routes(routes!(environments::history, environments::deploy))
        .routes(routes!(environments::rollback))
        .routes(routes!(environments::freezes, environments::add_freeze))
        .routes(routes!(environments::remove_freeze))
        .routes(routes!(deployments::show))
        .routes(routes!(deployments::events))
        .routes(routes!(deployments::promote_hold))
        .routes(routes!(deployments::abort_hold))
        .routes(routes!(deployments::set_canary))
        .routes(routes!(releases::promote))
        .routes(routes!(releases::list, releases::create))
        .routes(routes!(releases::show, releases::edit))
        .routes(routes!(releases::cancel))
        .routes(routes!(releases::sign))
        .routes(routes!(releases::deploy))
        .routes(routes!(audit::search))
        .routes(routes!(audit::export))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::remove))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::redeliver))
        .split_for_parts();
    doc.info = InfoBuilder::new()
        .title("Switchyard API")
        .version("1")
        .description(Some(
            "Blue-green deploys, releases and approvals for pipelines. Authenticate with \
             `Authorization: Bearer <token>`; errors are application/problem+json with a \
             stable `code`.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "token",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    doc.security = Some(vec![SecurityRequirement::new(
        "token",
        Vec::<String>::new(),
    )]);
    (router, doc)
}

/// The OpenAPI document as served.
pub fn openapi() -> OpenApi {
    parts().1
}

/// The API's router, to merge into the console's.
pub fn router() -> Router<AppState> {
    let (router, doc) = parts();
    let doc = std::sync::Arc::new(doc);
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json((*doc).clone()) }
            }),
        )
        .route("/api/v1/{*rest}", axum::routing::any(unknown_route))
        .layer(middleware::from_fn(problems_only))
        .layer(Extension(RateLimit::default()))
}

async fn unknown_route() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API route; see /api/v1/openapi.json",
    )
}

/// Turns axum's own plain-text refusals (a path or query that does not
/// decode, a method the route does not have) into problems, so a client
/// sees one error format.
async fn problems_only(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !status.is_client_error() || is_problem {
        return res;
    }
    let bytes = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let mut problem = match status {
        StatusCode::METHOD_NOT_ALLOWED => Problem::new(
            status,
            "method_not_allowed",
            "this route does not take that method",
        ),
        StatusCode::NOT_FOUND => Problem::new(status, "not_found", text),
        _ => {
            let query = text.starts_with("Failed to deserialize query string");
            let named = text.split('`').nth(1).map(str::to_string);
            let field = match (query, named) {
                (true, Some(name)) => name,
                (true, None) => "query".into(),
                (false, _) => "path".into(),
            };
            let mut p = Problem::invalid(field, text);
            p.status = StatusCode::BAD_REQUEST.as_u16();
            p
        }
    };
    problem.status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST.as_u16()
    } else {
        problem.status
    };
    problem.into_response()
}
