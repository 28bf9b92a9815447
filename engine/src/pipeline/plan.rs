//! Dry run: what a deploy of a version would do, step by step, and what
//! would stop it — without taking the lock, starting anything or switching.
//! The console's "Plan" form and `switchyard deploy --dry-run` show it.
//!
//! It asks the same questions as a real deploy — the role, the version, the
//! request checks ([`Engine::request_checks`]: approvals, artifact), the lock,
//! the router as the preflight asks it — and turns each failure into a
//! blocker instead of an error, so one answer lists everything in the way.

use super::step::{DEPLOY, DEPLOY_HELD};
use crate::actor::Actor;
use crate::deployments;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::Result;
use crate::rbac::Action;
use crate::version::validate_version;
use model::{DeployPlan, PlanStep, SlotColor, StepName};
use std::time::Duration;

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 60.0 && s % 60.0 == 0.0 {
        format!("{} min", s / 60.0)
    } else {
        format!("{s} s")
    }
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

impl Engine {
    /// The plan of deploying `version` to `env_name`; changes nothing.
    pub async fn plan_deploy(
        &self,
        actor: &Actor,
        env_name: &str,
        version: &str,
    ) -> Result<DeployPlan> {
        self.authorize(actor, Action::Deploy, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let version = version.trim();
        validate_version(version)?;
        let pool = self.pool();
        let mut blockers = Vec::new();

        // The same checks as a deploy, each a blocker rather than an error.
        let protected = crate::checklists::is_protected(pool, env.id).await?;
        let release = match self.release_of(&env, version).await {
            Ok(r) => r,
            Err(e) => {
                blockers.push(e.to_string());
                None
            }
        };
        for b in self.request_checks(&env, version, release).await {
            blockers.push(b.into_error().to_string());
        }
        let lock = match deployments::in_progress(pool, env.id).await? {
            Some((by, since)) => {
                let m = format!(
                    "deploy in progress by {by} since {}",
                    since.format("%Y-%m-%d %H:%M:%S UTC")
                );
                blockers.push(m.clone());
                m
            }
            None => format!("take {}'s lock (free now)", env.name),
        };
        let router = match self.router_answers(&env).await {
            Ok(t) => format!(
                "the {} router answers (routing generation {})",
                env.router, t.generation
            ),
            Err(crate::Error::Router(e)) => {
                let m = format!("the {} router does not answer: {e}", env.router);
                blockers.push(m.clone());
                m
            }
            Err(e) => {
                blockers.push(e.to_string());
                e.to_string()
            }
        };

        let approvals = if protected {
            "the release's approvals are checked again"
        } else {
            "no checklist applies here"
        };
        let preflight = format!("{router}; {approvals}");
        let steps = self.describe_steps(&env, version, lock, preflight).await?;
        Ok(DeployPlan {
            environment: env.name,
            version: version.to_string(),
            ready: blockers.is_empty(),
            blockers,
            steps,
        })
    }

    /// What each step of [`DEPLOY`] would do here, then the watch.
    async fn describe_steps(
        &self,
        env: &Environment,
        version: &str,
        lock: String,
        preflight: String,
    ) -> Result<Vec<PlanStep>> {
        let pool = self.pool();
        let active = env.active;
        let idle = active.map(SlotColor::other).unwrap_or(SlotColor::Blue);
        let idle_slot = environments::slot(pool, env.id, idle).await?;
        let live = match active {
            Some(c) => environments::slot(pool, env.id, c).await?.version,
            None => None,
        };
        let live_text = |c: SlotColor| match &live {
            Some(v) => format!("{c} ({v})"),
            None => c.to_string(),
        };
        let replaced = match (&idle_slot.handle, &idle_slot.version) {
            (Some(_), Some(v)) => format!(", replacing the warm standby {v}"),
            _ => String::new(),
        };
        let g = &env.gates;
        let smoke = if g.smoke_paths.is_empty() {
            "no smoke routes".to_string()
        } else {
            format!("smoke routes {} must answer 2xx", g.smoke_paths.join(", "))
        };
        let sample = if g.sample_requests == 0 {
            "no performance sample".to_string()
        } else {
            format!(
                "{} sample requests: p95 < {}, p99 < {}, errors < {:.1} %",
                g.sample_requests,
                ms(g.p95),
                ms(g.p99),
                g.max_error_rate * 100.0
            )
        };
        let mut out: Vec<PlanStep> = Vec::new();
        let steps = if env.hold_at_preview {
            DEPLOY_HELD
        } else {
            DEPLOY
        };
        for &name in steps {
            let detail = match name {
                StepName::Lock => lock.clone(),
                StepName::Preflight => format!("{preflight}; {idle} is the idle slot"),
                StepName::Start => format!(
                    "start {version} in {idle} with the {} runtime{replaced}",
                    env.runtime
                ),
                StepName::Health => format!(
                    "GET {} every {} until 2xx, for up to {}",
                    env.health_path,
                    ms(env.health_interval),
                    secs(env.health_deadline)
                ),
                StepName::Gates => match &env.preview_listen {
                    Some(l) => format!(
                        "through the preview address http://{l} ({idle} published there, never to users): {smoke}; {sample}"
                    ),
                    None => format!("directly at {idle}'s address (no preview address configured): {smoke}; {sample}"),
                },
                StepName::Hold => format!(
                    "held with {idle} on the preview address until a deployer promotes or aborts, for up to {}",
                    secs(env.hold_timeout)
                ),
                StepName::Switch => match active {
                    Some(c) => format!(
                        "users move from {} to {idle} ({version}) in one atomic switch",
                        live_text(c)
                    ),
                    None => format!("users reach {idle} ({version}): the first deploy"),
                },
                StepName::Drain => match active {
                    Some(c) => format!(
                        "{c} gets no new requests; up to {} for the ones it has",
                        secs(env.drain_timeout)
                    ),
                    None => "skipped: no previous slot".to_string(),
                },
                StepName::Standby => match active {
                    Some(c) if env.standby_window.is_zero() => format!(
                        "{} stays warm until the next deploy: rollback is a switch",
                        live_text(c)
                    ),
                    Some(c) => format!(
                        "{} stays warm for {}: rollback inside it is a switch",
                        live_text(c),
                        secs(env.standby_window)
                    ),
                    None => "skipped: no previous slot".to_string(),
                },
            };
            out.push(PlanStep {
                name: name.as_str().to_string(),
                detail,
            });
        }
        let watch = match active {
            _ if env.watch_window.is_zero() => "off for this environment".to_string(),
            None => "skipped: nothing to roll back to".to_string(),
            Some(_) => format!(
                "after the deploy, {idle} is watched for {}: errors < {:.1} %, p95 < {}, {} failed \
                 health probes in a row — a breach rolls back by itself",
                secs(env.watch_window),
                g.max_error_rate * 100.0,
                ms(g.p95),
                crate::watch::HEALTH_STRIKES
            ),
        };
        out.push(PlanStep {
            name: "watch".into(),
            detail: watch,
        });
        Ok(out)
    }
}
