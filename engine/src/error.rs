use chrono::{DateTime, Utc};

/// Everything the engine can refuse or fail with. Variants carry what a person
/// needs to act on; `Internal` is for causes that are logged, not shown.
/// [`Error::kind`] sorts them into the few kinds callers answer differently
/// (the console's `AppError` has one variant per kind, with the same names).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value a person gave is not acceptable. `field` is the name of the
    /// form field (or API parameter) it came in, so a form can point at it.
    #[error("{message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },
    #[error("wrong username or password")]
    BadCredentials,
    /// Sign-in refused without checking the password: too many failed
    /// attempts for this username or from this address, or too many
    /// sign-ins being checked at once (see `throttle`).
    #[error("too many sign-in attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("not signed in")]
    Unauthenticated,
    /// An API token that does not let anyone in: malformed, unknown,
    /// expired, revoked, or its owner disabled or now below its role.
    #[error("invalid API token: {0}")]
    BadToken(&'static str),
    #[error("{role} may not {action}")]
    Forbidden { role: String, action: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The request was made against a state that has changed (a stale form).
    #[error("{0}")]
    Conflict(String),
    /// Allowed by role but forbidden by a rule, e.g. signing one's own
    /// release or cancelling someone else's.
    #[error("{0}")]
    RuleForbids(String),
    /// The release's checklist is not complete; the message lists what is missing.
    #[error("{0}")]
    NotApproved(String),
    /// A freeze window holds: no deploys (rollbacks go through; an admin
    /// may override with a reason).
    #[error("deploys to {environment} are frozen until {until}: {reason}")]
    Frozen {
        environment: String,
        until: String,
        reason: String,
    },
    /// A promote or abort of a deploy that is not (or no longer) held at
    /// preview: timed out, already decided, ended, or never held.
    #[error("{0}")]
    NotHeld(String),
    #[error("deploy in progress by {by} since {since}")]
    DeployInProgress { by: String, since: DateTime<Utc> },
    /// This worker's lock was broken or taken over: it stopped where it was
    /// and whoever took the lock closes the deployment.
    #[error("the lock of deployment #{0} was taken away; its worker stopped")]
    LockLost(i64),
    #[error("no warm standby to roll back to: {0}")]
    NoStandby(String),
    #[error("unknown version {version}: {reason}")]
    UnknownVersion { version: String, reason: String },
    #[error("deployment failed: {0}")]
    DeploymentFailed(String),
    #[error("runtime: {0}")]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error("traffic router: {0}")]
    Router(#[from] crate::router::RouterError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// How a caller should answer an [`Error`]: the refusals a person can act
/// on, apart from failures of the machinery underneath.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nobody is signed in (401).
    Unauthenticated,
    /// A sign-in with a wrong name or password (401).
    BadCredentials,
    /// Too many sign-in attempts (429); ask again after this many seconds.
    Throttled {
        retry_after_secs: u64,
    },
    /// The role, or a rule such as four-eyes, does not allow it (403).
    Forbidden,
    NotFound,
    /// The state does not allow it now: a deploy in progress, a stale form,
    /// a closed release, no standby, a failed deploy (409).
    Conflict,
    /// A value a person gave, named by its field (400).
    InvalidInput,
    /// A runtime or traffic router did not do what was asked; the message
    /// is shown because it is what an operator needs to fix it (503).
    Unavailable,
    /// A cause that is logged, never shown (500).
    Internal,
}

impl Error {
    /// A field's value is refused, with why.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            message: message.into(),
        }
    }

    /// The one mapping from errors to kinds.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Unauthenticated | Error::BadToken(_) => ErrorKind::Unauthenticated,
            Error::BadCredentials => ErrorKind::BadCredentials,
            Error::Throttled { retry_after_secs } => ErrorKind::Throttled {
                retry_after_secs: *retry_after_secs,
            },
            Error::Forbidden { .. } | Error::RuleForbids(_) => ErrorKind::Forbidden,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_)
            | Error::Conflict(_)
            | Error::NotApproved(_)
            | Error::DeployInProgress { .. }
            | Error::NotHeld(_)
            | Error::Frozen { .. }
            | Error::LockLost(_)
            | Error::NoStandby(_)
            | Error::DeploymentFailed(_) => ErrorKind::Conflict,
            Error::InvalidInput { .. } | Error::UnknownVersion { .. } => ErrorKind::InvalidInput,
            Error::Runtime(_) | Error::Router(_) => ErrorKind::Unavailable,
            Error::Database(_) | Error::Migration(_) | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The form field an invalid input came in, if the error names one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::InvalidInput { field, .. } => Some(field),
            Error::UnknownVersion { .. } => Some("version"),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses a value the database stored (a slot colour, state, kind…). A value
/// that does not parse means the store was edited behind the engine's back.
pub(crate) fn parse_stored<T: std::str::FromStr>(s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e: T::Err| Error::Internal(format!("stored value: {e}")))
}
