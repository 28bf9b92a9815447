//! An environment's checklist template and approval settings (admins).

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::checklists::{self, ApprovalSettings};
use crate::engine::Engine;
use crate::environments::{self};
use crate::error::{Error, Result};
use crate::rbac::Action;
use model::TemplateItem;

impl Engine {
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
                return Err(Error::invalid(
                    "upstream",
                    "an environment cannot be its own upstream",
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
}
