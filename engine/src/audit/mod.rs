//! The audit log: who did what, where, when, from where, why, and with what
//! result. Entries are appended under one lock and chained by SHA-256, so
//! `verify` finds the first row that was edited, removed or moved.
//!
//! Secrets never belong in an entry: callers pass names and ids, never
//! passwords or tokens, and `details` is built from typed values here.

pub mod checkpoint;
pub mod checkpoints;
pub mod export;
#[cfg(test)]
mod tests;

pub use checkpoint::Checkpoint;

use crate::error::{Error, Result};
use crate::store::{Dialect, Pool};
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
    /// A user acting through an API token: `name` says whose and which.
    Token {
        owner_id: i64,
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
            AuditActor::Token { .. } => "token",
            AuditActor::System => "system",
            AuditActor::Anonymous { .. } => "anonymous",
        }
    }
    fn id(&self) -> Option<i64> {
        match self {
            AuditActor::User { id, .. } => Some(*id),
            AuditActor::Token { owner_id, .. } => Some(*owner_id),
            _ => None,
        }
    }
    fn name(&self) -> String {
        match self {
            AuditActor::User { name, .. } | AuditActor::Token { name, .. } => name.clone(),
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

/// A stored entry. Its serde form is an export's `entry` line (see `export`).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// SHA-256 over a canonical encoding of the entry's own fields (all but
    /// the two hashes): a JSON array in a fixed order, so no separator can be
    /// smuggled into a value. An export can carry this digest in place of an
    /// entry it leaves out and still prove the chain around it.
    pub fn body_digest(&self) -> String {
        sha256_hex(serde_json::Value::Array(self.fields()).to_string().as_bytes())
    }

    /// The entry's own fields, in the canonical order both hash forms use.
    fn fields(&self) -> Vec<serde_json::Value> {
        use serde_json::json;
        vec![
            json!(self.id),
            json!(self.at),
            json!(self.actor_kind),
            json!(self.actor_id),
            json!(self.actor_name),
            json!(self.source_ip),
            json!(self.action),
            json!(self.environment),
            json!(self.target),
            json!(self.reason),
            json!(self.result),
            json!(self.details),
        ]
    }

    /// The entry's link in the chain: its body digest and the hash of the
    /// entry before it.
    pub fn compute_hash(&self) -> String {
        link_hash(&self.body_digest(), &self.prev_hash)
    }

    /// Whether the stored hash is this entry's: the current form, or the
    /// first one (every field and the previous hash in one array), which
    /// entries written before checkpoints existed carry.
    pub fn hash_checks_out(&self) -> bool {
        self.hash == self.compute_hash() || self.hash == self.first_form_hash()
    }

    fn first_form_hash(&self) -> String {
        let mut fields = self.fields();
        fields.push(self.prev_hash.clone().into());
        sha256_hex(serde_json::Value::Array(fields).to_string().as_bytes())
    }
}

/// The hash of an entry whose body digest is `body_digest` and whose
/// predecessor's hash is `prev_hash`. The "v2" tag keeps it apart from the
/// first form, whose arrays start with a number.
pub fn link_hash(body_digest: &str, prev_hash: &str) -> String {
    sha256_hex(serde_json::json!(["v2", body_digest, prev_hash]).to_string().as_bytes())
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Appends entries one at a time, so each sees the hash of the one before.
#[derive(Default)]
pub struct AuditLog {
    append: Mutex<()>,
}

pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
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
            crate::store::query_as("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut tx)
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
        crate::store::query(
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
        .execute(&mut tx)
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

/// Whether `filter` leaves every entry in (pagination aside).
pub(crate) fn filters_nothing(filter: &AuditFilter) -> bool {
    [
        &filter.actor,
        &filter.action,
        &filter.environment,
        &filter.since,
        &filter.until,
        &filter.text,
    ]
    .into_iter()
    .all(|f| given(f).is_none())
        && filter.before.is_none()
}

fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The words searched for: at most 8, each with a letter or digit (the
/// search indexes runs of letters and digits only, so a word without any
/// could never match).
fn search_words(text: &str) -> Vec<&str> {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .take(8)
        .collect()
}

/// Words as an FTS5 query (SQLite): each one quoted (so no user input is
/// FTS syntax), all of them required.
fn fts_query(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Requires every word of `text` in an entry's indexed columns: FTS5's
/// index on SQLite, the `search` tsvector column on PostgreSQL (each word a
/// phrase of the same tokens, see migrations/postgres/…_audit_search.sql).
fn push_text_filter(q: &mut crate::store::QueryBuilder, dialect: Dialect, text: &str) {
    let words = search_words(text);
    if words.is_empty() {
        // Only punctuation: nothing indexed can match it.
        q.push(" AND FALSE");
        return;
    }
    match dialect {
        Dialect::Sqlite => {
            q.push(" AND id IN (SELECT rowid FROM audit_fts WHERE audit_fts MATCH ")
                .push_bind(fts_query(&words))
                .push(")");
        }
        Dialect::Postgres => {
            for w in words {
                q.push(" AND search @@ phraseto_tsquery('simple', audit_search_words(")
                    .push_bind(w.to_string())
                    .push("))");
            }
        }
    }
}

/// Checks a `since`/`until` bound: a day (`2026-11-22`) or a UTC time to
/// the minute or second (`2026-11-22T18:00`, as a date-time picker sends
/// it). The bound is compared with the stored times as text, so anything
/// else would quietly match nothing (or everything).
fn time_bound(field: &'static str, raw: &str) -> Result<()> {
    use chrono::{NaiveDate, NaiveDateTime};
    let ok = match raw.len() {
        10 => NaiveDate::parse_from_str(raw, "%Y-%m-%d").is_ok(),
        16 => NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M").is_ok(),
        19 => NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S").is_ok(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{field}: write a day (2026-11-22) or a UTC time (2026-11-22T18:00)"),
        ))
    }
}

/// One page of entries matching `filter`, newest first (keyset pagination on id).
pub async fn search(pool: &Pool, filter: &AuditFilter, limit: i64) -> Result<AuditPage> {
    let limit = limit.clamp(1, 1000);
    let mut q = crate::store::QueryBuilder::new("SELECT * FROM audit_log WHERE 1 = 1");
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
        time_bound("since", since)?;
        q.push(" AND at >= ").push_bind(since.to_string());
    }
    if let Some(until) = given(&filter.until) {
        time_bound("until", until)?;
        // '~' sorts after every character of a timestamp: "2026-11-22"
        // includes the whole day.
        q.push(" AND at <= ").push_bind(format!("{until}~"));
    }
    if let Some(text) = given(&filter.text) {
        push_text_filter(&mut q, pool.dialect(), text);
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
        crate::store::query_as("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?")
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

/// What a signed checkpoint says the log held: its head hash after
/// `entries` entries (keyed by `entries` in [`Anchors`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// The checkpoint's sequence number, for messages.
    pub seq: u64,
    pub at: String,
    pub head: String,
}

/// Checkpoints by the number of entries they vouch for.
pub type Anchors = std::collections::BTreeMap<u64, Anchor>;

/// Walks the chain alone (no checkpoints): edits, removals and moves inside
/// it are found; a cut tail is not — see [`verify_with`].
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests and benchmarks
pub async fn verify(pool: &Pool) -> Result<Verdict> {
    verify_with(pool, &Anchors::new()).await
}

/// Walks the whole chain in order, in batches so a long log needs little
/// memory, and reports the first broken link. Each anchor's entry must carry
/// the head hash the checkpoint signed, and the log must reach the furthest
/// anchor: entries removed from the end are found here.
pub async fn verify_with(pool: &Pool, anchors: &Anchors) -> Result<Verdict> {
    const BATCH: i64 = 5_000;
    let mut prev = GENESIS.to_string();
    let mut expected_id = 1i64;
    let mut position = 0u64;
    loop {
        let batch: Vec<Entry> =
            crate::store::query_as("SELECT * FROM audit_log WHERE id >= ? ORDER BY id LIMIT ?")
                .bind(expected_id)
                .bind(BATCH)
                .fetch_all(pool)
                .await?;
        if batch.is_empty() {
            return Ok(match anchors.last_key_value() {
                Some((&vouched, a)) if vouched > position => Verdict::Broken {
                    id: position as i64 + 1,
                    position: position + 1,
                    why: format!(
                        "the log ends after {position} entries but checkpoint #{} of {} vouches for {vouched}: \
                         entries {}..{vouched} were removed",
                        a.seq,
                        a.at,
                        position + 1
                    ),
                },
                _ => Verdict::Intact { entries: position },
            });
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
            } else if !e.hash_checks_out() {
                Some("its content does not match its hash".to_string())
            } else {
                anchors
                    .get(&position)
                    .filter(|a| a.head != e.hash)
                    .map(|a| {
                        format!(
                            "it is not the entry checkpoint #{} of {} signed",
                            a.seq, a.at
                        )
                    })
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
