//! An environment's two slots as stored: what runs in each, its health, and
//! which one is the warm standby until when.

use crate::error::{parse_stored as parse, Error, Result};
use crate::store::Pool;
use chrono::{DateTime, Utc};
use model::{SlotColor, SlotState};

#[derive(Clone, Debug)]
pub struct Slot {
    pub color: SlotColor,
    pub version: Option<String>,
    pub state: SlotState,
    pub handle: Option<String>,
    pub address: Option<String>,
    pub last_health_ok: Option<bool>,
    pub last_health_message: Option<String>,
    pub last_health_at: Option<DateTime<Utc>>,
    /// Set when the slot became the standby of a switch: until when it is
    /// kept warm. Still set (in the past) once the window stopped it, which
    /// is what lets a rollback start it again.
    pub standby_until: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct SlotRow {
    color: String,
    version: Option<String>,
    state: String,
    handle: Option<String>,
    address: Option<String>,
    last_health_ok: Option<bool>,
    last_health_message: Option<String>,
    last_health_at: Option<DateTime<Utc>>,
    standby_until: Option<DateTime<Utc>>,
}

impl TryFrom<SlotRow> for Slot {
    type Error = Error;
    fn try_from(r: SlotRow) -> Result<Self> {
        Ok(Slot {
            color: parse(&r.color)?,
            version: r.version,
            state: parse(&r.state)?,
            handle: r.handle,
            address: r.address,
            last_health_ok: r.last_health_ok,
            last_health_message: r.last_health_message,
            last_health_at: r.last_health_at,
            standby_until: r.standby_until,
        })
    }
}

pub async fn slots(pool: &Pool, env_id: i64) -> Result<Vec<Slot>> {
    crate::store::query_as::<SlotRow>(
        "SELECT color, version, state, handle, address, last_health_ok, last_health_message, last_health_at, \
         standby_until FROM slots WHERE environment_id = ? ORDER BY color",
    )
    .bind(env_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Slot::try_from)
    .collect()
}

pub async fn slot(pool: &Pool, env_id: i64, color: SlotColor) -> Result<Slot> {
    slots(pool, env_id)
        .await?
        .into_iter()
        .find(|s| s.color == color)
        .ok_or_else(|| Error::Internal(format!("slot {color} missing for environment {env_id}")))
}

/// Records what now runs in a slot (or that nothing does: handle and address `None`).
pub async fn set_slot(
    pool: &Pool,
    env_id: i64,
    color: SlotColor,
    version: Option<&str>,
    state: SlotState,
    handle: Option<&str>,
    address: Option<&str>,
) -> Result<()> {
    crate::store::query(
        "UPDATE slots SET version = ?, state = ?, handle = ?, address = ?, updated_at = ? \
         WHERE environment_id = ? AND color = ?",
    )
    .bind(version)
    .bind(state.as_str())
    .bind(handle)
    .bind(address)
    .bind(crate::now())
    .bind(env_id)
    .bind(color.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Records that nothing runs in `slot` any more, keeping the version it ran
/// (a stopped standby can still be rolled back to).
pub async fn record_stopped(pool: &Pool, env_id: i64, slot: &Slot) -> Result<()> {
    set_slot(
        pool,
        env_id,
        slot.color,
        slot.version.as_deref(),
        SlotState::Stopped,
        None,
        None,
    )
    .await
}

pub async fn set_slot_state(
    pool: &Pool,
    env_id: i64,
    color: SlotColor,
    state: SlotState,
) -> Result<()> {
    crate::store::query(
        "UPDATE slots SET state = ?, updated_at = ? WHERE environment_id = ? AND color = ?",
    )
    .bind(state.as_str())
    .bind(crate::now())
    .bind(env_id)
    .bind(color.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn record_health(
    pool: &Pool,
    env_id: i64,
    color: SlotColor,
    ok: bool,
    message: &str,
) -> Result<()> {
    crate::store::query(
        "UPDATE slots SET last_health_ok = ?, last_health_message = ?, last_health_at = ? \
         WHERE environment_id = ? AND color = ?",
    )
    .bind(ok)
    .bind(message)
    .bind(crate::now())
    .bind(env_id)
    .bind(color.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// After a switch to `active`: the active slot is no standby; the other one
/// is kept warm `until` (`None`: until the next deploy).
pub async fn mark_standby(
    pool: &Pool,
    env_id: i64,
    active: SlotColor,
    until: Option<DateTime<Utc>>,
) -> Result<()> {
    crate::store::query(
        "UPDATE slots SET standby_until = CASE WHEN color = ? THEN NULL ELSE ? END WHERE environment_id = ?",
    )
    .bind(active.as_str())
    .bind(until)
    .bind(env_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// A slot that takes a new release is nobody's standby any more.
pub async fn clear_standby(pool: &Pool, env_id: i64, color: SlotColor) -> Result<()> {
    crate::store::query("UPDATE slots SET standby_until = NULL WHERE environment_id = ? AND color = ?")
        .bind(env_id)
        .bind(color.as_str())
        .execute(pool)
        .await?;
    Ok(())
}
