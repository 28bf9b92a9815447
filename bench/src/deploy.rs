//! `switchyard bench deploy`: what Switchyard itself adds to a deploy, and how
//! long a rollback takes, for each runtime that can run here.
//!
//! *Bare start* is the runtime starting the demo service and the service
//! answering its health check, polled every millisecond with no pipeline
//! around it. *Deploy* is the whole pipeline as a user gets it (lock, audit,
//! start, health wait at the environment's interval, gates — smoke route and
//! the 50-request performance sample — switch through the real
//! switchyard-proxy, drain, old standby stopped). Overhead = deploy − bare start,
//! medians of each. *Rollback* is timed from the call (the button) to the
//! router confirming the switch, and to the first user request answered by the
//! other version. Figures to read, not assertions: these machines are shared.

use crate::rig::{spawn_proxy, Samples};
use anyhow::{bail, Context};
use engine::environments::{self, NewEnvironment};
use engine::health::Prober;
use engine::runtime::{DockerRuntime, ProcessRuntime, Runtime};
use engine::Actor;
use engine::Engine;
use model::{DeploymentStatus, SlotColor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Options {
    pub runs: usize,
    pub health_interval: Duration,
    /// Directory holding switchyard-proxy and switchyard-demo.
    pub bin_dir: PathBuf,
    /// A PostgreSQL server: the process runtime's figures again with the
    /// console's records in a database of its own there.
    pub postgres: Option<String>,
}

/// Starts `version` with the runtime alone and waits for its health check.
async fn bare_start(
    runtime: &dyn Runtime,
    env: &environments::Environment,
    version: &str,
) -> anyhow::Result<Duration> {
    let spec = Engine::spec(env, SlotColor::Blue, version);
    let prober = Prober::default();
    let t = Instant::now();
    let slot = runtime.start(&spec).await?;
    let deadline = t + Duration::from_secs(30);
    let took = loop {
        if prober
            .probe(&slot.address, &env.health_path, &env.health_expect)
            .await
            .ok
        {
            break t.elapsed();
        }
        if Instant::now() > deadline {
            let _ = runtime.stop(&slot.handle, Duration::from_secs(1)).await;
            bail!("{version} did not become healthy within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    runtime.stop(&slot.handle, Duration::from_secs(5)).await?;
    Ok(took)
}

async fn users_see(http: &reqwest::Client, public: &str) -> Option<String> {
    let r = http.get(format!("http://{public}/")).send().await.ok()?;
    r.text().await.ok()
}

struct Figures {
    bare: Samples,
    deploy: Samples,
    rollback_call: Samples,
    rollback_served: Samples,
}

async fn bench_runtime(
    name: &str,
    runtime: Arc<dyn Runtime>,
    dir: &Path,
    store: &str,
    opts: &Options,
) -> anyhow::Result<Figures> {
    std::fs::create_dir_all(dir)?;
    let proxy = spawn_proxy(&opts.bin_dir, dir)?;
    let pool = engine::store::open(store).await?;
    let template = match name {
        "docker" => "switchyard-demo:{version}".to_string(),
        _ => opts.bin_dir.join("switchyard-demo").display().to_string(),
    };
    let env_name = format!("bench-{name}-{}", std::process::id());
    let mut new = NewEnvironment::new(
        &env_name,
        &format!("http://{}/", proxy.public),
        &template,
        &format!("http://{}", proxy.admin),
        &dir.join("proxy-token").display().to_string(),
    );
    let kind: model::RuntimeKind = name.parse()?;
    new.runtime = kind;
    new.health_interval = opts.health_interval;
    new.stop_grace = Duration::from_secs(5);
    // The watch runs after a deploy has finished (it is not part of its
    // time); left on, its probes would only add noise to the next run.
    new.watch_window = Duration::ZERO;
    let env = environments::create(&pool, &new).await?;
    let engine = Engine::new(pool, Arc::new(ProcessRuntime::new(dir.join("logs"))))
        .with_runtime(kind, runtime.clone());
    let actor = Actor::system();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;

    let mut f = Figures {
        bare: Samples::default(),
        deploy: Samples::default(),
        rollback_call: Samples::default(),
        rollback_served: Samples::default(),
    };
    for i in 0..opts.runs {
        let version = if i % 2 == 0 { "v2" } else { "v3" };
        f.bare
            .push(bare_start(runtime.as_ref(), &env, version).await?);
    }

    // v1 live first (not timed: the first deploy has no standby to stop).
    let first = engine.deploy(&actor, &env_name, "v1").await?;
    anyhow::ensure!(
        first.status == DeploymentStatus::Succeeded,
        "v1 deploy failed: {first:?}"
    );
    for i in 0..opts.runs {
        let version = if i % 2 == 0 { "v2" } else { "v3" };
        let t = Instant::now();
        let d = engine.deploy(&actor, &env_name, version).await?;
        let took = t.elapsed();
        anyhow::ensure!(
            d.status == DeploymentStatus::Succeeded,
            "deploy {version} failed: {d:?}"
        );
        f.deploy.push(took);
    }

    // Rollbacks inside the standby window: switch only. Each one flips users
    // to the other warm slot; the next one flips them back.
    for _ in 0..opts.runs {
        let before = users_see(&http, &proxy.public).await.unwrap_or_default();
        let t = Instant::now();
        let d = engine.rollback(&actor, &env_name, "benchmark").await?;
        f.rollback_call.push(t.elapsed());
        anyhow::ensure!(
            d.status == DeploymentStatus::Succeeded,
            "rollback failed: {d:?}"
        );
        loop {
            match users_see(&http, &proxy.public).await {
                Some(body) if body != before => break,
                _ if t.elapsed() > Duration::from_secs(10) => {
                    bail!("users still see {before:?} 10 s after the rollback")
                }
                _ => {}
            }
        }
        f.rollback_served.push(t.elapsed());
    }

    // Leave nothing running.
    for color in [SlotColor::Blue, SlotColor::Green] {
        if let Ok(slot) = environments::slot(engine.pool(), env.id, color).await {
            if let Some(handle) = slot.handle.as_deref() {
                let _ = runtime.stop(handle, Duration::from_secs(2)).await;
            }
        }
    }
    drop(proxy);
    Ok(f)
}

/// One row of figures: (label, runtime kind, runtime, data directory, store URL).
type Run = (
    &'static str,
    &'static str,
    Arc<dyn Runtime>,
    PathBuf,
    String,
);

pub async fn deploy(data_dir: &Path, opts: Options) -> anyhow::Result<()> {
    let root = data_dir.join("bench-deploy");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    println!(
        "deploy benchmark: {} runs per figure, health interval {} ms, demo service, real switchyard-proxy",
        opts.runs,
        opts.health_interval.as_millis()
    );

    let sqlite = |dir: &Path| format!("sqlite:{}", dir.join("switchyard.db").display());
    let process: Arc<dyn Runtime> =
        Arc::new(ProcessRuntime::new(root.join("process").join("logs")));
    let on_sqlite = root.join("process");
    let mut runs: Vec<Run> = vec![(
        "process runtime, SQLite",
        "process",
        process.clone(),
        on_sqlite.clone(),
        sqlite(&on_sqlite),
    )];
    let mut made = None;
    if let Some(server) = &opts.postgres {
        let url = engine::store::testing::create_database(server)
            .await
            .context("creating a PostgreSQL database for the benchmark")?;
        let dir = root.join("process-postgres");
        runs.push((
            "process runtime, PostgreSQL",
            "process",
            process,
            dir,
            url.clone(),
        ));
        made = Some((server.clone(), url));
    }
    match DockerRuntime::connect().await {
        Ok(docker) => {
            let dir = root.join("docker");
            let store = sqlite(&dir);
            runs.push((
                "docker runtime, SQLite",
                "docker",
                Arc::new(docker),
                dir,
                store,
            ));
        }
        Err(e) => println!("docker: skipped (no Docker Engine: {e}); run scripts/docker.sh"),
    }
    for (label, name, runtime, dir, store) in runs {
        let f = bench_runtime(name, runtime, &dir, &store, &opts)
            .await
            .with_context(|| label.to_string())?;
        let overhead = f.deploy.quantile(0.5).saturating_sub(f.bare.quantile(0.5));
        println!("{label}:");
        println!("{}", f.bare.row("bare start (runtime + health)"));
        println!("{}", f.deploy.row("deploy (whole pipeline)"));
        println!(
            "  {:<38} {:>8.1} ms (median deploy − median bare start)",
            "deploy overhead",
            overhead.as_secs_f64() * 1000.0
        );
        println!("{}", f.rollback_call.row("rollback: call → switched"));
        println!(
            "{}",
            f.rollback_served
                .row("rollback: call → users on other slot")
        );
    }
    if let Some((server, url)) = made {
        engine::store::testing::drop_database(&server, &url).await?;
    }
    Ok(())
}
