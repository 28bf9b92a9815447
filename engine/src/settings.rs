//! An environment's pipeline settings as operators see and change them: the
//! health wait, the gates' thresholds, the drain, watch and standby windows.
//! Everyone signed in reads them; admins change them, audited with what
//! changed. A change applies from the next deploy: a running one keeps the
//! settings it started with.

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::engine::Engine;
use crate::environments::{self, Environment, Timings};
use crate::error::{Error, Result};
use crate::gates::GateSettings;
use crate::rbac::Action;
use model::PipelineSettings;
use std::time::Duration;

/// Bounds that keep a typo from stalling deploys for days.
const MAX_HEALTH_DEADLINE: Duration = Duration::from_secs(30 * 60);
const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// A hold waits for a person: shorter than 10 s nobody can act, longer than
/// a day the environment stays locked for nothing.
const MIN_HOLD: Duration = Duration::from_secs(10);
const MAX_HOLD: Duration = Duration::from_secs(24 * 3600);

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

pub fn of(env: &Environment) -> PipelineSettings {
    PipelineSettings {
        health_interval_ms: ms(env.health_interval),
        health_deadline_ms: ms(env.health_deadline),
        smoke_paths: env.gates.smoke_paths_text(),
        sample_requests: env.gates.sample_requests,
        p95_ms: ms(env.gates.p95),
        p99_ms: ms(env.gates.p99),
        max_error_pct: env.gates.max_error_rate * 100.0,
        drain_timeout_ms: ms(env.drain_timeout),
        watch_window_ms: ms(env.watch_window),
        standby_window_ms: ms(env.standby_window),
        hold_at_preview: env.hold_at_preview,
        hold_timeout_ms: ms(env.hold_timeout),
    }
}

/// The health wait's interval and deadline, checked.
pub(crate) fn health(s: &PipelineSettings) -> Result<(Duration, Duration)> {
    let interval = Duration::from_millis(s.health_interval_ms);
    let deadline = Duration::from_millis(s.health_deadline_ms);
    if interval < Duration::from_millis(10) || interval > Duration::from_secs(60) {
        return Err(Error::invalid(
            "health_interval_ms",
            "the health interval must be between 10 ms and 60 s",
        ));
    }
    if deadline < interval || deadline > MAX_HEALTH_DEADLINE {
        return Err(Error::invalid(
            "health_deadline_ms",
            "the health deadline must be at least one interval and at most 30 minutes",
        ));
    }
    Ok((interval, deadline))
}

pub(crate) fn gates(s: &PipelineSettings) -> Result<GateSettings> {
    if !s.max_error_pct.is_finite() {
        return Err(Error::invalid(
            "max_error_pct",
            "the error-rate threshold must be a number",
        ));
    }
    let g = GateSettings {
        smoke_paths: GateSettings::parse_smoke_paths(&s.smoke_paths),
        sample_requests: s.sample_requests,
        p95: Duration::from_millis(s.p95_ms),
        p99: Duration::from_millis(s.p99_ms),
        max_error_rate: s.max_error_pct / 100.0,
    };
    g.validate()?;
    Ok(g)
}

pub(crate) fn timings(s: &PipelineSettings) -> Result<Timings> {
    let t = Timings {
        drain_timeout: Duration::from_millis(s.drain_timeout_ms),
        watch_window: Duration::from_millis(s.watch_window_ms),
        standby_window: Duration::from_millis(s.standby_window_ms),
        hold_at_preview: s.hold_at_preview,
        hold_timeout: Duration::from_millis(s.hold_timeout_ms),
    };
    if t.hold_timeout < MIN_HOLD || t.hold_timeout > MAX_HOLD {
        return Err(Error::invalid(
            "hold_timeout_ms",
            "the hold timeout must be between 10 seconds and 24 hours",
        ));
    }
    if t.drain_timeout.is_zero() {
        return Err(Error::invalid(
            "drain_timeout_ms",
            "the drain timeout must be above 0",
        ));
    }
    if t.drain_timeout > Duration::from_secs(3600)
        || t.watch_window > MAX_WINDOW
        || t.standby_window > MAX_WINDOW
    {
        // Named after the first field out of range, so the form points at it.
        let field = if t.drain_timeout > Duration::from_secs(3600) {
            "drain_timeout_ms"
        } else if t.watch_window > MAX_WINDOW {
            "watch_window_ms"
        } else {
            "standby_window_ms"
        };
        return Err(Error::invalid(
            field,
            "the drain timeout may be at most 1 hour, the watch and standby windows at most 7 days",
        ));
    }
    Ok(t)
}

impl Engine {
    /// Registers a new environment (admins; the console registers its demo
    /// as the system), audited as `environment.create`. Its name, gates and
    /// preview address are checked; a taken name is refused.
    pub async fn register_environment(
        &self,
        actor: &Actor,
        new: &environments::NewEnvironment,
    ) -> Result<model::EnvironmentView> {
        self.authorize(actor, Action::ManageEnvironments, Some(&new.name))
            .await?;
        let env = environments::create(self.pool(), new).await?;
        let mut ev = actor.event("environment.create", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.details = serde_json::json!({
            "runtime": env.runtime,
            "router": env.router,
            "artifact_template": env.artifact_template,
        });
        self.audit(ev).await?;
        environments::view(self.pool(), &env).await
    }

    pub async fn pipeline_settings(
        &self,
        actor: &Actor,
        env_name: &str,
    ) -> Result<PipelineSettings> {
        self.authorize(actor, Action::ViewEnvironments, Some(env_name))
            .await?;
        Ok(of(&environments::find(self.pool(), env_name).await?))
    }

    /// Replaces `env_name`'s pipeline settings. Everything is checked before
    /// anything is written, so a refused form changes nothing.
    pub async fn set_pipeline_settings(
        &self,
        actor: &Actor,
        env_name: &str,
        new: &PipelineSettings,
    ) -> Result<PipelineSettings> {
        self.authorize(actor, Action::ManageEnvironments, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let (interval, deadline) = health(new)?;
        let gates = gates(new)?;
        let timings = timings(new)?;
        let before = of(&env);
        environments::set_health(self.pool(), env.id, interval, deadline).await?;
        environments::set_gates(self.pool(), env.id, &gates).await?;
        environments::set_timings(self.pool(), env.id, timings).await?;
        let after = of(&environments::get(self.pool(), env.id).await?);
        let mut ev = actor.event("environment.settings", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.details = serde_json::json!({ "before": before, "after": after });
        self.audit(ev).await?;
        Ok(after)
    }
}
