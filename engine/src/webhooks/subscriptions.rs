//! The `webhooks` table: who is subscribed to what, with the signing secret
//! sealed by the data directory's secrets key.

use crate::error::{parse_stored, Error, Result};
use crate::slot_env::cipher::{Sealed, SecretBox};
use crate::store::Pool;
use model::{WebhookEvent, WebhookFormat, WebhookView};

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    pub(crate) id: i64,
    pub(crate) environment: String,
    pub(crate) url: String,
    events: String,
    format: String,
    pub(crate) allow_private: bool,
    secret_key_id: String,
    secret_nonce: Vec<u8>,
    secret_sealed: Vec<u8>,
    created_by: String,
    created_at: String,
}

const COLUMNS: &str = "w.id, e.name AS environment, w.url, w.events, w.format, w.allow_private, \
     w.secret_key_id, w.secret_nonce, w.secret_sealed, w.created_by, w.created_at";

/// The name a subscription's secret is sealed under (associated data): a
/// sealed value copied onto another subscription does not open.
pub(crate) fn secret_name(id: i64) -> String {
    format!("webhook/{id}")
}

impl Row {
    pub(crate) fn events(&self) -> Result<Vec<WebhookEvent>> {
        self.events
            .split(',')
            .filter(|s| !s.is_empty())
            .map(parse_stored)
            .collect()
    }

    pub(crate) fn format(&self) -> Result<WebhookFormat> {
        parse_stored(&self.format)
    }

    /// Whether this subscription wants `event` (no list: every event).
    pub(crate) fn wants(&self, event: WebhookEvent) -> bool {
        self.events.is_empty() || self.events.split(',').any(|e| e == event.as_str())
    }

    pub(crate) fn secret(&self, secrets: &SecretBox) -> Result<String> {
        secrets.open_value(
            &self.environment,
            &secret_name(self.id),
            &Sealed {
                key_id: self.secret_key_id.clone(),
                nonce: self.secret_nonce.clone(),
                ciphertext: self.secret_sealed.clone(),
            },
        )
    }

    pub(crate) fn view(&self) -> Result<WebhookView> {
        Ok(WebhookView {
            id: self.id,
            environment: self.environment.clone(),
            url: self.url.clone(),
            events: self.events()?,
            format: self.format()?,
            allow_private: self.allow_private,
            created_by: self.created_by.clone(),
            created_at: self.created_at.clone(),
        })
    }
}

/// The live subscriptions of an environment, oldest first.
pub(crate) async fn of_environment(pool: &Pool, environment_id: i64) -> Result<Vec<Row>> {
    Ok(crate::store::query_as::<Row>(&format!(
        "SELECT {COLUMNS} FROM webhooks w JOIN environments e ON e.id = w.environment_id \
         WHERE w.environment_id = ? AND w.removed_at IS NULL ORDER BY w.id"
    ))
    .bind(environment_id)
    .fetch_all(pool)
    .await?)
}

/// The live subscriptions of the environment named `environment`.
pub(crate) async fn of_environment_named(pool: &Pool, environment: &str) -> Result<Vec<Row>> {
    Ok(crate::store::query_as::<Row>(&format!(
        "SELECT {COLUMNS} FROM webhooks w JOIN environments e ON e.id = w.environment_id \
         WHERE e.name = ? AND w.removed_at IS NULL ORDER BY w.id"
    ))
    .bind(environment)
    .fetch_all(pool)
    .await?)
}

/// A live subscription by id.
pub(crate) async fn get(pool: &Pool, id: i64) -> Result<Row> {
    crate::store::query_as::<Row>(&format!(
        "SELECT {COLUMNS} FROM webhooks w JOIN environments e ON e.id = w.environment_id \
         WHERE w.id = ? AND w.removed_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::NotFound(format!("webhook #{id}")))
}

pub(crate) struct NewRow<'a> {
    pub(crate) environment_id: i64,
    pub(crate) environment: &'a str,
    pub(crate) url: &'a str,
    pub(crate) events: &'a [WebhookEvent],
    pub(crate) format: WebhookFormat,
    pub(crate) allow_private: bool,
    pub(crate) created_by: &'a str,
}

/// Inserts a subscription and seals its secret under its id, in one
/// transaction: no row ever holds a secret sealed for another.
pub(crate) async fn insert(
    pool: &Pool,
    secrets: &SecretBox,
    new: &NewRow<'_>,
    secret: &str,
) -> Result<i64> {
    let mut tx = crate::store::begin_write(pool).await?;
    let events: Vec<&str> = new.events.iter().map(|e| e.as_str()).collect();
    let id: i64 = crate::store::query_scalar(
        "INSERT INTO webhooks (environment_id, url, events, format, allow_private, \
         secret_key_id, secret_nonce, secret_sealed, created_by, created_at) \
         VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?) RETURNING id",
    )
    .bind(new.environment_id)
    .bind(new.url)
    .bind(events.join(","))
    .bind(new.format.as_str())
    .bind(new.allow_private)
    // Sealed below, once the id (part of the secret's name) is known.
    .bind(Vec::<u8>::new())
    .bind(Vec::<u8>::new())
    .bind(new.created_by)
    .bind(crate::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    .fetch_one(&mut tx)
    .await?;
    let sealed = secrets.seal(new.environment, &secret_name(id), secret)?;
    crate::store::query(
        "UPDATE webhooks SET secret_key_id = ?, secret_nonce = ?, secret_sealed = ? WHERE id = ?",
    )
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(id)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Marks a subscription removed; its pending deliveries are given up.
pub(crate) async fn remove(pool: &Pool, id: i64) -> Result<()> {
    let mut tx = crate::store::begin_write(pool).await?;
    crate::store::query("UPDATE webhooks SET removed_at = ? WHERE id = ? AND removed_at IS NULL")
        .bind(crate::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .bind(id)
        .execute(&mut tx)
        .await?;
    crate::store::query(
        "UPDATE webhook_deliveries SET status = 'gave_up', next_attempt_ms = NULL, \
         last_error = COALESCE(last_error, 'the webhook was removed') \
         WHERE webhook_id = ? AND status = 'pending'",
    )
    .bind(id)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
