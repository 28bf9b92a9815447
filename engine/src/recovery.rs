//! What happens to a deployment whose worker is gone: the console died (it is
//! reconciled at the next start), went silent past its lock's time to live
//! (any console recovers it), or an admin broke its lock. In every case the
//! one who takes the lock over closes the deployment, cleans up what the
//! worker left half-done and leaves traffic where the router has it.

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::deployments;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{Error, Result};
use crate::lock::{self, Liveness, Lock};
use crate::rbac::Action;
use crate::runtime::Liveness as ProcessLiveness;
use crate::steps;
use model::{DeploymentKind, DeploymentStatus, DeploymentView, SlotColor, SlotState};
use std::time::Duration;

/// What the deployment of a console that died says.
const INTERRUPTED: &str = "interrupted: the console stopped while this deployment ran";

/// How long breaking a lock waits for this console's own worker to stop at
/// its next step (a step in progress — a start, the gates' sample — ends
/// first; the health wait and the drain look at the lock on every round).
const BREAK_WAIT: Duration = Duration::from_secs(30);

/// Who took a lock over, and why: recorded on the deployment, its step and
/// the audit log.
struct Takeover<'a> {
    actor: &'a Actor,
    /// `deployment.recover`, `lock.expire` or `lock.break`.
    action: &'static str,
    /// The deployment's closing message starts with this.
    why: String,
    /// What the step that was running says.
    step: &'static str,
    reason: Option<&'a str>,
}

impl Engine {
    /// Brings the records in line with reality after a restart: deployments a
    /// dead console left running are closed (succeeded if traffic had already
    /// switched, failed otherwise), a half-started slot nobody is routed to is
    /// stopped, slots whose process is gone are marked stopped, and the active
    /// slot follows what the router serves. A deployment another live console
    /// runs is left alone.
    pub async fn reconcile(&self) -> Result<()> {
        let pool = self.pool();
        self.recover_locks().await?;
        for env in environments::list(pool).await? {
            // Without its runtime nothing can be said about the slots: leave
            // their records alone rather than mark live slots stopped.
            let rt = self.runtime_for(&env);
            if let Err(e) = &rt {
                tracing::error!(env = %env.name, error = %e, "cannot check slots during reconciliation");
            }
            for slot in environments::slots(pool, env.id).await? {
                if let (Some(h), Ok(rt)) = (&slot.handle, &rt) {
                    if let ProcessLiveness::Exited(why) = rt.liveness(h).await {
                        tracing::warn!(env = %env.name, slot = %slot.color, %why, "slot process is gone");
                        environments::record_stopped(pool, env.id, &slot).await?;
                    }
                }
            }
            match self.router_answers(&env).await {
                Ok(table) if table.generation > env.routing_generation => {
                    if let Some(up) = table.active {
                        tracing::warn!(env = %env.name, slot = %up.slot, "router is ahead of the records; adopting its active slot");
                        environments::set_active(pool, env.id, up.slot, table.generation).await?;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(env = %env.name, error = %e, "router unreachable during reconciliation")
                }
            }
        }
        self.resume_watches().await?;
        Ok(())
    }

    /// Recovers every lock whose holder has stopped (a process of this host
    /// that is gone) or has sent no heartbeat for the lock's time to live.
    /// Runs at start and periodically; returns how many it recovered.
    pub async fn recover_locks(&self) -> Result<usize> {
        let now = crate::now();
        let mut recovered = 0;
        for held in lock::all(self.pool()).await? {
            if self.runs_here(held.deployment_id) {
                continue; // this console's own worker, beating
            }
            let (action, why) = match held.liveness(self.holder(), self.lock_timing(), now) {
                Liveness::Alive => continue,
                Liveness::HolderGone => ("deployment.recover", INTERRUPTED.to_string()),
                Liveness::Stale => (
                    "lock.expire",
                    format!(
                        "interrupted: its console sent no heartbeat for {} s (the lock expires after {} s)",
                        held.heartbeat_age(now).as_secs(),
                        self.lock_timing().ttl.as_secs()
                    ),
                ),
            };
            let takeover = Takeover {
                actor: &Actor::system(),
                action,
                why,
                step: steps::INTERRUPTED,
                reason: None,
            };
            if self.take_over(&held, takeover).await?.is_some() {
                recovered += 1;
            }
        }
        Ok(recovered)
    }

    /// An admin breaks `env_name`'s lock, held by deployment `seen` (the one
    /// the admin looked at: a lock that changed hands since is not broken).
    /// This console's own worker is stopped at its next step first; a lock
    /// held by another console is broken only when that console is gone or
    /// silent — a live worker elsewhere cannot be stopped from here, and
    /// closing its row under it would let two workers act at once.
    ///
    /// Breaking a lock is destructive (a running deploy is abandoned), so it
    /// needs an explicit `confirmed` besides the reason: the rule is kept
    /// here, not by the browser's checkbox alone.
    pub async fn break_lock(
        &self,
        actor: &Actor,
        env_name: &str,
        seen: i64,
        reason: &str,
        confirmed: bool,
    ) -> Result<DeploymentView> {
        self.authorize(actor, Action::BreakLock, Some(env_name))
            .await?;
        if !confirmed {
            return Err(Error::invalid(
                "confirm",
                "confirm that you want to break the lock (tick the box)",
            ));
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::invalid(
                "reason",
                "a reason is required to break a lock",
            ));
        }
        if reason.len() > 500 {
            return Err(Error::invalid(
                "reason",
                "reason is too long (at most 500 characters)",
            ));
        }
        let env = environments::find(self.pool(), env_name).await?;
        let held = lock::of_environment(self.pool(), env.id)
            .await?
            .ok_or_else(|| {
                Error::Conflict(format!("{env_name} is not locked: nothing to break"))
            })?;
        if held.deployment_id != seen {
            return Err(Error::Conflict(format!(
                "{env_name} is now locked by deployment #{}, not #{seen}: look at it again before breaking it",
                held.deployment_id
            )));
        }
        match self.stop_worker(held.deployment_id, BREAK_WAIT).await {
            Some(true) => {}
            Some(false) => {
                return Err(Error::Conflict(format!(
                    "deployment #{seen} was told to stop but is still finishing its current step; \
                     try again in a moment"
                )))
            }
            None => {
                let now = crate::now();
                if held.liveness(self.holder(), self.lock_timing(), now) == Liveness::Alive {
                    return Err(Error::RuleForbids(format!(
                        "deployment #{seen} runs in another console ({}) that is alive: its last \
                         heartbeat was {} s ago. Its lock can be broken once that console is gone \
                         or silent for {} s",
                        held.holder.as_deref().unwrap_or("unknown"),
                        held.heartbeat_age(now).as_secs(),
                        self.lock_timing().ttl.as_secs()
                    )));
                }
            }
        }
        let who = actor
            .as_user()
            .map(|u| u.username.clone())
            .unwrap_or_else(|| "system".into());
        let takeover = Takeover {
            actor,
            action: "lock.break",
            why: format!("lock broken by {who}: {reason}"),
            step: "the lock was broken during this step",
            reason: Some(reason),
        };
        if self.take_over(&held, takeover).await?.is_none() {
            return Err(Error::Conflict(format!(
                "deployment #{seen} ended before its lock was broken"
            )));
        }
        deployments::get(self.pool(), seen).await
    }

    /// Takes `held` over (compare and swap on its holder, so two consoles
    /// never both recover it), cleans up, closes the deployment and audits
    /// it. `None`: the lock changed hands or ended first.
    async fn take_over(
        &self,
        held: &Lock,
        t: Takeover<'_>,
    ) -> Result<Option<(DeploymentStatus, String)>> {
        let pool = self.pool();
        let me = self.holder().recovering();
        if !lock::take_over(pool, held, &me).await? {
            return Ok(None);
        }
        let env = environments::get(pool, held.environment_id).await.ok();
        let (status, message) = match (&env, held.to_slot) {
            (Some(env), Some(to)) => self.close_interrupted(env, held, to, &t.why).await?,
            _ => (DeploymentStatus::Failed, t.why.clone()),
        };
        steps::close(pool, held.deployment_id, Some(t.step)).await?;
        // A hold nobody decided ends with its deployment: no page offers to
        // promote a deploy whose worker is gone.
        crate::holds::close_open(pool, held.deployment_id, &message).await?;
        deployments::finish(pool, held.deployment_id, Some(&me), status, &message).await?;
        tracing::warn!(dep_id = held.deployment_id, action = t.action, %message, "deployment lock taken over");
        let outcome = if status == DeploymentStatus::Succeeded {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        let mut ev = t.actor.event(t.action, outcome);
        ev.environment = env.map(|e| e.name);
        ev.reason = t.reason.map(str::to_string);
        ev.details = serde_json::json!({
            "deployment": held.deployment_id,
            "message": message,
            "holder": held.holder,
            "heartbeat_at": held.heartbeat_at.map(|t| t.to_rfc3339()),
        });
        self.audit(ev).await?;
        Ok(Some((status, message)))
    }

    /// What an interrupted deployment leaves: if the router already sends
    /// users to `to`, it completed; otherwise the slot it was starting (a
    /// deploy's new release, or a cold rollback's standby started again) is
    /// stopped and users stay where they were. A warm rollback's target is
    /// the standby itself: it stays up.
    async fn close_interrupted(
        &self,
        env: &Environment,
        held: &Lock,
        to: SlotColor,
        why: &str,
    ) -> Result<(DeploymentStatus, String)> {
        // Its start step tells whether it got as far as starting anything (a
        // deploy interrupted before it keeps the previous standby warm). Rows
        // without steps predate them: a deploy there may have started one.
        let steps = steps::list(self.pool(), held.deployment_id).await?;
        let started_a_slot = match held.kind {
            DeploymentKind::Deploy if steps.is_empty() => true,
            DeploymentKind::Deploy | DeploymentKind::Rollback => steps
                .iter()
                .any(|s| s.name == "start" && s.status != model::StepStatus::Pending),
            DeploymentKind::Switch => false,
        };
        match self.router_answers(env).await {
            Ok(t) if t.active.as_ref().map(|u| u.slot) == Some(to) => {
                // Stopped between the switch and its bookkeeping: the slot
                // users left gets its standby window as if it had finished.
                let left = environments::slot(self.pool(), env.id, to.other()).await?;
                if left.handle.is_some() && left.standby_until.is_none() {
                    self.mark_standby(env, to).await?;
                }
                Ok((
                    DeploymentStatus::Succeeded,
                    format!("completed: traffic had switched to {to} before it stopped ({why})"),
                ))
            }
            Ok(t) if started_a_slot => {
                // Users never reached the slot this deployment was starting.
                // Its version and standby deadline stay recorded, so a
                // rollback can start it again. A preview still showing it
                // (the gates were running) is withdrawn first, so the preview
                // address never points at a stopped process.
                let withdrawn = match (t.preview.as_ref().map(|u| u.slot), self.router_for(env)) {
                    (Some(p), Ok(router)) if p == to => {
                        self.withdraw_preview(router.as_ref(), env, t.clone())
                            .await
                            .1
                    }
                    _ => String::new(),
                };
                let slot = environments::slot(self.pool(), env.id, to).await?;
                if let Some(h) = &slot.handle {
                    let version = slot.version.as_deref().unwrap_or("");
                    self.stop_slot(env, to, version, h, SlotState::Stopped)
                        .await;
                }
                Ok((
                    DeploymentStatus::Failed,
                    format!("{why}; the {to} slot it started was stopped, users stayed where they were{withdrawn}"),
                ))
            }
            Ok(_) => Ok((DeploymentStatus::Failed, why.to_string())),
            Err(e) => {
                // An unreachable router may well be sending users to the new
                // slot: leave it running; the next reconciliation adopts
                // whatever the router serves.
                tracing::warn!(env = %env.name, slot = %to, error = %e, "router unreachable; leaving the interrupted deployment's slot running");
                Ok((
                    DeploymentStatus::Failed,
                    format!("{why}; the router could not be asked whether traffic had switched"),
                ))
            }
        }
    }
}
