//! Releases, their checklists and sign-offs, as the browser sees them.

use crate::string_enum::string_enum;
use crate::Role;
use serde::{Deserialize, Serialize};

string_enum! {
    /// What the engine verifies by itself for an automatic checklist item.
    pub enum AutoCheck("automatic check") {
        /// The same version succeeded in the environment's upstream (promotion).
        UpstreamSucceeded = "upstream_succeeded",
        /// The release's SQL only adds (parsed, not pattern-matched).
        MigrationsAdditive = "migrations_additive",
        /// The idle slot can take the release: not busy, artifact available.
        IdleSlotHealthy = "idle_slot_healthy",
        /// The configured backup command says a recent enough backup exists.
        BackupRecent = "backup_recent",
    }
}

impl AutoCheck {
    pub fn describe(self) -> &'static str {
        match self {
            AutoCheck::UpstreamSucceeded => "succeeded in the upstream environment",
            AutoCheck::MigrationsAdditive => "migrations are additive-only",
            AutoCheck::IdleSlotHealthy => "idle slot ready",
            AutoCheck::BackupRecent => "recent backup",
        }
    }
}

/// One item of an environment's checklist template.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateItem {
    /// 0 for an item not stored yet.
    #[serde(default)]
    pub id: i64,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Who may sign it (that role or a higher one); for automatic items, who
    /// answers for the check.
    pub required_role: Role,
    /// `None`: a person signs it.
    #[serde(default)]
    pub auto_check: Option<AutoCheck>,
    #[serde(default)]
    pub max_age_hours: Option<i64>,
    pub required: bool,
}

/// Where a checklist item stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Signed by someone allowed to, for the current revision, not expired.
    Signed,
    /// Checked by the engine and passed.
    Verified,
    /// Waiting for a signature.
    Pending,
    /// Checked by the engine and failed: the evidence says why.
    Failed,
    /// The engine could not check it (unreadable SQL, no upstream configured…).
    /// Never counts as satisfied.
    NotVerified,
}

impl ItemState {
    pub fn satisfied(self) -> bool {
        matches!(self, ItemState::Signed | ItemState::Verified)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Signed => "signed",
            ItemState::Verified => "verified",
            ItemState::Pending => "pending",
            ItemState::Failed => "failed",
            ItemState::NotVerified => "not verified",
        }
    }
}

/// A sign-off as shown next to its item.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignoffView {
    pub id: i64,
    pub signed_by: String,
    pub note: String,
    pub signed_at: String,
    pub expires_at: String,
}

/// One item of a release's checklist with its current state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItemView {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub required_role: Role,
    pub auto_check: Option<AutoCheck>,
    pub required: bool,
    pub state: ItemState,
    /// One line saying why the item is in its state.
    pub summary: String,
    /// Supporting lines: offending SQL statements, the upstream deployment…
    pub evidence: Vec<String>,
    pub signoff: Option<SignoffView>,
    /// Whether the user looking at the page may sign it now (the server
    /// decides again when they do).
    pub can_sign: bool,
    /// Whether the user may revoke its signature (the signer or an admin).
    pub can_revoke: bool,
}

string_enum! {
    pub enum ReleaseStatus("release status") {
        Open = "open",
        Cancelled = "cancelled",
    }
}

/// A release with its checklist, for the release page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseView {
    pub id: i64,
    pub environment: String,
    pub version: String,
    pub artifact: String,
    pub notes: String,
    pub migration_sql: String,
    pub requested_by: String,
    /// Bumped by every edit; forms send it back so a stale one is refused.
    pub revision: i64,
    pub status: ReleaseStatus,
    pub created_at: String,
    pub updated_at: String,
    pub items: Vec<ChecklistItemView>,
    /// Every required item satisfied (and the release open).
    pub deployable: bool,
    /// Why it is not deployable, one line per reason.
    pub blockers: Vec<String>,
    /// Deployments of this release, newest first (id, status).
    pub deployments: Vec<(i64, String)>,
    /// What the viewing user may do (the server checks again).
    pub can_edit: bool,
    pub can_deploy: bool,
}

/// A release in a list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSummary {
    pub id: i64,
    pub environment: String,
    pub version: String,
    pub requested_by: String,
    pub created_at: String,
    pub status: ReleaseStatus,
    /// Required manual items signed (automatic checks run on the release page).
    pub signed: usize,
    pub to_sign: usize,
    pub signatures_complete: bool,
    /// Status of its latest deployment, if any.
    pub last_deployment: Option<String>,
}

/// What a person fills in to request (or edit) a release.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub environment: String,
    pub version: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub migration_sql: String,
}

string_enum! {
    /// A freeze window's shape: one stretch of time, or a weekly one.
    pub enum FreezeKind("freeze kind") {
        Once = "once",
        Weekly = "weekly",
    }
}

/// A freeze window as an admin writes it. Local times are read in
/// `time_zone` (an IANA name such as `Europe/Berlin`; `UTC` by default).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFreeze {
    pub reason: String,
    pub kind: FreezeKind,
    /// `once`: `YYYY-MM-DD HH:MM`, local.
    #[serde(default)]
    pub starts: Option<String>,
    #[serde(default)]
    pub ends: Option<String>,
    /// `weekly`: the days (`mon,tue,…,sun`), the local start `HH:MM` and
    /// how long it lasts (1 minute to 7 days).
    #[serde(default)]
    pub days: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A freeze window as pages and the API show it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeView {
    pub id: i64,
    pub environment: String,
    pub reason: String,
    pub kind: FreezeKind,
    /// "every fri 18:00 for 62 h (Europe/Berlin)", "2026-12-24 00:00 → 2026-12-27 00:00 (UTC)".
    pub schedule: String,
    /// While it holds: when it ends (RFC 3339, UTC).
    pub active_until: Option<String>,
    /// When it next begins (RFC 3339, UTC); none for a once window that
    /// has begun.
    #[serde(default)]
    pub next_start: Option<String>,
    pub created_by: String,
    pub created_at: String,
}
