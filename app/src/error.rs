//! The error the browser sees. Engine errors that are safe to show keep their
//! message; everything else becomes an opaque "internal error" and is logged.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("please sign in")]
    Unauthenticated,
    #[error("wrong username or password")]
    BadCredentials,
    /// Too many failed sign-ins for this username or from this address (or
    /// too many being checked at once): 429, with a `Retry-After` header.
    #[error("too many sign-in attempts; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("{0}")]
    Forbidden(String),
    /// A refusal the user can act on: bad input, a deploy in progress, no standby.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NotFound(String),
    /// A request that did not decode (a missing or malformed field, a body
    /// that is not a form): answered 400 before the function runs.
    #[error("{0}")]
    BadRequest(String),
    /// The request's state no longer holds or a rule refuses it: a deploy in
    /// progress, no standby, a stale form, one's own release (409).
    #[error("{0}")]
    Conflict(String),
    /// A field's value is not acceptable; `field` is the form field's name
    /// (for scripts and API clients), `message` says why for people (400).
    #[error("{message}")]
    InvalidInput { field: String, message: String },
    #[error("internal error (details are in the server log)")]
    Internal,
    /// Transport or encoding trouble between browser and server.
    #[error("request failed: {0}")]
    Transport(String),
}

impl AppError {
    /// The HTTP status a server function answers with when it fails, so that
    /// monitoring and API clients can tell a refusal from a crash.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials => 401,
            AppError::TooManyAttempts { .. } => 429,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Refused(_) | AppError::Conflict(_) => 409,
            AppError::InvalidInput { .. } => 400,
            AppError::Transport(_) | AppError::BadRequest(_) => 400,
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
        if let AppError::TooManyAttempts { retry_after_secs } = e {
            opts.insert_header(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after_secs),
            );
        }
    }
}

impl AppError {
    /// A refusal of one field's value, named by its form name.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let error = match value {
            // The console checks bodies first (app/src/form.rs) and names the
            // field; this is the backstop for anything that slips past.
            ServerFnErrorErr::Args(m) => AppError::BadRequest(m),
            ServerFnErrorErr::MissingArg(m) => AppError::BadRequest(format!("missing field {m}")),
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

#[cfg(feature = "ssr")]
impl From<engine::Error> for AppError {
    fn from(e: engine::Error) -> Self {
        use engine::Error as E;
        match e {
            E::Unauthenticated => AppError::Unauthenticated,
            E::BadCredentials => AppError::BadCredentials,
            E::Throttled { retry_after_secs } => AppError::TooManyAttempts { retry_after_secs },
            E::Forbidden { .. } | E::Refused(_) => AppError::Forbidden(e.to_string()),
            E::NotFound(_) => AppError::NotFound(e.to_string()),
            e if e.is_user_facing() => AppError::Refused(e.to_string()),
            e => {
                tracing::error!(error = %e, "internal error in a server function");
                AppError::Internal
            }
        }
    }
}
