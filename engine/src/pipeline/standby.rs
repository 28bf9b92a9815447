//! Step 8, standby: the slot users left is not touched — it stays running
//! as the warm standby, so a rollback is one switch. It stays warm for the
//! environment's standby window; [`Engine::expire_standbys`] stops it after
//! that (a rollback then starts it again first).

use super::run::{DeployRun, Done};
use crate::actor::Actor;
use crate::audit::Outcome;
use crate::deployments;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::Result;
use model::SlotColor;

/// A first deploy has no previous slot.
pub(super) fn skip(run: &DeployRun) -> Option<String> {
    run.env
        .active
        .is_none()
        .then(|| "first deploy: no previous slot to keep warm".to_string())
}

pub(super) async fn run(engine: &Engine, run: &mut DeployRun) -> Result<Done> {
    let Some(old) = run.env.active else {
        return Ok(Done::Skipped(skip(run).unwrap_or_default()));
    };
    crate::failpoint::pause("standby.recording").await;
    let old_version = environments::slot(engine.pool(), run.env.id, old)
        .await
        .ok()
        .and_then(|s| s.version)
        .map(|v| format!(" ({v})"))
        .unwrap_or_default();
    let until = match run.standby_until {
        Some(t) => format!("until {} UTC", t.format("%H:%M:%S")),
        None => "until the next deploy".to_string(),
    };
    Ok(Done::Succeeded(format!(
        "{old}{old_version} kept running as the warm standby for rollback, {until}"
    )))
}

impl Engine {
    /// After a switch to `active`: the slot users left is the standby, kept
    /// warm for the environment's window. Returns until when.
    pub(crate) async fn mark_standby(
        &self,
        env: &Environment,
        active: SlotColor,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let until = (!env.standby_window.is_zero()).then(|| {
            crate::now()
                + chrono::Duration::from_std(env.standby_window)
                    .unwrap_or_else(|_| chrono::Duration::minutes(15))
        });
        environments::mark_standby(self.pool(), env.id, active, until).await?;
        Ok(until)
    }

    /// Stops every standby whose window has passed (never the active slot,
    /// never while the environment is locked). Its version stays recorded
    /// with the past deadline, so a rollback can start it again. Called
    /// periodically by the console.
    pub async fn expire_standbys(&self) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        let pool = self.pool();
        let now = crate::now();
        for env in environments::list(pool).await? {
            if deployments::in_progress(pool, env.id).await?.is_some() {
                continue;
            }
            for slot in environments::slots(pool, env.id).await? {
                let (Some(handle), Some(until)) = (&slot.handle, slot.standby_until) else {
                    continue;
                };
                if env.active == Some(slot.color) || until > now {
                    continue;
                }
                let rt = self.runtime_for(&env)?;
                rt.stop(handle, env.stop_grace).await?;
                environments::record_stopped(pool, env.id, &slot).await?;
                tracing::info!(env = %env.name, slot = %slot.color, "standby window ended: slot stopped");
                let mut ev = Actor::system().event("standby.expire", Outcome::Ok);
                ev.environment = Some(env.name.clone());
                ev.target = slot.version.clone();
                ev.details = serde_json::json!({
                    "slot": slot.color,
                    "window_secs": env.standby_window.as_secs(),
                    "message": "the standby window ended; a rollback starts this slot again",
                });
                self.audit(ev).await?;
            }
        }
        Ok(())
    }
}
