//! The environment lock: who holds it, whether they are still alive, and how
//! another console takes it over.
//!
//! The lock is the running deployment row (a partial unique index allows one
//! per environment; see [`crate::deployments::begin`]). This module adds the
//! holder — the console process whose worker runs the deployment — and its
//! heartbeat. A lock is *dead* when its holder is a process on this host that
//! no longer runs, and *stale* when its heartbeat is older than the time to
//! live (a holder on another host, or a hung one). Dead and stale locks are
//! recovered by any console; an admin may also break one (audited).
//!
//! Fencing: a worker's heartbeat, its check before the switch and the write
//! that closes its row all name its holder. Once another console has taken
//! the row over, those writes match nothing, so the old worker stops without
//! switching traffic or recording a result over the new holder's.

use crate::error::Result;
use crate::store::Pool;
use chrono::{DateTime, Utc};
use model::{DeploymentKind, SlotColor};
use std::time::Duration;

/// How often a worker refreshes its heartbeat, and how old a heartbeat may
/// get before the lock counts as stale. Six missed beats: a console busy for
/// a few seconds on a 2-core host is not declared dead.
#[derive(Clone, Copy, Debug)]
pub struct LockTiming {
    pub heartbeat_every: Duration,
    pub ttl: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        LockTiming {
            heartbeat_every: Duration::from_secs(5),
            ttl: Duration::from_secs(30),
        }
    }
}

/// A console process (and the engine inside it) that can hold locks:
/// `host/pid/start-time/engine`. The process start time (in clock ticks since
/// boot, from `/proc/<pid>/stat`) tells a live process from a later one that
/// reuses its pid; the engine nonce tells a restarted engine in the same
/// process (as tests make them) from the one that took the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub started: u64,
    pub engine: String,
}

impl Holder {
    /// This process, with a fresh engine nonce.
    pub fn this_process() -> Self {
        let pid = std::process::id();
        Holder {
            host: host_name(),
            pid,
            started: process_start(pid).unwrap_or(0),
            engine: format!("{:08x}", rand::random::<u32>()),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.rsplitn(4, '/');
        let engine = parts.next()?.to_string();
        let started = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?.to_string();
        Some(Holder {
            host,
            pid,
            started,
            engine,
        })
    }

    /// How the lock of a recovering console is written: its own process, so
    /// a crash during the recovery is itself recovered, but never equal to a
    /// worker's holder.
    pub fn recovering(&self) -> Self {
        Holder {
            engine: format!("{}-recovery", self.engine),
            ..self.clone()
        }
    }

    /// Whether `self` (as seen from `me`) has certainly stopped: a process on
    /// this host that is not running any more (or is another process now),
    /// or another engine of this very process (one engine per console; a
    /// second one in the same process is a restart). `None`: cannot tell from
    /// here (another host) — only the heartbeat says.
    pub fn is_gone(&self, me: &Holder) -> Option<bool> {
        if self.host != me.host {
            return None;
        }
        if self.pid == me.pid && self.started == me.started {
            return Some(self.engine != me.engine && self.engine != me.recovering().engine);
        }
        Some(process_start(self.pid) != Some(self.started))
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.host, self.pid, self.started, self.engine
        )
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .unwrap_or_else(|| "localhost".to_string())
}

/// Field 22 of `/proc/<pid>/stat`: when the process started. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted
/// after its closing parenthesis.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// A running deployment seen as the lock it is.
#[derive(Clone, Debug)]
pub struct Lock {
    pub deployment_id: i64,
    pub environment_id: i64,
    pub kind: DeploymentKind,
    pub to_slot: Option<SlotColor>,
    /// Who asked for the deployment ("system" for Switchyard itself).
    pub requested_by: String,
    pub since: DateTime<Utc>,
    /// `None` for rows written before holders existed.
    pub holder: Option<String>,
    pub heartbeat_at: Option<DateTime<Utc>>,
}

/// What a console concludes about a lock it does not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Its holder is alive and beating.
    Alive,
    /// Its holder has stopped (or never said who it was).
    HolderGone,
    /// No heartbeat for longer than the time to live.
    Stale,
}

/// What `me` concludes about work that `holder` (its stored form) last said
/// it was doing at `beat`: a deploy's lock, a watch window. A holder that
/// never said who it was counts as gone.
pub(crate) fn liveness(
    holder: Option<&str>,
    beat: DateTime<Utc>,
    me: &Holder,
    timing: LockTiming,
    now: DateTime<Utc>,
) -> Liveness {
    let Some(holder) = holder.and_then(Holder::parse) else {
        return Liveness::HolderGone;
    };
    if holder.is_gone(me) == Some(true) {
        return Liveness::HolderGone;
    }
    if (now - beat).to_std().unwrap_or_default() > timing.ttl {
        Liveness::Stale
    } else {
        Liveness::Alive
    }
}

impl Lock {
    pub fn liveness(&self, me: &Holder, timing: LockTiming, now: DateTime<Utc>) -> Liveness {
        liveness(
            self.holder.as_deref(),
            self.heartbeat_at.unwrap_or(self.since),
            me,
            timing,
            now,
        )
    }

    /// How long ago the holder last said it was alive.
    pub fn heartbeat_age(&self, now: DateTime<Utc>) -> Duration {
        (now - self.heartbeat_at.unwrap_or(self.since))
            .to_std()
            .unwrap_or_default()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    environment_id: i64,
    kind: String,
    to_slot: Option<String>,
    requested_by: String,
    started_at: DateTime<Utc>,
    holder: Option<String>,
    heartbeat_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "SELECT d.id, d.environment_id, d.kind, d.to_slot, \
     COALESCE(u.username, 'system') AS requested_by, d.started_at, d.holder, d.heartbeat_at \
     FROM deployments d LEFT JOIN users u ON u.id = d.requested_by WHERE d.status = 'running'";

fn to_lock(r: Row) -> Result<Lock> {
    use crate::error::parse_stored as parse;
    Ok(Lock {
        deployment_id: r.id,
        environment_id: r.environment_id,
        kind: parse(&r.kind)?,
        to_slot: r.to_slot.as_deref().map(parse).transpose()?,
        requested_by: r.requested_by,
        since: r.started_at,
        holder: r.holder,
        heartbeat_at: r.heartbeat_at,
    })
}

/// The lock of `env_id`, if a deployment runs there.
pub async fn of_environment(pool: &Pool, env_id: i64) -> Result<Option<Lock>> {
    crate::store::query_as::<Row>(&format!("{SELECT} AND d.environment_id = ?"))
        .bind(env_id)
        .fetch_optional(pool)
        .await?
        .map(to_lock)
        .transpose()
}

/// Every lock held right now, in every environment.
pub async fn all(pool: &Pool) -> Result<Vec<Lock>> {
    crate::store::query_as::<Row>(SELECT)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(to_lock)
        .collect()
}

/// Refreshes the heartbeat of a lock `holder` holds. `false`: it does not
/// hold it any more (taken over, or the deployment is closed).
pub async fn beat(pool: &Pool, dep_id: i64, holder: &Holder) -> Result<bool> {
    let r = crate::store::query(
        "UPDATE deployments SET heartbeat_at = ? WHERE id = ? AND status = 'running' AND holder = ?",
    )
    .bind(crate::now())
    .bind(dep_id)
    .bind(holder.to_string())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether `holder` still holds the lock of `dep_id` (the fence before a switch).
pub async fn holds(pool: &Pool, dep_id: i64, holder: &Holder) -> Result<bool> {
    let n: i64 = crate::store::query_scalar(
        "SELECT COUNT(*) FROM deployments WHERE id = ? AND status = 'running' AND holder = ?",
    )
    .bind(dep_id)
    .bind(holder.to_string())
    .fetch_one(pool)
    .await?;
    Ok(n == 1)
}

/// Takes the lock of `lock` over for `to`, only if it is still held as
/// `lock` saw it (compare and swap on the holder). `false`: it changed hands
/// or ended in the meantime.
pub async fn take_over(pool: &Pool, lock: &Lock, to: &Holder) -> Result<bool> {
    let r = crate::store::query(
        "UPDATE deployments SET holder = ?, heartbeat_at = ? \
         WHERE id = ? AND status = 'running' AND holder IS NOT DISTINCT FROM ?",
    )
    .bind(to.to_string())
    .bind(crate::now())
    .bind(lock.deployment_id)
    .bind(lock.holder.as_deref())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_reads_back_what_it_writes() {
        let me = Holder::this_process();
        assert_eq!(Holder::parse(&me.to_string()), Some(me.clone()));
        assert!(me.started > 0, "no start time for this process");
        let odd = Holder {
            host: "web-1.internal".into(),
            pid: 7,
            started: 42,
            engine: "ab-recovery".into(),
        };
        assert_eq!(Holder::parse(&odd.to_string()), Some(odd));
        assert_eq!(Holder::parse("garbage"), None);
    }

    #[test]
    fn a_holder_is_gone_when_its_process_is() {
        let me = Holder::this_process();
        assert_eq!(me.is_gone(&me), Some(false));
        assert_eq!(me.recovering().is_gone(&me), Some(false));
        // Another engine of this process: a restart (one engine per console).
        let restarted = Holder::this_process();
        assert_eq!(me.is_gone(&restarted), Some(true));
        // The same pid with another start time is another process.
        let reused = Holder {
            started: me.started + 1,
            ..me.clone()
        };
        assert_eq!(reused.is_gone(&restarted), Some(true));
        // A live process of this host (pid 1) is alive.
        let init = Holder {
            pid: 1,
            started: process_start(1).unwrap(),
            ..me.clone()
        };
        assert_eq!(init.is_gone(&me), Some(false));
        let elsewhere = Holder {
            host: "other-host".into(),
            ..me.clone()
        };
        assert_eq!(elsewhere.is_gone(&me), None);
    }

    #[test]
    fn a_lock_is_stale_after_its_time_to_live() {
        let me = Holder::this_process();
        let now = crate::now();
        let timing = LockTiming::default();
        let mut lock = Lock {
            deployment_id: 1,
            environment_id: 1,
            kind: DeploymentKind::Deploy,
            to_slot: None,
            requested_by: "dora".into(),
            since: now - chrono::Duration::minutes(5),
            holder: Some(
                Holder {
                    host: "other-host".into(),
                    ..me.clone()
                }
                .to_string(),
            ),
            heartbeat_at: Some(now - chrono::Duration::seconds(3)),
        };
        assert_eq!(lock.liveness(&me, timing, now), Liveness::Alive);
        lock.heartbeat_at = Some(now - chrono::Duration::seconds(31));
        assert_eq!(lock.liveness(&me, timing, now), Liveness::Stale);
        lock.holder = None;
        assert_eq!(lock.liveness(&me, timing, now), Liveness::HolderGone);
    }
}
