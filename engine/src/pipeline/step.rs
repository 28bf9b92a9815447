//! One step signature for the whole deploy: every step is a file of this
//! module with `run(engine, &mut DeployRun) -> Result<Done>`, and the deploy
//! is the list [`DEPLOY`] walked in order by [`Engine::run_steps`].
//!
//! The walk marks each step running (stopping first if the lock was taken
//! away), runs it, and records how it ended. A step that returns an error
//! is left running: the worker closes it as failed with that error (see
//! `worker.rs`), and every later step becomes `skipped`.

use super::run::{out_of_order, DeployRun, Done};
use super::{drain, gates, health, hold, preflight, standby, start, switch};
use crate::engine::Engine;
use crate::error::Result;
use model::{StepName, StepStatus};

/// The steps of a deploy, in order (docs/ARCHITECTURE.md, the pipeline).
/// The lock is taken before the worker starts; the worker runs the rest.
pub const DEPLOY: &[StepName] = &[
    StepName::Lock,
    StepName::Preflight,
    StepName::Start,
    StepName::Health,
    StepName::Gates,
    StepName::Switch,
    StepName::Drain,
    StepName::Standby,
];
/// The steps of a deploy to an environment that holds at preview: the
/// hold waits between the gates and the switch (see `hold.rs`).
pub const DEPLOY_HELD: &[StepName] = &[
    StepName::Lock,
    StepName::Preflight,
    StepName::Start,
    StepName::Health,
    StepName::Gates,
    StepName::Hold,
    StepName::Switch,
    StepName::Drain,
    StepName::Standby,
];
/// The steps of a rollback: the warm standby was checked before the lock was
/// taken, so what remains is the switch itself.
pub const ROLLBACK: &[StepName] = &[StepName::Lock, StepName::Switch];
/// A rollback to a standby its window already stopped: it starts again and
/// must be healthy before users go back to it.
pub const ROLLBACK_COLD: &[StepName] = &[
    StepName::Lock,
    StepName::Start,
    StepName::Health,
    StepName::Switch,
];

impl Engine {
    /// Runs `steps` of `run` in order; returns how each ended. The lock
    /// step is the deployment row itself, recorded when it was taken
    /// ([`Engine::plan_steps`]), so the walk passes over it.
    pub(super) async fn run_steps(
        &self,
        run: &mut DeployRun,
        steps: &[StepName],
    ) -> Result<Vec<(StepName, Done)>> {
        let mut done = Vec::with_capacity(steps.len());
        for &step in steps.iter().filter(|s| **s != StepName::Lock) {
            let ended = match skip_reason(step, run) {
                Some(why) => Done::Skipped(why),
                None => {
                    self.step_start(run.dep_id, step).await?;
                    self.run_step(step, run).await?
                }
            };
            let (status, message) = match &ended {
                Done::Succeeded(m) => (StepStatus::Succeeded, m),
                Done::Skipped(m) => (StepStatus::Skipped, m),
            };
            self.step_end(run.dep_id, step, status, message).await;
            done.push((step, ended));
        }
        Ok(done)
    }

    async fn run_step(&self, step: StepName, run: &mut DeployRun) -> Result<Done> {
        match step {
            StepName::Preflight => preflight::run(self, run).await,
            StepName::Start => start::run(self, run).await,
            StepName::Health => health::run(self, run).await,
            StepName::Gates => gates::run(self, run).await,
            StepName::Hold => hold::run(self, run).await,
            StepName::Switch => switch::run(self, run).await,
            StepName::Drain => drain::run(self, run).await,
            StepName::Standby => standby::run(self, run).await,
            // Passed over by the walk (see run_steps).
            StepName::Lock => Err(out_of_order("the lock", StepName::Lock)),
        }
    }
}

/// Steps with nothing to do in this run are recorded skipped without
/// starting (a first deploy has no previous slot to drain or keep warm).
fn skip_reason(step: StepName, run: &DeployRun) -> Option<String> {
    match step {
        StepName::Drain => drain::skip(run),
        StepName::Standby => standby::skip(run),
        _ => None,
    }
}
