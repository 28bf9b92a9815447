//! The outbox: one row per message to one subscription, written in the same
//! transaction that moves the audit cursor past the entry it announces, so a
//! console that dies between the two neither loses nor repeats an event.
//! Rows stay as the delivery log.

use super::events;
use super::subscriptions;
use crate::audit::Entry;
use crate::error::{parse_stored, Result};
use crate::store::Pool;
use chrono::{SecondsFormat, TimeZone, Utc};
use model::{DeliveryView, WebhookEvent};

/// How many audit entries one round reads.
const BATCH: i64 = 200;

pub(crate) fn now_ms() -> i64 {
    crate::now().timestamp_millis()
}

fn ms_text(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A new `webhook-id`: unique per message, kept across its attempts.
fn message_id() -> String {
    let bytes: [u8; 16] = rand::random();
    format!("msg_{}", hex::encode(bytes))
}

/// Turns the audit entries after the cursor into deliveries. Returns how
/// many deliveries were queued.
pub(crate) async fn fill(pool: &Pool) -> Result<usize> {
    let cursor: i64 =
        crate::store::query_scalar("SELECT last_audit_id FROM webhook_cursor WHERE id = 1")
            .fetch_one(pool)
            .await?;
    let entries: Vec<Entry> =
        crate::store::query_as("SELECT * FROM audit_log WHERE id > ? ORDER BY id LIMIT ?")
            .bind(cursor)
            .bind(BATCH)
            .fetch_all(pool)
            .await?;
    let Some(last) = entries.last().map(|e| e.id) else {
        return Ok(0);
    };
    let mut rows = Vec::new();
    for entry in &entries {
        for a in events::announcements(pool, entry).await? {
            for sub in subscriptions::of_environment_named(pool, &a.environment).await? {
                if sub.wants(a.event) {
                    let body = super::body::payload(&a, sub.format()?).to_string();
                    rows.push((sub.id, entry.id, a.clone(), body));
                }
            }
        }
    }
    let mut tx = crate::store::begin_write(pool).await?;
    // Compare and swap: a second console filling the same entries loses
    // here and queues nothing.
    let moved = crate::store::query(
        "UPDATE webhook_cursor SET last_audit_id = ? WHERE id = 1 AND last_audit_id = ?",
    )
    .bind(last)
    .bind(cursor)
    .execute(&mut tx)
    .await?
    .rows_affected();
    if moved == 0 {
        return Ok(0);
    }
    let now = now_ms();
    for (webhook_id, audit_id, a, body) in &rows {
        insert_raw(
            &mut tx,
            *webhook_id,
            &message_id(),
            Some(*audit_id),
            a.event.as_str(),
            body,
            now,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

#[allow(clippy::too_many_arguments)]
async fn insert_raw(
    tx: &mut crate::store::Tx,
    webhook_id: i64,
    message_id: &str,
    audit_id: Option<i64>,
    event: &str,
    body: &str,
    due_ms: i64,
    redelivery_of: Option<i64>,
) -> Result<i64> {
    Ok(crate::store::query_scalar(
        "INSERT INTO webhook_deliveries (webhook_id, message_id, audit_id, event, payload, \
         status, created_at, next_attempt_ms, redelivery_of) \
         VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?) RETURNING id",
    )
    .bind(webhook_id)
    .bind(message_id)
    .bind(audit_id)
    .bind(event)
    .bind(body)
    .bind(ms_text(now_ms()))
    .bind(due_ms)
    .bind(redelivery_of)
    .fetch_one(&mut *tx)
    .await?)
}

/// A delivery as the sender needs it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct Delivery {
    pub(crate) id: i64,
    pub(crate) webhook_id: i64,
    pub(crate) message_id: String,
    pub(crate) audit_id: Option<i64>,
    pub(crate) event: String,
    pub(crate) payload: String,
    pub(crate) status: String,
    pub(crate) attempts: i64,
    pub(crate) created_at: String,
    pub(crate) first_attempt_ms: Option<i64>,
    pub(crate) last_attempt_ms: Option<i64>,
    pub(crate) next_attempt_ms: Option<i64>,
    pub(crate) last_status_code: Option<i64>,
    pub(crate) last_error: Option<String>,
    pub(crate) redelivery_of: Option<i64>,
}

impl Delivery {
    pub(crate) fn view(&self) -> Result<DeliveryView> {
        Ok(DeliveryView {
            id: self.id,
            webhook_id: self.webhook_id,
            message_id: self.message_id.clone(),
            event: parse_stored::<WebhookEvent>(&self.event)?,
            status: parse_stored(&self.status)?,
            attempts: self.attempts,
            created_at: self.created_at.clone(),
            last_attempt_at: self.last_attempt_ms.map(ms_text),
            last_status_code: self.last_status_code.and_then(|c| u16::try_from(c).ok()),
            last_error: self.last_error.clone(),
            next_attempt_at: self.next_attempt_ms.map(ms_text),
            redelivery_of: self.redelivery_of,
        })
    }
}

/// The deliveries of a subscription, newest first.
pub(crate) async fn of_webhook(pool: &Pool, webhook_id: i64, limit: i64) -> Result<Vec<Delivery>> {
    Ok(crate::store::query_as(
        "SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?",
    )
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub(crate) async fn get(pool: &Pool, id: i64) -> Result<Option<Delivery>> {
    Ok(
        crate::store::query_as("SELECT * FROM webhook_deliveries WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Queues `d`'s message again, now, under the same `webhook-id` (receivers
/// that already have it can tell).
pub(crate) async fn redeliver(pool: &Pool, d: &Delivery) -> Result<i64> {
    let mut tx = crate::store::begin_write(pool).await?;
    let id = insert_raw(
        &mut tx,
        d.webhook_id,
        &d.message_id,
        d.audit_id,
        &d.event,
        &d.payload,
        now_ms(),
        Some(d.id),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Deliveries due now whose subscription is live.
pub(crate) async fn due(pool: &Pool, now: i64, limit: i64) -> Result<Vec<Delivery>> {
    Ok(crate::store::query_as(
        "SELECT d.* FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.status = 'pending' AND d.next_attempt_ms <= ? AND w.removed_at IS NULL \
         ORDER BY d.next_attempt_ms, d.id LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Takes `d` for one attempt: its next attempt moves to `lease_until`, so
/// another console (or this one's next round) leaves it alone while it is
/// sent, and a console that dies mid-send has it sent again after the lease.
/// `false`: someone else took it first.
pub(crate) async fn claim(pool: &Pool, d: &Delivery, lease_until: i64) -> Result<bool> {
    Ok(crate::store::query(
        "UPDATE webhook_deliveries SET next_attempt_ms = ? \
         WHERE id = ? AND status = 'pending' AND next_attempt_ms IS NOT DISTINCT FROM ?",
    )
    .bind(lease_until)
    .bind(d.id)
    .bind(d.next_attempt_ms)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// How an attempt went, as recorded.
pub(crate) struct Attempt {
    pub(crate) at_ms: i64,
    pub(crate) status_code: Option<u16>,
    pub(crate) error: Option<String>,
    /// `None` with no error: delivered. `None` with an error: given up.
    pub(crate) next_ms: Option<i64>,
}

pub(crate) async fn record(pool: &Pool, d: &Delivery, a: &Attempt) -> Result<()> {
    let status = match (&a.error, a.next_ms) {
        (None, _) => "delivered",
        (Some(_), Some(_)) => "pending",
        (Some(_), None) => "gave_up",
    };
    crate::store::query(
        "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, \
         first_attempt_ms = COALESCE(first_attempt_ms, ?), last_attempt_ms = ?, \
         next_attempt_ms = ?, last_status_code = ?, last_error = ? WHERE id = ?",
    )
    .bind(status)
    .bind(a.at_ms)
    .bind(a.at_ms)
    .bind(a.next_ms)
    .bind(a.status_code.map(i64::from))
    .bind(&a.error)
    .bind(d.id)
    .execute(pool)
    .await?;
    Ok(())
}
