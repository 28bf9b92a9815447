//! The store of holds at preview (`deployment_holds`): one row per held
//! deploy, written when the hold step starts and decided exactly once —
//! by a deployer (promote, abort), by the worker (timeout) or by whoever
//! takes an interrupted deployment over. The worker polls its row, so a
//! decision made in any console reaches it.

use crate::error::{Error, Result};
use crate::store::{begin_write, Pool};
use chrono::{DateTime, Utc};
use model::{CanarySetting, HoldView};

/// How a hold ended, as stored in `decision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Promote,
    Abort,
    Timeout,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Promote => "promote",
            Decision::Abort => "abort",
            Decision::Timeout => "timeout",
        }
    }
}

#[derive(sqlx::FromRow)]
struct HoldRow {
    preview_url: String,
    held_at: DateTime<Utc>,
    until: DateTime<Utc>,
    decision: Option<String>,
    decided_by: Option<String>,
    reason: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    canary: Option<String>,
    canary_writing_since: Option<DateTime<Utc>>,
}

/// The columns [`HoldRow`] reads.
const COLUMNS: &str = "preview_url, held_at, until, decision, decided_by, reason, decided_at, \
                       canary, canary_writing_since";

/// A hold as the worker and the deciders read it.
#[derive(Clone, Debug)]
pub struct Hold {
    pub preview_url: String,
    pub held_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub decision: Option<Decision>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The canary a deployer set while it was held, if any.
    pub canary: Option<CanarySetting>,
    /// A console is writing a canary change to the router since then.
    pub canary_writing_since: Option<DateTime<Utc>>,
}

impl From<HoldRow> for Hold {
    fn from(r: HoldRow) -> Self {
        let decision = match r.decision.as_deref() {
            Some("promote") => Some(Decision::Promote),
            Some("abort") => Some(Decision::Abort),
            Some(_) => Some(Decision::Timeout),
            None => None,
        };
        Hold {
            preview_url: r.preview_url,
            held_at: r.held_at,
            until: r.until,
            decision,
            decided_by: r.decided_by,
            reason: r.reason,
            decided_at: r.decided_at,
            // Written by `record_canary` only, from a checked setting.
            canary: r.canary.and_then(|json| serde_json::from_str(&json).ok()),
            canary_writing_since: r.canary_writing_since,
        }
    }
}

impl Hold {
    pub fn view(&self) -> HoldView {
        HoldView {
            preview_url: self.preview_url.clone(),
            held_at: self.held_at.to_rfc3339(),
            until: self.until.to_rfc3339(),
            decision: self.decision.map(|d| d.as_str().to_string()),
            decided_by: self.decided_by.clone(),
            reason: self.reason.clone(),
            decided_at: self.decided_at.map(|t| t.to_rfc3339()),
            canary: self.canary.clone(),
        }
    }
}

/// Records that `deployment_id` is held, its preview at `preview_url`, until
/// `until`.
pub async fn begin(
    pool: &Pool,
    deployment_id: i64,
    preview_url: &str,
    until: DateTime<Utc>,
) -> Result<Hold> {
    crate::store::query(
        "INSERT INTO deployment_holds (deployment_id, preview_url, held_at, until) VALUES (?, ?, ?, ?)",
    )
    .bind(deployment_id)
    .bind(preview_url)
    .bind(crate::now())
    .bind(until)
    .execute(pool)
    .await?;
    get(pool, deployment_id)
        .await?
        .ok_or_else(|| Error::Internal(format!("hold of deployment #{deployment_id} not written")))
}

pub async fn get(pool: &Pool, deployment_id: i64) -> Result<Option<Hold>> {
    let row: Option<HoldRow> = crate::store::query_as(&format!(
        "SELECT {COLUMNS} FROM deployment_holds WHERE deployment_id = ?"
    ))
    .bind(deployment_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Hold::from))
}

/// Decides a hold once. Checked and written in one writing transaction, so a
/// promote and the timeout (or two deployers) cannot both win: the one that
/// comes second is refused with [`Error::NotHeld`] saying how it ended, and
/// nothing changes. A person's decision (promote, abort) also needs the
/// deployment still running and the timeout not passed.
pub async fn decide(
    pool: &Pool,
    deployment_id: i64,
    decision: Decision,
    by: &str,
    reason: Option<&str>,
) -> Result<Hold> {
    let mut tx = begin_write(pool).await?;
    let hold = read_open(&mut tx, deployment_id, decision != Decision::Timeout).await?;
    let now = crate::now();
    crate::store::query(
        "UPDATE deployment_holds SET decision = ?, decided_by = ?, reason = ?, decided_at = ? \
         WHERE deployment_id = ? AND decision IS NULL",
    )
    .bind(decision.as_str())
    .bind(by)
    .bind(reason)
    .bind(now)
    .bind(deployment_id)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(Hold {
        decision: Some(decision),
        decided_by: Some(by.to_string()),
        reason: reason.map(str::to_string),
        decided_at: Some(now),
        ..hold
    })
}

/// The hold of `deployment_id`, provided it is still undecided; for a
/// person (`by_person`) also not timed out and its deployment running.
/// [`Error::NotHeld`] says how it ended otherwise.
async fn read_open(
    tx: &mut crate::store::Tx,
    deployment_id: i64,
    by_person: bool,
) -> Result<Hold> {
    let hold: Option<HoldRow> = crate::store::query_as(&format!(
        "SELECT {COLUMNS} FROM deployment_holds WHERE deployment_id = ?"
    ))
    .bind(deployment_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(hold) = hold.map(Hold::from) else {
        return Err(Error::NotHeld(format!(
            "deployment #{deployment_id} is not held at preview"
        )));
    };
    if let Some(d) = hold.decision {
        let when = hold.decided_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        let how = match d {
            Decision::Promote => format!("promoted by {}", hold.decided_by.as_deref().unwrap_or("?")),
            Decision::Abort => format!("aborted by {}", hold.decided_by.as_deref().unwrap_or("?")),
            Decision::Timeout => "aborted when the hold timed out".to_string(),
        };
        return Err(Error::NotHeld(format!(
            "deployment #{deployment_id} is no longer held: it was {how} at {when}"
        )));
    }
    if by_person {
        if crate::now() >= hold.until {
            return Err(Error::NotHeld(format!(
                "deployment #{deployment_id} is no longer held: its hold timed out at {}",
                hold.until.to_rfc3339()
            )));
        }
        let status: String = crate::store::query_scalar("SELECT status FROM deployments WHERE id = ?")
            .bind(deployment_id)
            .fetch_one(&mut *tx)
            .await?;
        if status != "running" {
            return Err(Error::NotHeld(format!(
                "deployment #{deployment_id} is no longer held: it has ended ({status})"
            )));
        }
    }
    Ok(hold)
}

/// How long a canary write may keep the held deploy's worker waiting (a
/// console that died mid-write leaves its mark behind).
pub const CANARY_WRITE_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Marks that a canary change is about to be written to the router, checked
/// in one writing transaction with the hold still open: a decision made
/// after this waits for the write (see [`canary_write_pending`]); one made
/// before it refuses the change with [`Error::NotHeld`]. A second change
/// while one is being written is refused ([`Error::Conflict`]).
pub async fn begin_canary_write(pool: &Pool, deployment_id: i64) -> Result<Hold> {
    let mut tx = begin_write(pool).await?;
    let hold = read_open(&mut tx, deployment_id, true).await?;
    if canary_write_pending(&hold) {
        return Err(Error::Conflict(format!(
            "a canary change for deployment #{deployment_id} is being applied; try again"
        )));
    }
    crate::store::query("UPDATE deployment_holds SET canary_writing_since = ? WHERE deployment_id = ?")
        .bind(crate::now())
        .bind(deployment_id)
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(hold)
}

/// Ends a canary write: records `applied` (the setting now in the router's
/// table, by `by`) when it landed, and clears the mark either way.
pub async fn end_canary_write(
    pool: &Pool,
    deployment_id: i64,
    applied: Option<(&CanarySetting, &str)>,
) -> Result<()> {
    match applied {
        Some((setting, by)) => {
            let json = serde_json::to_string(setting)
                .map_err(|e| Error::Internal(format!("canary setting: {e}")))?;
            crate::store::query(
                "UPDATE deployment_holds SET canary = ?, canary_by = ?, canary_at = ?, \
                 canary_writing_since = NULL WHERE deployment_id = ?",
            )
            .bind(json)
            .bind(by)
            .bind(crate::now())
            .bind(deployment_id)
            .execute(pool)
            .await?;
        }
        None => {
            crate::store::query(
                "UPDATE deployment_holds SET canary_writing_since = NULL WHERE deployment_id = ?",
            )
            .bind(deployment_id)
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

/// A canary change is being written to the router (and its writer is not
/// presumed dead).
pub fn canary_write_pending(hold: &Hold) -> bool {
    let grace = chrono::Duration::from_std(CANARY_WRITE_GRACE).unwrap_or_default();
    hold.canary_writing_since
        .is_some_and(|since| crate::now() < since + grace)
}

/// Closes a hold nobody decided because its deployment was taken over (the
/// console restarted, the lock expired or was broken): it is aborted with
/// `why`, so no page offers to promote it.
pub async fn close_open(pool: &Pool, deployment_id: i64, why: &str) -> Result<()> {
    crate::store::query(
        "UPDATE deployment_holds SET decision = 'abort', decided_by = 'system', reason = ?, \
         decided_at = ? WHERE deployment_id = ? AND decision IS NULL",
    )
    .bind(why)
    .bind(crate::now())
    .bind(deployment_id)
    .execute(pool)
    .await?;
    Ok(())
}
