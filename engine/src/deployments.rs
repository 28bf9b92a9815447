//! Deployment records: one row per run of the pipeline. A partial unique index
//! makes the database itself the environment lock: two running rows for one
//! environment cannot exist.

use crate::error::{parse_stored as parse, Error, Result};
use crate::store::Pool;
use chrono::{DateTime, Utc};
use model::{DeploymentKind, DeploymentStatus, DeploymentView, SlotColor};

pub struct NewDeployment<'a> {
    pub environment_id: i64,
    pub kind: DeploymentKind,
    pub from_version: Option<&'a str>,
    pub to_version: Option<&'a str>,
    pub from_slot: Option<SlotColor>,
    pub to_slot: Option<SlotColor>,
    /// `None` for the system itself.
    pub requested_by: Option<i64>,
    pub reason: Option<&'a str>,
    /// The console whose worker runs it (see [`crate::lock`]); `None` only
    /// for rows written by hand, which count as a dead console's.
    pub holder: Option<&'a crate::lock::Holder>,
}

/// Records a running deployment, which takes the environment's lock. A second
/// one is refused with who holds it and since when.
pub async fn begin(pool: &Pool, d: &NewDeployment<'_>) -> Result<i64> {
    let res = crate::store::query(
        "INSERT INTO deployments (environment_id, kind, status, from_version, to_version, from_slot, to_slot, \
         requested_by, reason, started_at, holder, heartbeat_at) \
         SELECT ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ? \
         WHERE EXISTS (SELECT 1 FROM environments WHERE id = ? AND archived_at IS NULL) RETURNING id",
    )
    .bind(d.environment_id)
    .bind(d.kind.as_str())
    .bind(d.from_version)
    .bind(d.to_version)
    .bind(d.from_slot.map(|c| c.as_str()))
    .bind(d.to_slot.map(|c| c.as_str()))
    .bind(d.requested_by)
    .bind(d.reason)
    .bind(crate::now())
    .bind(d.holder.map(|h| h.to_string()))
    .bind(crate::now())
    .bind(d.environment_id)
    .optional_id(pool)
    .await;
    match res {
        // Archived in the meantime (see `environments::archive`).
        Ok(None) => Err(Error::NotFound(format!(
            "environment {} (archived)",
            d.environment_id
        ))),
        Ok(Some(id)) => Ok(id),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            let (by, since) = in_progress(pool, d.environment_id)
                .await?
                .unwrap_or_else(|| ("another worker".into(), crate::now()));
            Err(Error::DeployInProgress { by, since })
        }
        Err(e) => Err(e.into()),
    }
}

/// Closes a running deployment, which frees the lock — only as its holder:
/// a worker whose lock another console took over closes nothing. `false`
/// when nothing was closed.
pub async fn finish(
    pool: &Pool,
    id: i64,
    holder: Option<&crate::lock::Holder>,
    status: DeploymentStatus,
    message: &str,
) -> Result<bool> {
    let now = crate::now();
    let started: DateTime<Utc> =
        crate::store::query_scalar("SELECT started_at FROM deployments WHERE id = ?")
            .bind(id)
            .fetch_one(pool)
            .await?;
    let r = crate::store::query(
        "UPDATE deployments SET status = ?, message = ?, finished_at = ?, duration_ms = ? \
         WHERE id = ? AND status = 'running' AND holder IS NOT DISTINCT FROM ?",
    )
    .bind(status.as_str())
    .bind(message)
    .bind(now)
    .bind((now - started).num_milliseconds())
    .bind(id)
    .bind(holder.map(|h| h.to_string()))
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Who runs a deployment in `env_id` right now, and since when.
pub async fn in_progress(pool: &Pool, env_id: i64) -> Result<Option<(String, DateTime<Utc>)>> {
    Ok(crate::store::query_as(
        "SELECT COALESCE(u.username, 'system'), d.started_at FROM deployments d \
         LEFT JOIN users u ON u.id = d.requested_by \
         WHERE d.environment_id = ? AND d.status = 'running'",
    )
    .bind(env_id)
    .fetch_optional(pool)
    .await?)
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    environment: String,
    kind: String,
    status: String,
    from_version: Option<String>,
    to_version: Option<String>,
    from_slot: Option<String>,
    to_slot: Option<String>,
    requested_by: String,
    reason: Option<String>,
    message: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
}

impl TryFrom<Row> for DeploymentView {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        Ok(DeploymentView {
            id: r.id,
            environment: r.environment,
            kind: parse(&r.kind)?,
            status: parse(&r.status)?,
            from_version: r.from_version,
            to_version: r.to_version,
            from_slot: r.from_slot.as_deref().map(parse).transpose()?,
            to_slot: r.to_slot.as_deref().map(parse).transpose()?,
            requested_by: r.requested_by,
            reason: r.reason,
            message: r.message,
            started_at: r.started_at.to_rfc3339(),
            finished_at: r.finished_at.map(|t| t.to_rfc3339()),
            duration_ms: r.duration_ms,
        })
    }
}

const VIEW_SELECT: &str =
    "SELECT d.id, e.name AS environment, d.kind, d.status, d.from_version, d.to_version, \
     d.from_slot, d.to_slot, COALESCE(u.username, 'system') AS requested_by, d.reason, d.message, \
     d.started_at, d.finished_at, d.duration_ms \
     FROM deployments d JOIN environments e ON e.id = d.environment_id \
     LEFT JOIN users u ON u.id = d.requested_by";

pub async fn get(pool: &Pool, id: i64) -> Result<DeploymentView> {
    crate::store::query_as::<Row>(&format!("{VIEW_SELECT} WHERE d.id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("deployment {id}")))?
        .try_into()
}

/// Newest first.
pub async fn history(pool: &Pool, env_id: i64, limit: i64) -> Result<Vec<DeploymentView>> {
    crate::store::query_as::<Row>(&format!(
        "{VIEW_SELECT} WHERE d.environment_id = ? ORDER BY d.id DESC LIMIT ?"
    ))
    .bind(env_id)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(DeploymentView::try_from)
    .collect()
}

/// The release a deployment shipped, if it shipped one.
pub async fn release_of(pool: &Pool, id: i64) -> Result<Option<i64>> {
    Ok(
        crate::store::query_scalar::<Option<i64>>("SELECT release_id FROM deployments WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}
