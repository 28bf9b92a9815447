//! The audit log as the console shows, filters and exports it.

use serde::{Deserialize, Serialize};

/// One audit log entry as the console shows and exports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryView {
    pub id: i64,
    pub at: String,
    pub actor_kind: String,
    pub actor_name: String,
    pub source_ip: Option<String>,
    pub action: String,
    pub environment: Option<String>,
    pub target: Option<String>,
    pub reason: Option<String>,
    pub result: String,
    /// JSON object, as stored.
    pub details: String,
    pub hash: String,
}

/// Which audit entries to show. Empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub environment: Option<String>,
    /// Inclusive bounds, RFC 3339 or a prefix of it ("2026-11-22", "2026-11-22T10:00").
    pub since: Option<String>,
    pub until: Option<String>,
    /// Words to find anywhere in the entry.
    pub text: Option<String>,
    /// Keyset pagination: only entries older than this id.
    pub before: Option<i64>,
}

/// One page of the audit log, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` to get the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}
