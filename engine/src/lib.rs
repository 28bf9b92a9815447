//! Switchyard's control plane. Everything that decides or changes something lives
//! here, reachable by unit tests without a browser: the store, authentication,
//! authorization, the deploy pipeline and the drivers it uses.
//!
//! The engine never imports Leptos; the UI calls into it through thin server
//! functions that authenticate, authorize and map errors.

pub mod accounts;
mod actor;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod checklists;
pub mod deployments;
mod engine;
pub mod environments;
pub mod error;
pub mod failpoint;
pub mod gates;
pub mod health;
pub mod lock;
pub mod migration_check;
mod monitor;
pub mod password;
pub mod pipeline;
mod queries;
pub mod rbac;
pub mod recovery;
pub mod refusals;
pub mod releases;
pub mod router;
pub mod runtime;
pub mod settings;
pub mod steps;
pub mod store;
pub mod throttle;
pub mod users;
mod version;
pub mod watch;

pub use actor::{Actor, Principal};
pub use engine::Engine;
pub use error::Error;
pub use version::validate_version;

/// Current time as stored in the database (RFC 3339, UTC).
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
