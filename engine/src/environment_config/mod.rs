//! Environments as admins create, edit, archive and declare them: the
//! Environments page, `switchyard env create|edit|archive`, and the file
//! `switchyard apply` reads and `switchyard export` writes. Every path goes
//! through the same check ([`convert::check`]) and the same all-or-nothing
//! write ([`Engine::write_configs`]); every change is audited with what
//! changed, field by field (secrets by name only, the backup command only
//! as "set": it may carry a credential).

mod artifact;
mod convert;
mod diff;
mod docker;
pub mod file;

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::checklists;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{Error, Result};
use crate::rbac::Action;
use crate::router::ProxyProcess;
use crate::slot_env;
use convert::Checked;
use model::{
    ArchivedEnvironment, ChecklistSource, EnvironmentConfig, EnvironmentPlan, FieldChange,
    PlanAction, RouterKind,
};

/// One environment of a write: its checked config, and the live one it
/// replaces (`None`: created).
struct Write {
    checked: Checked,
    existing: Option<(Environment, EnvironmentConfig)>,
    changes: Vec<FieldChange>,
}

impl Engine {
    /// An environment written down (admins: variables' values are
    /// configuration, not for every viewer).
    pub async fn environment_config(
        &self,
        actor: &Actor,
        env_name: &str,
    ) -> Result<EnvironmentConfig> {
        self.authorize(actor, Action::ManageEnvironments, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        self.config_of(&env).await
    }

    /// Every live environment written down, by name (`switchyard export`).
    pub async fn environment_configs(&self, actor: &Actor) -> Result<Vec<EnvironmentConfig>> {
        self.authorize(actor, Action::ManageEnvironments, None)
            .await?;
        let mut out = Vec::new();
        for env in environments::list(self.pool()).await? {
            out.push(self.config_of(&env).await?);
        }
        Ok(out)
    }

    pub async fn archived_environments(&self, actor: &Actor) -> Result<Vec<ArchivedEnvironment>> {
        self.authorize(actor, Action::ViewEnvironments, None)
            .await?;
        environments::archived(self.pool()).await
    }

    async fn config_of(&self, env: &Environment) -> Result<EnvironmentConfig> {
        let approval = checklists::settings(self.pool(), env.id).await?;
        let vars = slot_env::view(self.pool(), env.id).await?;
        Ok(convert::to_config(env, &approval, &vars))
    }

    /// Creates an environment from its config, with a checklist from
    /// `checklist`. Audited as `environment.create` with every field.
    pub async fn create_environment(
        &self,
        actor: &Actor,
        config: &EnvironmentConfig,
        checklist: &ChecklistSource,
    ) -> Result<EnvironmentConfig> {
        self.authorize(actor, Action::ManageEnvironments, Some(&config.name))
            .await?;
        if environments::find(self.pool(), &config.name).await.is_ok() {
            return Err(Error::AlreadyExists(format!(
                "environment {:?}",
                config.name
            )));
        }
        let plans = self
            .apply_with(actor, std::slice::from_ref(config), checklist, true)
            .await?;
        debug_assert_eq!(plans.first().map(|p| p.action), Some(PlanAction::Create));
        self.environment_config(actor, &config.name).await
    }

    /// Replaces an existing environment's settings with `config` (found by
    /// its name, which never changes). What changed, field by field; nothing
    /// when nothing did.
    pub async fn edit_environment(
        &self,
        actor: &Actor,
        config: &EnvironmentConfig,
    ) -> Result<Vec<FieldChange>> {
        self.authorize(actor, Action::ManageEnvironments, Some(&config.name))
            .await?;
        environments::find(self.pool(), &config.name).await?;
        let plans = self
            .apply_with(
                actor,
                std::slice::from_ref(config),
                &ChecklistSource::Empty,
                true,
            )
            .await?;
        Ok(plans
            .into_iter()
            .next()
            .map(|p| p.changes)
            .unwrap_or_default())
    }

    /// What applying `configs` would do, environment by environment, without
    /// changing anything. Refuses what the apply would refuse.
    pub async fn plan_apply(
        &self,
        actor: &Actor,
        configs: &[EnvironmentConfig],
    ) -> Result<Vec<EnvironmentPlan>> {
        self.authorize(actor, Action::ManageEnvironments, None)
            .await?;
        self.apply_with(actor, configs, &ChecklistSource::Default, false)
            .await
    }

    /// Applies `configs` all-or-nothing: every environment is checked first,
    /// then all are written in one transaction. New environments get the
    /// default checklist. Environments not in `configs` are left as they are.
    pub async fn apply_environments(
        &self,
        actor: &Actor,
        configs: &[EnvironmentConfig],
    ) -> Result<Vec<EnvironmentPlan>> {
        self.authorize(actor, Action::ManageEnvironments, None)
            .await?;
        self.apply_with(actor, configs, &ChecklistSource::Default, true)
            .await
    }

    async fn apply_with(
        &self,
        actor: &Actor,
        configs: &[EnvironmentConfig],
        checklist: &ChecklistSource,
        write: bool,
    ) -> Result<Vec<EnvironmentPlan>> {
        let live = environments::list(self.pool()).await?;
        let mut writes = Vec::new();
        for config in configs {
            let checked = convert::check(config).map_err(|e| in_environment(e, &config.name))?;
            let existing = match live.iter().find(|e| e.name == config.name) {
                Some(env) => Some((env.clone(), self.config_of(env).await?)),
                None => None,
            };
            let changes = match &existing {
                Some((_, before)) => diff::changes(before, config),
                None => diff::additions(config),
            };
            writes.push(Write {
                checked,
                existing,
                changes,
            });
        }
        self.check_against(&live, &writes)?;
        let proxies = self.proxies_to_start(&writes).await?;
        let mut plans: Vec<EnvironmentPlan> = writes
            .iter()
            .map(|w| EnvironmentPlan {
                name: w.checked.new.name.clone(),
                action: match (&w.existing, w.changes.is_empty()) {
                    (None, _) => PlanAction::Create,
                    (Some(_), true) => PlanAction::Unchanged,
                    (Some(_), false) => PlanAction::Change,
                },
                changes: w.changes.clone(),
            })
            .collect();
        if write {
            let source = match checklist {
                ChecklistSource::Default => None,
                other => Some(other),
            };
            self.write_configs(actor, &writes, source).await?;
            self.start_written_proxies(&proxies).await;
        } else {
            for env in live
                .iter()
                .filter(|e| !configs.iter().any(|c| c.name == e.name))
            {
                plans.push(EnvironmentPlan {
                    name: env.name.clone(),
                    action: PlanAction::NotInFile,
                    changes: Vec::new(),
                });
            }
        }
        Ok(plans)
    }

    /// What only the store can tell: names and addresses taken, upstreams
    /// that exist, router changes under live traffic.
    fn check_against(&self, live: &[Environment], writes: &[Write]) -> Result<()> {
        for (i, w) in writes.iter().enumerate() {
            let new = &w.checked.new;
            let others = writes.iter().enumerate().filter(|(j, _)| *j != i);
            for (_, o) in others {
                if o.checked.new.name == new.name {
                    return Err(Error::invalid(
                        "name",
                        format!("environment {:?} is declared twice", new.name),
                    ));
                }
                if o.checked.new.router == RouterKind::Builtin
                    && new.router == RouterKind::Builtin
                    && same_url(&o.checked.new.proxy_admin_url, &new.proxy_admin_url)
                {
                    return Err(Error::invalid(
                        "admin_url",
                        format!(
                            "{} and {} both use switchyard-proxy at {}: each environment needs its own proxy",
                            o.checked.new.name, new.name, new.proxy_admin_url
                        ),
                    ));
                }
                if o.checked.new.app_url == new.app_url {
                    return Err(Error::invalid(
                        "app_url",
                        format!(
                            "{} and {} both claim {}: each environment has its own address",
                            o.checked.new.name, new.name, new.app_url
                        ),
                    ));
                }
            }
            for env in live.iter().filter(|e| e.name != new.name) {
                let declared_here = writes.iter().any(|o| o.checked.new.name == env.name);
                if env.app_url == new.app_url && !declared_here {
                    return Err(Error::invalid(
                        "app_url",
                        format!(
                            "{} is already environment {}'s address (names never change: to rename, \
                             create the new environment at another address, then archive {})",
                            new.app_url, env.name, env.name
                        ),
                    ));
                }
                // One switchyard-proxy routes one environment: a second
                // one on it would overwrite the first's routes at its
                // first deploy.
                let same_proxy = new.router == RouterKind::Builtin
                    && env.router == RouterKind::Builtin
                    && same_url(&env.proxy_admin_url, &new.proxy_admin_url);
                if same_proxy && !declared_here {
                    return Err(in_environment(
                        Error::invalid(
                            "admin_url",
                            format!(
                                "switchyard-proxy at {} already switches environment {}: \
                                 each environment needs its own proxy",
                                new.proxy_admin_url, env.name
                            ),
                        ),
                        &new.name,
                    ));
                }
                if new.preview_listen.is_some() && env.preview_listen == new.preview_listen {
                    return Err(Error::invalid(
                        "preview_listen",
                        format!(
                            "{} is already environment {}'s preview address",
                            env.preview_listen.as_deref().unwrap_or_default(),
                            env.name
                        ),
                    ));
                }
            }
            if let Some(up) = &w.checked.approval.upstream {
                let known = live.iter().any(|e| &e.name == up)
                    || writes.iter().any(|o| &o.checked.new.name == up);
                if !known {
                    return Err(in_environment(
                        Error::invalid("upstream", format!("there is no environment {up:?}")),
                        &new.name,
                    ));
                }
            }
            if let Some((env, _)) = &w.existing {
                let router_changed = w.changes.iter().any(|c| c.field.starts_with("router."));
                if router_changed && env.active.is_some() {
                    return Err(in_environment(
                        Error::invalid(
                            "router",
                            "the router of an environment that serves users cannot change in place: \
                             the new router does not know the live slot",
                        ),
                        &new.name,
                    ));
                }
            }
        }
        Ok(())
    }

    /// The proxies this console is to start for `writes` (see
    /// `router::launcher`), their addresses checked free. A running proxy
    /// is not moved to new addresses: users reach it where it listens.
    async fn proxies_to_start(&self, writes: &[Write]) -> Result<Vec<(String, ProxyProcess)>> {
        let Some(launcher) = &self.launcher else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for w in writes.iter().filter(|w| !w.changes.is_empty()) {
            let new = &w.checked.new;
            let Some(p) = launcher.process_for(new.into()) else {
                continue;
            };
            let before = w
                .existing
                .as_ref()
                .and_then(|(env, _)| launcher.process_for(env.into()));
            match before {
                Some(old) if launcher.running(&old).await => {
                    let moved = [
                        ("app_url", old.listen != p.listen),
                        ("admin_url", old.admin != p.admin),
                        ("preview_listen", old.preview != p.preview),
                    ];
                    if let Some((field, _)) = moved.into_iter().find(|(_, m)| *m) {
                        return Err(in_environment(
                            Error::invalid(
                                field,
                                format!(
                                    "{}'s switchyard-proxy is running (users at {}, admin {}):                                      the console does not move a running proxy; stop it                                      (pkill -f {}) and save again",
                                    new.name,
                                    old.listen,
                                    old.admin,
                                    old.state_file.display()
                                ),
                            ),
                            &new.name,
                        ));
                    }
                }
                _ => launcher
                    .check_free(&p)
                    .await
                    .map_err(|e| in_environment(e, &new.name))?,
            }
            out.push((new.name.clone(), p));
        }
        Ok(out)
    }

    /// Starts what [`Self::proxies_to_start`] found, once the environments
    /// are written. One that does not come up is reported, not undone: the
    /// environment exists and its first deploy's preflight says the router
    /// does not answer.
    async fn start_written_proxies(&self, proxies: &[(String, ProxyProcess)]) {
        let Some(launcher) = &self.launcher else {
            return;
        };
        for (name, p) in proxies {
            if let Err(e) = launcher.ensure(p).await {
                tracing::warn!(environment = %name, error = %e, "its switchyard-proxy did not start");
            }
        }
    }

    /// Audits, then writes every environment of `writes` in one
    /// transaction: settings, approval settings, variables, secrets kept,
    /// and a new environment's checklist (`None`: the default one).
    async fn write_configs(
        &self,
        actor: &Actor,
        writes: &[Write],
        checklist: Option<&ChecklistSource>,
    ) -> Result<()> {
        let by = actor.name();
        let copied = match checklist {
            Some(ChecklistSource::CopyFrom(from)) => {
                let env = environments::find(self.pool(), from).await.map_err(|_| {
                    Error::invalid(
                        "checklist",
                        format!("there is no environment {from:?} to copy a checklist from"),
                    )
                })?;
                Some(checklists::template(self.pool(), env.id).await?)
            }
            _ => None,
        };
        // Audited first: a change that cannot be recorded is not made.
        for w in writes.iter().filter(|w| !w.changes.is_empty()) {
            let action = if w.existing.is_some() {
                "environment.edit"
            } else {
                "environment.create"
            };
            let mut ev = actor.event(action, Outcome::Ok);
            ev.environment = Some(w.checked.new.name.clone());
            ev.details = serde_json::json!({ "changes": audited(&w.changes) });
            self.audit(ev).await?;
        }
        let mut tx = crate::store::begin_write(self.pool()).await?;
        for w in writes.iter().filter(|w| !w.changes.is_empty()) {
            let c = &w.checked;
            let id = match &w.existing {
                Some((env, _)) => {
                    environments::update(&mut tx, env.id, &c.new).await?;
                    env.id
                }
                None => {
                    let id = environments::insert(&mut tx, &c.new).await?;
                    let items = match (checklist, &copied) {
                        (_, Some(items)) => items.clone(),
                        (Some(ChecklistSource::Empty), _) => Vec::new(),
                        _ => checklists::default_template(
                            c.approval.upstream.is_some(),
                            c.approval.backup_command.is_some(),
                        ),
                    };
                    checklists::write_template(&mut tx, id, &items).await?;
                    id
                }
            };
            checklists::write_settings(&mut tx, id, &c.approval).await?;
            slot_env::write_declared(&mut tx, id, &c.variables, &c.secrets, &by).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Archives an environment: it leaves every list, its slots are stopped
    /// (the idle one first, then the one users are on), and its history and
    /// audit entries stay. One that serves users needs `confirm_serving`.
    /// Refused while a deployment runs.
    pub async fn archive_environment(
        &self,
        actor: &Actor,
        env_name: &str,
        confirm_serving: bool,
    ) -> Result<()> {
        self.authorize(actor, Action::ManageEnvironments, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        if let (Some(active), false) = (env.active, confirm_serving) {
            return Err(Error::invalid(
                "confirm",
                format!(
                    "{} still serves users at {} (slot {active}): archiving stops both slots; \
                     confirm to go on",
                    env.name, env.app_url
                ),
            ));
        }
        let by = actor.name();
        // Slots to stop, the idle one first; the runtime that stops them is
        // needed before anything changes.
        let mut running = Vec::new();
        for slot in environments::slots(self.pool(), env.id).await? {
            if slot.handle.is_some() {
                running.push(slot);
            }
        }
        running.sort_by_key(|s| env.active == Some(s.color));
        let runtime = match running.is_empty() {
            true => None,
            false => Some(self.runtime_for(&env)?),
        };
        {
            // Same guard as a deploy's start: no deploy of this console can
            // begin between the check and the archive.
            let _lifecycle = self.inner.lifecycle.lock().await;
            environments::archive(self.pool(), env.id, &by).await?;
        }
        let mut ev = actor.event("environment.archive", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.details =
            serde_json::json!({ "served_users": env.active.is_some(), "active": env.active });
        self.audit(ev).await?;
        if let Some(runtime) = runtime {
            for slot in running {
                let handle = slot.handle.as_deref().unwrap_or_default();
                runtime.stop(handle, env.stop_grace).await?;
                environments::record_stopped(self.pool(), env.id, &slot).await?;
                tracing::info!(env = %env.name, slot = %slot.color, "archived: slot stopped");
            }
        }
        Ok(())
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// An error about one environment of several, saying which.
fn in_environment(e: Error, env_name: &str) -> Error {
    match e {
        Error::InvalidInput { field, message } => {
            Error::invalid(field, format!("environment {env_name}: {message}"))
        }
        other => other,
    }
}

/// Changes as the audit log keeps them: the backup command only as "set"
/// (it may carry a credential); secrets are names already.
fn audited(changes: &[FieldChange]) -> Vec<FieldChange> {
    changes
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if c.field == "backup_command" {
                c.before = c.before.map(|_| "(set)".into());
                c.after = c.after.map(|_| "(set)".into());
            }
            c
        })
        .collect()
}
