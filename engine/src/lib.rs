//! Switchyard's control plane. Everything that decides or changes something lives
//! here, reachable by unit tests without a browser: the store, authentication,
//! authorization, the deploy pipeline and the drivers it uses.
//!
//! The engine never imports Leptos; the UI calls into it through thin server
//! functions that authenticate, authorize and map errors.
//!
//! **Layers, kept by the compiler.** The console (app, server) reaches the
//! engine through [`Engine`] methods and the types re-exported at this root;
//! the store (`store`, `environments`, `deployments`, `steps`, `lock`,
//! `releases`, `checklists`, `users`, `auth`, `audit`, `throttle`) and the drivers
//! (`runtime`, `router`, `health`) are private to the engine. The
//! `internals` feature makes them public for the engine's own integration
//! tests, the server's tests and the benchmarks, which seed and inspect
//! records directly; the console's build never enables it (the test command
//! checks `app` and `server` alone, without it).

/// Declares modules public with the `internals` feature and crate-private
/// without it (see the crate documentation).
macro_rules! internal {
    ($($(#[$meta:meta])* mod $name:ident;)+) => {
        $(
            $(#[$meta])*
            #[cfg(feature = "internals")]
            pub mod $name;
            $(#[$meta])*
            #[cfg(not(feature = "internals"))]
            pub(crate) mod $name;
        )+
    };
}

// Faces: impl blocks on Engine, and the types their methods take.
mod accounts;
mod actor;
mod approvals;
mod canary;
mod engine;
mod environment_config;
pub mod error;
mod freezes;
mod key_file;
mod known_versions;
mod leases;
mod monitor;
pub mod pipeline;
mod queries;
pub mod refusals;
mod sealing;
mod settings;
mod slot_output;
mod tokens;
mod variables;
mod version;
mod version_cache;
mod webhooks;

internal! {
    // The store.
    mod store;
    mod environments;
    mod deployments;
    mod steps;
    mod lock;
    mod holds;
    mod releases;
    mod checklists;
    mod users;
    mod auth;
    mod audit;
    mod slot_env;
    mod throttle;
    // Rules and arithmetic the store and the pipeline share.
    mod rbac;
    mod password;
    mod gates;
    mod migration_check;
    mod failpoint;
    // After and around a run.
    mod watch;
    mod recovery;
    // The drivers.
    mod runtime;
    mod router;
    mod health;
}

pub use actor::{Actor, Principal};
pub use audit::checkpoint::{parse_public_key, public_key_text};
pub use audit::checkpoints::{Checkpoints as AuditCheckpoints, Sealed as AuditSealed};
pub use audit::export::{verify_export as verify_audit_export, ExportBroken, ExportReport};
pub use audit::Checkpoint as AuditCheckpoint;
pub use audit::Verdict as AuditVerdict;
pub use checklists::default_template as default_checklist;
pub use engine::Engine;
pub use environment_config::file::{
    parse as parse_environment_file, render as render_environment_file,
};
pub use environments::NewEnvironment;
pub use error::{Error, ErrorKind};
pub use leases::{Lease, Round as BackgroundRound};
pub use password::generate_password;
pub use rbac::Action;
pub use router::{ProxyLauncher, ProxyProcess};
pub use runtime::{DockerRuntime, ProcessRuntime};
pub use sealing::ExportCursor as AuditExportCursor;
pub use slot_env::cipher::SecretBox;

/// Checks a plain variable's name and value as `Engine::set_variable` does,
/// so a command with several can refuse before writing any.
pub fn slot_env_check(name: &str, value: &str) -> Result<(), Error> {
    slot_env::validate_name(name)?;
    slot_env::refuse_secret_like(name)?;
    slot_env::validate_value("value", value)
}
pub use store::{open as open_database, Pool};
pub use tokens::MAX_DAYS as TOKEN_MAX_DAYS;
pub use users::User;
pub use version::validate_version;
pub use webhooks::{sign_webhook, WebhookTiming};

/// Current time as stored in the database (RFC 3339, UTC).
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
