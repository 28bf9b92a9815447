//! The error the browser sees. Engine errors that are safe to show keep their
//! message; everything else becomes an opaque "internal error" and is logged.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// One variant per kind of engine error (`engine::ErrorKind`), with the same
/// names, plus what only the browser side can go wrong with (`Transport`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("please sign in")]
    Unauthenticated,
    #[error("wrong username or password")]
    BadCredentials,
    /// Too many failed sign-ins for this username or from this address (or
    /// too many being checked at once): 429, with a `Retry-After` header.
    #[error("too many sign-in attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// The role, or a rule such as four-eyes, does not allow it (403).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The state does not allow it now: a deploy in progress, no standby, a
    /// stale form, a closed release, the last admin (409).
    #[error("{0}")]
    Conflict(String),
    /// A field's value is not acceptable, or the request did not decode
    /// (`field` is then the body's field, or "body"): 400, 413 or 415.
    /// `field` is the form field's name (for scripts and API clients),
    /// `message` says why for people.
    #[error("{message}")]
    InvalidInput { field: String, message: String },
    /// A runtime or traffic router did not do what was asked; its message is
    /// what an operator needs to fix it (503).
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error (details are in the server log)")]
    Internal,
    /// Transport or encoding trouble between browser and server.
    #[error("request failed: {0}")]
    Transport(String),
}

impl AppError {
    /// A refusal of one field's value, named by its form name.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status a server function answers with when it fails, so that
    /// monitoring and API clients can tell a refusal from a crash.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials => 401,
            AppError::Throttled { .. } => 429,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::InvalidInput { .. } | AppError::Transport(_) => 400,
            AppError::Unavailable(_) => 503,
            AppError::Internal => 500,
        }
    }
}

/// Sets the response status from a server function's error (200 otherwise).
#[cfg(feature = "ssr")]
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result {
        set_status(e);
    }
    result
}

/// The answer's status from the error, and for a throttled sign-in the
/// `Retry-After` header that tells clients when to ask again.
#[cfg(feature = "ssr")]
fn set_status(e: &AppError) {
    if let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        opts.set_status(
            axum::http::StatusCode::from_u16(e.status())
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        );
        if let AppError::Throttled { retry_after_secs } = e {
            opts.insert_header(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after_secs),
            );
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let error = match value {
            // The console checks bodies first (app/src/form.rs) and names the
            // field; this is the backstop for anything that slips past.
            ServerFnErrorErr::Args(m) => AppError::invalid("body", m),
            ServerFnErrorErr::MissingArg(m) => {
                let message = format!("missing field {m}");
                AppError::invalid(m, message)
            }
            other => AppError::Transport(other.to_string()),
        };
        // On the server this runs inside the request's Leptos context: the
        // answer's status is the error's (a bad body is the client's fault,
        // never a 500).
        #[cfg(feature = "ssr")]
        set_status(&error);
        error
    }
}

/// The one mapping across the boundary: kind for kind, same names.
#[cfg(feature = "ssr")]
impl From<engine::Error> for AppError {
    fn from(e: engine::Error) -> Self {
        use engine::ErrorKind as K;
        match e.kind() {
            K::Unauthenticated => AppError::Unauthenticated,
            K::BadCredentials => AppError::BadCredentials,
            K::Throttled { retry_after_secs } => AppError::Throttled { retry_after_secs },
            K::Forbidden => AppError::Forbidden(e.to_string()),
            K::NotFound => AppError::NotFound(e.to_string()),
            K::Conflict => AppError::Conflict(e.to_string()),
            K::InvalidInput => AppError::invalid(e.field().unwrap_or("body"), e.to_string()),
            K::Unavailable => AppError::Unavailable(e.to_string()),
            K::Internal => {
                tracing::error!(error = %e, "internal error in a server function");
                AppError::Internal
            }
        }
    }
}
