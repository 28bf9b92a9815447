//! Errors as `application/problem+json` (RFC 9457), each with a stable
//! `code` a pipeline can branch on; `detail` is for people.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// What went wrong with an API request.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:switchyard:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    /// What went wrong and what to do, for people.
    pub detail: String,
    /// Stable across releases: `unauthenticated`, `invalid_token`,
    /// `forbidden`, `not_found`, `conflict`, `deploy_in_progress`, `frozen`,
    /// `not_approved`, `no_standby`, `not_held`, `invalid_input`, `unsupported_media_type`,
    /// `payload_too_large`, `rate_limited`, `unavailable`, `internal`.
    pub code: &'static str,
    /// The request field at fault, for `invalid_input`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:switchyard:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            code,
            field: None,
            retry_after_secs: None,
        }
    }

    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(StatusCode::BAD_REQUEST, "invalid_input", detail);
        p.field = Some(field.into());
        p
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }
}

/// The one mapping from engine errors to API answers: the same kinds the
/// console's pages answer with, and a finer code where a pipeline would
/// act differently (wait for a running deploy, ask for signatures).
impl From<engine::Error> for Problem {
    fn from(e: engine::Error) -> Problem {
        use engine::{Error as E, ErrorKind as K};
        let code = match &e {
            E::BadToken(_) => "invalid_token",
            E::DeployInProgress { .. } => "deploy_in_progress",
            E::Frozen { .. } => "frozen",
            E::NotHeld(_) => "not_held",
            E::NotApproved(_) => "not_approved",
            E::NoStandby(_) => "no_standby",
            _ => match e.kind() {
                K::Unauthenticated | K::BadCredentials => "unauthenticated",
                K::Throttled { .. } => "rate_limited",
                K::Forbidden => "forbidden",
                K::NotFound => "not_found",
                K::Conflict => "conflict",
                K::InvalidInput => "invalid_input",
                K::Unavailable => "unavailable",
                K::Internal => "internal",
            },
        };
        let status = match e.kind() {
            K::Unauthenticated | K::BadCredentials => StatusCode::UNAUTHORIZED,
            K::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            K::Forbidden => StatusCode::FORBIDDEN,
            K::NotFound => StatusCode::NOT_FOUND,
            K::Conflict => StatusCode::CONFLICT,
            K::InvalidInput => StatusCode::BAD_REQUEST,
            K::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            K::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let detail = if e.kind() == K::Internal {
            tracing::error!(error = %e, "internal error in an API request");
            "internal error (details are in the server log)".to_string()
        } else {
            e.to_string()
        };
        let mut p = Problem::new(status, code, detail);
        p.field = e.field().map(str::to_string);
        if let K::Throttled { retry_after_secs } = e.kind() {
            p.retry_after_secs = Some(retry_after_secs);
        }
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchyard\""),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

pub type ApiResult<T> = Result<T, Problem>;
