//! The audit log: who did what, where, when, from where, why, and with what
//! result. Entries are appended under one lock and chained by SHA-256, so
//! `verify` finds the first row that was edited, removed or moved.
//!
//! Secrets never belong in an entry: callers pass names and ids, never
//! passwords or tokens, and `details` is built from typed values here.

#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::store::Pool;
use chrono::{DateTime, SecondsFormat, Utc};
use model::{AuditEntryView, AuditFilter, AuditPage};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// The hash the first entry points back to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditActor {
    User {
        id: i64,
        name: String,
    },
    System,
    /// Someone not signed in, e.g. a failed login: the name they typed.
    Anonymous {
        attempted: String,
    },
}

impl AuditActor {
    fn kind(&self) -> &'static str {
        match self {
            AuditActor::User { .. } => "user",
            AuditActor::System => "system",
            AuditActor::Anonymous { .. } => "anonymous",
        }
    }
    fn id(&self) -> Option<i64> {
        match self {
            AuditActor::User { id, .. } => Some(*id),
            _ => None,
        }
    }
    fn name(&self) -> String {
        match self {
            AuditActor::User { name, .. } => name.clone(),
            AuditActor::System => "system".into(),
            AuditActor::Anonymous { attempted } => attempted.chars().take(64).collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// One entry to append.
#[derive(Clone, Debug)]
pub struct Event {
    pub actor: AuditActor,
    pub source_ip: Option<String>,
    pub action: &'static str,
    pub environment: Option<String>,
    pub target: Option<String>,
    pub reason: Option<String>,
    pub outcome: Outcome,
    pub details: serde_json::Value,
}

impl Event {
    pub fn new(actor: AuditActor, action: &'static str, outcome: Outcome) -> Self {
        Event {
            actor,
            source_ip: None,
            action,
            environment: None,
            target: None,
            reason: None,
            outcome,
            details: serde_json::json!({}),
        }
    }
}

/// A stored entry.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    pub id: i64,
    pub at: String,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub source_ip: Option<String>,
    pub action: String,
    pub environment: Option<String>,
    pub target: Option<String>,
    pub reason: Option<String>,
    pub result: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    /// SHA-256 over a canonical encoding: a JSON array of every field but the
    /// hash itself, in a fixed order. JSON arrays leave no room for ambiguity
    /// between fields (no separator can be smuggled into a value).
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.id,
            self.at,
            self.actor_kind,
            self.actor_id,
            self.actor_name,
            self.source_ip,
            self.action,
            self.environment,
            self.target,
            self.reason,
            self.result,
            self.details,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// Appends entries one at a time, so each sees the hash of the one before.
#[derive(Default)]
pub struct AuditLog {
    append: Mutex<()>,
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl AuditLog {
    /// Appends `event`. An error here must stop the action it describes.
    pub async fn append(&self, pool: &Pool, event: Event) -> Result<Entry> {
        let _guard = self.append.lock().await;
        // IMMEDIATE takes SQLite's write lock before the read of the last
        // entry: a deferred transaction that read first would be refused
        // (SQLITE_BUSY_SNAPSHOT) if any other connection committed in between
        // — a session write, a deploy step — and the action would fail for
        // want of its audit entry.
        let mut tx = crate::store::begin_write(pool).await?;
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (id, prev_hash) = match last {
            Some((id, hash)) => (id + 1, hash),
            None => (1, GENESIS.to_string()),
        };
        let mut entry = Entry {
            id,
            at: timestamp(crate::now()),
            actor_kind: event.actor.kind().into(),
            actor_id: event.actor.id(),
            actor_name: event.actor.name(),
            source_ip: event.source_ip,
            action: event.action.into(),
            environment: event.environment,
            target: event.target,
            reason: event.reason,
            result: event.outcome.as_str().into(),
            details: event.details.to_string(),
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor_kind, actor_id, actor_name, source_ip, action, environment, \
             target, reason, result, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.id)
        .bind(&entry.at)
        .bind(&entry.actor_kind)
        .bind(entry.actor_id)
        .bind(&entry.actor_name)
        .bind(&entry.source_ip)
        .bind(&entry.action)
        .bind(&entry.environment)
        .bind(&entry.target)
        .bind(&entry.reason)
        .bind(&entry.result)
        .bind(&entry.details)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::Internal(format!("audit entry could not be written: {e}")))?;
        tx.commit().await?;
        Ok(entry)
    }
}

impl From<Entry> for AuditEntryView {
    fn from(e: Entry) -> Self {
        AuditEntryView {
            id: e.id,
            at: e.at,
            actor_kind: e.actor_kind,
            actor_name: e.actor_name,
            source_ip: e.source_ip,
            action: e.action,
            environment: e.environment,
            target: e.target,
            reason: e.reason,
            result: e.result,
            details: e.details,
            hash: e.hash,
        }
    }
}

fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Words as an FTS5 query: each one quoted (so no user input is FTS syntax),
/// all of them required.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .take(8)
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// One page of entries matching `filter`, newest first (keyset pagination on id).
pub async fn search(pool: &Pool, filter: &AuditFilter, limit: i64) -> Result<AuditPage> {
    let limit = limit.clamp(1, 1000);
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("SELECT * FROM audit_log WHERE 1 = 1");
    if let Some(actor) = given(&filter.actor) {
        q.push(" AND actor_name = ").push_bind(actor.to_string());
    }
    if let Some(action) = given(&filter.action) {
        if action.contains('.') {
            q.push(" AND action = ").push_bind(action.to_string());
        } else {
            // A family ("deploy") matches its members ("deploy.start", ...):
            // a range, so the index still serves it ('/' sorts right after '.').
            q.push(" AND action >= ").push_bind(format!("{action}."));
            q.push(" AND action < ").push_bind(format!("{action}/"));
        }
    }
    if let Some(env) = given(&filter.environment) {
        q.push(" AND environment = ").push_bind(env.to_string());
    }
    if let Some(since) = given(&filter.since) {
        q.push(" AND at >= ").push_bind(since.to_string());
    }
    if let Some(until) = given(&filter.until) {
        // '~' sorts after every character of a timestamp: "2026-11-22"
        // includes the whole day.
        q.push(" AND at <= ").push_bind(format!("{until}~"));
    }
    if let Some(text) = given(&filter.text).and_then(fts_query) {
        q.push(" AND id IN (SELECT rowid FROM audit_fts WHERE audit_fts MATCH ")
            .push_bind(text)
            .push(")");
    }
    if let Some(before) = filter.before {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit + 1);
    let mut rows: Vec<Entry> = q.build_query_as().fetch_all(pool).await?;
    let next_before = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage {
        entries: rows.into_iter().map(AuditEntryView::from).collect(),
        next_before,
    })
}

/// Newest first, at most `limit`.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests and benchmarks
pub async fn recent(pool: &Pool, limit: i64) -> Result<Vec<Entry>> {
    Ok(
        sqlx::query_as("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(pool)
            .await?,
    )
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        entries: u64,
    },
    /// The first entry whose link or content does not check out, and why.
    Broken {
        id: i64,
        position: u64,
        why: String,
    },
}

/// Walks the whole chain in order, in batches so a long log needs little
/// memory, and reports the first broken link.
pub async fn verify(pool: &Pool) -> Result<Verdict> {
    const BATCH: i64 = 5_000;
    let mut prev = GENESIS.to_string();
    let mut expected_id = 1i64;
    let mut position = 0u64;
    loop {
        let batch: Vec<Entry> =
            sqlx::query_as("SELECT * FROM audit_log WHERE id >= ? ORDER BY id LIMIT ?")
                .bind(expected_id)
                .bind(BATCH)
                .fetch_all(pool)
                .await?;
        if batch.is_empty() {
            return Ok(Verdict::Intact { entries: position });
        }
        for e in batch {
            position += 1;
            let why = if e.id != expected_id {
                Some(format!(
                    "entry {expected_id} is missing (found {} next)",
                    e.id
                ))
            } else if e.prev_hash != prev {
                Some("it does not point to the entry before it".to_string())
            } else if e.compute_hash() != e.hash {
                Some("its content does not match its hash".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                return Ok(Verdict::Broken {
                    id: e.id,
                    position,
                    why,
                });
            }
            prev = e.hash;
            expected_id += 1;
        }
    }
}
