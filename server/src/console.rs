//! The console, wired once: `Console::build(config)` is what `switchyard
//! serve` runs and what the HTTP tests start, so the tests exercise the same
//! engine, session store, router and background rounds as production.

use crate::config::{self, Config, ProxyAtStart};
use crate::{bootstrap, http, private_files, proxy_process};
use anyhow::Context;
use axum::Router;
use engine::{BackgroundRound, Engine};
use leptos::prelude::LeptosOptions;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a shutdown waits for open responses to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often the monitor round runs (slot probes, lock recovery, standby expiry).
const MONITOR_ROUND: Duration = Duration::from_secs(5);

/// A console ready to serve: its engine, its router and the rounds that run
/// beside it.
pub struct Console {
    engine: Engine,
    router: Router,
    rounds: Rounds,
    first_admin: Option<FirstAdmin>,
}

/// The background rounds (expired-session deletion, the monitor). Dropping
/// them stops them: when `serve` ends, when its future is dropped (a test
/// aborting its server task) or when a console is dropped unserved.
struct Rounds(Vec<JoinHandle<()>>);

impl Drop for Rounds {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The account `build` created because the database had none.
pub struct FirstAdmin {
    pub username: String,
    /// The generated password, to be shown once; `None` when it was given.
    pub generated_password: Option<String>,
}

impl Console {
    /// Opens the data directory and the database, registers the drivers,
    /// makes sure switchyard-proxy runs, recovers what a previous console left
    /// behind, creates the first account and the demo if asked, and starts
    /// the background rounds.
    pub async fn build(cfg: &Config) -> anyhow::Result<Console> {
        let hosts = cfg
            .public_origins
            .iter()
            .try_fold(http::AllowedHosts::for_listen(cfg.listen), |h, o| {
                h.with_origin(o)
            })
            .map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
        private_files::secure_data_dir(&cfg.data_dir)?;
        let pool = engine::open_database(&cfg.database_url).await?;
        let runtime = Arc::new(engine::ProcessRuntime::new(cfg.log_dir()));
        let checkpoints = engine::AuditCheckpoints::open(&cfg.data_dir)?
            .with_sink(cfg.audit_checkpoint_command.clone());
        let mut engine = Engine::new(pool.clone(), runtime)
            .with_checkpoints(checkpoints)
            .with_secrets(engine::SecretBox::open(&cfg.data_dir)?);
        // Docker is optional: environments on the docker runtime work when an
        // engine answers, and are refused with a clear error when none does.
        match engine::DockerRuntime::connect().await {
            Ok(docker) => {
                engine = engine.with_runtime(model::RuntimeKind::Docker, Arc::new(docker))
            }
            Err(e) => {
                tracing::info!(error = %e, "no Docker Engine: the docker runtime is unavailable")
            }
        }

        if cfg.proxy != ProxyAtStart::Unmanaged {
            proxy_process::ensure_token(&cfg.proxy_token_file())?;
            if cfg.proxy == ProxyAtStart::Spawn {
                proxy_process::record_main(cfg)?;
            }
            let launcher = proxy_process::launcher(&cfg.data_dir, &cfg.bin_dir);
            proxy_process::ensure_running(cfg, &launcher).await?;
            if cfg.proxy == ProxyAtStart::Spawn {
                // Environments created here since (page, CLI, file) each
                // have their own proxy; those not running start again.
                engine = engine.with_proxy_launcher(launcher);
                engine.start_proxies().await?;
            }
        }
        // What a console that died mid-deploy left behind is settled before
        // anyone can act: users stay on (or return to) a slot that answers.
        // Every environment's named route is on its proxy again (a proxy
        // started afresh, or its state file lost), before the records are
        // compared with the routers.
        engine.reconcile_routes().await?;
        engine.reconcile().await?;
        let first_admin = if cfg.first_admin {
            bootstrap::ensure_admin(&engine, cfg.admin_password.clone())
                .await?
                .map(|(username, generated_password)| FirstAdmin {
                    username,
                    generated_password,
                })
        } else {
            None
        };
        if cfg.demo {
            bootstrap::seed_demo(cfg, &engine).await?;
        }
        // Vouch for the log as this console found and extended it (its full
        // verification, seconds at a million entries, runs in the seal round
        // rather than delaying the start).
        engine.checkpoint_audit().await?;

        // Sessions live in the same database, so consoles sharing one
        // PostgreSQL database recognise each other's.
        let store = crate::sessions::Sessions::open(&pool).await?;
        let rounds = Rounds(vec![
            tokio::spawn({
                let deletion =
                    tower_sessions::session_store::ExpiredDeletion::continuously_delete_expired(
                        store.clone(),
                        tokio::time::Duration::from_secs(600),
                    );
                async move {
                    if let Err(e) = deletion.await {
                        tracing::warn!(error = %e, "expired-session deletion stopped");
                    }
                }
            }),
            tokio::spawn(monitor(engine.clone())),
            tokio::spawn(seal(engine.clone(), cfg.audit_checkpoint_interval)),
            tokio::spawn(webhooks(engine.clone())),
        ]);

        // A release build (`cargo leptos build --release`) names the front
        // end's files after their content and writes the names to hash.txt
        // beside the binary; Leptos links those names when told to. A build
        // without it (the tests' `cargo build`) links the plain names.
        let hash_files = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt")))
            .is_some_and(|hashes| hashes.exists());
        let leptos_options = LeptosOptions::builder()
            .output_name("switchyard")
            .site_root(cfg.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(cfg.listen)
            .hash_files(hash_files)
            .build();
        let state = app::state::AppState {
            leptos_options,
            engine: engine.clone(),
            session_absolute_timeout: cfg.session_absolute_timeout,
            proxy: app::state::ProxyAddress {
                admin_url: format!("http://{}", cfg.proxy_admin),
                token_file: cfg.proxy_token_file().display().to_string(),
            },
        };
        let router = http::router(
            state,
            http::session_layer(store, cfg.secure_cookies, cfg.session_idle_timeout),
            hosts,
        );
        // The database and its WAL exist now: none of them readable by others.
        private_files::secure_data_dir(&cfg.data_dir)?;
        Ok(Console {
            engine,
            router,
            rounds,
            first_admin,
        })
    }

    /// The engine the router's pages and server functions use.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The console's routes and middleware, as `serve` runs them. `serve`
    /// gives each request a `ConnectInfo<SocketAddr>`; one sent here directly
    /// without it has no peer address (the audit log and the per-address
    /// login throttle read it).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The account created at this start, if the database had none.
    pub fn first_admin(&self) -> Option<&FirstAdmin> {
        self.first_admin.as_ref()
    }

    /// Serves on `listener` until `shutdown` completes, then waits at most
    /// a short grace period for open responses. The background rounds stop
    /// with it; slots and switchyard-proxy keep running, so users do not
    /// notice that the console stopped.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Console { router, rounds, .. } = self;
        // A graceful shutdown waits for open responses, and a deployment
        // page's event stream can stay open for many minutes: past the grace
        // period the console stops anyway (browsers fall back to asking, then
        // reconnect).
        let stopping = Arc::new(tokio::sync::Notify::new());
        let serve = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown({
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                stopping.notify_one();
            }
        });
        let served = tokio::select! {
            served = std::future::IntoFuture::into_future(serve) => served.map_err(anyhow::Error::from),
            _ = async {
                stopping.notified().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                tracing::info!(
                    "responses still open {} s after the shutdown signal (event streams): stopping anyway",
                    SHUTDOWN_GRACE.as_secs()
                );
                Ok(())
            }
        };
        drop(rounds);
        served
    }
}

/// The engine for command-line tools that change records but run nothing
/// (`user add`, `deploy --dry-run`, `audit verify`): the console's database
/// and log directory, without proxy, reconciliation or rounds.
pub async fn offline_engine(data_dir: &Path) -> anyhow::Result<Engine> {
    let pool = engine::open_database(&config::database_url(data_dir)).await?;
    Ok(Engine::new(
        pool,
        Arc::new(engine::ProcessRuntime::new(config::log_dir(data_dir))),
    )
    .with_secrets(engine::SecretBox::open(data_dir)?))
}

/// [`offline_engine`] that can also stop Docker slots, when Docker Engine
/// answers, and starts the proxy of an environment it creates.
pub async fn offline_engine_with_docker(data_dir: &Path) -> anyhow::Result<Engine> {
    // An environment created here gets its proxy started at once, as from
    // the page: users can be served before any console runs.
    let engine = offline_engine(data_dir)
        .await?
        .with_proxy_launcher(proxy_process::launcher(
            data_dir,
            &config::default_bin_dir(),
        ));
    Ok(match engine::DockerRuntime::connect().await {
        Ok(docker) => engine.with_runtime(model::RuntimeKind::Docker, Arc::new(docker)),
        Err(_) => engine,
    })
}

/// Whether this console runs `round` now, for every console on its
/// database: its lease, taken or renewed for three rounds (see
/// engine/src/leases.rs), so a console that dies hands the round on within
/// that time. A store that cannot answer means not this time.
async fn my_turn(engine: &Engine, round: BackgroundRound, every: Duration) -> bool {
    match engine.hold_lease(round, every * 3).await {
        Ok(mine) => mine,
        Err(e) => {
            tracing::warn!(error = %e, round = round.as_str(), "could not ask for the round's lease");
            false
        }
    }
}

/// Every few seconds: probe the slots for the dashboard, recover locks whose
/// console died or went silent (without waiting for that console to come
/// back), stop standbys past their window and pick up the watch windows of
/// such consoles. One console of those sharing
/// a database does this at a time.
async fn monitor(engine: Engine) {
    loop {
        if !my_turn(&engine, BackgroundRound::Monitor, MONITOR_ROUND).await {
            tokio::time::sleep(MONITOR_ROUND).await;
            continue;
        }
        if let Err(e) = engine.probe_slots().await {
            tracing::warn!(error = %e, "health round failed");
        }
        if let Err(e) = engine.recover_locks().await {
            tracing::warn!(error = %e, "lock recovery round failed");
        }
        if let Err(e) = engine.expire_standbys().await {
            tracing::warn!(error = %e, "standby expiry round failed");
        }
        if let Err(e) = engine.resume_watches().await {
            tracing::warn!(error = %e, "watch window round failed");
        }
        tokio::time::sleep(MONITOR_ROUND).await;
    }
}

/// How often the webhook round queues new events and sends due deliveries.
const WEBHOOK_ROUND: Duration = Duration::from_secs(1);

/// Every second: turn new audit entries into webhook deliveries and send
/// those due (the outbox is in the database, so a restart picks up where
/// this one stopped). One console of those sharing a database does this at
/// a time.
async fn webhooks(engine: Engine) {
    let timing = engine::WebhookTiming::from_env();
    loop {
        if !my_turn(&engine, BackgroundRound::Webhooks, WEBHOOK_ROUND).await {
            tokio::time::sleep(WEBHOOK_ROUND).await;
            continue;
        }
        if let Err(e) = engine.webhook_round(&timing).await {
            tracing::warn!(error = %e, "webhook round failed");
        }
        tokio::time::sleep(WEBHOOK_ROUND).await;
    }
}

/// Every this many checkpoint rounds the whole chain is verified again.
const VERIFY_EVERY: u32 = 10;

/// Verifies the log once at start, then signs a checkpoint each `interval`
/// when entries were appended and verifies again every `VERIFY_EVERY` rounds
/// (a full walk: at a million entries some seconds of one core, so not every
/// round).
async fn seal(engine: Engine, interval: Duration) {
    for round in 0u32.. {
        if round > 0 {
            tokio::time::sleep(interval).await;
            if let Err(e) = engine.checkpoint_audit().await {
                tracing::error!(error = %e, "could not sign an audit checkpoint");
            }
        }
        if round % VERIFY_EVERY == 0 {
            if let Err(e) = engine.refresh_audit_seal().await {
                tracing::error!(error = %e, "could not verify the audit log");
            }
        }
    }
}
