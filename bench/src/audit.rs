//! `switchyard bench audit`: fills a fresh database with N hash-chained audit
//! entries shaped like a busy team's, then times the audit page's queries
//! (first page, each filter, a deep page) with the same code the console runs.
//! Figures, not assertions: timing on shared 2-core machines is for reading.

use anyhow::Context;
use engine::audit::{self, Entry, GENESIS};
use model::AuditFilter;
use std::path::Path;
use std::time::{Duration, Instant};

const ACTORS: [&str; 12] = [
    "dana", "lee", "sam", "kim", "alex", "jo", "pat", "rob", "ana", "li", "max", "eve",
];
const ACTIONS: [&str; 9] = [
    "auth.login",
    "auth.logout",
    "deploy.start",
    "deploy.finish",
    "rollback.start",
    "rollback.finish",
    "deploy.request",
    "user.create",
    "release.sign",
];
const ENVS: [&str; 4] = ["production", "staging", "qa", "eu-production"];

/// Inserts `n` chained entries in large transactions (bulk load for the
/// benchmark only: the console appends one at a time through `AuditLog`).
async fn fill(pool: &engine::store::Pool, n: u64) -> anyhow::Result<()> {
    let start = chrono::Utc::now() - chrono::Duration::days(365);
    let mut prev = GENESIS.to_string();
    let mut id = 0i64;
    let batch = 20_000u64;
    let mut done = 0u64;
    while done < n {
        let mut tx = engine::store::begin_write(pool).await?;
        for _ in 0..batch.min(n - done) {
            id += 1;
            let i = id as usize;
            let at = start + chrono::Duration::milliseconds(id * 31_536); // spread over a year
            let mut e = Entry {
                id,
                at: at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                actor_kind: "user".into(),
                actor_id: Some((i % ACTORS.len()) as i64 + 1),
                actor_name: ACTORS[i % ACTORS.len()].into(),
                source_ip: Some(format!("10.0.{}.{}", i % 7, i % 251)),
                action: ACTIONS[(i / 3) % ACTIONS.len()].into(),
                environment: Some(ENVS[(i / 5) % ENVS.len()].into()),
                target: Some(format!("v{}.{}.{}", i % 5, i % 17, i % 101)),
                reason: i
                    .is_multiple_of(97)
                    .then(|| format!("incident {} latency spike on checkout", i / 97)),
                result: if i.is_multiple_of(53) { "failed" } else { "ok" }.into(),
                details: format!(
                    "{{\"deployment\":{},\"message\":\"step {}\"}}",
                    i / 4,
                    i % 9
                ),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            e.hash = e.compute_hash();
            engine::store::query(
                "INSERT INTO audit_log (id, at, actor_kind, actor_id, actor_name, source_ip, action, environment, \
                 target, reason, result, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.id)
            .bind(&e.at)
            .bind(&e.actor_kind)
            .bind(e.actor_id)
            .bind(&e.actor_name)
            .bind(&e.source_ip)
            .bind(&e.action)
            .bind(&e.environment)
            .bind(&e.target)
            .bind(&e.reason)
            .bind(&e.result)
            .bind(&e.details)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .execute(&mut tx)
            .await?;
            prev = e.hash;
        }
        tx.commit().await?;
        done += batch.min(n - done);
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A store the benchmark runs on: SQLite in the data directory, or a fresh
/// database on a PostgreSQL server (dropped at the end).
struct Store {
    name: &'static str,
    pool: engine::store::Pool,
    location: String,
    /// (server, database URL) of a PostgreSQL database to drop.
    made: Option<(String, String)>,
}

async fn sqlite_store(dir: &Path) -> anyhow::Result<Store> {
    let db = dir.join("bench-audit.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let pool = engine::store::open(&format!("sqlite:{}", db.display()))
        .await
        .context("opening the benchmark database")?;
    Ok(Store {
        name: "SQLite",
        pool,
        location: db.display().to_string(),
        made: None,
    })
}

async fn postgres_store(server: &str) -> anyhow::Result<Store> {
    let url = engine::store::testing::create_database(server)
        .await
        .context("creating a PostgreSQL database for the benchmark")?;
    let pool = engine::store::open(&url).await?;
    let location = url.rsplit('/').next().unwrap_or_default().to_string();
    Ok(Store {
        name: "PostgreSQL",
        pool,
        location,
        made: Some((server.to_string(), url)),
    })
}

/// The audit page's queries, each timed `runs` times: (median, max, rows).
async fn time_queries(
    pool: &engine::store::Pool,
    runs: usize,
) -> anyhow::Result<Vec<(&'static str, Duration, Duration, usize)>> {
    let first = audit::search(pool, &AuditFilter::default(), 50).await?;
    let deep_before = first.entries.last().map(|e| e.id - 50 * 200);
    let day = (chrono::Utc::now() - chrono::Duration::days(182))
        .format("%Y-%m-%d")
        .to_string();
    let cases: Vec<(&str, AuditFilter)> = vec![
        ("first page, no filter", AuditFilter::default()),
        (
            "actor = lee",
            AuditFilter {
                actor: Some("lee".into()),
                ..Default::default()
            },
        ),
        (
            "action family = rollback",
            AuditFilter {
                action: Some("rollback".into()),
                ..Default::default()
            },
        ),
        (
            "environment = qa",
            AuditFilter {
                environment: Some("qa".into()),
                ..Default::default()
            },
        ),
        (
            "actor + action + environment",
            AuditFilter {
                actor: Some("sam".into()),
                action: Some("deploy.finish".into()),
                environment: Some("production".into()),
                ..Default::default()
            },
        ),
        (
            "text = \"latency spike\"",
            AuditFilter {
                text: Some("latency spike".into()),
                ..Default::default()
            },
        ),
        (
            "time range (one day, 6 months ago)",
            AuditFilter {
                since: Some(day.clone()),
                until: Some(day),
                ..Default::default()
            },
        ),
        (
            "page 200 (keyset, before = id)",
            AuditFilter {
                before: deep_before,
                ..Default::default()
            },
        ),
    ];
    let mut figures = Vec::with_capacity(cases.len());
    for (name, filter) in cases {
        let mut times = Vec::with_capacity(runs);
        let mut rows = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let page = audit::search(pool, &filter, 50).await?;
            times.push(t.elapsed());
            rows = page.entries.len();
        }
        let max = *times.iter().max().unwrap_or(&Duration::ZERO);
        figures.push((name, median(times), max, rows));
    }
    Ok(figures)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Fills each store (SQLite, and PostgreSQL when `postgres` names a server)
/// with the same `entries`, times the audit page's queries on each, side by
/// side, then the chain's verification and the seal on each.
pub async fn audit(
    dir: &Path,
    entries: u64,
    runs: usize,
    postgres: Option<&str>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut stores = vec![sqlite_store(dir).await?];
    if let Some(server) = postgres {
        stores.push(postgres_store(server).await?);
    }
    let mut figures = Vec::new();
    for store in &stores {
        let t = Instant::now();
        fill(&store.pool, entries).await?;
        println!(
            "generated {entries} chained entries in {:.1} s ({}: {})",
            t.elapsed().as_secs_f64(),
            store.name,
            store.location
        );
        figures.push(time_queries(&store.pool, runs).await?);
    }

    print!("{:<38}", "query (50 rows), ms: median / max");
    for store in &stores {
        print!(" {:>19}", store.name);
    }
    println!(" {:>6}", "rows");
    for (i, (name, ..)) in figures[0].iter().enumerate() {
        print!("{name:<38}");
        for f in &figures {
            print!(" {:>9.2} / {:>7.2}", ms(f[i].1), ms(f[i].2));
        }
        let rows: Vec<String> = figures.iter().map(|f| f[i].3.to_string()).collect();
        println!(" {:>6}", rows.join("/"));
    }

    for store in stores {
        let t = Instant::now();
        let verdict = audit::verify(&store.pool).await?;
        println!(
            "{}: verify (chain only): {verdict:?} in {:.1} s",
            store.name,
            t.elapsed().as_secs_f64()
        );
        let seal_dir = dir.join(format!("seal-{}", store.name.to_lowercase()));
        seal(&seal_dir, store.pool.clone(), runs).await?;
        if let Some((server, url)) = &store.made {
            store.pool.close().await;
            engine::store::testing::drop_database(server, url).await?;
        }
    }
    Ok(())
}

/// The cost of the seal at this size: signing a checkpoint, verifying the
/// chain against the checkpoints, and a full export written and verified
/// offline.
async fn seal(seal_dir: &Path, pool: engine::store::Pool, runs: usize) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(seal_dir);
    std::fs::create_dir_all(seal_dir)?;
    let files = engine::AuditCheckpoints::open(seal_dir)?;
    let runtime = std::sync::Arc::new(engine::ProcessRuntime::new(seal_dir.join("logs")));
    let engine = engine::Engine::new(pool.clone(), runtime).with_checkpoints(files.clone());
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        // A rotation always writes (a plain checkpoint of an unchanged log
        // does not): the same query, signature, append and fsync, plus a key.
        let t = Instant::now();
        engine.rotate_audit_key().await?;
        times.push(t.elapsed());
    }
    println!(
        "checkpoint (sign + append + fsync): median {:.2} ms over {runs}",
        median(times).as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let sealed = engine.check_audit(None, None).await?;
    println!(
        "verify (chain + {runs} checkpoints): {} in {:.1} s",
        if sealed.is_intact() {
            "intact"
        } else {
            "BROKEN"
        },
        t.elapsed().as_secs_f64()
    );
    let actor = engine::Actor::system();
    let t = Instant::now();
    let (head, mut cursor) = engine
        .audit_export_start(&actor, &AuditFilter::default())
        .await?;
    let export = seal_dir.join("export.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&export)?);
    std::io::Write::write_all(&mut out, head.as_bytes())?;
    while let Some(block) = engine
        .audit_export_block(&actor, &AuditFilter::default(), &mut cursor)
        .await?
    {
        std::io::Write::write_all(&mut out, block.as_bytes())?;
    }
    drop(out);
    let size = std::fs::metadata(&export)?.len();
    println!(
        "full export: {:.1} MB in {:.1} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let reader = std::io::BufReader::new(std::fs::File::open(&export)?);
    let report = engine::verify_audit_export(reader, &files.public_key()?)
        .map_err(|b| anyhow::anyhow!("export broken at line {}: {}", b.line, b.why))?;
    println!(
        "verify-export (offline): {} entries, complete: {} in {:.1} s",
        report.entries,
        report.complete,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
