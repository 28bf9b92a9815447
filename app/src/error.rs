//! The error the browser sees. Engine errors that are safe to show keep their
//! message; everything else becomes an opaque "internal error" and is logged.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("please sign in")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    /// A refusal the user can act on: bad input, a deploy in progress, no standby.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NotFound(String),
    #[error("internal error (details are in the server log)")]
    Internal,
    /// Transport or encoding trouble between browser and server.
    #[error("request failed: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

#[cfg(feature = "ssr")]
impl From<engine::Error> for AppError {
    fn from(e: engine::Error) -> Self {
        use engine::Error as E;
        match e {
            E::Unauthenticated => AppError::Unauthenticated,
            E::Forbidden { .. } => AppError::Forbidden(e.to_string()),
            E::NotFound(_) => AppError::NotFound(e.to_string()),
            e if e.is_user_facing() => AppError::Refused(e.to_string()),
            e => {
                tracing::error!(error = %e, "internal error in a server function");
                AppError::Internal
            }
        }
    }
}
