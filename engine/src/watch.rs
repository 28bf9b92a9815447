//! The watch window: after a deploy has switched users to the new slot, the
//! engine keeps an eye on it for a while (default 5 minutes) and rolls back by
//! itself when it breaches a threshold (the auto-rollback triggers of teams'
//! blue-green runbooks):
//!
//! * **error rate** of what users got from the new slot through the router
//!   since the switch, at or above the environment's limit (the gates' limit,
//!   default 1 %), once at least [`MIN_RESPONSES`] answers were seen;
//! * **p95** of those answers at or above the gates' p95 limit (200 ms);
//! * **health**: [`HEALTH_STRIKES`] failed health probes in a row.
//!
//! The watch is not part of the deployment run: the deploy has finished (and
//! released the environment's lock) when it starts, so a person can still roll
//! back or deploy at once. It ends by itself when traffic moves for any other
//! reason (the routing generation it watches is gone). Its state is a row in
//! `deployment_watches`, so the deployment's page shows it. The row names the
//! console that watches and its last beat: of consoles sharing a database
//! one watches (and could roll back) at a time, and a window whose console
//! stopped or went silent is picked up by another, or by the same console
//! restarted ([`Engine::resume_watches`]).

use crate::actor::Actor;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{parse_stored as parse, Result};
use crate::lock::{self, Holder, Liveness};
use crate::router::SlotTraffic;
use crate::store::Pool;
use chrono::{DateTime, Utc};
use model::{SlotColor, WatchStatus, WatchView};
use std::time::Duration;

/// Fewer answers than this say nothing about an error rate or a p95.
pub const MIN_RESPONSES: u64 = 10;
/// Failed health probes in a row that count as a breach.
pub const HEALTH_STRIKES: u32 = 3;
/// How often the watch looks.
const TICK: Duration = Duration::from_millis(500);

#[derive(sqlx::FromRow)]
struct Row {
    deployment_id: i64,
    environment_id: i64,
    slot: String,
    generation: i64,
    started_at: DateTime<Utc>,
    until: DateTime<Utc>,
    status: String,
    message: Option<String>,
    rollback_id: Option<i64>,
    /// The console that watches (`lock::Holder`'s stored form); `None` for
    /// windows opened before watches had one.
    holder: Option<String>,
    heartbeat_at: Option<DateTime<Utc>>,
}

/// One watch, as stored.
#[derive(Clone, Debug)]
struct Watch {
    deployment_id: i64,
    environment_id: i64,
    slot: SlotColor,
    generation: u64,
    started_at: DateTime<Utc>,
    until: DateTime<Utc>,
}

impl TryFrom<&Row> for Watch {
    type Error = crate::Error;
    fn try_from(r: &Row) -> Result<Self> {
        Ok(Watch {
            deployment_id: r.deployment_id,
            environment_id: r.environment_id,
            slot: parse(&r.slot)?,
            generation: r.generation.max(0) as u64,
            started_at: r.started_at,
            until: r.until,
        })
    }
}

const SELECT: &str = "SELECT deployment_id, environment_id, slot, generation, started_at, until, \
     status, message, rollback_id, holder, heartbeat_at FROM deployment_watches";

/// A deployment's watch, for its page.
pub async fn view(pool: &Pool, deployment_id: i64) -> Result<Option<WatchView>> {
    let Some(r) = crate::store::query_as::<Row>(&format!("{SELECT} WHERE deployment_id = ?"))
        .bind(deployment_id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(WatchView {
        status: parse(&r.status)?,
        slot: parse(&r.slot)?,
        started_at: r.started_at.to_rfc3339(),
        until: r.until.to_rfc3339(),
        message: r.message,
        rollback_id: r.rollback_id,
    }))
}

/// Ends (or, with `Watching`, updates) the open window `w` of console `me`:
/// `false` when it is not open or not `me`'s any more (another console took
/// it over), and nothing was written.
async fn set(
    pool: &Pool,
    me: &Holder,
    w: &Watch,
    status: WatchStatus,
    message: &str,
) -> Result<bool> {
    let done = crate::store::query(
        "UPDATE deployment_watches SET status = ?, message = ?, heartbeat_at = ?, \
         finished_at = CASE WHEN ? = 'watching' THEN NULL ELSE ? END \
         WHERE deployment_id = ? AND status = 'watching' AND holder = ?",
    )
    .bind(status.as_str())
    .bind(message)
    .bind(crate::now())
    .bind(status.as_str())
    .bind(crate::now())
    .bind(w.deployment_id)
    .bind(me.to_string())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What the watch saw on one look: a breach (with its evidence) or a summary.
pub fn judge(
    env: &Environment,
    traffic: Option<&SlotTraffic>,
    health_strikes: u32,
    last_probe: &str,
) -> std::result::Result<String, String> {
    let g = &env.gates;
    let mut breaches = Vec::new();
    let summary = match traffic {
        Some(t) => {
            let rate = if t.responses == 0 {
                0.0
            } else {
                t.errors as f64 / t.responses as f64
            };
            if t.responses >= MIN_RESPONSES {
                if t.errors > 0 && rate >= g.max_error_rate {
                    breaches.push(format!(
                        "error rate {:.1} % = {}/{} (limit < {:.1} %)",
                        rate * 100.0,
                        t.errors,
                        t.responses,
                        g.max_error_rate * 100.0
                    ));
                }
                if let Some(p95) = t.p95_ms.filter(|&p| p >= g.p95.as_secs_f64() * 1000.0) {
                    breaches.push(format!(
                        "p95 {p95:.1} ms (limit < {:.1} ms)",
                        g.p95.as_secs_f64() * 1000.0
                    ));
                }
            }
            let p95 = t
                .p95_ms
                .map(|p| format!("{p:.1} ms"))
                .unwrap_or_else(|| "n/a".into());
            format!(
                "{} answers since the switch, errors {:.1} %, p95 {p95}",
                t.responses,
                rate * 100.0
            )
        }
        None => format!("the {} router reports no per-slot traffic", env.router),
    };
    if health_strikes >= HEALTH_STRIKES {
        breaches.push(format!(
            "{health_strikes} failed health probes in a row (last: {last_probe})"
        ));
    }
    if breaches.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{} — {summary}", breaches.join("; ")))
    }
}

impl Engine {
    /// Starts watching the slot a deploy just switched users to, unless the
    /// environment's watch window is 0 or there is nothing to roll back to.
    pub(crate) async fn start_watch(&self, deployment_id: i64, env_name: &str) -> Result<()> {
        let env = environments::find(self.pool(), env_name).await?;
        let Some(slot) = env.active else {
            return Ok(());
        };
        let standby = environments::slot(self.pool(), env.id, slot.other()).await?;
        if env.watch_window.is_zero() || standby.handle.is_none() {
            return Ok(());
        }
        let started_at = crate::now();
        let until = started_at
            + chrono::Duration::from_std(env.watch_window)
                .unwrap_or_else(|_| chrono::Duration::minutes(5));
        crate::store::query(
            "INSERT INTO deployment_watches (deployment_id, environment_id, slot, generation, started_at, \
             until, status, message, holder, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, 'watching', ?, ?, ?)",
        )
        .bind(deployment_id)
        .bind(env.id)
        .bind(slot.as_str())
        .bind(env.routing_generation as i64)
        .bind(started_at)
        .bind(until)
        .bind("waiting for the first answers")
        .bind(self.holder().to_string())
        .bind(started_at)
        .execute(self.pool())
        .await?;
        let w = Watch {
            deployment_id,
            environment_id: env.id,
            slot,
            generation: env.routing_generation,
            started_at,
            until,
        };
        tokio::spawn(self.clone().run_watch(w));
        Ok(())
    }

    /// Picks up the windows no live console watches: those of a console of
    /// this host that stopped, and those whose console has not beaten for
    /// the lock's time to live (it hung, or died on another host). Runs at
    /// start and in the monitor round. A window that has not ended goes on
    /// being watched here; one that ended while nobody watched was not
    /// watched to its end, so it is closed as stopped, not passed. Returns
    /// how many it took over.
    pub async fn resume_watches(&self) -> Result<usize> {
        let rows = crate::store::query_as::<Row>(&format!("{SELECT} WHERE status = 'watching'"))
            .fetch_all(self.pool())
            .await?;
        let me = self.holder();
        let mine = me.to_string();
        let mut taken = 0;
        for r in &rows {
            let beat = r.heartbeat_at.unwrap_or(r.started_at);
            let seen = r.holder.as_deref();
            if seen == Some(mine.as_str())
                || lock::liveness(seen, beat, me, self.lock_timing(), crate::now())
                    == Liveness::Alive
            {
                continue; // watched: here, or by a live console
            }
            // Compare and swap on the holder seen: of consoles that judge
            // the same window orphaned at once, one takes it.
            let done = crate::store::query(
                "UPDATE deployment_watches SET holder = ?, heartbeat_at = ? \
                 WHERE deployment_id = ? AND status = 'watching' AND COALESCE(holder, '') = ?",
            )
            .bind(&mine)
            .bind(crate::now())
            .bind(r.deployment_id)
            .bind(seen.unwrap_or(""))
            .execute(self.pool())
            .await?;
            if done.rows_affected() != 1 {
                continue;
            }
            taken += 1;
            let w = Watch::try_from(r)?;
            if w.until > crate::now() {
                tracing::info!(dep_id = w.deployment_id, from = ?seen, "resuming the watch window");
                tokio::spawn(self.clone().run_watch(w));
            } else {
                set(
                    self.pool(),
                    me,
                    &w,
                    WatchStatus::Stopped,
                    "the console was stopped until after the window ended; nothing was watched after that",
                )
                .await?;
            }
        }
        Ok(taken)
    }

    async fn run_watch(self, w: Watch) {
        if let Err(e) = self.watch_loop(&w).await {
            tracing::error!(dep_id = w.deployment_id, error = %e, "the watch window stopped on an error");
            let _ = set(
                self.pool(),
                self.holder(),
                &w,
                WatchStatus::Stopped,
                &format!("stopped on an error: {e}"),
            )
            .await;
        }
    }

    async fn watch_loop(&self, w: &Watch) -> Result<()> {
        let pool = self.pool();
        let mut strikes = 0u32;
        // One router for the whole window (the builtin one reads its secret
        // when it is made).
        let router = self.router_for(&environments::get(pool, w.environment_id).await?)?;
        loop {
            tokio::time::sleep(TICK).await;
            let env = environments::get(pool, w.environment_id).await?;
            if env.active != Some(w.slot) || env.routing_generation != w.generation {
                // A newer generation with the same active slot is a newer
                // deployment publishing its preview: it has replaced the
                // standby a rollback would need, and holds the lock.
                let why = if env.active == Some(w.slot) {
                    "a newer deployment changed the routing"
                } else {
                    "traffic moved"
                };
                let m = format!(
                    "ended early: {why} (routing generation {} → {})",
                    w.generation, env.routing_generation
                );
                set(pool, self.holder(), w, WatchStatus::Stopped, &m).await?;
                return Ok(());
            }
            let slot = environments::slot(pool, env.id, w.slot).await?;
            let probe = match &slot.address {
                Some(a) => self.prober().probe(a, &env.health_path, &env.health_expect).await,
                None => crate::health::Probe {
                    ok: false,
                    message: "the slot has no address".into(),
                },
            };
            strikes = if probe.ok { 0 } else { strikes + 1 };
            // The router counts in whole seconds; ask for the time since the
            // switch (at most its 10-minute window).
            let since = (crate::now() - w.started_at).num_milliseconds().max(0) as u64;
            let window = since.div_ceil(1000).clamp(1, 600);
            let traffic = match router.slot_traffic(w.slot, window).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(env = %env.name, error = %e, "watch: router metrics unavailable");
                    None
                }
            };
            match judge(&env, traffic.as_ref(), strikes, &probe.message) {
                Ok(summary) if crate::now() >= w.until => {
                    let m = format!("passed: no breach in {:.0} s; {summary}", {
                        (w.until - w.started_at).num_milliseconds() as f64 / 1000.0
                    });
                    set(pool, self.holder(), w, WatchStatus::Passed, &m).await?;
                    return Ok(());
                }
                Ok(summary) => {
                    // Also this console's heartbeat: a window another
                    // console took over (this one was silent past the
                    // lock's time to live) is watched there, not here.
                    let mine = set(
                        pool,
                        self.holder(),
                        w,
                        WatchStatus::Watching,
                        &format!("watching: {summary}"),
                    )
                    .await?;
                    if !mine {
                        tracing::info!(dep_id = w.deployment_id, "another console watches this window now");
                        return Ok(());
                    }
                }
                Err(evidence) => return self.roll_back_breach(w, &env, &evidence).await,
            }
        }
    }

    /// Records the breach first (so the evidence survives whatever the
    /// rollback does), then rolls back as the system, reason = the evidence,
    /// and records how that went (`rollback_id` set once it ran).
    async fn roll_back_breach(&self, w: &Watch, env: &Environment, evidence: &str) -> Result<()> {
        let pool = self.pool();
        tracing::warn!(env = %env.name, dep_id = w.deployment_id, %evidence, "watch breach: rolling back");
        // Only the console that records the breach rolls back.
        if !set(
            pool,
            self.holder(),
            w,
            WatchStatus::Breached,
            &format!("{evidence}; rolling back"),
        )
        .await?
        {
            return Ok(());
        }
        let reason = format!(
            "automatic rollback of deployment #{}: {evidence}",
            w.deployment_id
        );
        // One write for the outcome and its rollback: readers never see one
        // without the other.
        let (message, rollback_id) = match self.rollback(&Actor::system(), &env.name, &reason).await
        {
            Ok(r) => (
                format!(
                    "{evidence}; rolled back by deployment #{} ({})",
                    r.id, r.status
                ),
                Some(r.id),
            ),
            Err(e) => (
                format!("{evidence}; the automatic rollback was refused: {e}"),
                None,
            ),
        };
        crate::store::query(
            "UPDATE deployment_watches SET message = ?, rollback_id = ? WHERE deployment_id = ?",
        )
        .bind(message)
        .bind(rollback_id)
        .bind(w.deployment_id)
        .execute(pool)
        .await?;
        Ok(())
    }
}
