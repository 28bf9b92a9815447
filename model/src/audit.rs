//! The audit log as the console shows, filters and exports it.

use serde::{Deserialize, Serialize};

/// One audit log entry as the console shows and exports it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` to get the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// The audit log's seal, for the audit page: the newest signed checkpoint
/// and what the console's last verification found.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSealView {
    /// `None` until the first checkpoint is signed.
    pub newest: Option<CheckpointView>,
    /// When the chain and the checkpoints were last verified, and whether
    /// they checked out (`None` before the first verification).
    pub checked_at: Option<String>,
    pub intact: Option<bool>,
    /// What failed, for admins only (others see that it failed).
    pub problem: Option<String>,
}

/// One signed checkpoint: after `entries` entries, at `at`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointView {
    pub seq: u64,
    pub at: String,
    pub entries: u64,
    /// The signing key, `ed25519:<hex>`.
    pub key: String,
}
