//! The failure counts as stored (`login_throttle`): reading, charging an
//! attempt with one compare-and-set per key, refunding, resetting, and
//! claiming the one audit entry a lock gets.

use super::policy::{account_key, address_key, Backoff, ThrottlePolicy};
use crate::error::{Error, Result};
use crate::store::Pool;
use chrono::{SecondsFormat, TimeZone, Utc};
use model::LoginLockKind;
use std::time::Duration;

pub(super) fn key_of(kind: LoginLockKind, raw: &str) -> String {
    match kind {
        LoginLockKind::Account => account_key(raw),
        LoginLockKind::Address => address_key(raw),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Key {
    pub(super) kind: LoginLockKind,
    pub(super) key: String,
}

/// The keys an attempt is charged to: its address (when known) first, then
/// its username.
pub(super) fn keys_of(username: &str, source_ip: Option<&str>) -> Vec<Key> {
    let mut keys = Vec::with_capacity(2);
    if let Some(ip) = source_ip.filter(|ip| !ip.trim().is_empty()) {
        keys.push(Key {
            kind: LoginLockKind::Address,
            key: address_key(ip),
        });
    }
    keys.push(Key {
        kind: LoginLockKind::Account,
        key: account_key(username),
    });
    keys
}

/// A stored row, times in Unix milliseconds. The first three columns are
/// what a charge compares and sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct Row {
    pub(super) failures: i64,
    pub(super) locked_until: Option<i64>,
    pub(super) last_failure_at: Option<i64>,
    pub(super) refusal_audited_until: Option<i64>,
}

/// A row as the admin list reads it.
#[derive(sqlx::FromRow)]
pub(super) struct ListedRow {
    pub(super) kind: String,
    pub(super) key: String,
    pub(super) failures: i64,
    pub(super) locked_until: Option<i64>,
    pub(super) last_failure_at: Option<i64>,
}

/// A key found locked.
#[derive(Clone, Debug)]
pub(super) struct Locked {
    pub(super) key: Key,
    pub(super) until_ms: i64,
    pub(super) failures: i64,
    /// A refusal of this very lock is in the audit log already.
    pub(super) audited: bool,
}

impl Locked {
    pub(super) fn of(key: &Key, row: &Row, now: i64) -> Option<Locked> {
        let until = row.locked_until.filter(|&u| u > now)?;
        Some(Locked {
            key: key.clone(),
            until_ms: until,
            failures: row.failures,
            audited: row.refusal_audited_until == Some(until),
        })
    }
}

/// An attempt charged to a key: what the row was, and what we wrote.
#[derive(Clone, Debug)]
pub(super) struct Charge {
    pub(super) key: Key,
    pub(super) before: Row,
    pub(super) written: Row,
}

pub(super) fn now_ms() -> i64 {
    crate::now().timestamp_millis()
}

pub(super) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn rfc3339(ms: i64) -> Option<String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Whole seconds until `until_ms`, at least 1: what `Retry-After` says.
pub(super) fn secs_until(until_ms: i64, now: i64) -> u64 {
    let ms = until_ms.saturating_sub(now).max(0) as u64;
    ms.div_ceil(1000).max(1)
}

pub(super) async fn read(pool: &Pool, key: &Key) -> Result<Option<Row>> {
    Ok(crate::store::query_as::<Row>(
        "SELECT failures, locked_until, last_failure_at, refusal_audited_until \
         FROM login_throttle WHERE kind = ? AND key = ?",
    )
    .bind(key.kind.as_str())
    .bind(&key.key)
    .fetch_optional(pool)
    .await?)
}

/// Charges one attempt to `key` as a failure, unless it is locked: one
/// compare-and-set on the values read, retried if another attempt wrote in
/// between. The lock a failure earns starts now, at the attempt.
pub(super) async fn charge(
    pool: &Pool,
    key: &Key,
    backoff: &Backoff,
    now: i64,
) -> Result<Result<Charge, Locked>> {
    for _ in 0..64 {
        crate::store::query(
            "INSERT INTO login_throttle (kind, key, failures) VALUES (?, ?, 0) ON CONFLICT (kind, key) DO NOTHING",
        )
        .bind(key.kind.as_str())
        .bind(&key.key)
        .execute(pool)
        .await?;
        let Some(before) = read(pool, key).await? else {
            continue; // pruned in between
        };
        if let Some(locked) = Locked::of(key, &before, now) {
            return Ok(Err(locked));
        }
        let forgotten = before
            .last_failure_at
            .is_none_or(|at| now.saturating_sub(at) >= millis(backoff.forget_after));
        let failures = if forgotten { 1 } else { before.failures + 1 };
        let lock = backoff.lock_for(u32::try_from(failures).unwrap_or(u32::MAX));
        let written = Row {
            failures,
            locked_until: (!lock.is_zero()).then(|| now.saturating_add(millis(lock))),
            last_failure_at: Some(now),
            refusal_audited_until: before.refusal_audited_until,
        };
        if swap_row(pool, key, &before, &written).await? {
            return Ok(Ok(Charge {
                key: key.clone(),
                before,
                written,
            }));
        }
    }
    Err(Error::Internal(format!(
        "sign-in throttle: {} {:?} kept changing under 64 attempts to charge it",
        key.kind, key.key
    )))
}

/// Compare-and-swap of a key's counters: writes `to` only if the row still
/// holds `from` (another request or console may have written in between).
pub(super) async fn swap_row(pool: &Pool, key: &Key, from: &Row, to: &Row) -> Result<bool> {
    let done = crate::store::query(
        "UPDATE login_throttle SET failures = ?, locked_until = ?, last_failure_at = ? \
         WHERE kind = ? AND key = ? AND failures = ? AND locked_until IS NOT DISTINCT FROM ? AND last_failure_at IS NOT DISTINCT FROM ?",
    )
    .bind(to.failures)
    .bind(to.locked_until)
    .bind(to.last_failure_at)
    .bind(key.kind.as_str())
    .bind(&key.key)
    .bind(from.failures)
    .bind(from.locked_until)
    .bind(from.last_failure_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes a charge back (the attempt was not a failure): the row as it was
/// if nobody wrote since, else one failure less.
pub(super) async fn refund(pool: &Pool, charge: &Charge) -> Result<()> {
    let Charge {
        key,
        before,
        written,
    } = charge;
    if !swap_row(pool, key, written, before).await? {
        crate::store::query(
            "UPDATE login_throttle SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END WHERE kind = ? AND key = ?",
        )
        .bind(key.kind.as_str())
        .bind(&key.key)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Moves the lock a charge set to start at `failed_at` (when the check
/// failed), if the row is still as the charge left it. Locks only get
/// later, so this never lets a guess in sooner than the charge did. A
/// refusal already audited during the check keeps counting for the lock.
pub(super) async fn restart_lock(
    pool: &Pool,
    charge: &Charge,
    policy: &ThrottlePolicy,
    failed_at: i64,
) -> Result<()> {
    let Some(charged_until) = charge.written.locked_until else {
        return Ok(());
    };
    let lock = policy
        .backoff(charge.key.kind)
        .lock_for(u32::try_from(charge.written.failures).unwrap_or(u32::MAX));
    let until = failed_at.saturating_add(millis(lock)).max(charged_until);
    crate::store::query(
        "UPDATE login_throttle SET locked_until = ?1, \
         refusal_audited_until = CASE WHEN refusal_audited_until = ?5 THEN ?1 ELSE refusal_audited_until END \
         WHERE kind = ?2 AND key = ?3 AND failures = ?4 AND locked_until = ?5 AND last_failure_at IS NOT DISTINCT FROM ?6",
    )
    .bind(until)
    .bind(charge.key.kind.as_str())
    .bind(&charge.key.key)
    .bind(charge.written.failures)
    .bind(charged_until)
    .bind(charge.written.last_failure_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the account's failures after a success.
pub(super) async fn reset(pool: &Pool, key: &Key) -> Result<()> {
    crate::store::query("DELETE FROM login_throttle WHERE kind = ? AND key = ?")
        .bind(key.kind.as_str())
        .bind(&key.key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Claims the audit entry of `locked`'s lock: true for the first refusal of
/// that lock only, however many consoles and requests race for it.
pub(super) async fn claim_refusal_audit(pool: &Pool, locked: &Locked) -> Result<bool> {
    let claimed = crate::store::query(
        "UPDATE login_throttle SET refusal_audited_until = locked_until \
         WHERE kind = ? AND key = ? AND locked_until = ? AND refusal_audited_until IS DISTINCT FROM locked_until",
    )
    .bind(locked.key.kind.as_str())
    .bind(&locked.key.key)
    .bind(locked.until_ms)
    .execute(pool)
    .await?;
    Ok(claimed.rows_affected() == 1)
}
