//! Requests the console refused before any engine action was reached: a form
//! posted from another origin, a mutation without a session, a request for a
//! host name the console does not serve. They are audited like every other
//! refusal. How often is the caller's decision (the console keeps one entry
//! per kind and address a minute), so that a flood cannot grow the log
//! without bound; the entry says how many like it were left out.

use crate::audit::{AuditActor, Event, Outcome};
use crate::engine::Engine;
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusedRequest {
    /// A state-changing request a browser sent from another site (403).
    CrossOrigin,
    /// A state-changing request without a valid session (401).
    Unauthenticated,
    /// A `Host` header outside the console's allow-list (DNS rebinding).
    UnknownHost,
}

impl RefusedRequest {
    pub fn audit_name(self) -> &'static str {
        match self {
            RefusedRequest::CrossOrigin => "request.cross_origin",
            RefusedRequest::Unauthenticated => "request.unauthenticated",
            RefusedRequest::UnknownHost => "request.unknown_host",
        }
    }
}

/// One refused request, as the audit log records it.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub kind: RefusedRequest,
    pub method: String,
    pub path: String,
    pub source_ip: Option<String>,
    /// Refusals of the same kind from the same address since the last entry
    /// that were not written.
    pub not_logged_since: u64,
}

/// Longest path kept in an entry: the path is the caller's text.
const MAX_PATH: usize = 200;

impl Engine {
    pub async fn record_refused_request(&self, r: &Refusal) -> Result<()> {
        let actor = AuditActor::Anonymous {
            attempted: String::new(),
        };
        let mut ev = Event::new(actor, r.kind.audit_name(), Outcome::Denied);
        ev.source_ip = r.source_ip.clone();
        ev.details = serde_json::json!({
            "method": r.method,
            "path": r.path.chars().take(MAX_PATH).collect::<String>(),
            "similar_refusals_not_logged": r.not_logged_since,
        });
        self.audit(ev).await
    }
}
