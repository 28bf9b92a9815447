//! The mechanics every deploy and rollback shares: a detached task that owns
//! its deployment row, the heartbeat that keeps its lock, the checks that
//! stop it once the lock is taken away, and the step timeline it writes.

use crate::actor::Actor;
use crate::audit::{Event, Outcome};
use crate::deployments;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lock;
use crate::steps;
use model::{DeploymentStatus, DeploymentView, StepName, StepStatus};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workers running in this console, by deployment id.
#[derive(Default)]
pub(crate) struct Workers(Mutex<HashMap<i64, Arc<Worker>>>);

impl Workers {
    fn get(&self, dep_id: i64) -> Option<Arc<Worker>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&dep_id)
            .cloned()
    }

    fn insert(&self, dep_id: i64, worker: Arc<Worker>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dep_id, worker);
    }

    fn remove(&self, dep_id: i64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&dep_id);
    }
}

/// A deploy or rollback worker of this console, as the lock code sees it.
pub(crate) struct Worker {
    /// Set when the lock is taken away (broken by an admin, or taken over
    /// after a missed heartbeat): the worker stops at its next step and
    /// leaves the closing of its row to whoever took the lock.
    stop: AtomicBool,
    /// Becomes `true` once the worker has stopped touching anything.
    done: tokio::sync::watch::Sender<bool>,
}

/// What to record when a detached deployment finishes.
pub(super) struct FinishAudit {
    pub(super) actor: Actor,
    pub(super) action: &'static str,
    pub(super) environment: String,
    pub(super) target: Option<String>,
}

impl Engine {
    /// Marks a step of `dep_id` running — unless the worker's lock was taken
    /// away, in which case the worker stops here, before the step. The
    /// timeline is a record of the run, not part of it: a write that fails is
    /// logged and the run goes on.
    pub(super) async fn step_start(&self, dep_id: i64, name: StepName) -> Result<()> {
        self.ensure_lock(dep_id)?;
        if let Err(e) = steps::start(self.pool(), dep_id, name).await {
            tracing::error!(dep_id, step = %name, error = %e, "could not record a step");
        }
        Ok(())
    }

    /// Ends a step of `dep_id`; see [`Engine::step_start`].
    pub(super) async fn step_end(
        &self,
        dep_id: i64,
        name: StepName,
        status: StepStatus,
        message: &str,
    ) {
        if let Err(e) = steps::finish(self.pool(), dep_id, name, status, message).await {
            tracing::error!(dep_id, step = %name, error = %e, "could not record a step");
        }
    }

    /// Shows where a running step is (e.g. the in-flight count while the
    /// old slot drains); like the rest of the timeline, never fails the run.
    pub(super) async fn step_progress(&self, dep_id: i64, name: StepName, message: &str) {
        let _ = steps::progress(self.pool(), dep_id, name, message).await;
    }

    /// Writes a new deployment's steps, the lock (its row) already taken.
    pub(super) async fn plan_steps(&self, dep_id: i64, names: &[StepName], env_name: &str) {
        if let Err(e) = steps::plan(self.pool(), dep_id, names).await {
            tracing::error!(dep_id, error = %e, "could not record the steps of a deployment");
        }
        self.step_end(
            dep_id,
            StepName::Lock,
            StepStatus::Succeeded,
            &format!("{env_name} locked for deployment #{dep_id}"),
        )
        .await;
    }

    /// Whether the worker of `dep_id` runs in this console.
    pub(crate) fn runs_here(&self, dep_id: i64) -> bool {
        self.inner.workers.get(dep_id).is_some()
    }

    /// Asks this console's worker of `dep_id` to stop at its next step and
    /// waits up to `wait` until it has. `None`: it does not run here;
    /// `Some(false)`: it has not stopped yet (it will, at its next step).
    pub(crate) async fn stop_worker(&self, dep_id: i64, wait: Duration) -> Option<bool> {
        let worker = self.inner.workers.get(dep_id)?;
        worker.stop.store(true, Ordering::SeqCst);
        let mut done = worker.done.subscribe();
        let stopped = tokio::time::timeout(wait, done.wait_for(|d| *d))
            .await
            .is_ok();
        Some(stopped)
    }

    /// `Err(LockLost)` once the lock of `dep_id` was taken from its worker.
    pub(super) fn ensure_lock(&self, dep_id: i64) -> Result<()> {
        match self.inner.workers.get(dep_id) {
            Some(w) if w.stop.load(Ordering::SeqCst) => Err(Error::LockLost(dep_id)),
            _ => Ok(()),
        }
    }

    /// The fence before traffic moves: the worker must still hold the lock
    /// in the database, not only believe it does (a console that was paused
    /// past its lock's time to live may have been taken over meanwhile).
    pub(super) async fn fence(&self, dep_id: i64) -> Result<()> {
        self.ensure_lock(dep_id)?;
        if lock::holds(self.pool(), dep_id, &self.inner.holder).await? {
            Ok(())
        } else {
            if let Some(w) = self.inner.workers.get(dep_id) {
                w.stop.store(true, Ordering::SeqCst);
            }
            Err(Error::LockLost(dep_id))
        }
    }

    /// Records that a deployment started; if that cannot be written, the
    /// deployment is closed before anything ran.
    pub(super) async fn audit_start(&self, dep_id: i64, mut ev: Event) -> Result<()> {
        ev.details["deployment"] = serde_json::json!(dep_id);
        if let Err(e) = self.audit(ev).await {
            const NOT_STARTED: &str = "not started: the audit log could not be written";
            steps::close(self.pool(), dep_id, Some(NOT_STARTED)).await?;
            deployments::finish(
                self.pool(),
                dep_id,
                Some(&self.inner.holder),
                DeploymentStatus::Failed,
                NOT_STARTED,
            )
            .await?;
            return Err(e);
        }
        Ok(())
    }

    /// Runs `work` as a detached task that owns the deployment row: if the
    /// caller goes away (browser closed, request cancelled) the deployment still
    /// finishes and its row is always closed.
    pub(super) async fn run_detached<F>(
        &self,
        dep_id: i64,
        audit: FinishAudit,
        work: F,
    ) -> Result<DeploymentView>
    where
        F: Future<Output = std::result::Result<String, String>> + Send + 'static,
    {
        let this = self.clone();
        let (done, _) = tokio::sync::watch::channel(false);
        let worker = Arc::new(Worker {
            stop: AtomicBool::new(false),
            done,
        });
        self.inner.workers.insert(dep_id, worker.clone());
        let heartbeat = tokio::spawn(self.clone().heartbeat(dep_id, worker.clone()));
        let handle = tokio::spawn(async move {
            let outcome = work.await;
            heartbeat.abort();
            // Whoever took the lock away closes the row; this worker only
            // says it has stopped.
            let lost = worker.stop.load(Ordering::SeqCst);
            let _ = worker.done.send(true);
            this.inner.workers.remove(dep_id);
            if lost {
                tracing::warn!(
                    dep_id,
                    "the deployment's lock was taken away; its worker stopped"
                );
                return;
            }
            this.close_run(dep_id, audit, outcome).await;
        });
        handle
            .await
            .map_err(|e| Error::Internal(format!("deploy worker panicked: {e}")))?;
        let mut row = deployments::get(self.pool(), dep_id).await?;
        // A worker whose lock was taken away returns once the taker has
        // closed the row (it does so right after the worker stops), so the
        // caller sees how it ended; a taker in another console may be slower.
        let deadline = Instant::now() + Duration::from_secs(2);
        while row.status == DeploymentStatus::Running && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            row = deployments::get(self.pool(), dep_id).await?;
        }
        Ok(row)
    }

    /// Closes a finished run: its steps, its row (if this console still
    /// holds it) and the audit entry saying how it ended.
    async fn close_run(
        &self,
        dep_id: i64,
        audit: FinishAudit,
        outcome: std::result::Result<String, String>,
    ) {
        let (status, message) = match outcome {
            Ok(m) => (DeploymentStatus::Succeeded, m),
            Err(m) => (DeploymentStatus::Failed, m),
        };
        // Steps first: once the row is closed the page stops refreshing.
        let failure = (status == DeploymentStatus::Failed).then_some(message.as_str());
        if let Err(e) = steps::close(self.pool(), dep_id, failure).await {
            tracing::error!(dep_id, error = %e, "could not close the steps of a deployment");
        }
        let me = Some(&self.inner.holder);
        match deployments::finish(self.pool(), dep_id, me, status, &message).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    dep_id,
                    "the deployment was closed by another console (lock taken over)"
                );
                return;
            }
            Err(e) => {
                tracing::error!(dep_id, error = %e, "could not record the end of a deployment")
            }
        }
        let outcome = match status {
            DeploymentStatus::Succeeded => Outcome::Ok,
            _ => Outcome::Failed,
        };
        let mut ev = audit.actor.event(audit.action, outcome);
        ev.environment = Some(audit.environment);
        ev.target = audit.target;
        ev.details = serde_json::json!({ "deployment": dep_id, "message": message });
        if let Err(e) = self.audit(ev).await {
            tracing::error!(dep_id, error = %e, "could not audit the end of a deployment");
        }
    }

    /// Keeps the lock of `dep_id` alive while its worker runs. A beat that
    /// finds the lock held by someone else stops the worker at its next step.
    async fn heartbeat(self, dep_id: i64, worker: Arc<Worker>) {
        loop {
            tokio::time::sleep(self.lock_timing().heartbeat_every).await;
            match lock::beat(self.pool(), dep_id, &self.inner.holder).await {
                Ok(true) => {}
                Ok(false) => {
                    worker.stop.store(true, Ordering::SeqCst);
                    tracing::warn!(dep_id, "lock taken over by another console: stopping");
                    return;
                }
                // A database hiccup is not a lost lock; the next beat retries.
                Err(e) => tracing::warn!(dep_id, error = %e, "heartbeat not written"),
            }
        }
    }
}
