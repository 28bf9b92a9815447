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

pub async fn audit(dir: &Path, entries: u64, runs: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let db = dir.join("bench-audit.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let pool = engine::store::open(&format!("sqlite:{}", db.display()))
        .await
        .context("opening the benchmark database")?;
    let t = Instant::now();
    fill(&pool, entries).await?;
    println!(
        "generated {entries} chained entries in {:.1} s ({})",
        t.elapsed().as_secs_f64(),
        db.display()
    );

    let first = audit::search(&pool, &AuditFilter::default(), 50).await?;
    let deep_before = first.entries.last().map(|e| e.id - 50 * 200);
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
                since: Some(
                    (chrono::Utc::now() - chrono::Duration::days(182))
                        .format("%Y-%m-%d")
                        .to_string(),
                ),
                until: Some(
                    (chrono::Utc::now() - chrono::Duration::days(182))
                        .format("%Y-%m-%d")
                        .to_string(),
                ),
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
    println!(
        "{:<40} {:>10} {:>10} {:>8}",
        "query (50 rows)", "median", "max", "rows"
    );
    for (name, filter) in cases {
        let mut times = Vec::with_capacity(runs);
        let mut rows = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let page = audit::search(&pool, &filter, 50).await?;
            times.push(t.elapsed());
            rows = page.entries.len();
        }
        let max = *times.iter().max().unwrap_or(&Duration::ZERO);
        println!(
            "{name:<40} {:>8.2}ms {:>8.2}ms {rows:>8}",
            median(times).as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0
        );
    }
    let t = Instant::now();
    let verdict = audit::verify(&pool).await?;
    println!(
        "verify (chain only): {verdict:?} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    seal(dir, pool, runs).await
}

/// The cost of the seal at this size: signing a checkpoint, verifying the
/// chain against the checkpoints, and a full export written and verified
/// offline.
async fn seal(dir: &Path, pool: engine::store::Pool, runs: usize) -> anyhow::Result<()> {
    let seal_dir = dir.join("seal");
    let _ = std::fs::remove_dir_all(&seal_dir);
    std::fs::create_dir_all(&seal_dir)?;
    let files = engine::AuditCheckpoints::open(&seal_dir)?;
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
