//! Hold at preview (docs/ARCHITECTURE.md, deploy step 6 when the
//! environment's `hold_at_preview` is on): after the gates pass, the new
//! slot stays live on the preview address — no user reaches it — until a
//! deployer promotes it (the pipeline goes on to the switch) or aborts it,
//! or the hold's timeout aborts it. An abort withdraws the preview and stops
//! the new slot, as a failed gate does: users never left the old slot.
//!
//! The decision is a row (`deployment_holds`, see `holds.rs`) that the
//! worker polls, so a promote from any console, page, API call or CLI
//! reaches it. The deploy keeps its lock while held: a second deploy is
//! refused as in progress. A console that dies during the hold leaves the
//! deployment to recovery, which stops the new slot (`recovery.rs`).

use super::run::{DeployRun, Done};
use crate::actor::Actor;
use crate::audit::Outcome;
use crate::deployments;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::holds::{self, Decision, Hold};
use crate::rbac::Action;
use model::{HoldView, SlotState, StepName};
use std::time::Duration;

/// How often the worker looks for a decision.
const POLL: Duration = Duration::from_millis(200);

/// The longest abort reason kept.
const MAX_REASON: usize = 500;

pub(super) async fn run(engine: &Engine, run: &mut DeployRun) -> Result<Done> {
    let router = run.router(engine)?;
    let running = run.running()?.clone();
    // Without a preview listener the gates ran against the slot's own
    // address: that is where a person can look at it too. A shared
    // listener is named by the environment's host (see the router).
    let preview = router
        .preview_for_people()
        .unwrap_or_else(|| format!("http://{}", running.address));
    let hold = match hold_and_wait(engine, run, &preview).await {
        Ok(h) => h,
        // Whoever took the lock away cleans up (recovery stops the slot).
        Err(e @ Error::LockLost(_)) => return Err(e),
        Err(e) => {
            // Never leave the new slot up on the preview when the hold
            // itself failed (its row or audit entry could not be written).
            let why = format!("hold: {e}");
            return Err(abandon(engine, run, why).await);
        }
    };
    // A canary change may still be on its way to the router: wait for it,
    // then take the table in force, so the switch (or the withdrawal) is
    // written above the canary's generation.
    let hold = match canary_settled(engine, run, hold).await {
        Ok(h) => h,
        Err(e @ Error::LockLost(_)) => return Err(e),
        Err(e) => return Err(abandon(engine, run, format!("hold: {e}")).await),
    };
    if let Ok(in_force) = router.current().await {
        if run
            .routed()
            .is_ok_and(|r| in_force.generation > r.generation)
        {
            run.set_routed(in_force);
        }
    }
    let until = hold.until.to_rfc3339();
    let by = hold.decided_by.clone().unwrap_or_else(|| "system".into());
    let waited = (hold.decided_at.unwrap_or_else(crate::now) - hold.held_at)
        .num_seconds()
        .max(0);
    let why = match hold.decision {
        Some(Decision::Promote) => {
            return Ok(Done::Succeeded(format!(
                "promoted by {by} after {waited} s held (preview at {preview})"
            )))
        }
        Some(Decision::Abort) => format!(
            "aborted by {by} after {waited} s held: {}",
            hold.reason.as_deref().unwrap_or("no reason given")
        ),
        _ => format!("aborted: the hold timed out at {until}"),
    };
    Err(abandon(engine, run, format!("hold: {why}")).await)
}

/// Ends a hold that does not go on to the switch, as a failed gate does:
/// the preview is withdrawn first, then the new slot stopped; users never
/// left the old one. Returns the deployment's error.
async fn abandon(engine: &Engine, run: &mut DeployRun, why: String) -> Error {
    let env = run.env.clone();
    let running = match run.running() {
        Ok(r) => r.clone(),
        Err(e) => return e,
    };
    let mut withdrawn = String::new();
    if let (Ok(router), Ok(routed)) = (run.router(engine), run.routed().cloned()) {
        let (table, said) = engine.withdraw_preview(router.as_ref(), &env, routed).await;
        run.set_routed(table);
        withdrawn = said;
    }
    engine
        .stop_slot(
            &env,
            run.idle,
            &run.version,
            &running.handle,
            SlotState::Stopped,
        )
        .await;
    let users = match env.active {
        Some(old) => format!("users stay on {old}"),
        None => "no user was routed to it".to_string(),
    };
    Error::DeploymentFailed(format!(
        "{why}; the {} slot was stopped, {users}{withdrawn}",
        run.idle
    ))
}

/// Records the hold (its row, the audit entry, the step's message) and
/// waits for its decision.
async fn hold_and_wait(engine: &Engine, run: &DeployRun, preview: &str) -> Result<Hold> {
    let timeout = chrono::Duration::from_std(run.env.hold_timeout)
        .map_err(|e| Error::Internal(format!("hold timeout: {e}")))?;
    let hold = holds::begin(engine.pool(), run.dep_id, preview, crate::now() + timeout).await?;
    let until = hold.until.to_rfc3339();
    let mut ev = Actor::system().event("deploy.hold", Outcome::Ok);
    ev.environment = Some(run.env.name.clone());
    ev.target = Some(run.version.clone());
    ev.details =
        serde_json::json!({ "deployment": run.dep_id, "preview": preview, "until": until });
    engine.audit(ev).await?;
    engine
        .step_progress(
            run.dep_id,
            StepName::Hold,
            &format!("held, preview at {preview}, until {until}: waiting for a deployer to promote or abort"),
        )
        .await;
    wait_for_decision(engine, run, hold).await
}

/// Polls the hold's row until it is decided; past the deadline the worker
/// decides it itself (`timeout`), unless a person's decision landed first.
/// A lock taken away stops the wait like any step.
async fn wait_for_decision(engine: &Engine, run: &DeployRun, mut hold: Hold) -> Result<Hold> {
    loop {
        engine.ensure_lock(run.dep_id)?;
        if hold.decision.is_some() {
            return Ok(hold);
        }
        if crate::now() >= hold.until {
            match holds::decide(
                engine.pool(),
                run.dep_id,
                Decision::Timeout,
                "system",
                Some("the hold timed out"),
            )
            .await
            {
                Ok(decided) => {
                    let mut ev = Actor::system().event("deploy.abort", Outcome::Ok);
                    ev.environment = Some(run.env.name.clone());
                    ev.target = Some(run.version.clone());
                    ev.reason = Some("the hold timed out".into());
                    ev.details = serde_json::json!({ "deployment": run.dep_id });
                    if let Err(e) = engine.audit(ev).await {
                        tracing::error!(dep_id = run.dep_id, error = %e, "could not audit a hold's timeout");
                    }
                    return Ok(decided);
                }
                // A promote or abort landed just before: read it below.
                Err(Error::NotHeld(_)) => {}
                Err(e) => return Err(e),
            }
        } else {
            tokio::time::sleep(POLL).await;
        }
        hold = holds::get(engine.pool(), run.dep_id)
            .await?
            .ok_or_else(|| Error::Internal(format!("hold of #{} vanished", run.dep_id)))?;
    }
}

/// The decided hold once no canary change is being written to the router
/// (or its writer is presumed dead, see [`holds::CANARY_WRITE_GRACE`]).
async fn canary_settled(engine: &Engine, run: &DeployRun, mut hold: Hold) -> Result<Hold> {
    while holds::canary_write_pending(&hold) {
        engine.ensure_lock(run.dep_id)?;
        tokio::time::sleep(POLL).await;
        hold = holds::get(engine.pool(), run.dep_id)
            .await?
            .ok_or_else(|| Error::Internal(format!("hold of #{} vanished", run.dep_id)))?;
    }
    Ok(hold)
}

impl Engine {
    /// A deployer promotes a deploy held at preview: its worker goes on to
    /// the switch. Refused with [`Error::NotHeld`] (nothing changed) when
    /// the deploy is not held: never held, already decided, timed out or
    /// ended. Audited as `deploy.promote`.
    pub async fn promote_hold(&self, actor: &Actor, dep_id: i64) -> Result<HoldView> {
        self.decide_hold(actor, dep_id, Decision::Promote, None)
            .await
    }

    /// A deployer aborts a deploy held at preview, with a reason: its worker
    /// withdraws the preview and stops the new slot; users stay where they
    /// are. Refused like [`Engine::promote_hold`]. Audited as `deploy.abort`.
    pub async fn abort_hold(&self, actor: &Actor, dep_id: i64, reason: &str) -> Result<HoldView> {
        self.decide_hold(actor, dep_id, Decision::Abort, Some(reason))
            .await
    }

    async fn decide_hold(
        &self,
        actor: &Actor,
        dep_id: i64,
        decision: Decision,
        reason: Option<&str>,
    ) -> Result<HoldView> {
        // The role first: who may not deploy learns nothing of which ids exist.
        self.authorize(actor, Action::Deploy, None).await?;
        let reason = match reason.map(str::trim) {
            Some("") => {
                return Err(Error::invalid(
                    "reason",
                    "a reason is required to abort a held deploy",
                ))
            }
            Some(r) if r.chars().count() > MAX_REASON => {
                return Err(Error::invalid(
                    "reason",
                    "reason is too long (at most 500 characters)",
                ))
            }
            other => other,
        };
        let dep = deployments::get(self.pool(), dep_id).await?;
        if !actor.reaches(&dep.environment) {
            return Err(Error::NotFound(format!("deployment #{dep_id}")));
        }
        self.authorize(actor, Action::Deploy, Some(&dep.environment))
            .await?;
        let hold = holds::decide(self.pool(), dep_id, decision, &actor.name(), reason).await?;
        let action = match decision {
            Decision::Promote => "deploy.promote",
            _ => "deploy.abort",
        };
        let mut ev = actor.event(action, Outcome::Ok);
        ev.environment = Some(dep.environment.clone());
        ev.target = dep.to_version.clone();
        ev.reason = reason.map(str::to_string);
        ev.details = serde_json::json!({ "deployment": dep_id, "preview": hold.preview_url });
        self.audit(ev).await?;
        Ok(hold.view())
    }

    /// The hold of `dep_id`, if it was held (for its page).
    pub(crate) async fn hold_view(&self, dep_id: i64) -> Result<Option<HoldView>> {
        Ok(holds::get(self.pool(), dep_id).await?.map(|h| h.view()))
    }
}
