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
mod route_sync;

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::checklists;
use crate::engine::Engine;
use crate::environments::{self, Environment, RouteClaim};
use crate::error::{Error, Result};
use crate::rbac::Action;
use crate::router::ProxyProcess;
use crate::slot_env;
use crate::slot_env::cipher::Sealed;
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
        let mut config = convert::to_config(env, &approval, &vars);
        // Declared ones too, whose value is not set yet.
        config.secrets = slot_env::declared(self.pool(), env.id).await?;
        Ok(config)
    }

    /// Creates an environment from its config, with a checklist from
    /// `checklist`. Audited as `environment.create` with every field.
    pub async fn create_environment(
        &self,
        actor: &Actor,
        config: &EnvironmentConfig,
        checklist: &ChecklistSource,
    ) -> Result<EnvironmentConfig> {
        self.create_environment_with_secrets(actor, config, checklist, &[])
            .await
    }

    /// [`Self::create_environment`] with the values of some of the secrets
    /// it declares, as `(name, value)`: the page's registry password, since
    /// a new environment has no secret to name otherwise. Each is sealed
    /// before anything is written, stored in the create's transaction, and
    /// audited as `environment.secret` by name only.
    pub async fn create_environment_with_secrets(
        &self,
        actor: &Actor,
        config: &EnvironmentConfig,
        checklist: &ChecklistSource,
        secret_values: &[(String, String)],
    ) -> Result<EnvironmentConfig> {
        self.authorize(actor, Action::ManageEnvironments, Some(&config.name))
            .await?;
        if environments::find(self.pool(), &config.name).await.is_ok() {
            return Err(Error::AlreadyExists(format!(
                "environment {:?}",
                config.name
            )));
        }
        let sealed = self.seal_declared(config, secret_values)?;
        let plans = self
            .apply_with(actor, std::slice::from_ref(config), checklist, true, sealed)
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
                Vec::new(),
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
        self.apply_with(actor, configs, &ChecklistSource::Default, false, Vec::new())
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
        self.apply_with(actor, configs, &ChecklistSource::Default, true, Vec::new())
            .await
    }

    async fn apply_with(
        &self,
        actor: &Actor,
        configs: &[EnvironmentConfig],
        checklist: &ChecklistSource,
        write: bool,
        sealed: Vec<(String, Sealed)>,
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
            // Proxies first: a new environment's route is put on its proxy
            // before the environment is written (see `route_sync`).
            self.start_written_proxies(&proxies).await;
            let routes = route_sync::PutRoutes::put(&writes).await?;
            if let Err(e) = self.write_configs(actor, &writes, source, sealed).await {
                routes.undo().await;
                return Err(e);
            }
            route_sync::remove_left(&writes).await;
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
                let other = OnProxy::from(&o.checked.new);
                let shared = self.check_sharing(OnProxy::from(new), other)?;
                if o.checked.new.router == RouterKind::Builtin
                    && new.router == RouterKind::Builtin
                    && same_url(&o.checked.new.proxy_admin_url, &new.proxy_admin_url)
                    && !shared
                {
                    return Err(Error::invalid(
                        "admin_url",
                        format!(
                            "{} and {} both use switchyard-proxy at {}: environments share a proxy \
                             only as named routes (give both host names), else each needs its own",
                            o.checked.new.name, new.name, new.proxy_admin_url
                        ),
                    ));
                }
                if o.checked.new.app_url == new.app_url && !shared {
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
                // One declared here is checked as declared, above.
                let shared =
                    !declared_here && self.check_sharing(OnProxy::from(new), env.into())?;
                if env.app_url == new.app_url && !declared_here && !shared {
                    return Err(Error::invalid(
                        "app_url",
                        format!(
                            "{} is already environment {}'s address (names never change: to rename, \
                             create the new environment at another address, then archive {})",
                            new.app_url, env.name, env.name
                        ),
                    ));
                }
                // One switchyard-proxy's default table routes one
                // environment: a second one on it would overwrite the
                // first's at its first deploy. Named routes share it.
                let same_proxy = new.router == RouterKind::Builtin
                    && env.router == RouterKind::Builtin
                    && same_url(&env.proxy_admin_url, &new.proxy_admin_url);
                if same_proxy && !declared_here && !shared {
                    return Err(in_environment(
                        Error::invalid(
                            "admin_url",
                            format!(
                                "switchyard-proxy at {} already switches environment {}: \
                                 environments share a proxy only as named routes (give both \
                                 host names), else each needs its own proxy",
                                new.proxy_admin_url, env.name
                            ),
                        ),
                        &new.name,
                    ));
                }
                if new.preview_listen.is_some()
                    && env.preview_listen == new.preview_listen
                    && !declared_here
                    && !shared
                {
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
                check_route_move(env, new).map_err(|e| in_environment(e, &new.name))?;
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

    /// Starts what [`Self::proxies_to_start`] found, just before the
    /// environments are written. One that does not come up is reported, not
    /// a refusal: the environment is written and its first deploy's
    /// preflight says the router does not answer — unless it has host
    /// names, whose route then cannot be put: that refuses the write.
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
        sealed: Vec<(String, Sealed)>,
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
        // Secrets given with a create (there is one environment then).
        let created = writes.iter().find(|w| w.existing.is_none());
        if let (Some(w), false) = (created, sealed.is_empty()) {
            for (name, _) in &sealed {
                let mut ev = actor.event("environment.secret", Outcome::Ok);
                ev.environment = Some(w.checked.new.name.clone());
                ev.target = Some(name.clone());
                ev.details = serde_json::json!({ "replaced": false, "with_create": true });
                self.audit(ev).await?;
            }
        }
        let mut sealed = Some(sealed);
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
            if w.existing.is_none() {
                for (name, value) in sealed.take().unwrap_or_default() {
                    slot_env::set_in(&mut tx, id, &name, slot_env::Setting::Secret(value), &by)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Seals `values` for `config` before anything is written: each must be
    /// one of the secrets it declares, and a valid secret.
    fn seal_declared(
        &self,
        config: &EnvironmentConfig,
        values: &[(String, String)],
    ) -> Result<Vec<(String, Sealed)>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let secrets = self
            .secrets
            .as_deref()
            .ok_or_else(|| Error::Internal("this console holds no secrets key".to_string()))?;
        values
            .iter()
            .map(|(name, value)| {
                if !config.secrets.contains(name) {
                    return Err(Error::invalid(
                        "secrets",
                        format!(
                            "{name} is given a value but is not one of the environment's secrets"
                        ),
                    ));
                }
                slot_env::validate_name(name)?;
                slot_env::validate_value("secret", value)?;
                if value.is_empty() {
                    return Err(Error::invalid("secret", "a secret cannot be empty"));
                }
                Ok((name.clone(), secrets.seal(&config.name, name, value)?))
            })
            .collect()
    }

    /// Mounts as the Environments page takes them, one per line, checked
    /// as a file's are (a bad one named by its line).
    pub fn mounts_from_lines(text: &str) -> Result<Vec<String>> {
        docker::mounts_from_lines(text)
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
            // Its host names stop being served (404) with it. A proxy that
            // does not take the route off undoes the archive: archived, the
            // console would never remove it, and its hosts would keep
            // reaching slots about to be stopped.
            if let Err(e) = self.remove_route(&env).await {
                environments::unarchive(self.pool(), env.id).await?;
                return Err(e);
            }
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

impl Engine {
    /// Takes `env`'s named route off its proxy, if it has one.
    async fn remove_route(&self, env: &Environment) -> Result<()> {
        if env.router != RouterKind::Builtin || !env.route.is_routed() {
            return Ok(());
        }
        let admin = route_sync::proxy_admin(&env.proxy_admin_url, &env.proxy_token_file)?;
        admin.delete_route(&env.name).await.map_err(|e| {
            Error::invalid(
                "admin_url",
                format!(
                    "{}'s route could not be removed from switchyard-proxy at {} ({e}): \
                     it was not archived",
                    env.name, env.proxy_admin_url
                ),
            )
        })
    }

    /// Whether `a` and `b` share one switchyard-proxy as named routes, and
    /// if so that they may: no host of one is the other's under the same
    /// prefix, and when this console runs that proxy both name the same
    /// users' and preview addresses (the proxy has one of each).
    fn check_sharing(&self, a: OnProxy<'_>, b: OnProxy<'_>) -> Result<bool> {
        let same_proxy = a.router == RouterKind::Builtin
            && b.router == RouterKind::Builtin
            && same_url(a.admin_url, b.admin_url);
        if !(same_proxy && a.route.is_routed() && b.route.is_routed()) {
            return Ok(false);
        }
        if let Some(host) = a.route.clash_with(b.route) {
            return Err(Error::invalid(
                "hosts",
                format!(
                    "environment {}: {host} is already a host name of environment {} on \
                     switchyard-proxy at {} (with the same path prefix)",
                    a.name, b.name, a.admin_url
                ),
            ));
        }
        if let Some(launcher) = &self.launcher {
            if let (Some(pa), Some(pb)) =
                (launcher.process_for(a.proxy), launcher.process_for(b.proxy))
            {
                let apart = [
                    ("app_url", "users' address", pa.listen != pb.listen),
                    (
                        "preview_listen",
                        "preview address",
                        pa.preview != pb.preview,
                    ),
                ];
                if let Some((field, what, _)) = apart.into_iter().find(|f| f.2) {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "environment {}: it shares switchyard-proxy at {} with environment {}, \
                             so it has the same {what} ({field})",
                            a.name, a.admin_url, b.name
                        ),
                    ));
                }
            }
        }
        Ok(true)
    }
}

/// What of an environment (new or stored) says which proxy it is on and how.
#[derive(Clone, Copy)]
struct OnProxy<'a> {
    name: &'a str,
    router: RouterKind,
    admin_url: &'a str,
    route: &'a RouteClaim,
    proxy: crate::router::launcher::ProxyOf<'a>,
}

impl<'a> From<&'a environments::NewEnvironment> for OnProxy<'a> {
    fn from(e: &'a environments::NewEnvironment) -> Self {
        OnProxy {
            name: &e.name,
            router: e.router,
            admin_url: &e.proxy_admin_url,
            route: &e.route,
            proxy: e.into(),
        }
    }
}

impl<'a> From<&'a Environment> for OnProxy<'a> {
    fn from(e: &'a Environment) -> Self {
        OnProxy {
            name: &e.name,
            router: e.router,
            admin_url: &e.proxy_admin_url,
            route: &e.route,
            proxy: e.into(),
        }
    }
}

/// An environment that serves users keeps its table where it is: it does
/// not become or stop being a named route (the default table and the route
/// are two tables), nor move its route to another proxy, in place.
fn check_route_move(old: &Environment, new: &environments::NewEnvironment) -> Result<()> {
    if old.active.is_none() || old.router != RouterKind::Builtin {
        return Ok(());
    }
    if old.route.is_routed() != new.route.is_routed() {
        return Err(Error::invalid(
            "hosts",
            "an environment that serves users cannot gain or lose its host names in place: \
             its slot is in the proxy's default table or in its route, not both",
        ));
    }
    if old.route.is_routed() && !same_url(&old.proxy_admin_url, &new.proxy_admin_url) {
        return Err(Error::invalid(
            "admin_url",
            "an environment that serves users keeps its route on its proxy: its table is there",
        ));
    }
    Ok(())
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
