//! Rollback: users go back to the warm standby in one switch. No approval
//! is needed (it is the emergency exit) but a reason is. A standby its
//! window already stopped starts again first and must answer health.

use super::step::{ROLLBACK, ROLLBACK_COLD};
use super::worker::FinishAudit;
use crate::actor::Actor;
use crate::audit::Outcome;
use crate::deployments::{self, NewDeployment};
use crate::engine::Engine;
use crate::environments::{self, Environment, Slot};
use crate::error::{Error, Result};
use crate::rbac::Action;
use crate::runtime::Liveness;
use model::{
    DeploymentKind, DeploymentView, RoutingTable, SlotColor, SlotState, StepName, StepStatus,
    Upstream,
};
use std::time::{Duration, Instant};

/// Where a rollback sends users back to.
enum RollbackTarget {
    /// A warm standby, at this address: the rollback is a switch.
    Warm(String),
    /// A standby its window stopped, of this version: it starts again first.
    Cold(String),
}

impl Engine {
    /// Switches users back to the warm standby. No approval needed (it is the
    /// emergency exit) but a reason is, and nothing is restarted.
    pub async fn rollback(
        &self,
        actor: &Actor,
        env_name: &str,
        reason: &str,
    ) -> Result<DeploymentView> {
        self.authorize(actor, Action::Rollback, Some(env_name))
            .await?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::invalid(
                "reason",
                "a reason is required to roll back",
            ));
        }
        if reason.len() > 500 {
            return Err(Error::invalid(
                "reason",
                "reason is too long (at most 500 characters)",
            ));
        }
        let env = environments::find(self.pool(), env_name).await?;
        let Some(active) = env.active else {
            return Err(Error::NoStandby("nothing is live yet".into()));
        };
        let standby_color = active.other();
        let standby = environments::slot(self.pool(), env.id, standby_color).await?;
        // Checked and locked under the lifecycle guard: the standby window
        // cannot stop the slot between this check and the switch.
        let lifecycle = self.inner.lifecycle.lock().await;
        let target = match (&standby.handle, standby.standby_until, &standby.version) {
            // Its window stopped it: it starts again first.
            (None, Some(_), Some(v)) => {
                let spec = self.check_spec(&env, standby_color, v).await?;
                self.runtime_for(&env)?.check(&spec).await.map_err(|e| {
                    Error::NoStandby(format!("the {standby_color} slot cannot start again: {e}"))
                })?;
                RollbackTarget::Cold(v.clone())
            }
            _ => RollbackTarget::Warm(self.usable_standby(&env, &standby).await?),
        };
        let from_version = environments::slot(self.pool(), env.id, active)
            .await?
            .version;
        let dep_id = deployments::begin(
            self.pool(),
            &NewDeployment {
                environment_id: env.id,
                kind: DeploymentKind::Rollback,
                from_version: from_version.as_deref(),
                to_version: standby.version.as_deref(),
                from_slot: Some(active),
                to_slot: Some(standby_color),
                requested_by: actor.user_id(),
                reason: Some(reason),
                holder: Some(&self.inner.holder),
            },
        )
        .await?;
        drop(lifecycle);
        let plan = match target {
            RollbackTarget::Warm(_) => ROLLBACK,
            RollbackTarget::Cold(_) => ROLLBACK_COLD,
        };
        self.plan_steps(dep_id, plan, &env.name).await;
        tracing::info!(env = %env.name, to = %standby_color, dep_id, "rollback started");
        let mut ev = actor.event("rollback.start", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.target = standby.version.clone();
        ev.reason = Some(reason.to_string());
        ev.details = serde_json::json!({ "from_version": from_version, "from_slot": active, "to_slot": standby_color });
        self.audit_start(dep_id, ev).await?;
        let finish = FinishAudit {
            actor: actor.clone(),
            action: "rollback.finish",
            environment: env.name.clone(),
            target: standby.version.clone(),
        };
        let this = self.clone();
        let version = standby.version.clone().unwrap_or_default();
        self.run_detached(dep_id, finish, async move {
            let t = Instant::now();
            let (address, restarted) = match target {
                RollbackTarget::Warm(address) => (address, ""),
                RollbackTarget::Cold(v) => (
                    this.restart_standby(dep_id, &env, standby_color, &v)
                        .await
                        .map_err(|e| e.to_string())?,
                    " (started again: its standby window had ended)",
                ),
            };
            this.step_start(dep_id, StepName::Switch)
                .await
                .map_err(|e| e.to_string())?;
            this.fence(dep_id).await.map_err(|e| e.to_string())?;
            let message = this
                .switch_to(&env, standby_color, &address)
                .await
                .map(|()| {
                    format!(
                        "switched back to {standby_color} ({version}) in {} ms{restarted}",
                        t.elapsed().as_millis()
                    )
                })
                .map_err(|e| e.to_string())?;
            this.step_end(dep_id, StepName::Switch, StepStatus::Succeeded, &message)
                .await;
            Ok(message)
        })
        .await
    }

    /// A rollback's start and health steps for a standby its window stopped:
    /// the same version starts in the same slot and must answer health.
    async fn restart_standby(
        &self,
        dep_id: i64,
        env: &Environment,
        color: SlotColor,
        version: &str,
    ) -> Result<String> {
        let pool = self.pool();
        self.step_start(dep_id, StepName::Start).await?;
        let spec = self.slot_spec(env, color, version).await?;
        let running = self
            .runtime_for(env)?
            .start(&spec)
            .await
            .map_err(|e| Error::DeploymentFailed(format!("start: {e}")))?;
        environments::set_slot(
            pool,
            env.id,
            color,
            Some(version),
            SlotState::Starting,
            Some(&running.handle),
            Some(&running.address),
        )
        .await?;
        self.step_end(
            dep_id,
            StepName::Start,
            StepStatus::Succeeded,
            &format!(
                "{version} started again in {color} at {} (its standby window had ended)",
                running.address
            ),
        )
        .await;
        self.step_start(dep_id, StepName::Health).await?;
        let healthy = self
            .await_healthy(dep_id, env, color, version, &running)
            .await?;
        self.step_end(dep_id, StepName::Health, StepStatus::Succeeded, &healthy)
            .await;
        Ok(running.address)
    }

    /// The standby's address, if it is running and answers health.
    async fn usable_standby(&self, env: &Environment, standby: &Slot) -> Result<String> {
        let color = standby.color;
        let (Some(handle), Some(address)) = (&standby.handle, &standby.address) else {
            return Err(Error::NoStandby(format!(
                "the {color} slot is {}",
                standby.state
            )));
        };
        if let Liveness::Exited(why) = self.runtime_for(env)?.liveness(handle).await {
            environments::record_stopped(self.pool(), env.id, standby).await?;
            return Err(Error::NoStandby(format!(
                "the {color} slot's process is gone ({why})"
            )));
        }
        // A rollback is the emergency exit: one slow answer from a busy host
        // must not refuse it. Up to three probes, 200 ms apart.
        let mut probe = self
            .prober()
            .probe(address, &env.health_path, &env.health_expect)
            .await;
        for _ in 1..3 {
            if probe.ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            probe = self
                .prober()
                .probe(address, &env.health_path, &env.health_expect)
                .await;
        }
        environments::record_health(self.pool(), env.id, color, probe.ok, &probe.message).await?;
        if !probe.ok {
            return Err(Error::NoStandby(format!(
                "the {color} slot fails its health check ({})",
                probe.message
            )));
        }
        Ok(address.clone())
    }

    async fn switch_to(&self, env: &Environment, color: SlotColor, address: &str) -> Result<()> {
        let router = self.router_for(env)?;
        let routed = router.current().await?;
        let env = environments::find(self.pool(), &env.name).await?;
        let generation = env.routing_generation.max(routed.generation) + 1;
        router
            .apply(&RoutingTable {
                generation,
                active: Some(Upstream {
                    slot: color,
                    address: address.to_string(),
                }),
                preview: None,
                ..RoutingTable::default()
            })
            .await?;
        environments::set_active(self.pool(), env.id, color, generation).await?;
        environments::set_slot_state(self.pool(), env.id, color, SlotState::Healthy).await?;
        self.mark_standby(&env, color).await?;
        Ok(())
    }
}
