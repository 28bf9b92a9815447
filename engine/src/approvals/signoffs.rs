//! Signing a release's checklist items and revoking signatures: who may
//! sign what, never the requester, and only the revision they saw.

use super::{check_len, user_of, MAX_SIGN_NOTE};
use crate::actor::Actor;
use crate::audit::Outcome;
use crate::checklists::{self};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::rbac::Action;
use crate::releases::{self, NewSignoff, Release, ReleaseItem};
use crate::users::User;
use model::{ReleaseStatus, ReleaseView, Role};

impl Engine {
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
        check_len("note", "note", note, MAX_SIGN_NOTE)?;
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
    pub(super) fn sign_refusal(
        &self,
        release: &Release,
        item: &ReleaseItem,
        user: &User,
        seen_revision: i64,
    ) -> Option<Error> {
        if release.status != ReleaseStatus::Open {
            return Some(Error::Conflict(format!(
                "release #{} is {}",
                release.id,
                release.status.as_str()
            )));
        }
        if seen_revision != release.revision {
            return Some(releases::stale(release.id, seen_revision, release.revision));
        }
        if item.item.auto_check.is_some() {
            return Some(Error::invalid(
                "item",
                format!(
                    "{:?} is verified by Switchyard, not signed",
                    item.item.title
                ),
            ));
        }
        if user.id == release.requested_by {
            return Some(Error::RuleForbids(format!(
                "you requested release #{}: someone else must sign its checklist (four-eyes)",
                release.id
            )));
        }
        if !user.role.covers(item.item.required_role) {
            return Some(Error::RuleForbids(format!(
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
            return Err(Error::invalid("reason", "say why the signature is revoked"));
        }
        check_len("reason", "reason", reason, MAX_SIGN_NOTE)?;
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
            return Err(Error::RuleForbids(format!(
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
}
