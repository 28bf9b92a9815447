//! Who acts, as every engine method sees it: a signed-in user or Switchyard
//! itself, and where the request came from (for the audit log).

use crate::audit::{AuditActor, Event, Outcome};
use crate::error::{Error, Result};
use crate::rbac::{self, Action};
use crate::users::User;

/// Who acts: a signed-in user, or Switchyard itself (bootstrap, recovery,
/// automatic rollback).
#[derive(Clone, Debug)]
pub enum Principal {
    User(User),
    System,
}

/// A principal and where the request came from, as the audit log records it.
#[derive(Clone, Debug)]
pub struct Actor {
    pub principal: Principal,
    pub source_ip: Option<String>,
    /// The API token the request came with, if any: the principal is then
    /// the token's owner under the token's role (see `tokens`).
    pub(crate) token: Option<TokenGrant>,
}

/// What an API token adds to its owner's identity: its name for the audit
/// log and the environments it is limited to.
#[derive(Clone, Debug)]
pub(crate) struct TokenGrant {
    pub(crate) name: String,
    pub(crate) prefix: String,
    /// `None`: every environment its role reaches.
    pub(crate) environments: Option<Vec<String>>,
}

impl TokenGrant {
    fn reaches(&self, environment: &str) -> bool {
        self.environments
            .as_ref()
            .is_none_or(|envs| envs.iter().any(|e| e == environment))
    }

    fn scope_text(&self) -> String {
        self.environments
            .as_ref()
            .map_or_else(|| "every environment".into(), |e| e.join(", "))
    }
}

impl Actor {
    pub fn user(user: User) -> Self {
        Actor {
            principal: Principal::User(user),
            source_ip: None,
            token: None,
        }
    }

    pub fn system() -> Self {
        Actor {
            principal: Principal::System,
            source_ip: None,
            token: None,
        }
    }

    pub fn from_ip(mut self, ip: Option<String>) -> Self {
        self.source_ip = ip;
        self
    }

    pub fn as_user(&self) -> Option<&User> {
        match &self.principal {
            Principal::User(u) => Some(u),
            Principal::System => None,
        }
    }

    /// How records that keep "updated by" name this actor: the username,
    /// or `system`.
    pub(crate) fn name(&self) -> String {
        self.as_user()
            .map_or_else(|| "system".to_string(), |u| u.username.clone())
    }

    pub(crate) fn user_id(&self) -> Option<i64> {
        self.as_user().map(|u| u.id)
    }

    fn audit_actor(&self) -> AuditActor {
        match (&self.principal, &self.token) {
            (Principal::User(u), Some(t)) => AuditActor::Token {
                owner_id: u.id,
                name: format!("{} (token {} sy_{})", u.username, t.name, t.prefix),
            },
            (Principal::User(u), None) => AuditActor::User {
                id: u.id,
                name: u.username.clone(),
            },
            (Principal::System, _) => AuditActor::System,
        }
    }

    /// The token this actor came with, as `(name, prefix)`.
    pub fn token(&self) -> Option<(&str, &str)> {
        self.token
            .as_ref()
            .map(|t| (t.name.as_str(), t.prefix.as_str()))
    }

    /// Whether this actor came with a token limited to some environments.
    pub fn is_limited(&self) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| t.environments.is_some())
    }

    /// Whether this actor may look at or act on `environment`: always for a
    /// session, only inside its list for a limited token.
    pub fn reaches(&self, environment: &str) -> bool {
        self.token.as_ref().is_none_or(|t| t.reaches(environment))
    }

    /// An audit event by this actor, from where it asked.
    pub fn event(&self, action: &'static str, outcome: Outcome) -> Event {
        let mut e = Event::new(self.audit_actor(), action, outcome);
        e.source_ip = self.source_ip.clone();
        e
    }

    /// Whether this actor's role allows `action`, without recording a
    /// refusal; [`crate::Engine::authorize`] records one.
    pub(crate) fn may(&self, action: Action) -> Result<()> {
        match &self.principal {
            Principal::User(u) if u.disabled => Err(Error::Unauthenticated),
            Principal::User(u) => rbac::authorize(u.role, action),
            Principal::System => Ok(()),
        }
    }

    /// [`Actor::may`], and within a limited token's environments. Without
    /// an environment, the role alone is checked (reads filter their lists
    /// with [`Actor::reaches`]; deploys, releases and signatures check again
    /// once they know the environment), except for the actions that change
    /// the whole console, which a limited token may never do.
    pub(crate) fn may_on(&self, action: Action, environment: Option<&str>) -> Result<()> {
        self.may(action)?;
        let Some(token) = self.token.as_ref().filter(|t| t.environments.is_some()) else {
            return Ok(());
        };
        let whole_console = matches!(
            action,
            Action::ManageUsers
                | Action::ManageEnvironments
                | Action::ManageChecklists
                | Action::BreakLock
        );
        match environment {
            Some(env) if token.reaches(env) => Ok(()),
            None if !whole_console => Ok(()),
            Some(env) => Err(Error::RuleForbids(format!(
                "token {} may act only on {}, not on {env}",
                token.name,
                token.scope_text()
            ))),
            None => Err(Error::RuleForbids(format!(
                "token {} is limited to {}: it may not {} across environments",
                token.name,
                token.scope_text(),
                action.describe()
            ))),
        }
    }
}
