//! The one view of an action's answer: a line under the form that says what
//! happened, marked for people (class, role) and for tests (`data-testid`).

use crate::error::AppError;
use leptos::prelude::*;

/// What an action's answer says, and how it went.
pub enum Outcome {
    /// It did what was asked.
    Done(String),
    /// It answered, but the thing it started did not succeed (a deploy that
    /// failed): shown as an error, announced politely.
    Failed(String),
    /// Neither good nor bad news.
    Said(String),
}

impl From<AppError> for Outcome {
    fn from(e: AppError) -> Self {
        Outcome::Failed(e.to_string())
    }
}

/// A server function's answer in words: its text when it did it, the
/// refusal otherwise.
impl From<Result<String, AppError>> for Outcome {
    fn from(r: Result<String, AppError>) -> Self {
        match r {
            Ok(t) => Outcome::Done(t),
            Err(e) => e.into(),
        }
    }
}

/// The test ids a page gives its answers: most pages tell success and
/// refusal apart (`action-result` / `action-error`); the users page and the
/// dashboard's run box use one id for both.
#[derive(Clone, Copy, Debug)]
pub struct ResultIds {
    pub done: &'static str,
    pub failed: &'static str,
}

impl ResultIds {
    pub const PAGE: ResultIds = ResultIds {
        done: "action-result",
        failed: "action-error",
    };
    pub const RUN: ResultIds = ResultIds {
        done: "action-result",
        failed: "action-result",
    };
    pub const USERS: ResultIds = ResultIds {
        done: "users-result",
        failed: "users-result",
    };
}

/// The answer's line. A refusal is an alert (read out at once); the rest
/// is a status.
pub fn action_result(outcome: impl Into<Outcome>, ids: ResultIds) -> AnyView {
    let (class, role, testid, text) = match outcome.into() {
        Outcome::Done(t) => ("result ok", "status", ids.done, t),
        Outcome::Said(t) => ("result", "status", ids.done, t),
        Outcome::Failed(t) => ("result error", "alert", ids.failed, t),
    };
    view! { <p class=class role=role data-testid=testid>{text}</p> }.into_any()
}
