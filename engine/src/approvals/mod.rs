//! The approval rules: requesting releases, signing their checklists, and
//! deciding whether a release may be deployed.
//!
//! Anchors: GitHub environments (required reviewers, no self-review, expiry),
//! OWASP transaction authorization (a signature covers exactly what the
//! signer saw: editing voids it; re-checked when the deploy executes).
//!
//! Files: `requests.rs` (request, edit, cancel), `signoffs.rs` (sign,
//! revoke), `readiness.rs` (evaluation and the deploy's check),
//! `views.rs` (the release pages), `templates.rs` (checklist templates and
//! approval settings). The store is `crate::releases` and
//! `crate::checklists`; the SQL check is `crate::migration_check`.

mod readiness;
mod requests;
mod signoffs;
mod templates;
mod views;

pub(crate) use readiness::Moment;

use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::users::User;

/// A signature's note, or a cancellation's reason.
const MAX_SIGN_NOTE: usize = 2_000;

fn check_len(field: &'static str, what: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("{what} is limited to {max} bytes"),
        ));
    }
    Ok(())
}

fn user_of(actor: &Actor) -> Result<&User> {
    actor.as_user().ok_or_else(|| {
        Error::RuleForbids("only a signed-in person can do this, not the system".into())
    })
}
