//! A deploy from request to end: who may ask, what is checked before the
//! lock is taken ([`Engine::request_checks`]), the lock (a deployment row),
//! then the worker walking [`super::DEPLOY`].
//!
//! The safety rules (docs/ARCHITECTURE.md) hold here, not in the UI: the
//! active slot is never stopped or replaced during a deploy, and a deploy
//! that fails at any step leaves users on the slot they were on.

use super::preflight::Blocker;
use super::run::{DeployRun, Done, ReleaseAtRevision};
use super::step::{DEPLOY, DEPLOY_HELD};
use super::worker::FinishAudit;
use crate::actor::Actor;
use crate::audit::Outcome;
use crate::checklists;
use crate::deployments::{self, NewDeployment};
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{Error, Result};
use crate::rbac::Action;
use crate::releases;
use crate::runtime::Runtime;
use crate::version::validate_version;
use model::{DeploymentKind, DeploymentStatus, DeploymentView, SlotColor, StepName};
use std::sync::Arc;

/// How a deploy may differ from the ordinary one.
#[derive(Clone, Debug, Default)]
pub struct DeployOptions {
    /// An admin's reason to deploy while a freeze window holds (audited as
    /// `freeze.override`); refused for everyone else.
    pub override_freeze: Option<String>,
}

/// A deploy that passed its checks and holds the environment's lock; see
/// [`Engine::prepare_release_deploy`] and [`Engine::execute`].
pub struct PreparedDeploy {
    dep_id: i64,
    finish: FinishAudit,
    env: Environment,
    idle: SlotColor,
    version: String,
    release: Option<ReleaseAtRevision>,
    runtime: Arc<dyn Runtime>,
    /// [`DEPLOY`], or [`DEPLOY_HELD`] where the environment holds at preview.
    steps: &'static [StepName],
}

impl PreparedDeploy {
    pub fn deployment_id(&self) -> i64 {
        self.dep_id
    }
}

impl Engine {
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
        let prepared = self
            .prepare_deploy(actor, env_name, version, &DeployOptions::default())
            .await?;
        self.execute(prepared).await
    }

    /// The checks and bookkeeping of [`Engine::deploy`], up to the running
    /// deployment: the API answers with it and runs [`Engine::execute`]
    /// in the background, so a pipeline follows the deploy instead of
    /// holding a request open for minutes.
    pub async fn prepare_deploy(
        &self,
        actor: &Actor,
        env_name: &str,
        version: &str,
        options: &DeployOptions,
    ) -> Result<PreparedDeploy> {
        self.authorize(actor, Action::Deploy, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let release = self.release_of(&env, version.trim()).await?;
        self.prepare(actor, env, version, release, options).await
    }

    /// The release a deploy of `version` to `env` carries out: in an
    /// environment with a checklist, the newest open release of that
    /// version (none is an error); elsewhere none.
    pub(crate) async fn release_of(
        &self,
        env: &Environment,
        version: &str,
    ) -> Result<Option<ReleaseAtRevision>> {
        if !checklists::is_protected(self.pool(), env.id).await? {
            return Ok(None);
        }
        let release = self.release_for(env, version).await?;
        Ok(Some(ReleaseAtRevision {
            release_id: release.id,
            revision: release.revision,
        }))
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
            .prepare_release_deploy(actor, release_id, seen_revision, &DeployOptions::default())
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
        options: &DeployOptions,
    ) -> Result<PreparedDeploy> {
        // The role first: who may not act learns nothing of which ids exist.
        self.authorize(actor, Action::Deploy, None).await?;
        let release = releases::get(self.pool(), release_id).await?;
        self.authorize(actor, Action::Deploy, Some(&release.environment))
            .await?;
        let env = environments::find(self.pool(), &release.environment).await?;
        let at = ReleaseAtRevision {
            release_id,
            revision: seen_revision,
        };
        self.prepare(actor, env, &release.version, Some(at), options)
            .await
    }

    async fn prepare(
        &self,
        actor: &Actor,
        env: Environment,
        version: &str,
        release: Option<ReleaseAtRevision>,
        options: &DeployOptions,
    ) -> Result<PreparedDeploy> {
        let version = version.trim();
        validate_version(version)?;
        let mut blockers = self.request_checks(&env, version, release).await;
        let override_reason = options
            .override_freeze
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let mut overridden = None;
        if let (Some(Blocker::Freeze(frozen @ Error::Frozen { .. })), Some(reason)) =
            (blockers.first(), override_reason)
        {
            // Only those who set freezes may step over one.
            self.authorize(actor, Action::ManageEnvironments, Some(&env.name))
                .await?;
            overridden = Some((frozen.to_string(), reason.to_string()));
            blockers.remove(0);
        }
        if let Some(blocker) = blockers.into_iter().next() {
            if let (Blocker::Approvals(e), Some(r)) = (&blocker, release) {
                let mut ev = actor.event("deploy.request", Outcome::Denied);
                ev.environment = Some(env.name.clone());
                ev.target = Some(version.to_string());
                ev.details = serde_json::json!({ "release": r.release_id, "error": e.to_string() });
                self.audit(ev).await?;
            }
            return Err(blocker.into_error());
        }
        if let Some((frozen, reason)) = overridden {
            let mut ev = actor.event("freeze.override", Outcome::Ok);
            ev.environment = Some(env.name.clone());
            ev.target = Some(version.to_string());
            ev.reason = Some(reason);
            ev.details = serde_json::json!({ "freeze": frozen });
            self.audit(ev).await?;
        }
        let runtime = self.runtime_for(&env)?;
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
        // Decided once, with the settings the deploy started with.
        let steps = if env.hold_at_preview {
            DEPLOY_HELD
        } else {
            DEPLOY
        };
        self.plan_steps(dep_id, steps, &env.name).await;
        if let Some(r) = release {
            releases::link_deployment(self.pool(), dep_id, r.release_id).await?;
        }
        tracing::info!(env = %env.name, version, slot = %idle, dep_id, "deploy started");
        let mut ev = actor.event("deploy.start", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.target = Some(version.to_string());
        ev.details = serde_json::json!({
            "from_version": from_version, "from_slot": active, "to_slot": idle,
            "release": release.map(|r| r.release_id),
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
            release,
            runtime,
            steps,
        })
    }

    /// Runs a prepared deploy to its end. A release's approvals are checked
    /// again first (the preflight): a signature revoked, expired or voided
    /// since the request stops the deploy before anything is touched.
    pub async fn execute(&self, prepared: PreparedDeploy) -> Result<DeploymentView> {
        let PreparedDeploy {
            dep_id,
            finish,
            env,
            idle,
            version,
            release,
            runtime,
            steps,
        } = prepared;
        let this = self.clone();
        let env_name = env.name.clone();
        let mut run = DeployRun::new(dep_id, env, idle, version, release, runtime);
        let done = self
            .run_detached(dep_id, finish, async move {
                let ran = this
                    .run_steps(&mut run, steps)
                    .await
                    .map_err(|e| e.to_string())?;
                let kept_warm = ran.iter().any(|(step, done)| {
                    *step == StepName::Standby && matches!(done, Done::Succeeded(_))
                });
                let standby = match (kept_warm, run.env.active) {
                    (true, Some(old)) => format!("; {old} kept warm as standby"),
                    _ => String::new(),
                };
                Ok(format!("{} is live on {idle}{standby}", run.version))
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
}
