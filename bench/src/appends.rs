//! `switchyard-bench appends`: audit appends per second as consoles make
//! them — one `Engine::audit` call per entry, each a writing transaction that
//! reads the chain's last hash and appends after it (one at a time on every
//! store: SQLite's write lock, PostgreSQL's advisory lock). Measured for one
//! console on SQLite, then for one and for N consoles sharing a PostgreSQL
//! database, each console an engine with its own connection pool appending
//! one entry after another, as replicas would. Every chain is verified
//! after. Figures to read, not assertions.

use anyhow::Context;
use engine::audit::{AuditActor, Event, Outcome};
use engine::Engine;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Options {
    pub secs: Duration,
    pub replicas: usize,
    /// A PostgreSQL server on which to make the shared database.
    pub postgres: Option<String>,
}

/// `n` consoles on the database `url`, each with its own pool.
async fn consoles(url: &str, n: usize, logs: &Path) -> anyhow::Result<Vec<Engine>> {
    let mut engines = Vec::with_capacity(n);
    for _ in 0..n {
        let pool = engine::store::open(url).await?;
        let runtime = Arc::new(engine::ProcessRuntime::new(logs.to_path_buf()));
        engines.push(Engine::new(pool, runtime));
    }
    Ok(engines)
}

/// Every console appends one entry after another for `secs`: the total.
async fn append_for(engines: &[Engine], secs: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + secs;
    let tasks: Vec<_> = engines
        .iter()
        .enumerate()
        .map(|(i, engine)| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let mut ev = Event::new(AuditActor::System, "deploy.finish", Outcome::Ok);
                    ev.target = Some(format!("console-{i} entry-{n}"));
                    engine.audit(ev).await?;
                    n += 1;
                }
                anyhow::Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total)
}

pub async fn appends(dir: &Path, opts: Options) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let logs: PathBuf = dir.join("logs");
    println!(
        "audit appends, {} s per row, each console appending one entry after another",
        opts.secs.as_secs()
    );
    println!(
        "{:<12} {:>8} {:>10} {:>12}  chain",
        "store", "consoles", "appends", "per second"
    );

    let sqlite = format!("sqlite:{}", dir.join("appends.db").display());
    let mut rows: Vec<(&str, String, usize)> = vec![("SQLite", sqlite, 1)];
    let mut made = None;
    match &opts.postgres {
        Some(server) => {
            let url = engine::store::testing::create_database(server)
                .await
                .context("creating a PostgreSQL database for the benchmark")?;
            rows.push(("PostgreSQL", url.clone(), 1));
            if opts.replicas > 1 {
                rows.push(("PostgreSQL", url.clone(), opts.replicas));
            }
            made = Some((server.clone(), url));
        }
        None => println!("PostgreSQL: skipped (give --postgres or SWITCHYARD_BENCH_POSTGRES)"),
    }
    for (store, url, n) in rows {
        let engines = consoles(&url, n, &logs).await?;
        let total = append_for(&engines, opts.secs).await?;
        let verdict = engine::audit::verify(engines[0].pool()).await?;
        println!(
            "{store:<12} {n:>8} {total:>10} {:>12.0}  {verdict:?}",
            total as f64 / opts.secs.as_secs_f64()
        );
        for e in &engines {
            e.pool().close().await;
        }
    }
    if let Some((server, url)) = made {
        engine::store::testing::drop_database(&server, &url).await?;
    }
    Ok(())
}
