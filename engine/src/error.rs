use chrono::{DateTime, Utc};

/// Everything the engine can refuse or fail with. Variants carry what a person
/// needs to act on; `Internal` is for causes that are logged, not shown.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("wrong username or password")]
    BadCredentials,
    /// Sign-in refused without checking the password: too many failed
    /// attempts for this username or from this address, or too many
    /// sign-ins being checked at once (see `throttle`).
    #[error("too many sign-in attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("not signed in")]
    Unauthenticated,
    #[error("{role} may not {action}")]
    Forbidden { role: String, action: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The request was made against a state that has changed (a stale form).
    #[error("{0}")]
    Conflict(String),
    /// Allowed by role but refused by a rule, e.g. signing one's own release.
    #[error("{0}")]
    Refused(String),
    /// The release's checklist is not complete; the message lists what is missing.
    #[error("{0}")]
    NotApproved(String),
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

impl Error {
    /// True for errors whose message is safe and useful to show to the user;
    /// the rest become an opaque "internal error" with the cause logged.
    pub fn is_user_facing(&self) -> bool {
        !matches!(
            self,
            Error::Database(_) | Error::Migration(_) | Error::Internal(_)
        )
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
