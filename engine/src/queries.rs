//! The read side: what the console's pages show, each read authorized first.
//! Nothing here changes anything.

use crate::actor::Actor;
use crate::deployments;
use crate::engine::Engine;
use crate::environments;
use crate::error::Result;
use crate::rbac::Action;
use crate::steps;
use model::{DeploymentDetail, DeploymentView};

/// Whether `actor` may read the audit entries `filter` selects: anyone
/// signed in may, but a token limited to some environments reads only
/// theirs, so it must name one.
pub(crate) fn may_read_audit(actor: &Actor, filter: &model::AuditFilter) -> Result<()> {
    if actor.is_limited() && filter.environment.is_none() {
        return Err(crate::Error::invalid(
            "environment",
            "this token is limited to some environments: name one of them",
        ));
    }
    actor.may_on(Action::ViewAudit, filter.environment.as_deref())
}

impl Engine {
    pub async fn audit_search(
        &self,
        actor: &Actor,
        filter: &model::AuditFilter,
        limit: i64,
    ) -> Result<model::AuditPage> {
        may_read_audit(actor, filter)?;
        crate::audit::search(self.pool(), filter, limit).await
    }

    pub async fn environment(&self, actor: &Actor, name: &str) -> Result<model::EnvironmentView> {
        actor.may_on(Action::ViewEnvironments, Some(name))?;
        let env = environments::find(self.pool(), name).await?;
        let mut view = environments::view(self.pool(), &env).await?;
        // The dashboard says why a deploy would be refused before anyone tries.
        view.frozen = self.freeze_refusal(&env).await?.map(|e| e.to_string());
        Ok(view)
    }

    pub async fn environment_names(&self, actor: &Actor) -> Result<Vec<String>> {
        actor.may(Action::ViewEnvironments)?;
        Ok(environments::list(self.pool())
            .await?
            .into_iter()
            .map(|e| e.name)
            .filter(|name| actor.reaches(name))
            .collect())
    }

    pub async fn history(
        &self,
        actor: &Actor,
        env_name: &str,
        limit: i64,
    ) -> Result<Vec<DeploymentView>> {
        actor.may_on(Action::ViewEnvironments, Some(env_name))?;
        let env = environments::find(self.pool(), env_name).await?;
        deployments::history(self.pool(), env.id, limit.clamp(1, 500)).await
    }

    /// One deployment with its steps, for its page. Whoever may read the
    /// history may read this.
    pub async fn deployment(&self, actor: &Actor, id: i64) -> Result<DeploymentDetail> {
        actor.may(Action::ViewEnvironments)?;
        let deployment = deployments::get(self.pool(), id).await?;
        // Another environment's deployment is "not found" to a limited
        // token, as if it did not exist.
        if !actor.reaches(&deployment.environment) {
            return Err(crate::Error::NotFound(format!("deployment #{id}")));
        }
        let steps = steps::list(self.pool(), id).await?;
        let elapsed_ms = match deployment.duration_ms {
            Some(ms) => ms,
            None => chrono::DateTime::parse_from_rfc3339(&deployment.started_at)
                .map(|t| (crate::now() - t.with_timezone(&chrono::Utc)).num_milliseconds())
                .unwrap_or(0)
                .max(0),
        };
        let promote_to = if deployment.kind == model::DeploymentKind::Deploy
            && deployment.status == model::DeploymentStatus::Succeeded
        {
            crate::environments::downstream_of(self.pool(), &deployment.environment).await?
        } else {
            Vec::new()
        };
        Ok(DeploymentDetail {
            deployment,
            steps,
            elapsed_ms,
            watch: crate::watch::view(self.pool(), id).await?,
            promote_to,
            hold: self.hold_view(id).await?,
        })
    }

    /// Both slots' traffic over the last five minutes in 10-second points,
    /// for the dashboard. The router being unreachable is an answer here
    /// (shown in the panel), not an error: the rest of the page still works.
    pub async fn traffic(&self, actor: &Actor, env_name: &str) -> Result<model::TrafficView> {
        actor.may_on(Action::ViewEnvironments, Some(env_name))?;
        let env = environments::find(self.pool(), env_name).await?;
        let router = self.router_for(&env)?;
        Ok(match router.traffic_series(300, 10).await {
            Ok(Some(mut series)) => {
                series.switched_ago_secs = crate::steps::last_switch(self.pool(), env.id)
                    .await?
                    .map(|at| (crate::now() - at).num_seconds().max(0) as u64)
                    .filter(|ago| *ago <= series.window_secs);
                model::TrafficView {
                    series: Some(series),
                    unavailable: None,
                }
            }
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
}
