//! The deploy and rollback workers.
//!
//! The safety rules (docs/ARCHITECTURE.md) are enforced here, not in the UI: the active
//! slot is never stopped or replaced during a deploy, and a deploy that fails at
//! any step leaves users on the slot they were on.

use crate::approvals::Moment;
use crate::audit::{AuditActor, AuditLog, Event, Outcome};
use crate::checklists;
use crate::deployments::{self, NewDeployment};
use crate::environments::{self, Environment, Slot};
use crate::error::{Error, Result};
use crate::health::Prober;
use crate::lock::{self, Holder, LockTiming};
use crate::rbac::{self, Action};
use crate::releases;
use crate::router::{BuiltinRouter, NginxRouter, TrafficRouter};
use crate::runtime::{Liveness, RunningSlot, Runtime, SlotSpec};
use crate::steps;
use crate::store::Pool;
use crate::users::User;
use model::{
    DeploymentDetail, DeploymentKind, DeploymentStatus, DeploymentView, RoutingTable, SlotColor,
    SlotState, StepStatus, Upstream,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Who acts: a signed-in user, or Switchyard itself (bootstrap, recovery,
/// automatic rollback).
#[derive(Clone, Debug)]
pub enum Principal {
    User(User),
    System,
}

/// A principal and where the request came from, as the audit log records it.
#[derive(Clone, Debug)]
pub struct Actor {
    pub principal: Principal,
    pub source_ip: Option<String>,
}

impl Actor {
    pub fn user(user: User) -> Self {
        Actor {
            principal: Principal::User(user),
            source_ip: None,
        }
    }

    pub fn system() -> Self {
        Actor {
            principal: Principal::System,
            source_ip: None,
        }
    }

    pub fn from_ip(mut self, ip: Option<String>) -> Self {
        self.source_ip = ip;
        self
    }

    pub fn as_user(&self) -> Option<&User> {
        match &self.principal {
            Principal::User(u) => Some(u),
            Principal::System => None,
        }
    }

    pub(crate) fn user_id(&self) -> Option<i64> {
        self.as_user().map(|u| u.id)
    }

    fn audit_actor(&self) -> AuditActor {
        match &self.principal {
            Principal::User(u) => AuditActor::User {
                id: u.id,
                name: u.username.clone(),
            },
            Principal::System => AuditActor::System,
        }
    }

    /// An audit event by this actor, from where it asked.
    pub fn event(&self, action: &'static str, outcome: Outcome) -> Event {
        let mut e = Event::new(self.audit_actor(), action, outcome);
        e.source_ip = self.source_ip.clone();
        e
    }

    fn authorize(&self, action: Action) -> Result<()> {
        match &self.principal {
            Principal::User(u) if u.disabled => Err(Error::Unauthenticated),
            Principal::User(u) => rbac::authorize(u.role, action),
            Principal::System => Ok(()),
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    /// Runtime drivers by name (`environments.runtime`). Outside `Inner` so
    /// `with_runtime` can add one to an engine value without locks.
    runtimes: Arc<HashMap<String, Arc<dyn Runtime>>>,
    lock_timing: LockTiming,
}

struct Inner {
    pool: Pool,
    prober: Prober,
    audit: AuditLog,
    /// Serializes taking an environment's lock (a deployment row) with a pass
    /// of [`Engine::expire_standbys`]: the expiry never stops a standby that a
    /// rollback has just checked and is about to switch to.
    lifecycle: tokio::sync::Mutex<()>,
    /// This console as the holder of the locks its workers take.
    holder: Holder,
    /// The workers running in this console, by deployment id.
    workers: Mutex<HashMap<i64, Arc<Worker>>>,
}

/// A deploy or rollback worker of this console, as the lock code sees it.
struct Worker {
    /// Set when the lock is taken away (broken by an admin, or taken over
    /// after a missed heartbeat): the worker stops at its next step and
    /// leaves the closing of its row to whoever took the lock.
    stop: AtomicBool,
    /// Becomes `true` once the worker has stopped touching anything.
    done: tokio::sync::watch::Sender<bool>,
}

/// The release a deploy carries out, at the revision its deployer saw.
#[derive(Clone, Copy, Debug)]
struct ReleaseGate {
    release_id: i64,
    revision: i64,
}

/// Where a rollback sends users back to.
enum RollbackTarget {
    /// A warm standby, at this address: the rollback is a switch.
    Warm(String),
    /// A standby its window stopped, of this version: it starts again first.
    Cold(String),
}

/// A deploy that passed its checks and holds the environment's lock; see
/// [`Engine::prepare_release_deploy`] and [`Engine::execute`].
pub struct PreparedDeploy {
    dep_id: i64,
    finish: FinishAudit,
    env: Environment,
    idle: SlotColor,
    version: String,
    gate: Option<ReleaseGate>,
}

impl PreparedDeploy {
    pub fn deployment_id(&self) -> i64 {
        self.dep_id
    }
}

/// What to record when a detached deployment finishes.
struct FinishAudit {
    actor: Actor,
    action: &'static str,
    environment: String,
    target: Option<String>,
}

/// How often the drain asks the router how many requests are still in flight.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// Versions name directories and appear in commands: keep them to a safe alphabet.
pub fn validate_version(version: &str) -> Result<()> {
    if version.is_empty() {
        return Err(Error::InvalidInput("version is required".into()));
    }
    let ok = version.len() <= 64
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
        && !version.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "version {version:?} may only use letters, digits and . - _ + (at most 64)"
        )))
    }
}

impl Engine {
    /// An engine with `runtime` registered as `process` (the default every
    /// environment gets); add others with [`Engine::with_runtime`].
    pub fn new(pool: Pool, runtime: Arc<dyn Runtime>) -> Self {
        Engine {
            inner: Arc::new(Inner {
                pool,
                prober: Prober::default(),
                audit: AuditLog::default(),
                lifecycle: tokio::sync::Mutex::new(()),
                holder: Holder::this_process(),
                workers: Mutex::new(HashMap::new()),
            }),
            runtimes: Arc::new(HashMap::from([("process".to_string(), runtime)])),
            lock_timing: LockTiming::default(),
        }
    }

    /// How often workers beat and when a silent lock counts as stale (tests
    /// shorten both).
    pub fn with_lock_timing(mut self, timing: LockTiming) -> Self {
        self.lock_timing = timing;
        self
    }

    /// This console as a lock holder.
    pub fn holder(&self) -> &Holder {
        &self.inner.holder
    }

    pub(crate) fn lock_timing(&self) -> LockTiming {
        self.lock_timing
    }

    /// Registers (or replaces) the runtime used by environments whose
    /// `runtime` column is `name`, e.g. `docker`. Clones made before this
    /// call keep the set they had.
    pub fn with_runtime(mut self, name: &str, runtime: Arc<dyn Runtime>) -> Self {
        Arc::make_mut(&mut self.runtimes).insert(name.to_string(), runtime);
        self
    }

    /// The runtime driver `env` asks for. An environment naming a driver this
    /// console was not configured with is refused before anything starts.
    pub(crate) fn runtime_for(&self, env: &Environment) -> Result<Arc<dyn Runtime>> {
        self.runtimes.get(&env.runtime).cloned().ok_or_else(|| {
            let mut known: Vec<&str> = self.runtimes.keys().map(String::as_str).collect();
            known.sort_unstable();
            Error::InvalidInput(format!(
                "environment {} uses the {:?} runtime, which this console is not configured with (configured: {})",
                env.name,
                env.runtime,
                known.join(", ")
            ))
        })
    }

    pub(crate) fn prober(&self) -> &Prober {
        &self.inner.prober
    }

    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The traffic router `env` names. A router value is built per
    /// operation; the nginx router serializes applies with a file lock, so
    /// that is safe.
    pub(crate) fn router_for(&self, env: &Environment) -> Result<Arc<dyn TrafficRouter>> {
        if env.router == "nginx" {
            let settings = env.nginx.clone().ok_or_else(|| {
                Error::Internal(format!(
                    "environment {} uses the nginx router without its settings",
                    env.name
                ))
            })?;
            return Ok(Arc::new(
                NginxRouter::new(settings).with_preview(env.preview_listen.clone()),
            ));
        }
        if env.router != "builtin" {
            return Err(Error::InvalidInput(format!(
                "environment {} uses the {:?} router, which this console does not know",
                env.name, env.router
            )));
        }
        let token = std::fs::read_to_string(&env.proxy_token_file).map_err(|e| {
            Error::Internal(format!(
                "reading proxy admin token {}: {e}",
                env.proxy_token_file
            ))
        })?;
        Ok(Arc::new(
            BuiltinRouter::new(&env.proxy_admin_url, token.trim().to_string())
                .with_preview(env.preview_listen.clone()),
        ))
    }

    /// What the runtime is asked to start for `version` in `color`.
    pub fn spec(env: &Environment, color: SlotColor, version: &str) -> SlotSpec {
        SlotSpec {
            environment: env.name.clone(),
            color,
            version: version.to_string(),
            artifact: env.artifact_template.replace("{version}", version),
        }
    }

    pub async fn audit_search(
        &self,
        actor: &Actor,
        filter: &model::AuditFilter,
        limit: i64,
    ) -> Result<model::AuditPage> {
        actor.authorize(Action::ViewAudit)?;
        crate::audit::search(self.pool(), filter, limit).await
    }

    pub async fn environment(&self, actor: &Actor, name: &str) -> Result<model::EnvironmentView> {
        actor.authorize(Action::ViewEnvironments)?;
        let env = environments::find(self.pool(), name).await?;
        environments::view(self.pool(), &env).await
    }

    pub async fn environment_names(&self, actor: &Actor) -> Result<Vec<String>> {
        actor.authorize(Action::ViewEnvironments)?;
        Ok(environments::list(self.pool())
            .await?
            .into_iter()
            .map(|e| e.name)
            .collect())
    }

    pub async fn history(
        &self,
        actor: &Actor,
        env_name: &str,
        limit: i64,
    ) -> Result<Vec<DeploymentView>> {
        actor.authorize(Action::ViewEnvironments)?;
        let env = environments::find(self.pool(), env_name).await?;
        deployments::history(self.pool(), env.id, limit.clamp(1, 500)).await
    }

    /// One deployment with its steps, for its page. Whoever may read the
    /// history may read this.
    pub async fn deployment(&self, actor: &Actor, id: i64) -> Result<DeploymentDetail> {
        actor.authorize(Action::ViewEnvironments)?;
        let deployment = deployments::get(self.pool(), id).await?;
        let steps = steps::list(self.pool(), id).await?;
        let elapsed_ms = match deployment.duration_ms {
            Some(ms) => ms,
            None => chrono::DateTime::parse_from_rfc3339(&deployment.started_at)
                .map(|t| (crate::now() - t.with_timezone(&chrono::Utc)).num_milliseconds())
                .unwrap_or(0)
                .max(0),
        };
        Ok(DeploymentDetail {
            deployment,
            steps,
            elapsed_ms,
            watch: crate::watch::view(self.pool(), id).await?,
        })
    }

    /// Both slots' traffic over the last five minutes in 10-second points,
    /// for the dashboard. The router being unreachable is an answer here
    /// (shown in the panel), not an error: the rest of the page still works.
    pub async fn traffic(&self, actor: &Actor, env_name: &str) -> Result<model::TrafficView> {
        actor.authorize(Action::ViewEnvironments)?;
        let env = environments::find(self.pool(), env_name).await?;
        let router = self.router_for(&env)?;
        Ok(match router.traffic_series(300, 10).await {
            Ok(Some(series)) => model::TrafficView {
                series: Some(series),
                unavailable: None,
            },
            Ok(None) => model::TrafficView {
                series: None,
                unavailable: Some(format!(
                    "the {} router reports no per-slot traffic",
                    env.router
                )),
            },
            Err(e) => model::TrafficView {
                series: None,
                unavailable: Some(format!("traffic figures unavailable: {e}")),
            },
        })
    }

    /// Marks a step of `dep_id` running — unless the worker's lock was taken
    /// away, in which case the worker stops here, before the step. The
    /// timeline is a record of the run, not part of it: a write that fails is
    /// logged and the run goes on.
    async fn step_start(&self, dep_id: i64, name: &str) -> Result<()> {
        self.ensure_lock(dep_id)?;
        if let Err(e) = steps::start(self.pool(), dep_id, name).await {
            tracing::error!(dep_id, step = name, error = %e, "could not record a step");
        }
        Ok(())
    }

    /// The worker of `dep_id` in this console, if it runs here.
    fn worker(&self, dep_id: i64) -> Option<Arc<Worker>> {
        self.inner
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&dep_id)
            .cloned()
    }

    /// Whether the worker of `dep_id` runs in this console.
    pub(crate) fn runs_here(&self, dep_id: i64) -> bool {
        self.worker(dep_id).is_some()
    }

    /// Asks this console's worker of `dep_id` to stop at its next step and
    /// waits up to `wait` until it has. `None`: it does not run here;
    /// `Some(false)`: it has not stopped yet (it will, at its next step).
    pub(crate) async fn stop_worker(&self, dep_id: i64, wait: Duration) -> Option<bool> {
        let worker = self.worker(dep_id)?;
        worker.stop.store(true, Ordering::SeqCst);
        let mut done = worker.done.subscribe();
        let stopped = tokio::time::timeout(wait, done.wait_for(|d| *d))
            .await
            .is_ok();
        Some(stopped)
    }

    /// `Err(LockLost)` once the lock of `dep_id` was taken from its worker.
    fn ensure_lock(&self, dep_id: i64) -> Result<()> {
        match self.worker(dep_id) {
            Some(w) if w.stop.load(Ordering::SeqCst) => Err(Error::LockLost(dep_id)),
            _ => Ok(()),
        }
    }

    /// The fence before traffic moves: the worker must still hold the lock
    /// in the database, not only believe it does (a console that was paused
    /// past its lock's time to live may have been taken over meanwhile).
    async fn fence(&self, dep_id: i64) -> Result<()> {
        self.ensure_lock(dep_id)?;
        if lock::holds(self.pool(), dep_id, &self.inner.holder).await? {
            Ok(())
        } else {
            if let Some(w) = self.worker(dep_id) {
                w.stop.store(true, Ordering::SeqCst);
            }
            Err(Error::LockLost(dep_id))
        }
    }

    /// Ends a step of `dep_id`; see [`Engine::step_start`].
    async fn step_end(&self, dep_id: i64, name: &str, status: StepStatus, message: &str) {
        if let Err(e) = steps::finish(self.pool(), dep_id, name, status, message).await {
            tracing::error!(dep_id, step = name, error = %e, "could not record a step");
        }
    }

    /// Writes a new deployment's steps, the lock (its row) already taken.
    async fn plan_steps(&self, dep_id: i64, names: &[&str], env_name: &str) {
        if let Err(e) = steps::plan(self.pool(), dep_id, names).await {
            tracing::error!(dep_id, error = %e, "could not record the steps of a deployment");
        }
        self.step_end(
            dep_id,
            "lock",
            StepStatus::Succeeded,
            &format!("{env_name} locked for deployment #{dep_id}"),
        )
        .await;
    }

    /// Runs `work` as a detached task that owns the deployment row: if the
    /// caller goes away (browser closed, request cancelled) the deployment still
    /// finishes and its row is always closed.
    async fn run_detached<F>(
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
        self.inner
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dep_id, worker.clone());
        let heartbeat = tokio::spawn(self.clone().heartbeat(dep_id, worker.clone()));
        let handle = tokio::spawn(async move {
            let outcome = work.await;
            heartbeat.abort();
            // Whoever took the lock away closes the row; this worker only
            // says it has stopped.
            let lost = worker.stop.load(Ordering::SeqCst);
            let _ = worker.done.send(true);
            this.inner
                .workers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&dep_id);
            if lost {
                tracing::warn!(
                    dep_id,
                    "the deployment's lock was taken away; its worker stopped"
                );
                return;
            }
            let (status, message) = match outcome {
                Ok(m) => (DeploymentStatus::Succeeded, m),
                Err(m) => (DeploymentStatus::Failed, m),
            };
            // Steps first: once the row is closed the page stops refreshing.
            let failure = (status == DeploymentStatus::Failed).then_some(message.as_str());
            if let Err(e) = steps::close(this.pool(), dep_id, failure).await {
                tracing::error!(dep_id, error = %e, "could not close the steps of a deployment");
            }
            let me = Some(&this.inner.holder);
            match deployments::finish(this.pool(), dep_id, me, status, &message).await {
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
            if let Err(e) = this.audit(ev).await {
                tracing::error!(dep_id, error = %e, "could not audit the end of a deployment");
            }
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

    /// Keeps the lock of `dep_id` alive while its worker runs. A beat that
    /// finds the lock held by someone else stops the worker at its next step.
    async fn heartbeat(self, dep_id: i64, worker: Arc<Worker>) {
        loop {
            tokio::time::sleep(self.lock_timing.heartbeat_every).await;
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

    /// Appends to the audit log. Callers stop the action when this fails.
    pub async fn audit(&self, event: Event) -> Result<()> {
        self.inner
            .audit
            .append(self.pool(), event)
            .await
            .map(|_| ())
    }

    /// Whether `actor` may do `action` (in `environment`), with refusals
    /// recorded in the audit log. Server functions that check more than the
    /// engine call them with (a confirmation box, a form's numbers) call this
    /// first, so a refused role learns nothing from those checks.
    pub async fn authorize(
        &self,
        actor: &Actor,
        action: Action,
        environment: Option<&str>,
    ) -> Result<()> {
        let refused = match actor.authorize(action) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let mut ev = actor.event(action.audit_name(), Outcome::Denied);
        ev.environment = environment.map(str::to_string);
        ev.details = serde_json::json!({ "error": refused.to_string() });
        if let Err(e) = self.audit(ev).await {
            tracing::error!(error = %e, "could not audit a refused request");
        }
        Err(refused)
    }

    /// Records that a deployment started; if that cannot be written, the
    /// deployment is closed before anything ran.
    async fn audit_start(&self, dep_id: i64, mut ev: Event) -> Result<()> {
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

    /// Deploys `version` into the idle slot of `env_name` and switches traffic
    /// to it once it is healthy. Returns the finished deployment; a failure of
    /// the pipeline is a `failed` deployment, not an `Err`.
    ///
    /// In an environment whose checklist has required items this deploys the
    /// newest open release of `version`, and only if it is approved.
    pub async fn deploy(
        &self,
        actor: &Actor,
        env_name: &str,
        version: &str,
    ) -> Result<DeploymentView> {
        self.authorize(actor, Action::Deploy, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let gate = if checklists::is_protected(self.pool(), env.id).await? {
            let release = self.release_for(&env, version.trim()).await?;
            Some(ReleaseGate {
                release_id: release.id,
                revision: release.revision,
            })
        } else {
            None
        };
        let prepared = self.prepare(actor, env, version, gate).await?;
        self.execute(prepared).await
    }

    /// Deploys an approved release; `seen_revision` is the revision the
    /// deployer looked at (a release edited since is refused).
    pub async fn deploy_release(
        &self,
        actor: &Actor,
        release_id: i64,
        seen_revision: i64,
    ) -> Result<DeploymentView> {
        let prepared = self
            .prepare_release_deploy(actor, release_id, seen_revision)
            .await?;
        self.execute(prepared).await
    }

    /// The checks and bookkeeping before a release's deploy runs: authorized,
    /// approved, the environment locked and the start audited. Nothing is
    /// started until [`Engine::execute`], which checks the approvals again.
    pub async fn prepare_release_deploy(
        &self,
        actor: &Actor,
        release_id: i64,
        seen_revision: i64,
    ) -> Result<PreparedDeploy> {
        // The role first: who may not act learns nothing of which ids exist.
        self.authorize(actor, Action::Deploy, None).await?;
        let release = releases::get(self.pool(), release_id).await?;
        self.authorize(actor, Action::Deploy, Some(&release.environment))
            .await?;
        let env = environments::find(self.pool(), &release.environment).await?;
        let gate = ReleaseGate {
            release_id,
            revision: seen_revision,
        };
        self.prepare(actor, env, &release.version, Some(gate)).await
    }

    async fn prepare(
        &self,
        actor: &Actor,
        env: Environment,
        version: &str,
        gate: Option<ReleaseGate>,
    ) -> Result<PreparedDeploy> {
        let version = version.trim();
        validate_version(version)?;
        if let Some(g) = gate {
            if let Err(e) = self
                .ensure_deployable(g.release_id, g.revision, Moment::Review)
                .await
            {
                let mut ev = actor.event("deploy.request", Outcome::Denied);
                ev.environment = Some(env.name.clone());
                ev.target = Some(version.to_string());
                ev.details = serde_json::json!({ "release": g.release_id, "error": e.to_string() });
                self.audit(ev).await?;
                return Err(e);
            }
        }
        let spec_check = Self::spec(&env, SlotColor::Blue, version);
        self.runtime_for(&env)?
            .check(&spec_check)
            .await
            .map_err(|e| Error::UnknownVersion {
                version: version.to_string(),
                reason: e.to_string(),
            })?;
        let active = env.active;
        let idle = active.map(SlotColor::other).unwrap_or(SlotColor::Blue);
        let from_version = match active {
            Some(c) => environments::slot(self.pool(), env.id, c).await?.version,
            None => None,
        };
        let lifecycle = self.inner.lifecycle.lock().await;
        let dep_id = deployments::begin(
            self.pool(),
            &NewDeployment {
                environment_id: env.id,
                kind: DeploymentKind::Deploy,
                from_version: from_version.as_deref(),
                to_version: Some(version),
                from_slot: active,
                to_slot: Some(idle),
                requested_by: actor.user_id(),
                reason: None,
                holder: Some(&self.inner.holder),
            },
        )
        .await?;
        drop(lifecycle);
        self.plan_steps(dep_id, steps::DEPLOY, &env.name).await;
        if let Some(g) = gate {
            releases::link_deployment(self.pool(), dep_id, g.release_id).await?;
        }
        tracing::info!(env = %env.name, version, slot = %idle, dep_id, "deploy started");
        let mut ev = actor.event("deploy.start", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.target = Some(version.to_string());
        ev.details = serde_json::json!({
            "from_version": from_version, "from_slot": active, "to_slot": idle,
            "release": gate.map(|g| g.release_id),
        });
        self.audit_start(dep_id, ev).await?;
        Ok(PreparedDeploy {
            dep_id,
            finish: FinishAudit {
                actor: actor.clone(),
                action: "deploy.finish",
                environment: env.name.clone(),
                target: Some(version.to_string()),
            },
            env,
            idle,
            version: version.to_string(),
            gate,
        })
    }

    /// Runs a prepared deploy to its end. A release's approvals are checked
    /// again first: a signature revoked, expired or voided since the request
    /// stops the deploy before anything is touched.
    pub async fn execute(&self, prepared: PreparedDeploy) -> Result<DeploymentView> {
        let PreparedDeploy {
            dep_id,
            finish,
            env,
            idle,
            version,
            gate,
        } = prepared;
        let this = self.clone();
        let env_name = env.name.clone();
        let done = self
            .run_detached(dep_id, finish, async move {
                this.step_start(dep_id, "preflight")
                    .await
                    .map_err(|e| e.to_string())?;
                if let Some(g) = gate {
                    this.ensure_deployable(g.release_id, g.revision, Moment::Execution)
                        .await
                        .map_err(|e| format!("approvals re-checked at start: {e}"))?;
                }
                this.deploy_steps(dep_id, env, idle, &version, gate.is_some())
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        if done.status == DeploymentStatus::Succeeded {
            // The watch is a record of its own: a failure to start it is
            // logged, the deploy stands.
            if let Err(e) = self.start_watch(dep_id, &env_name).await {
                tracing::error!(dep_id, error = %e, "could not start the watch window");
            }
        }
        Ok(done)
    }

    /// The deploy itself, step by step. The preflight step is running when
    /// this is called; whichever step is running when this returns an error
    /// is the one that failed (see [`Engine::run_detached`]).
    async fn deploy_steps(
        &self,
        dep_id: i64,
        env: Environment,
        idle: SlotColor,
        version: &str,
        approvals_checked: bool,
    ) -> Result<String> {
        let pool = self.pool();
        let rt = self.runtime_for(&env)?;
        // Preflight: the router must answer before anything is started.
        let router = self.router_for(&env)?;
        let routed = router.current().await?;
        crate::failpoint::pause("preflight.checked").await;
        // Re-read under the lock: the active slot may have changed since the request.
        let env = environments::find(pool, &env.name).await?;
        if env.active == Some(idle) {
            return Err(Error::DeploymentFailed(format!(
                "refusing to touch {idle}: it is the active slot"
            )));
        }
        let approvals = if approvals_checked {
            "; the release's approvals still hold"
        } else {
            ""
        };
        self.step_end(
            dep_id,
            "preflight",
            StepStatus::Succeeded,
            &format!(
                "router answers (generation {}); {idle} is the idle slot{approvals}",
                routed.generation
            ),
        )
        .await;

        self.step_start(dep_id, "start").await?;
        // Whatever is left in the idle slot is the previous standby; the new
        // release replaces it. The active slot is not touched.
        let previous = environments::slot(pool, env.id, idle).await?;
        if let Some(handle) = &previous.handle {
            rt.stop(handle, env.stop_grace).await?;
        }
        environments::set_slot(
            pool,
            env.id,
            idle,
            Some(version),
            SlotState::Starting,
            None,
            None,
        )
        .await?;
        environments::clear_standby(pool, env.id, idle).await?;

        let running = match rt.start(&Self::spec(&env, idle, version)).await {
            Ok(r) => r,
            Err(e) => {
                environments::set_slot(
                    pool,
                    env.id,
                    idle,
                    Some(version),
                    SlotState::Stopped,
                    None,
                    None,
                )
                .await?;
                return Err(Error::DeploymentFailed(format!("start: {e}")));
            }
        };
        environments::set_slot(
            pool,
            env.id,
            idle,
            Some(version),
            SlotState::Starting,
            Some(&running.handle),
            Some(&running.address),
        )
        .await?;
        crate::failpoint::pause("start.spawned").await;
        let replaced = match (&previous.handle, &previous.version) {
            (Some(_), Some(v)) => format!(" (replacing the previous standby, {v})"),
            (Some(_), None) => " (replacing the previous standby)".to_string(),
            _ => String::new(),
        };
        self.step_end(
            dep_id,
            "start",
            StepStatus::Succeeded,
            &format!(
                "{version} started in {idle} at {}{replaced}",
                running.address
            ),
        )
        .await;

        self.health_step(dep_id, &env, idle, version, &running)
            .await?;

        // Gates reach the idle slot through the router's preview address, or
        // directly without one (crate::preview); no user reaches it yet. A
        // preview write moves the generation the switch must be newer than.
        self.step_start(dep_id, "gates").await?;
        let (routed, gated) = self
            .gates_step(router.as_ref(), &env, idle, &running.address, routed)
            .await;
        match gated {
            Ok(passed) => {
                self.step_end(dep_id, "gates", StepStatus::Succeeded, &passed)
                    .await
            }
            Err(why) => {
                self.stop_slot(&env, idle, version, &running.handle, SlotState::Stopped)
                    .await;
                return Err(Error::DeploymentFailed(format!("gates: {why}")));
            }
        }

        self.step_start(dep_id, "switch").await?;
        self.fence(dep_id).await?;

        let generation = env.routing_generation.max(routed.generation) + 1;
        let table = RoutingTable {
            generation,
            active: Some(Upstream {
                slot: idle,
                address: running.address.clone(),
            }),
            // The switch ends the preview (see crate::preview for why).
            preview: None,
        };
        let mut lost_answer = "";
        if let Err(e) = router.apply(&table).await {
            // The write may have landed even though its answer was lost: ask
            // the router before declaring the switch failed, or the slot users
            // are now on would be stopped under them.
            let landed = matches!(router.current().await, Ok(t) if t == table);
            if !landed {
                // Users are still on the old slot: the switch did not happen.
                let (_, withdrawn) = self.withdraw_preview(router.as_ref(), &env, routed).await;
                self.stop_slot(&env, idle, version, &running.handle, SlotState::Stopped)
                    .await;
                return Err(Error::DeploymentFailed(format!("switch: {e}{withdrawn}")));
            }
            tracing::warn!(env = %env.name, error = %e, "switch answer lost but the router shows it applied");
            lost_answer = " (the router's answer was lost; asked again, it shows the switch)";
        }
        crate::failpoint::pause("switch.applied").await;
        environments::set_active(pool, env.id, idle, generation).await?;
        let standby_until = self.mark_standby(&env, idle).await?;
        self.step_end(
            dep_id,
            "switch",
            StepStatus::Succeeded,
            &format!("users now reach {idle} (routing generation {generation}){lost_answer}"),
        )
        .await;

        // The old slot gets no new requests now; let the ones it has finish.
        match env.active {
            Some(old) => {
                self.step_start(dep_id, "drain").await?;
                let drained = self.drain(dep_id, router.as_ref(), &env, old).await;
                self.step_end(dep_id, "drain", StepStatus::Succeeded, &drained)
                    .await;
            }
            None => {
                self.step_end(
                    dep_id,
                    "drain",
                    StepStatus::Skipped,
                    "first deploy: no previous slot to drain",
                )
                .await
            }
        }

        // The old slot is not touched: it stays up for an instant rollback.
        let standby = match env.active {
            Some(old) => {
                self.step_start(dep_id, "standby").await?;
                crate::failpoint::pause("standby.recording").await;
                let old_version = environments::slot(pool, env.id, old)
                    .await
                    .ok()
                    .and_then(|s| s.version)
                    .map(|v| format!(" ({v})"))
                    .unwrap_or_default();
                let until = match standby_until {
                    Some(t) => format!("until {} UTC", t.format("%H:%M:%S")),
                    None => "until the next deploy".to_string(),
                };
                self.step_end(
                    dep_id,
                    "standby",
                    StepStatus::Succeeded,
                    &format!(
                        "{old}{old_version} kept running as the warm standby for rollback, {until}"
                    ),
                )
                .await;
                format!("; {old} kept warm as standby")
            }
            None => {
                self.step_end(
                    dep_id,
                    "standby",
                    StepStatus::Skipped,
                    "first deploy: no previous slot to keep warm",
                )
                .await;
                String::new()
            }
        };
        Ok(format!("{version} is live on {idle}{standby}"))
    }

    /// Waits until the router counts no request in flight to `old` (the slot
    /// users just left), up to the environment's drain timeout. Never fails
    /// the deploy: users are already on the new slot, and the old one stays
    /// up as the standby, so requests still running after the deadline go
    /// on. The count is shown on the running step while it drains.
    async fn drain(
        &self,
        dep_id: i64,
        router: &dyn TrafficRouter,
        env: &Environment,
        old: SlotColor,
    ) -> String {
        let started = Instant::now();
        let count = |r: std::result::Result<Option<u64>, crate::router::RouterError>| {
            match r {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(format!(
                "{old} gets no new requests; the {} router lets its in-flight requests finish by itself",
                env.router
            )),
            Err(e) => Err(format!(
                "{old} gets no new requests; its in-flight count is unavailable ({e})"
            )),
        }
        };
        let at_switch = match count(router.in_flight(old).await) {
            Ok(n) => n,
            Err(why) => return why,
        };
        let mut now = at_switch;
        while now > 0 {
            if self.ensure_lock(dep_id).is_err() {
                return format!("{old} gets no new requests; the drain stopped with {now} in flight: the lock was taken away");
            }
            if started.elapsed() >= env.drain_timeout {
                return format!(
                    "drain deadline of {:.1} s passed with {now} request(s) still in flight on {old}; \
                     they go on: {old} stays up as the standby",
                    env.drain_timeout.as_secs_f64()
                );
            }
            let _ = steps::progress(
                self.pool(),
                dep_id,
                "drain",
                &format!("{now} request(s) in flight on {old}"),
            )
            .await;
            tokio::time::sleep(DRAIN_POLL).await;
            now = match count(router.in_flight(old).await) {
                Ok(n) => n,
                Err(why) => return why,
            };
        }
        format!(
            "{old} gets no new requests; {at_switch} in flight at the switch, 0 after {} ms",
            started.elapsed().as_millis()
        )
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

    /// Polls the slot's health URL until it answers 2xx, the process dies, or
    /// the deadline passes.
    async fn wait_healthy(
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
            let probe = self.inner.prober.probe(address, &env.health_path).await;
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
            return Err(Error::InvalidInput(
                "a reason is required to roll back".into(),
            ));
        }
        if reason.len() > 500 {
            return Err(Error::InvalidInput(
                "reason is too long (at most 500 characters)".into(),
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
                self.runtime_for(&env)?
                    .check(&Self::spec(&env, standby_color, v))
                    .await
                    .map_err(|e| {
                        Error::NoStandby(format!(
                            "the {standby_color} slot cannot start again: {e}"
                        ))
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
            RollbackTarget::Warm(_) => steps::ROLLBACK,
            RollbackTarget::Cold(_) => steps::ROLLBACK_COLD,
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
            this.step_start(dep_id, "switch")
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
            this.step_end(dep_id, "switch", StepStatus::Succeeded, &message)
                .await;
            Ok(message)
        })
        .await
    }

    /// The health step: waits until `running` answers its health check; a
    /// slot that never does is stopped, and the step fails saying why.
    async fn health_step(
        &self,
        dep_id: i64,
        env: &Environment,
        color: SlotColor,
        version: &str,
        running: &RunningSlot,
    ) -> Result<()> {
        self.step_start(dep_id, "health").await?;
        let started = Instant::now();
        if let Err(why) = self
            .wait_healthy(dep_id, env, color, &running.handle, &running.address)
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
        self.step_end(
            dep_id,
            "health",
            StepStatus::Succeeded,
            &format!(
                "{color} answered {} after {:.1} s",
                env.health_path,
                started.elapsed().as_secs_f64()
            ),
        )
        .await;
        Ok(())
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
        self.step_start(dep_id, "start").await?;
        let running = self
            .runtime_for(env)?
            .start(&Self::spec(env, color, version))
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
            "start",
            StepStatus::Succeeded,
            &format!(
                "{version} started again in {color} at {} (its standby window had ended)",
                running.address
            ),
        )
        .await;
        self.health_step(dep_id, env, color, version, &running)
            .await?;
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
        let mut probe = self.inner.prober.probe(address, &env.health_path).await;
        for _ in 1..3 {
            if probe.ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            probe = self.inner.prober.probe(address, &env.health_path).await;
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
            })
            .await?;
        environments::set_active(self.pool(), env.id, color, generation).await?;
        environments::set_slot_state(self.pool(), env.id, color, SlotState::Healthy).await?;
        self.mark_standby(&env, color).await?;
        Ok(())
    }

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

    /// What the environment's router serves now.
    pub(crate) async fn routed(&self, env: &Environment) -> Result<RoutingTable> {
        Ok(self.router_for(env)?.current().await?)
    }

    /// One round of health probes over every running slot, for the dashboard.
    pub async fn probe_slots(&self) -> Result<()> {
        for env in environments::list(self.pool()).await? {
            for slot in environments::slots(self.pool(), env.id).await? {
                if let Some(addr) = &slot.address {
                    let p = self.inner.prober.probe(addr, &env.health_path).await;
                    environments::record_health(self.pool(), env.id, slot.color, p.ok, &p.message)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked_before_they_reach_a_command_line() {
        for ok in ["v1", "2.0.0", "2.0.0-rc.1+build.7", "release_42"] {
            assert!(validate_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../etc",
            "v1; rm -rf /",
            "v 2",
            ".hidden",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(validate_version(bad), Err(Error::InvalidInput(_))),
                "{bad:?} was accepted"
            );
        }
        assert_eq!(
            validate_version("").unwrap_err().to_string(),
            "invalid input: version is required"
        );
    }
}
