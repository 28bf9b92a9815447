//! A release with its evaluated checklist, and the list of releases, as
//! their pages show them.

use super::Moment;
use crate::actor::Actor;
use crate::engine::Engine;
use crate::environments::{self};
use crate::error::Result;
use crate::rbac::{self, Action};
use crate::releases::{self, ReleaseItem};
use model::{ChecklistItemView, ReleaseStatus, ReleaseSummary, ReleaseView, Role, SignoffView};

impl Engine {
    /// A release with its checklist evaluated now, and what `actor` may do.
    pub async fn release(&self, actor: &Actor, release_id: i64) -> Result<ReleaseView> {
        // The role first: who may not act learns nothing of which ids exist.
        self.authorize(actor, Action::ViewEnvironments, None)
            .await?;
        let release = releases::get(self.pool(), release_id).await?;
        self.authorize(actor, Action::ViewEnvironments, Some(&release.environment))
            .await?;
        let readiness = self.readiness(&release, Moment::Review).await?;
        let viewer = actor.as_user();
        let deployable = readiness.deployable();
        let items = readiness
            .items
            .into_iter()
            .map(|e| {
                let can_sign = viewer.is_some_and(|u| {
                    rbac::allows(u.role, Action::SignChecklist)
                        && !e.state.satisfied()
                        && self
                            .sign_refusal(&release, &e.item, u, release.revision)
                            .is_none()
                });
                let can_revoke = match (viewer, &e.signoff) {
                    (Some(u), Some(s)) => {
                        release.status == ReleaseStatus::Open
                            && rbac::allows(u.role, Action::SignChecklist)
                            && (s.signed_by == u.id || u.role == Role::Admin)
                    }
                    _ => false,
                };
                ChecklistItemView {
                    id: e.item.id,
                    title: e.item.item.title,
                    description: e.item.item.description,
                    required_role: e.item.item.required_role,
                    auto_check: e.item.item.auto_check,
                    required: e.item.item.required,
                    state: e.state,
                    summary: e.summary,
                    evidence: e.evidence,
                    signoff: e.signoff.map(|s| SignoffView {
                        id: s.id,
                        signed_by: s.signed_by_name,
                        note: s.note,
                        signed_at: s.signed_at.to_rfc3339(),
                        expires_at: s.expires_at.to_rfc3339(),
                    }),
                    can_sign,
                    can_revoke,
                }
            })
            .collect();
        // A release that went live is read-only (`releases::deployed_as`).
        let open = release.status == ReleaseStatus::Open
            && releases::deployed_as(self.pool(), release.id)
                .await?
                .is_none();
        Ok(ReleaseView {
            id: release.id,
            environment: release.environment.clone(),
            version: release.version.clone(),
            artifact: release.artifact.clone(),
            notes: release.notes.clone(),
            migration_sql: release.migration_sql.clone(),
            requested_by: release.requested_by_name.clone(),
            revision: release.revision,
            status: release.status,
            created_at: release.created_at.to_rfc3339(),
            updated_at: release.updated_at.to_rfc3339(),
            items,
            deployable,
            blockers: readiness.blockers,
            deployments: releases::deployments(self.pool(), release.id).await?,
            can_edit: open
                && viewer.is_some_and(|u| {
                    rbac::allows(u.role, Action::RequestRelease)
                        && (u.id == release.requested_by || u.role == Role::Admin)
                }),
            can_deploy: deployable && viewer.is_some_and(|u| rbac::allows(u.role, Action::Deploy)),
        })
    }

    /// Releases, newest first, optionally of one environment.
    pub async fn releases(
        &self,
        actor: &Actor,
        env_name: Option<&str>,
    ) -> Result<Vec<ReleaseSummary>> {
        self.authorize(actor, Action::ViewEnvironments, env_name)
            .await?;
        let env_id = match env_name {
            Some(name) => Some(environments::find(self.pool(), name).await?.id),
            None => None,
        };
        let mut out = Vec::new();
        let reached = releases::list(self.pool(), env_id, 100)
            .await?
            .into_iter()
            .filter(|r| actor.reaches(&r.environment));
        for release in reached {
            // The list shows signatures only; automatic checks (which may run
            // a backup command) are evaluated on the release's own page.
            let items = releases::items(self.pool(), release.id).await?;
            let signoffs = releases::live_signoffs(self.pool(), release.id).await?;
            let now = crate::now();
            let required: Vec<&ReleaseItem> = items.iter().filter(|i| i.item.required).collect();
            let satisfied = required
                .iter()
                .filter(|i| {
                    i.item.auto_check.is_none()
                        && signoffs
                            .iter()
                            .any(|s| s.release_item_id == i.id && s.valid(release.revision, now))
                })
                .count();
            let manual_required = required
                .iter()
                .filter(|i| i.item.auto_check.is_none())
                .count();
            let last_deployment = releases::deployments(self.pool(), release.id)
                .await?
                .into_iter()
                .next()
                .map(|(_, status)| status);
            out.push(ReleaseSummary {
                id: release.id,
                environment: release.environment,
                version: release.version,
                requested_by: release.requested_by_name,
                created_at: release.created_at.to_rfc3339(),
                status: release.status,
                signed: satisfied,
                to_sign: manual_required,
                signatures_complete: release.status == ReleaseStatus::Open
                    && satisfied == manual_required,
                last_deployment,
            });
        }
        Ok(out)
    }
}
