//! Asking for a release, changing it (which voids its signatures) and
//! cancelling it.

use super::{check_len, user_of, MAX_SIGN_NOTE};
use crate::actor::Actor;
use crate::audit::Outcome;
use crate::checklists::{self};
use crate::engine::Engine;
use crate::environments::{self};
use crate::error::{Error, Result};
use crate::rbac::Action;
use crate::releases::{self, NewRelease};
use crate::version::validate_version;
use model::{ReleaseRequest, ReleaseView, Role, SlotColor};

const MAX_NOTES: usize = 10_000;
const MAX_SQL: usize = 100_000;

impl Engine {
    /// A deployer, approver or admin asks for `version` to go to an
    /// environment. The environment's checklist is copied onto the release.
    pub async fn request_release(
        &self,
        actor: &Actor,
        req: &ReleaseRequest,
    ) -> Result<ReleaseView> {
        let env_name = req.environment.trim();
        self.authorize(actor, Action::RequestRelease, Some(env_name))
            .await?;
        let user = user_of(actor)?;
        let version = req.version.trim();
        validate_version(version)?;
        check_len("notes", "notes", &req.notes, MAX_NOTES)?;
        check_len(
            "migration_sql",
            "migration SQL",
            &req.migration_sql,
            MAX_SQL,
        )?;
        let env = environments::find(self.pool(), env_name).await?;
        let artifact = Self::spec(&env, SlotColor::Blue, version).artifact;
        let template = checklists::template(self.pool(), env.id).await?;
        let id = releases::create(
            self.pool(),
            &NewRelease {
                environment_id: env.id,
                version,
                artifact: &artifact,
                notes: req.notes.trim(),
                migration_sql: &req.migration_sql,
                requested_by: user.id,
            },
            &template,
        )
        .await?;
        let mut ev = actor.event("release.request", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.target = Some(format!("release #{id}"));
        ev.details = serde_json::json!({
            "release": id, "version": version, "items": template.len(),
            "has_migrations": !req.migration_sql.trim().is_empty(),
        });
        self.audit(ev).await?;
        self.release(actor, id).await
    }

    /// Promotion: asks for the version a succeeded deploy shipped to go on
    /// to `target`, an environment whose upstream is the deploy's. The new
    /// release carries the shipped release's notes and migration SQL (when
    /// the deploy shipped one) and says where it comes from; its checklist's
    /// "succeeded upstream" item is then verified from history like any
    /// other.
    pub async fn promote(
        &self,
        actor: &Actor,
        deployment_id: i64,
        target: &str,
    ) -> Result<ReleaseView> {
        let target = target.trim();
        self.authorize(actor, Action::RequestRelease, Some(target))
            .await?;
        let d = crate::deployments::get(self.pool(), deployment_id).await?;
        let version = match (d.kind, d.status, &d.to_version) {
            (model::DeploymentKind::Deploy, model::DeploymentStatus::Succeeded, Some(v)) => v,
            _ => {
                return Err(Error::Conflict(format!(
                    "deployment #{deployment_id} is not a succeeded deploy: only those are promoted"
                )))
            }
        };
        let env = environments::find(self.pool(), target).await?;
        let approval = checklists::settings(self.pool(), env.id).await?;
        if approval.upstream.as_deref() != Some(d.environment.as_str()) {
            return Err(Error::invalid(
                "environment",
                format!(
                    "{target} does not take releases from {} (its upstream is {})",
                    d.environment,
                    approval.upstream.as_deref().unwrap_or("none")
                ),
            ));
        }
        let shipped = match crate::deployments::release_of(self.pool(), deployment_id).await? {
            Some(id) => Some(releases::get(self.pool(), id).await?),
            None => None,
        };
        let mut notes = format!(
            "Promoted from {} (deployment #{deployment_id}).",
            d.environment
        );
        if let Some(r) = shipped.as_ref().filter(|r| !r.notes.trim().is_empty()) {
            notes.push_str("\n\n");
            notes.push_str(r.notes.trim());
        }
        self.request_release(
            actor,
            &model::ReleaseRequest {
                environment: target.to_string(),
                version: version.clone(),
                notes,
                migration_sql: shipped.map(|r| r.migration_sql).unwrap_or_default(),
            },
        )
        .await
    }

    /// Changes a release's notes and SQL. Every signature is voided: signers
    /// approved what they saw, not what it became.
    pub async fn edit_release(
        &self,
        actor: &Actor,
        release_id: i64,
        seen_revision: i64,
        notes: &str,
        migration_sql: &str,
    ) -> Result<ReleaseView> {
        // The role first: who may not act learns nothing of which ids exist.
        self.authorize(actor, Action::RequestRelease, None).await?;
        let release = releases::get(self.pool(), release_id).await?;
        self.authorize(actor, Action::RequestRelease, Some(&release.environment))
            .await?;
        let user = user_of(actor)?;
        if user.id != release.requested_by && user.role != Role::Admin {
            return Err(Error::RuleForbids(format!(
                "only {} (who requested it) or an admin may edit release #{release_id}",
                release.requested_by_name
            )));
        }
        if let Some(deployment) = releases::deployed_as(self.pool(), release_id).await? {
            return Err(releases::went_live(release_id, deployment));
        }
        check_len("notes", "notes", notes, MAX_NOTES)?;
        check_len("migration_sql", "migration SQL", migration_sql, MAX_SQL)?;
        let (revision, voided) = releases::edit(
            self.pool(),
            release_id,
            seen_revision,
            user.id,
            notes.trim(),
            migration_sql,
        )
        .await?;
        let mut ev = actor.event("release.edit", Outcome::Ok);
        ev.environment = Some(release.environment.clone());
        ev.target = Some(format!("release #{release_id}"));
        ev.details = serde_json::json!({ "revision": revision, "signatures_voided": voided });
        self.audit(ev).await?;
        self.release(actor, release_id).await
    }

    pub async fn cancel_release(
        &self,
        actor: &Actor,
        release_id: i64,
        seen_revision: i64,
        reason: &str,
    ) -> Result<ReleaseView> {
        // The role first: who may not act learns nothing of which ids exist.
        self.authorize(actor, Action::RequestRelease, None).await?;
        let release = releases::get(self.pool(), release_id).await?;
        self.authorize(actor, Action::RequestRelease, Some(&release.environment))
            .await?;
        let user = user_of(actor)?;
        if user.id != release.requested_by && user.role != Role::Admin {
            return Err(Error::RuleForbids(format!(
                "only {} (who requested it) or an admin may cancel release #{release_id}",
                release.requested_by_name
            )));
        }
        if let Some(deployment) = releases::deployed_as(self.pool(), release_id).await? {
            return Err(releases::went_live(release_id, deployment));
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::invalid("reason", "say why the release is cancelled"));
        }
        check_len("reason", "reason", reason, MAX_SIGN_NOTE)?;
        releases::cancel(self.pool(), release_id, seen_revision).await?;
        let mut ev = actor.event("release.cancel", Outcome::Ok);
        ev.environment = Some(release.environment.clone());
        ev.target = Some(format!("release #{release_id}"));
        ev.reason = Some(reason.to_string());
        self.audit(ev).await?;
        self.release(actor, release_id).await
    }
}
