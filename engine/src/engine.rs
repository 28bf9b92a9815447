//! The engine's front door: [`Engine`] holds the store, the drivers and this
//! console's running workers, and every action the console offers is one of
//! its methods, each authorizing its [`Actor`] first. The methods live beside
//! their domain: reads in `queries`, the deploy and rollback in `pipeline`,
//! releases and checklists in `approvals`, people in `accounts`.

use crate::actor::Actor;
use crate::audit::{AuditLog, Event, Outcome};
use crate::environments::Environment;
use crate::error::{Error, Result};
use crate::health::Prober;
use crate::lock::{Holder, LockTiming};
use crate::pipeline::Workers;
use crate::rbac::Action;
use crate::router::{BuiltinRouter, NginxRouter, TrafficRouter};
use crate::runtime::{Runtime, SlotSpec};
use crate::store::Pool;
use model::{RouterKind, RuntimeKind, SlotColor};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
    /// Runtime drivers by kind (`environments.runtime`). Outside `Inner` so
    /// `with_runtime` can add one to an engine value without locks.
    runtimes: Arc<HashMap<RuntimeKind, Arc<dyn Runtime>>>,
    lock_timing: LockTiming,
    /// Signed audit checkpoints (`with_checkpoints`); `None` in tests and
    /// tools that sign none.
    pub(crate) sealing: Option<Arc<crate::audit::checkpoints::Seal>>,
    /// The data directory's secrets key (`with_secrets`).
    pub(crate) secrets: Option<Arc<crate::slot_env::cipher::SecretBox>>,
    /// Starts the switchyard-proxy of each environment this console runs
    /// (`with_proxy_launcher`); `None`: every proxy is someone else's.
    pub(crate) launcher: Option<Arc<crate::router::ProxyLauncher>>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) prober: Prober,
    audit: AuditLog,
    /// Serializes taking an environment's lock (a deployment row) with a pass
    /// of [`Engine::expire_standbys`]: the expiry never stops a standby that a
    /// rollback has just checked and is about to switch to.
    pub(crate) lifecycle: tokio::sync::Mutex<()>,
    /// This console as the holder of the locks its workers take.
    pub(crate) holder: Holder,
    /// The deploy and rollback workers running in this console.
    pub(crate) workers: Workers,
    /// The release form's versions, kept briefly (`known_versions.rs`).
    pub(crate) known_versions: crate::version_cache::VersionCache,
}

impl Engine {
    /// An engine with `runtime` registered as [`RuntimeKind::Process`] (the
    /// default every environment gets); add others with [`Engine::with_runtime`].
    pub fn new(pool: Pool, runtime: Arc<dyn Runtime>) -> Self {
        Engine {
            inner: Arc::new(Inner {
                pool,
                prober: Prober::default(),
                audit: AuditLog::default(),
                lifecycle: tokio::sync::Mutex::new(()),
                holder: Holder::this_process(),
                workers: Workers::default(),
                known_versions: Default::default(),
            }),
            runtimes: Arc::new(HashMap::from([(RuntimeKind::Process, runtime)])),
            lock_timing: LockTiming::default(),
            sealing: None,
            secrets: None,
            launcher: None,
        }
    }

    /// How often workers beat and when a silent lock counts as stale (tests
    /// shorten both).
    pub fn with_lock_timing(mut self, timing: LockTiming) -> Self {
        self.lock_timing = timing;
        self
    }

    /// This console as a lock holder.
    pub fn holder(&self) -> &Holder {
        &self.inner.holder
    }

    pub(crate) fn lock_timing(&self) -> LockTiming {
        self.lock_timing
    }

    /// Registers (or replaces) the runtime used by environments of `kind`.
    /// Clones made before this call keep the set they had.
    pub fn with_runtime(mut self, kind: RuntimeKind, runtime: Arc<dyn Runtime>) -> Self {
        Arc::make_mut(&mut self.runtimes).insert(kind, runtime);
        self
    }

    /// The runtime driver `env` asks for. An environment naming a driver this
    /// console was not configured with is refused before anything starts.
    pub(crate) fn runtime_for(&self, env: &Environment) -> Result<Arc<dyn Runtime>> {
        self.runtimes.get(&env.runtime).cloned().ok_or_else(|| {
            let mut known: Vec<&str> = self.runtimes.keys().map(|k| k.as_str()).collect();
            known.sort_unstable();
            Error::invalid(
                "runtime",
                format!(
                "environment {} uses the {:?} runtime, which this console is not configured with (configured: {})",
                env.name,
                env.runtime.as_str(),
                known.join(", ")
            ))
        })
    }

    pub(crate) fn prober(&self) -> &Prober {
        &self.inner.prober
    }

    /// The store. Public only with the `internals` feature (tests and
    /// benchmarks inspect records); the console goes through methods.
    #[cfg(feature = "internals")]
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    #[cfg(not(feature = "internals"))]
    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The traffic router `env` names. A router value is built per
    /// operation; the nginx router serializes applies with a file lock, so
    /// that is safe.
    pub(crate) fn router_for(&self, env: &Environment) -> Result<Arc<dyn TrafficRouter>> {
        match env.router {
            RouterKind::Nginx => {
                let settings = env.nginx.clone().ok_or_else(|| {
                    Error::Internal(format!(
                        "environment {} uses the nginx router without its settings",
                        env.name
                    ))
                })?;
                Ok(Arc::new(
                    NginxRouter::new(settings).with_preview(env.preview_listen.clone()),
                ))
            }
            RouterKind::Builtin => {
                let token = std::fs::read_to_string(&env.proxy_token_file).map_err(|e| {
                    Error::Internal(format!(
                        "reading proxy admin token {}: {e}",
                        env.proxy_token_file
                    ))
                })?;
                let mut router = BuiltinRouter::new(&env.proxy_admin_url, token.trim().to_string())
                    .with_preview(env.preview_listen.clone());
                // An environment with host names shares its proxy: it is the
                // named route called after it there.
                if env.route.is_routed() {
                    let host = env.route.first_exact_host().map(String::from);
                    router = router.for_route(&env.name, host);
                }
                Ok(Arc::new(router))
            }
        }
    }

    /// The artifact of `version`, for the runtime's checks (does it exist?):
    /// no variables or secrets, which only a start needs (`slot_spec`).
    pub fn spec(env: &Environment, color: SlotColor, version: &str) -> SlotSpec {
        SlotSpec {
            environment: env.name.clone(),
            color,
            version: version.to_string(),
            artifact: env.artifact_template.replace("{version}", version),
            env: Default::default(),
            docker: env.docker.clone(),
            registry: None,
        }
    }

    /// What the runtime's `check` needs for `version`: the artifact and the
    /// registry login a missing image is looked up with — one secret
    /// decrypted, not the environment's variables.
    pub(crate) async fn check_spec(
        &self,
        env: &Environment,
        color: SlotColor,
        version: &str,
    ) -> Result<SlotSpec> {
        Ok(SlotSpec {
            registry: self.registry_login(env).await?,
            ..Self::spec(env, color, version)
        })
    }

    /// What the runtime is asked to start for `version` in `color`: the
    /// artifact, and the environment's variables and decrypted secrets.
    pub(crate) async fn slot_spec(
        &self,
        env: &Environment,
        color: SlotColor,
        version: &str,
    ) -> Result<SlotSpec> {
        let mut vars =
            crate::slot_env::for_slot(self.pool(), self.secrets.as_deref(), env.id, &env.name)
                .await?;
        // The registry password is Docker's, not the service's: it logs the
        // pull in and stays out of the container.
        if let Some(secret) = &env.docker.registry_secret {
            vars.0.retain(|(n, _)| n != secret);
        }
        Ok(SlotSpec {
            env: vars,
            registry: self.registry_login(env).await?,
            ..Self::spec(env, color, version)
        })
    }

    /// The login a Docker environment pulls with: its registry user and the
    /// secret it names, decrypted. `None` without one.
    pub(crate) async fn registry_login(
        &self,
        env: &Environment,
    ) -> Result<Option<crate::runtime::RegistryLogin>> {
        let (Some(user), Some(secret)) = (&env.docker.registry_user, &env.docker.registry_secret)
        else {
            return Ok(None);
        };
        let password = crate::slot_env::secret_value(
            self.pool(),
            self.secrets.as_deref(),
            env.id,
            &env.name,
            secret,
        )
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "registry_password_secret",
                format!(
                    "the registry password secret {secret} of {} is not set",
                    env.name
                ),
            )
        })?;
        Ok(Some(crate::runtime::RegistryLogin {
            username: user.clone(),
            password,
        }))
    }

    /// Runs the proxies of environments on this console's token and host
    /// (see `router::launcher`): checked free and started when created.
    pub fn with_proxy_launcher(mut self, launcher: crate::router::ProxyLauncher) -> Self {
        self.launcher = Some(Arc::new(launcher));
        self
    }

    /// Starts the proxy of every environment this console runs that does
    /// not answer (at console start). One that cannot start is reported
    /// and left: its environment's deploys say its router does not answer.
    pub async fn start_proxies(&self) -> Result<()> {
        let Some(launcher) = &self.launcher else {
            return Ok(());
        };
        for env in crate::environments::list(self.pool()).await? {
            let Some(p) = launcher.process_for((&env).into()) else {
                continue;
            };
            if let Err(e) = launcher.ensure(&p).await {
                tracing::warn!(environment = %env.name, error = %e, "its switchyard-proxy did not start");
            }
        }
        Ok(())
    }

    /// Encrypts environments' secrets with `secrets` (and decrypts them for
    /// slots); without it, an environment with secrets cannot start.
    pub fn with_secrets(mut self, secrets: crate::slot_env::cipher::SecretBox) -> Self {
        self.secrets = Some(Arc::new(secrets));
        self
    }

    /// Whether the database answers (a console's health check: a load
    /// balancer takes a console whose store is gone out of rotation).
    pub async fn check_store(&self) -> Result<()> {
        crate::store::query_scalar::<i64>("SELECT CAST(1 AS BIGINT)")
            .fetch_one(self.pool())
            .await?;
        Ok(())
    }

    /// Appends to the audit log. Callers stop the action when this fails.
    pub async fn audit(&self, event: Event) -> Result<()> {
        let action = event.action;
        self.inner.audit.append(self.pool(), event).await?;
        self.checkpoint_after(action).await;
        Ok(())
    }

    /// Whether `actor` may do `action` (in `environment`), with refusals
    /// recorded in the audit log. Server functions that check more than the
    /// engine call them with (a confirmation box, a form's numbers) call this
    /// first, so a refused role learns nothing from those checks.
    pub async fn authorize(
        &self,
        actor: &Actor,
        action: Action,
        environment: Option<&str>,
    ) -> Result<()> {
        let refused = match actor.may_on(action, environment) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let mut ev = actor.event(action.audit_name(), Outcome::Denied);
        ev.environment = environment.map(str::to_string);
        ev.details = serde_json::json!({ "error": refused.to_string() });
        if let Err(e) = self.audit(ev).await {
            tracing::error!(error = %e, "could not audit a refused request");
        }
        Err(refused)
    }
}
