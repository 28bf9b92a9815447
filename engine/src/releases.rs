//! Releases and sign-offs, as stored. The rules (who may sign what, four-eyes,
//! expiry, what makes a release deployable) live in `approvals`.

use crate::checklists::ItemRow;
use crate::error::{parse_stored as parse, Error, Result};
use crate::store::Pool;
use chrono::{DateTime, Utc};
use model::{ReleaseStatus, TemplateItem};

#[derive(Clone, Debug)]
pub struct Release {
    pub id: i64,
    pub environment_id: i64,
    pub environment: String,
    pub version: String,
    pub artifact: String,
    pub notes: String,
    pub migration_sql: String,
    pub requested_by: i64,
    pub requested_by_name: String,
    pub revision: i64,
    pub status: ReleaseStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ReleaseRow {
    id: i64,
    environment_id: i64,
    environment: String,
    version: String,
    artifact: String,
    notes: String,
    migration_sql: String,
    requested_by: i64,
    requested_by_name: String,
    revision: i64,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ReleaseRow> for Release {
    type Error = Error;
    fn try_from(r: ReleaseRow) -> Result<Self> {
        Ok(Release {
            id: r.id,
            environment_id: r.environment_id,
            environment: r.environment,
            version: r.version,
            artifact: r.artifact,
            notes: r.notes,
            migration_sql: r.migration_sql,
            requested_by: r.requested_by,
            requested_by_name: r.requested_by_name,
            revision: r.revision,
            status: parse(&r.status)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const RELEASE_SELECT: &str = "SELECT r.id, r.environment_id, e.name AS environment, r.version, r.artifact, \
     r.notes, r.migration_sql, r.requested_by, u.username AS requested_by_name, r.revision, r.status, \
     r.created_at, r.updated_at \
     FROM releases r JOIN environments e ON e.id = r.environment_id JOIN users u ON u.id = r.requested_by";

/// A release item: the template item as copied when the release was requested.
#[derive(Clone, Debug)]
pub struct ReleaseItem {
    pub id: i64,
    pub item: TemplateItem,
}

#[derive(Clone, Debug)]
pub struct Signoff {
    pub id: i64,
    pub release_item_id: i64,
    pub revision: i64,
    pub signed_by: i64,
    pub signed_by_name: String,
    pub note: String,
    pub signed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Signoff {
    /// Counts for `revision` at `now`: given for what the release is now and
    /// not expired. (Voided ones are never loaded.)
    pub fn valid(&self, revision: i64, now: DateTime<Utc>) -> bool {
        self.revision == revision && self.expires_at > now
    }
}

pub struct NewRelease<'a> {
    pub environment_id: i64,
    pub version: &'a str,
    pub artifact: &'a str,
    pub notes: &'a str,
    pub migration_sql: &'a str,
    pub requested_by: i64,
}

/// Stores a release with its checklist copied from `template`.
pub async fn create(pool: &Pool, new: &NewRelease<'_>, template: &[TemplateItem]) -> Result<i64> {
    let now = crate::now();
    let mut tx = crate::store::begin_write(pool).await?;
    let id = crate::store::query(
        "INSERT INTO releases (environment_id, version, artifact, notes, migration_sql, requested_by, \
         created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(new.environment_id)
    .bind(new.version)
    .bind(new.artifact)
    .bind(new.notes)
    .bind(new.migration_sql)
    .bind(new.requested_by)
    .bind(now)
    .bind(now)
    .returning_id(&mut tx)
    .await?;
    for (position, item) in template.iter().enumerate() {
        crate::store::query(
            "INSERT INTO release_items (release_id, position, title, description, required_role, auto_check, \
             max_age_hours, required) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(position as i64)
        .bind(&item.title)
        .bind(&item.description)
        .bind(item.required_role.as_str())
        .bind(item.auto_check.map(|c| c.as_str()))
        .bind(item.max_age_hours)
        .bind(item.required)
        .execute(&mut tx)
        .await?;
    }
    tx.commit().await?;
    Ok(id)
}

pub async fn get(pool: &Pool, id: i64) -> Result<Release> {
    crate::store::query_as::<ReleaseRow>(&format!("{RELEASE_SELECT} WHERE r.id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("release #{id}")))?
        .try_into()
}

/// Newest first; `env_id` None lists every environment's.
pub async fn list(pool: &Pool, env_id: Option<i64>, limit: i64) -> Result<Vec<Release>> {
    crate::store::query_as::<ReleaseRow>(&format!(
        "{RELEASE_SELECT} WHERE (?1 IS NULL OR r.environment_id = ?1) ORDER BY r.id DESC LIMIT ?2"
    ))
    .bind(env_id)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Release::try_from)
    .collect()
}

/// The newest open release of `version` in the environment.
pub async fn latest_open(pool: &Pool, env_id: i64, version: &str) -> Result<Option<Release>> {
    crate::store::query_as::<ReleaseRow>(&format!(
        "{RELEASE_SELECT} WHERE r.environment_id = ? AND r.version = ? AND r.status = 'open' \
         ORDER BY r.id DESC LIMIT 1"
    ))
    .bind(env_id)
    .bind(version)
    .fetch_optional(pool)
    .await?
    .map(Release::try_from)
    .transpose()
}

pub async fn items(pool: &Pool, release_id: i64) -> Result<Vec<ReleaseItem>> {
    crate::store::query_as::<ItemRow>(
        "SELECT id, title, description, required_role, auto_check, max_age_hours, required \
         FROM release_items WHERE release_id = ? ORDER BY position, id",
    )
    .bind(release_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| {
        let id = row.id;
        Ok(ReleaseItem {
            id,
            item: TemplateItem::try_from(row)?,
        })
    })
    .collect()
}

/// A `signoffs` row joined with its signer's name, as `live_signoffs` reads it.
type SignoffRow = (
    i64,
    i64,
    i64,
    i64,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

/// Sign-offs that have not been voided (they may still have expired).
pub async fn live_signoffs(pool: &Pool, release_id: i64) -> Result<Vec<Signoff>> {
    let rows: Vec<SignoffRow> =
        crate::store::query_as(
            "SELECT s.id, s.release_item_id, s.revision, s.signed_by, u.username, s.note, s.signed_at, \
             s.expires_at FROM signoffs s JOIN users u ON u.id = s.signed_by \
             WHERE s.release_id = ? AND s.voided_at IS NULL",
        )
        .bind(release_id)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                release_item_id,
                revision,
                signed_by,
                signed_by_name,
                note,
                signed_at,
                expires_at,
            )| {
                Signoff {
                    id,
                    release_item_id,
                    revision,
                    signed_by,
                    signed_by_name,
                    note,
                    signed_at,
                    expires_at,
                }
            },
        )
        .collect())
}

pub struct NewSignoff<'a> {
    pub release_id: i64,
    pub release_item_id: i64,
    pub revision: i64,
    pub signed_by: i64,
    pub note: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// Records a signature for the release's current revision. In one
/// transaction: the revision is checked, an expired or stale signature on
/// the item is voided, and the partial unique index refuses a second live
/// signature (someone else signed first).
pub async fn sign(pool: &Pool, s: &NewSignoff<'_>) -> Result<i64> {
    let now = crate::now();
    let mut tx = crate::store::begin_write(pool).await?;
    let current: Option<(i64, String)> =
        crate::store::query_as("SELECT revision, status FROM releases WHERE id = ?")
            .bind(s.release_id)
            .fetch_optional(&mut tx)
            .await?;
    match current {
        Some((rev, status)) if rev == s.revision && status == "open" => {}
        Some((_, status)) if status != "open" => {
            return Err(Error::Conflict(format!(
                "release #{} is {status}",
                s.release_id
            )))
        }
        Some((rev, _)) => return Err(stale(s.release_id, s.revision, rev)),
        None => return Err(Error::NotFound(format!("release #{}", s.release_id))),
    }
    crate::store::query(
        "UPDATE signoffs SET voided_at = ?, void_reason = 'expired' \
         WHERE release_item_id = ? AND voided_at IS NULL AND expires_at <= ?",
    )
    .bind(now)
    .bind(s.release_item_id)
    .bind(now)
    .execute(&mut tx)
    .await?;
    let res = crate::store::query(
        "INSERT INTO signoffs (release_item_id, release_id, revision, signed_by, note, signed_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(s.release_item_id)
    .bind(s.release_id)
    .bind(s.revision)
    .bind(s.signed_by)
    .bind(s.note)
    .bind(now)
    .bind(s.expires_at)
    .returning_id(&mut tx)
    .await;
    let id = match res {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(Error::AlreadyExists(
                "a valid signature on this item".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(id)
}

/// The error for a form filled in against an older revision.
pub fn stale(release_id: i64, seen: i64, current: i64) -> Error {
    Error::Conflict(format!(
        "release #{release_id} changed since you loaded it (revision {seen}, now {current}); reload and check it again"
    ))
}

/// Voids one live signature. Returns false when there was none.
pub async fn void_signoff(pool: &Pool, signoff_id: i64, by: i64, reason: &str) -> Result<bool> {
    let n = crate::store::query(
        "UPDATE signoffs SET voided_at = ?, voided_by = ?, void_reason = ? \
         WHERE id = ? AND voided_at IS NULL",
    )
    .bind(crate::now())
    .bind(by)
    .bind(reason)
    .bind(signoff_id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Applies an edit: new content, next revision, every live signature voided.
/// Refused when `seen_revision` is not the current one. Returns the new
/// revision and how many signatures were voided.
pub async fn edit(
    pool: &Pool,
    release_id: i64,
    seen_revision: i64,
    by: i64,
    notes: &str,
    migration_sql: &str,
) -> Result<(i64, u64)> {
    let now = crate::now();
    let mut tx = crate::store::begin_write(pool).await?;
    let updated = crate::store::query(
        "UPDATE releases SET notes = ?, migration_sql = ?, revision = revision + 1, updated_at = ? \
         WHERE id = ? AND revision = ? AND status = 'open'",
    )
    .bind(notes)
    .bind(migration_sql)
    .bind(now)
    .bind(release_id)
    .bind(seen_revision)
    .execute(&mut tx)
    .await?
    .rows_affected();
    if updated != 1 {
        let current: Option<(i64, String)> =
            crate::store::query_as("SELECT revision, status FROM releases WHERE id = ?")
                .bind(release_id)
                .fetch_optional(&mut tx)
                .await?;
        return Err(match current {
            None => Error::NotFound(format!("release #{release_id}")),
            Some((_, status)) if status != "open" => {
                Error::Conflict(format!("release #{release_id} is {status}"))
            }
            Some((rev, _)) => stale(release_id, seen_revision, rev),
        });
    }
    let new_revision = seen_revision + 1;
    let voided = crate::store::query(
        "UPDATE signoffs SET voided_at = ?, voided_by = ?, void_reason = ? \
         WHERE release_id = ? AND voided_at IS NULL",
    )
    .bind(now)
    .bind(by)
    .bind(format!("release edited (revision {new_revision})"))
    .bind(release_id)
    .execute(&mut tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok((new_revision, voided))
}

pub async fn cancel(pool: &Pool, release_id: i64, seen_revision: i64) -> Result<()> {
    let n = crate::store::query(
        "UPDATE releases SET status = 'cancelled', updated_at = ? WHERE id = ? AND revision = ? AND status = 'open'",
    )
    .bind(crate::now())
    .bind(release_id)
    .bind(seen_revision)
    .execute(pool)
    .await?
    .rows_affected();
    if n == 1 {
        return Ok(());
    }
    let r = get(pool, release_id).await?;
    if r.status != ReleaseStatus::Open {
        return Err(Error::Conflict(format!(
            "release #{release_id} is already {}",
            r.status.as_str()
        )));
    }
    Err(stale(release_id, seen_revision, r.revision))
}

/// Deployments of a release, newest first.
pub async fn deployments(pool: &Pool, release_id: i64) -> Result<Vec<(i64, String)>> {
    Ok(
        crate::store::query_as("SELECT id, status FROM deployments WHERE release_id = ? ORDER BY id DESC")
            .bind(release_id)
            .fetch_all(pool)
            .await?,
    )
}

/// The deployment that put `release_id` live, if one did (the newest
/// succeeded one). A release that went live is read-only: its notes and
/// SQL are what was deployed, and deploying the version again needs a new
/// release and new signatures.
pub async fn deployed_as(pool: &Pool, release_id: i64) -> Result<Option<i64>> {
    Ok(crate::store::query_scalar(
        "SELECT id FROM deployments WHERE release_id = ? AND status = 'succeeded' ORDER BY id DESC LIMIT 1",
    )
    .bind(release_id)
    .fetch_optional(pool)
    .await?)
}

/// The refusal of a change to a release that went live with `deployment`.
pub fn went_live(release_id: i64, deployment: i64) -> crate::error::Error {
    crate::error::Error::Conflict(format!(
        "release #{release_id} went live with deployment #{deployment} and is read-only: request a new release to change or deploy it again"
    ))
}

pub async fn link_deployment(pool: &Pool, deployment_id: i64, release_id: i64) -> Result<()> {
    crate::store::query("UPDATE deployments SET release_id = ? WHERE id = ?")
        .bind(release_id)
        .bind(deployment_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The newest successful deploy of `version` in the environment named
/// `env_name`: (deployment id, who, when).
pub async fn succeeded_in(
    pool: &Pool,
    env_name: &str,
    version: &str,
) -> Result<Option<(i64, String, DateTime<Utc>)>> {
    Ok(crate::store::query_as(
        "SELECT d.id, COALESCE(u.username, 'system'), d.finished_at FROM deployments d \
         JOIN environments e ON e.id = d.environment_id LEFT JOIN users u ON u.id = d.requested_by \
         WHERE e.name = ? AND d.to_version = ? AND d.kind = 'deploy' AND d.status = 'succeeded' \
         ORDER BY d.id DESC LIMIT 1",
    )
    .bind(env_name)
    .bind(version)
    .fetch_optional(pool)
    .await?)
}
