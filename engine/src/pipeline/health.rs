//! Step 4, health: the started slot must answer its health path with 2xx
//! before its deadline. A slot that never does (or whose process exits) is
//! stopped, and the step fails saying why. A rollback to a stopped standby
//! waits the same way ([`Engine::await_healthy`]).

use super::run::{DeployRun, Done};
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{Error, Result};
use crate::runtime::{Liveness, RunningSlot};
use model::{SlotColor, SlotState};
use std::time::Instant;

pub(super) async fn run(engine: &Engine, run: &mut DeployRun) -> Result<Done> {
    let running = run.running()?.clone();
    let message = engine
        .await_healthy(run.dep_id, &run.env, run.idle, &run.version, &running)
        .await?;
    Ok(Done::Succeeded(message))
}

impl Engine {
    /// Waits until `running` answers its health check and records it
    /// healthy; a slot that never does is stopped, and the error says why.
    /// Returns the step's message.
    pub(super) async fn await_healthy(
        &self,
        dep_id: i64,
        env: &Environment,
        color: SlotColor,
        version: &str,
        running: &RunningSlot,
    ) -> Result<String> {
        let started = Instant::now();
        if let Err(why) = self
            .poll_health(dep_id, env, color, &running.handle, &running.address)
            .await
        {
            // A worker whose lock was taken touches nothing more: the slot
            // is the new lock holder's to clean up.
            self.ensure_lock(dep_id)?;
            self.stop_slot(env, color, version, &running.handle, SlotState::Unhealthy)
                .await;
            return Err(Error::DeploymentFailed(format!("health wait: {why}")));
        }
        environments::set_slot_state(self.pool(), env.id, color, SlotState::Healthy).await?;
        Ok(format!(
            "{color} answered {} after {:.1} s",
            env.health_path,
            started.elapsed().as_secs_f64()
        ))
    }

    /// Polls the slot's health URL until it answers 2xx, the process dies, or
    /// the deadline passes.
    async fn poll_health(
        &self,
        dep_id: i64,
        env: &Environment,
        color: SlotColor,
        handle: &str,
        address: &str,
    ) -> std::result::Result<(), String> {
        let started = Instant::now();
        let rt = self.runtime_for(env).map_err(|e| e.to_string())?;
        loop {
            if self.ensure_lock(dep_id).is_err() {
                return Err("the lock was taken away".to_string());
            }
            if let Liveness::Exited(status) = rt.liveness(handle).await {
                return Err(format!(
                    "the process exited ({status}) before it became healthy"
                ));
            }
            let probe = self
                .prober()
                .probe(address, &env.health_path, &env.health_expect)
                .await;
            let _ =
                environments::record_health(self.pool(), env.id, color, probe.ok, &probe.message)
                    .await;
            if probe.ok {
                return Ok(());
            }
            if started.elapsed() >= env.health_deadline {
                return Err(format!(
                    "not healthy within {:.1} s (last result: {})",
                    env.health_deadline.as_secs_f64(),
                    probe.message
                ));
            }
            tokio::time::sleep(env.health_interval).await;
        }
    }

    /// Stops a slot this deploy started and records why it is down.
    pub(crate) async fn stop_slot(
        &self,
        env: &Environment,
        color: SlotColor,
        version: &str,
        handle: &str,
        state: SlotState,
    ) {
        let stopped = match self.runtime_for(env) {
            Ok(rt) => rt.stop(handle, env.stop_grace).await.map_err(Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = stopped {
            tracing::error!(env = %env.name, slot = %color, error = %e, "could not stop failed slot");
        }
        let _ =
            environments::set_slot(self.pool(), env.id, color, Some(version), state, None, None)
                .await;
    }
}
