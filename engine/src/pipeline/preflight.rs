//! Step 2, preflight: under the lock, before anything starts — the release's
//! approvals still hold, the router answers, and the slot about to be used is
//! still the idle one (the active slot may have changed since the request).
//!
//! The request-time checks a deploy makes before it takes the lock (role,
//! version, artifact, approvals) are [`Engine::request_checks`]; the dry-run
//! plan asks the same ones, so a plan cannot drift from a deploy.

use super::run::{DeployRun, Done, ReleaseAtRevision};
use crate::approvals::Moment;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{Error, Result};
use model::{RoutingTable, SlotColor};

/// One request-time check that failed, named so the caller can treat it
/// (the approvals' refusal is audited as a denied request).
pub(crate) enum Blocker {
    /// A freeze window holds (an admin may override it).
    Freeze(Error),
    Approvals(Error),
    Artifact(Error),
}

impl Blocker {
    pub(crate) fn into_error(self) -> Error {
        match self {
            Blocker::Freeze(e) | Blocker::Approvals(e) | Blocker::Artifact(e) => e,
        }
    }
}

impl Engine {
    /// What would stop a deploy of `version` to `env` before it takes the
    /// lock, in the order a deploy checks them: a freeze window, the
    /// release's approvals (if it carries one), then whether the runtime can
    /// start the version.
    pub(crate) async fn request_checks(
        &self,
        env: &Environment,
        version: &str,
        release: Option<ReleaseAtRevision>,
    ) -> Vec<Blocker> {
        let mut blockers = Vec::new();
        match self.freeze_refusal(env).await {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => blockers.push(Blocker::Freeze(e)),
        }
        if let Some(r) = release {
            if let Err(e) = self
                .ensure_deployable(r.release_id, r.revision, Moment::Review)
                .await
            {
                blockers.push(Blocker::Approvals(e));
            }
        }
        // With the registry login: a tag that is neither here nor in the
        // registry is refused before anything changes.
        let artifact = match (
            self.runtime_for(env),
            self.check_spec(env, SlotColor::Blue, version).await,
        ) {
            (Ok(rt), Ok(spec)) => rt.check(&spec).await.map_err(|e| Error::UnknownVersion {
                version: version.to_string(),
                reason: e.to_string(),
            }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        if let Err(e) = artifact {
            blockers.push(Blocker::Artifact(e));
        }
        blockers
    }

    /// What the router serves now: the preflight's question, and the dry
    /// run's.
    pub(crate) async fn router_answers(&self, env: &Environment) -> Result<RoutingTable> {
        Ok(self.router_for(env)?.current().await?)
    }
}

pub(super) async fn run(engine: &Engine, run: &mut DeployRun) -> Result<Done> {
    if let Some(r) = run.release {
        engine
            .ensure_deployable(r.release_id, r.revision, Moment::Execution)
            .await
            .map_err(|e| Error::NotApproved(format!("approvals re-checked at start: {e}")))?;
    }
    // The router must answer before anything is started.
    let router = run.router(engine)?;
    let routed = router.current().await?;
    crate::failpoint::pause("preflight.checked").await;
    // Re-read under the lock: the active slot may have changed since the request.
    run.env = environments::find(engine.pool(), &run.env.name).await?;
    let idle = run.idle;
    if run.env.active == Some(idle) {
        return Err(Error::DeploymentFailed(format!(
            "refusing to touch {idle}: it is the active slot"
        )));
    }
    let approvals = if run.release.is_some() {
        "; the release's approvals still hold"
    } else {
        ""
    };
    let message = format!(
        "router answers (generation {}); {idle} is the idle slot{approvals}",
        routed.generation
    );
    run.set_routed(routed);
    Ok(Done::Succeeded(message))
}
