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
}

impl Actor {
    pub fn user(user: User) -> Self {
        Actor {
            principal: Principal::User(user),
            source_ip: None,
        }
    }

    pub fn system() -> Self {
        Actor {
            principal: Principal::System,
            source_ip: None,
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
        match &self.principal {
            Principal::User(u) => AuditActor::User {
                id: u.id,
                name: u.username.clone(),
            },
            Principal::System => AuditActor::System,
        }
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
}
