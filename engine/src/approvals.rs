//! The approval rules: requesting releases, signing their checklists, and
//! deciding whether a release may be deployed.
//!
//! Anchors: GitHub environments (required reviewers, no self-review, expiry),
//! OWASP transaction authorization (a signature covers exactly what the
//! signer saw: editing voids it; re-checked when the deploy executes).

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::checklists::{self, ApprovalSettings};
use crate::deployments;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{Error, Result};
use crate::migration_check::{self, Verdict};
use crate::rbac::{self, Action};
use crate::releases::{self, NewRelease, NewSignoff, Release, ReleaseItem, Signoff};
use crate::users::User;
use crate::version::validate_version;
use chrono::{DateTime, Utc};
use model::{
    AutoCheck, ChecklistItemView, ItemState, ReleaseRequest, ReleaseStatus, ReleaseSummary,
    ReleaseView, Role, SignoffView, SlotColor, SlotState, TemplateItem,
};
use std::time::Duration;

const MAX_NOTES: usize = 10_000;
const MAX_SQL: usize = 100_000;
const MAX_SIGN_NOTE: usize = 2_000;
/// A backup command that hangs must not hang the release page.
const BACKUP_COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// One item evaluated.
struct Evaluated {
    item: ReleaseItem,
    state: ItemState,
    summary: String,
    evidence: Vec<String>,
    signoff: Option<Signoff>,
}

/// Where a release stands.
pub struct Readiness {
    items: Vec<Evaluated>,
    pub blockers: Vec<String>,
}

impl Readiness {
    pub fn deployable(&self) -> bool {
        self.blockers.is_empty()
    }
}

/// When evaluation runs. Inside the deploy worker the deployment itself holds
/// the environment's lock, so "a deployment is running" is not a blocker.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    Review,
    Execution,
}

fn check_len(what: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::InvalidInput(format!(
            "{what} is limited to {max} bytes"
        )));
    }
    Ok(())
}

fn user_of(actor: &Actor) -> Result<&User> {
    actor
        .as_user()
        .ok_or_else(|| Error::Refused("only a signed-in person can do this, not the system".into()))
}

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
        check_len("notes", &req.notes, MAX_NOTES)?;
        check_len("migration SQL", &req.migration_sql, MAX_SQL)?;
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
            return Err(Error::Refused(format!(
                "only {} (who requested it) or an admin may edit release #{release_id}",
                release.requested_by_name
            )));
        }
        check_len("notes", notes, MAX_NOTES)?;
        check_len("migration SQL", migration_sql, MAX_SQL)?;
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
            return Err(Error::Refused(format!(
                "only {} (who requested it) or an admin may cancel release #{release_id}",
                release.requested_by_name
            )));
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::InvalidInput(
                "say why the release is cancelled".into(),
            ));
        }
        check_len("reason", reason, MAX_SIGN_NOTE)?;
        releases::cancel(self.pool(), release_id, seen_revision).await?;
        let mut ev = actor.event("release.cancel", Outcome::Ok);
        ev.environment = Some(release.environment.clone());
        ev.target = Some(format!("release #{release_id}"));
        ev.reason = Some(reason.to_string());
        self.audit(ev).await?;
        self.release(actor, release_id).await
    }

    /// Signs one manual item of a release for the revision the signer saw.
    pub async fn sign_item(
        &self,
        actor: &Actor,
        release_id: i64,
        item_id: i64,
        seen_revision: i64,
        note: &str,
    ) -> Result<ReleaseView> {
        // The role first: who may not act learns nothing of which ids exist.
        self.authorize(actor, Action::SignChecklist, None).await?;
        let release = releases::get(self.pool(), release_id).await?;
        self.authorize(actor, Action::SignChecklist, Some(&release.environment))
            .await?;
        let user = user_of(actor)?;
        // The item is looked up within this release: an id from another
        // release (or environment) is simply not found here.
        let item = releases::items(self.pool(), release_id)
            .await?
            .into_iter()
            .find(|i| i.id == item_id)
            .ok_or_else(|| Error::NotFound(format!("item #{item_id} of release #{release_id}")))?;
        let refused = self.sign_refusal(&release, &item, user, seen_revision);
        if let Some(why) = refused {
            let mut ev = actor.event("release.sign", Outcome::Denied);
            ev.environment = Some(release.environment.clone());
            ev.target = Some(format!("release #{release_id}"));
            ev.details = serde_json::json!({ "item": item_id, "title": item.item.title, "error": why.to_string() });
            self.audit(ev).await?;
            return Err(why);
        }
        let note = note.trim();
        check_len("note", note, MAX_SIGN_NOTE)?;
        let settings = checklists::settings(self.pool(), release.environment_id).await?;
        let expires_at = crate::now()
            + chrono::Duration::from_std(settings.signoff_ttl)
                .map_err(|e| Error::Internal(format!("sign-off validity: {e}")))?;
        let signed = releases::sign(
            self.pool(),
            &NewSignoff {
                release_id,
                release_item_id: item_id,
                revision: seen_revision,
                signed_by: user.id,
                note,
                expires_at,
            },
        )
        .await;
        if let Err(Error::AlreadyExists(_)) = signed {
            let by = releases::live_signoffs(self.pool(), release_id)
                .await?
                .into_iter()
                .find(|s| s.release_item_id == item_id)
                .map(|s| s.signed_by_name)
                .unwrap_or_else(|| "someone".into());
            return Err(Error::Conflict(format!(
                "{:?} is already signed by {by}",
                item.item.title
            )));
        }
        let signoff_id = signed?;
        let mut ev = actor.event("release.sign", Outcome::Ok);
        ev.environment = Some(release.environment.clone());
        ev.target = Some(format!("release #{release_id}"));
        ev.details = serde_json::json!({
            "item": item_id, "title": item.item.title, "signoff": signoff_id,
            "revision": seen_revision, "expires_at": expires_at, "note": note,
        });
        self.audit(ev).await?;
        self.release(actor, release_id).await
    }

    /// Why `user` may not sign `item` now, if they may not.
    fn sign_refusal(
        &self,
        release: &Release,
        item: &ReleaseItem,
        user: &User,
        seen_revision: i64,
    ) -> Option<Error> {
        if release.status != ReleaseStatus::Open {
            return Some(Error::InvalidInput(format!(
                "release #{} is {}",
                release.id,
                release.status.as_str()
            )));
        }
        if seen_revision != release.revision {
            return Some(releases::stale(release.id, seen_revision, release.revision));
        }
        if item.item.auto_check.is_some() {
            return Some(Error::InvalidInput(format!(
                "{:?} is verified by Switchyard, not signed",
                item.item.title
            )));
        }
        if user.id == release.requested_by {
            return Some(Error::Refused(format!(
                "you requested release #{}: someone else must sign its checklist (four-eyes)",
                release.id
            )));
        }
        if !user.role.covers(item.item.required_role) {
            return Some(Error::Refused(format!(
                "{:?} must be signed by a {} or higher; you are a {}",
                item.item.title, item.item.required_role, user.role
            )));
        }
        None
    }

    /// Withdraws a signature (its signer, or an admin), with a reason.
    pub async fn revoke_signoff(
        &self,
        actor: &Actor,
        release_id: i64,
        item_id: i64,
        reason: &str,
    ) -> Result<ReleaseView> {
        // The role first: who may not act learns nothing of which ids exist.
        self.authorize(actor, Action::SignChecklist, None).await?;
        let release = releases::get(self.pool(), release_id).await?;
        self.authorize(actor, Action::SignChecklist, Some(&release.environment))
            .await?;
        let user = user_of(actor)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::InvalidInput(
                "say why the signature is revoked".into(),
            ));
        }
        check_len("reason", reason, MAX_SIGN_NOTE)?;
        let signoff = releases::live_signoffs(self.pool(), release_id)
            .await?
            .into_iter()
            .find(|s| s.release_item_id == item_id)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "a signature on item #{item_id} of release #{release_id}"
                ))
            })?;
        if signoff.signed_by != user.id && user.role != Role::Admin {
            return Err(Error::Refused(format!(
                "only {} (who signed it) or an admin may revoke this signature",
                signoff.signed_by_name
            )));
        }
        if !releases::void_signoff(self.pool(), signoff.id, user.id, reason).await? {
            return Err(Error::Conflict(
                "the signature was already withdrawn".into(),
            ));
        }
        let mut ev = actor.event("release.revoke", Outcome::Ok);
        ev.environment = Some(release.environment.clone());
        ev.target = Some(format!("release #{release_id}"));
        ev.reason = Some(reason.to_string());
        ev.details = serde_json::json!({ "item": item_id, "signoff": signoff.id, "signed_by": signoff.signed_by_name });
        self.audit(ev).await?;
        self.release(actor, release_id).await
    }

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
        let open = release.status == ReleaseStatus::Open;
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
        for release in releases::list(self.pool(), env_id, 100).await? {
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

    pub async fn checklist_template(
        &self,
        actor: &Actor,
        env_name: &str,
    ) -> Result<Vec<TemplateItem>> {
        self.authorize(actor, Action::ViewEnvironments, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        checklists::template(self.pool(), env.id).await
    }

    /// Replaces an environment's checklist (admins). Existing releases keep theirs.
    pub async fn set_checklist_template(
        &self,
        actor: &Actor,
        env_name: &str,
        items: &[TemplateItem],
    ) -> Result<()> {
        self.authorize(actor, Action::ManageChecklists, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        checklists::replace_template(self.pool(), env.id, items).await?;
        let mut ev = actor.event("checklist.update", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.details = serde_json::json!({
            "items": items.iter().map(|i| serde_json::json!({
                "title": i.title, "role": i.required_role.as_str(),
                "auto": i.auto_check.map(|c| c.as_str()), "required": i.required,
            })).collect::<Vec<_>>(),
        });
        self.audit(ev).await
    }

    /// Appends one item to an environment's checklist (admins).
    pub async fn add_checklist_item(
        &self,
        actor: &Actor,
        env_name: &str,
        item: TemplateItem,
    ) -> Result<()> {
        self.authorize(actor, Action::ManageChecklists, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let mut items = checklists::template(self.pool(), env.id).await?;
        items.push(item);
        self.set_checklist_template(actor, env_name, &items).await
    }

    /// Removes one item from an environment's checklist (admins).
    pub async fn remove_checklist_item(
        &self,
        actor: &Actor,
        env_name: &str,
        item_id: i64,
    ) -> Result<()> {
        self.authorize(actor, Action::ManageChecklists, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let mut items = checklists::template(self.pool(), env.id).await?;
        let before = items.len();
        items.retain(|i| i.id != item_id);
        if items.len() == before {
            return Err(Error::NotFound(format!(
                "checklist item #{item_id} of {env_name}"
            )));
        }
        self.set_checklist_template(actor, env_name, &items).await
    }

    /// Replaces an environment's checklist with the default one (admins).
    pub async fn reset_checklist(&self, actor: &Actor, env_name: &str) -> Result<()> {
        // Before the lookup: a refused caller cannot probe environment names.
        self.authorize(actor, Action::ManageChecklists, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let settings = checklists::settings(self.pool(), env.id).await?;
        let items = checklists::default_template(
            settings.upstream.is_some(),
            settings.backup_command.is_some(),
        );
        self.set_checklist_template(actor, env_name, &items).await
    }

    /// Sets who a release must succeed in first, the backup command and how
    /// long sign-offs last (the command line and bootstrap; not the browser,
    /// since the backup command runs on the console's host).
    pub async fn set_approval_settings(
        &self,
        actor: &Actor,
        env_name: &str,
        settings: &ApprovalSettings,
    ) -> Result<()> {
        self.authorize(actor, Action::ManageChecklists, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        if let Some(up) = &settings.upstream {
            if up == &env.name {
                return Err(Error::InvalidInput(
                    "an environment cannot be its own upstream".into(),
                ));
            }
            environments::find(self.pool(), up).await?;
        }
        checklists::set_settings(self.pool(), env.id, settings).await?;
        let mut ev = actor.event("environment.approval_settings", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        // The command itself may carry credentials: only whether one is set.
        ev.details = serde_json::json!({
            "upstream": settings.upstream,
            "backup_command_set": settings.backup_command.is_some(),
            "signoff_ttl_secs": settings.signoff_ttl.as_secs(),
        });
        self.audit(ev).await
    }

    /// The release to deploy for `version` in a protected environment, or an
    /// error saying why there is none.
    pub(crate) async fn release_for(&self, env: &Environment, version: &str) -> Result<Release> {
        releases::latest_open(self.pool(), env.id, version)
            .await?
            .ok_or_else(|| {
                Error::NotApproved(format!(
                    "{} requires an approved release: request {version} and have its checklist signed",
                    env.name
                ))
            })
    }

    /// Fails with the blockers unless `release` (at `revision`) may be
    /// deployed right now.
    pub(crate) async fn ensure_deployable(
        &self,
        release_id: i64,
        revision: i64,
        moment: Moment,
    ) -> Result<Release> {
        let release = releases::get(self.pool(), release_id).await?;
        if release.revision != revision {
            return Err(releases::stale(release_id, revision, release.revision));
        }
        let readiness = self.readiness(&release, moment).await?;
        if !readiness.deployable() {
            return Err(Error::NotApproved(format!(
                "release #{release_id} ({}) is not approved: {}",
                release.version,
                readiness.blockers.join("; ")
            )));
        }
        Ok(release)
    }

    /// Evaluates every item of `release` now.
    pub(crate) async fn readiness(&self, release: &Release, moment: Moment) -> Result<Readiness> {
        let pool = self.pool();
        let items = releases::items(pool, release.id).await?;
        let signoffs = releases::live_signoffs(pool, release.id).await?;
        let settings = checklists::settings(pool, release.environment_id).await?;
        let env = environments::find(pool, &release.environment).await?;
        let now = crate::now();
        let mut evaluated = Vec::with_capacity(items.len());
        for item in items {
            let e = match item.item.auto_check {
                None => manual_state(item, &signoffs, release.revision, now),
                Some(check) => {
                    let (state, summary, evidence) = self
                        .auto_state(check, &item.item, release, &env, &settings, moment)
                        .await?;
                    Evaluated {
                        item,
                        state,
                        summary,
                        evidence,
                        signoff: None,
                    }
                }
            };
            evaluated.push(e);
        }
        let mut blockers: Vec<String> = evaluated
            .iter()
            .filter(|e| e.item.item.required && !e.state.satisfied())
            .map(|e| format!("{}: {}", e.item.item.title, e.summary))
            .collect();
        if release.status != ReleaseStatus::Open {
            blockers.insert(0, format!("the release is {}", release.status.as_str()));
        }
        Ok(Readiness {
            items: evaluated,
            blockers,
        })
    }

    async fn auto_state(
        &self,
        check: AutoCheck,
        item: &TemplateItem,
        release: &Release,
        env: &Environment,
        settings: &ApprovalSettings,
        moment: Moment,
    ) -> Result<(ItemState, String, Vec<String>)> {
        Ok(match check {
            AutoCheck::UpstreamSucceeded => match &settings.upstream {
                None => (
                    ItemState::NotVerified,
                    "no upstream environment is configured".into(),
                    vec![],
                ),
                Some(up) => {
                    match releases::succeeded_in(self.pool(), up, &release.version).await? {
                        Some((dep, by, at)) => (
                            ItemState::Verified,
                            format!("{} succeeded in {up}", release.version),
                            vec![format!(
                                "deployment #{dep} by {by}, finished {}",
                                at.to_rfc3339()
                            )],
                        ),
                        None => (
                            ItemState::Failed,
                            format!(
                                "{} has not been deployed successfully to {up}",
                                release.version
                            ),
                            vec![],
                        ),
                    }
                }
            },
            AutoCheck::MigrationsAdditive => match migration_check::check(&release.migration_sql) {
                Verdict::NoMigrations => (ItemState::Verified, "no migrations".into(), vec![]),
                Verdict::Additive { statements } => (
                    ItemState::Verified,
                    format!("{statements} statement(s), all additive"),
                    vec![],
                ),
                Verdict::Breaking(findings) => (
                    ItemState::Failed,
                    format!(
                        "{} statement(s) would break the live version",
                        findings.len()
                    ),
                    findings
                        .into_iter()
                        .map(|f| format!("{} — {}", f.statement, f.why))
                        .collect(),
                ),
                Verdict::Unreadable(why) => (
                    ItemState::NotVerified,
                    "the SQL could not be parsed, so it is not known to be additive".into(),
                    vec![why],
                ),
            },
            AutoCheck::IdleSlotHealthy => self.idle_slot_state(release, env, moment).await?,
            AutoCheck::BackupRecent => {
                let hours = item.max_age_hours.unwrap_or(24);
                match &settings.backup_command {
                    None => (
                        ItemState::NotVerified,
                        "no backup command is configured for this environment".into(),
                        vec![],
                    ),
                    Some(cmd) => run_backup_check(cmd, hours).await,
                }
            }
        })
    }

    async fn idle_slot_state(
        &self,
        release: &Release,
        env: &Environment,
        moment: Moment,
    ) -> Result<(ItemState, String, Vec<String>)> {
        let idle = env.active.map(SlotColor::other).unwrap_or(SlotColor::Blue);
        if moment == Moment::Review {
            if let Some((by, since)) = deployments::in_progress(self.pool(), env.id).await? {
                return Ok((
                    ItemState::Failed,
                    format!(
                        "a deployment by {by} is running since {}",
                        since.to_rfc3339()
                    ),
                    vec![],
                ));
            }
        }
        let slot = environments::slot(self.pool(), env.id, idle).await?;
        if matches!(slot.state, SlotState::Draining | SlotState::Starting) {
            return Ok((
                ItemState::Failed,
                format!("the idle slot ({idle}) is {}", slot.state),
                vec![],
            ));
        }
        let rt = self.runtime_for(env)?;
        let spec = Self::spec(env, idle, &release.version);
        Ok(match rt.check(&spec).await {
            Ok(()) => (
                ItemState::Verified,
                format!("{idle} is free and the artifact is available"),
                vec![
                    format!("{idle} is {}", slot.state),
                    release.artifact.clone(),
                ],
            ),
            Err(e) => (
                ItemState::Failed,
                format!("the artifact is not available: {e}"),
                vec![],
            ),
        })
    }
}

fn manual_state(
    item: ReleaseItem,
    signoffs: &[Signoff],
    revision: i64,
    now: DateTime<Utc>,
) -> Evaluated {
    let signoff = signoffs
        .iter()
        .find(|s| s.release_item_id == item.id)
        .cloned();
    let (state, summary) = match &signoff {
        Some(s) if s.valid(revision, now) => {
            (ItemState::Signed, format!("signed by {}", s.signed_by_name))
        }
        Some(s) if s.expires_at <= now => (
            ItemState::Pending,
            format!(
                "the signature by {} expired at {}",
                s.signed_by_name,
                s.expires_at.to_rfc3339()
            ),
        ),
        _ => (
            ItemState::Pending,
            format!("waiting for a {} to sign", item.item.required_role),
        ),
    };
    Evaluated {
        // An expired signature is shown (with its summary) but does not count.
        signoff: signoff.filter(|s| s.valid(revision, now)),
        item,
        state,
        summary,
        evidence: vec![],
    }
}

/// Runs the operator's backup command. Only its exit status is reported: its
/// output may name hosts or credentials.
async fn run_backup_check(cmd: &str, max_age_hours: i64) -> (ItemState, String, Vec<String>) {
    let argv = match shell_words::split(cmd) {
        Ok(v) if !v.is_empty() => v,
        _ => {
            return (
                ItemState::NotVerified,
                "the backup command is not a valid command line".into(),
                vec![],
            )
        }
    };
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env("SWITCHYARD_BACKUP_MAX_AGE_HOURS", max_age_hours.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let limit = format!("newer than {max_age_hours} h");
    match tokio::time::timeout(BACKUP_COMMAND_TIMEOUT, command.status()).await {
        Ok(Ok(status)) if status.success() => (
            ItemState::Verified,
            format!("a backup {limit} exists"),
            vec![format!("{} exited 0", argv[0])],
        ),
        Ok(Ok(status)) => (
            ItemState::Failed,
            format!("no backup {limit}"),
            vec![format!("{} exited with {status}", argv[0])],
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "backup command could not be started");
            (
                ItemState::NotVerified,
                "the backup command could not be started".into(),
                vec![],
            )
        }
        Err(_) => (
            ItemState::NotVerified,
            format!(
                "the backup command did not finish within {} s",
                BACKUP_COMMAND_TIMEOUT.as_secs()
            ),
            vec![],
        ),
    }
}
