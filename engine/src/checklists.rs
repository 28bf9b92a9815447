//! Checklist templates: per environment, the items a release must satisfy
//! before it may be deployed, and the environment's approval settings.

use crate::error::{parse_stored as parse, Error, Result};
use crate::store::Pool;
use model::{AutoCheck, Role, TemplateItem};
use std::time::Duration;

/// How an environment approves releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalSettings {
    /// A release must have succeeded there first (promotion).
    pub upstream: Option<String>,
    /// Exit status 0 = a backup newer than the item's limit exists. The limit
    /// is passed as `SWITCHYARD_BACKUP_MAX_AGE_HOURS`.
    pub backup_command: Option<String>,
    pub signoff_ttl: Duration,
}

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests and benchmarks
pub const DEFAULT_SIGNOFF_TTL: Duration = Duration::from_secs(24 * 3600);

pub async fn settings(pool: &Pool, env_id: i64) -> Result<ApprovalSettings> {
    let (upstream, backup_command, ttl): (Option<String>, Option<String>, i64) = crate::store::query_as(
        "SELECT upstream_environment, backup_command, signoff_ttl_secs FROM environments WHERE id = ?",
    )
    .bind(env_id)
    .fetch_one(pool)
    .await?;
    Ok(ApprovalSettings {
        upstream,
        backup_command,
        signoff_ttl: Duration::from_secs(ttl.max(1) as u64),
    })
}

pub async fn set_settings(pool: &Pool, env_id: i64, s: &ApprovalSettings) -> Result<()> {
    let mut tx = crate::store::begin_write(pool).await?;
    write_settings(&mut tx, env_id, s).await?;
    tx.commit().await
}

/// [`set_settings`] inside the caller's transaction.
pub async fn write_settings(
    conn: &mut crate::store::Tx,
    env_id: i64,
    s: &ApprovalSettings,
) -> Result<()> {
    if s.signoff_ttl.as_secs() == 0 {
        return Err(Error::invalid(
            "signoff_ttl_hours",
            "sign-offs must stay valid for at least a second",
        ));
    }
    crate::store::query(
        "UPDATE environments SET upstream_environment = ?, backup_command = ?, signoff_ttl_secs = ? \
         WHERE id = ?",
    )
    .bind(&s.upstream)
    .bind(&s.backup_command)
    .bind(s.signoff_ttl.as_secs() as i64)
    .bind(env_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The checklist teams start from: the pre-deployment items common to the
/// blue-green runbooks Switchyard replaces (docs/ARCHITECTURE.md). Items that need
/// configuration (an upstream environment, a backup command) are optional
/// until an admin configures them and marks them required.
pub fn default_template(has_upstream: bool, has_backup: bool) -> Vec<TemplateItem> {
    let manual = |title: &str, description: &str, role: Role| TemplateItem {
        id: 0,
        title: title.into(),
        description: description.into(),
        required_role: role,
        auto_check: None,
        max_age_hours: None,
        required: true,
    };
    let auto = |title: &str, description: &str, check: AutoCheck, required: bool| TemplateItem {
        id: 0,
        title: title.into(),
        description: description.into(),
        required_role: Role::Approver,
        auto_check: Some(check),
        max_age_hours: (check == AutoCheck::BackupRecent).then_some(24),
        required,
    };
    vec![
        manual(
            "Code reviewed",
            "Every change in this release was reviewed and approved by someone other than its author.",
            Role::Approver,
        ),
        manual(
            "Tests passing",
            "The CI pipeline is green for exactly this version: unit, integration and end-to-end tests.",
            Role::Approver,
        ),
        auto(
            "Staging deployment successful",
            "This version was deployed successfully to the upstream environment first.",
            AutoCheck::UpstreamSucceeded,
            has_upstream,
        ),
        manual(
            "Monitoring ready",
            "Dashboards and alerts for error rate and latency are in place and someone is watching.",
            Role::Approver,
        ),
        manual(
            "Rollback plan confirmed",
            "The on-call engineer knows how to roll back and the previous version stays warm.",
            Role::Deployer,
        ),
        auto(
            "Backup verified",
            "A database backup newer than the limit exists (the environment's backup command says so).",
            AutoCheck::BackupRecent,
            has_backup,
        ),
        auto(
            "Migrations additive-only",
            "The release's SQL only adds tables, columns with defaults, indexes or enum values.",
            AutoCheck::MigrationsAdditive,
            true,
        ),
        auto(
            "Idle slot ready",
            "The idle slot is not busy and the release's artifact is available to the runtime.",
            AutoCheck::IdleSlotHealthy,
            true,
        ),
    ]
}

#[derive(sqlx::FromRow)]
pub(crate) struct ItemRow {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub required_role: String,
    pub auto_check: Option<String>,
    pub max_age_hours: Option<i64>,
    pub required: bool,
}

impl TryFrom<ItemRow> for TemplateItem {
    type Error = Error;
    fn try_from(r: ItemRow) -> Result<Self> {
        Ok(TemplateItem {
            id: r.id,
            title: r.title,
            description: r.description,
            required_role: parse(&r.required_role)?,
            auto_check: r.auto_check.as_deref().map(parse).transpose()?,
            max_age_hours: r.max_age_hours,
            required: r.required,
        })
    }
}

pub async fn template(pool: &Pool, env_id: i64) -> Result<Vec<TemplateItem>> {
    crate::store::query_as::<ItemRow>(
        "SELECT id, title, description, required_role, auto_check, max_age_hours, required \
         FROM checklist_items WHERE environment_id = ? ORDER BY position, id",
    )
    .bind(env_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(TemplateItem::try_from)
    .collect()
}

/// Checks one item as an admin submitted it.
pub fn validate_item(item: &TemplateItem) -> Result<()> {
    let title = item.title.trim();
    if title.is_empty() || title.chars().count() > 120 {
        return Err(Error::invalid(
            "title",
            "an item needs a title of 1-120 characters",
        ));
    }
    if item.description.chars().count() > 2000 {
        return Err(Error::invalid(
            "description",
            "an item's description is limited to 2000 characters",
        ));
    }
    if item.required_role == Role::Viewer {
        return Err(Error::invalid(
            "required_role",
            format!(
            "{title:?}: viewers cannot sign; choose deployer, approver or admin"
        )));
    }
    match (item.auto_check, item.max_age_hours) {
        (Some(AutoCheck::BackupRecent), Some(h)) if (1..=24 * 365).contains(&h) => Ok(()),
        (Some(AutoCheck::BackupRecent), _) => Err(Error::invalid(
            "max_age_hours",
            format!(
            "{title:?}: a backup check needs a maximum age of 1 to 8760 hours"
        ))),
        (_, None) => Ok(()),
        (_, Some(_)) => Err(Error::invalid(
            "max_age_hours",
            format!(
            "{title:?}: only a backup check takes a maximum age"
        ))),
    }
}

/// Replaces an environment's template. Releases already requested keep the
/// checklist they were given.
pub async fn replace_template(pool: &Pool, env_id: i64, items: &[TemplateItem]) -> Result<()> {
    let mut tx = crate::store::begin_write(pool).await?;
    write_template(&mut tx, env_id, items).await?;
    tx.commit().await?;
    Ok(())
}

/// [`replace_template`] inside the caller's transaction.
pub async fn write_template(
    conn: &mut crate::store::Tx,
    env_id: i64,
    items: &[TemplateItem],
) -> Result<()> {
    if items.len() > 50 {
        return Err(Error::invalid(
            "items",
            "a checklist is limited to 50 items",
        ));
    }
    for item in items {
        validate_item(item)?;
    }
    crate::store::query("DELETE FROM checklist_items WHERE environment_id = ?")
        .bind(env_id)
        .execute(&mut *conn)
        .await?;
    for (position, item) in items.iter().enumerate() {
        crate::store::query(
            "INSERT INTO checklist_items (environment_id, position, title, description, required_role, \
             auto_check, max_age_hours, required, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(env_id)
        .bind(position as i64)
        .bind(item.title.trim())
        .bind(item.description.trim())
        .bind(item.required_role.as_str())
        .bind(item.auto_check.map(AutoCheck::as_str))
        .bind(item.max_age_hours)
        .bind(item.required)
        .bind(crate::now())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Whether releases are required at all: an environment without required
/// items (a scratch or test environment) deploys any version directly, as a
/// GitHub environment without protection rules does.
pub async fn is_protected(pool: &Pool, env_id: i64) -> Result<bool> {
    let n: i64 = crate::store::query_scalar(
        "SELECT COUNT(*) FROM checklist_items WHERE environment_id = ? AND required = TRUE",
    )
    .bind(env_id)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}
