//! Webhooks: per-environment subscriptions told about releases, signatures,
//! deploys, automatic rollbacks, broken locks and expired standbys.
//!
//! Events are read from the audit log (`events`) into a persisted outbox
//! (`outbox`) by the console's webhook round, then sent signed per Standard
//! Webhooks (`signing`, `delivery`) to checked targets (`targets`), retried
//! with exponential back-off for 24 h. Managing subscriptions is an admin's
//! change to an environment (`Action::ManageEnvironments`), refused to
//! limited API tokens like every console-wide change.

mod body;
mod delivery;
mod events;
mod outbox;
mod signing;
mod slack;
mod subscriptions;
mod targets;

pub use delivery::WebhookTiming;
pub use signing::sign as sign_webhook;

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::engine::Engine;
use crate::environments;
use crate::error::{Error, Result};
use crate::rbac::Action;
use model::{CreatedWebhook, DeliveryView, NewWebhook, WebhookView};

/// How many deliveries the log shows per subscription.
const LOG_LIMIT: i64 = 100;
/// How many deliveries one round sends (at once).
const ROUND_BATCH: i64 = 16;

impl Engine {
    /// Every webhook action is checked before anything is looked up, and
    /// without an environment: a limited token may not manage webhooks.
    async fn authorize_webhooks(&self, actor: &Actor) -> Result<()> {
        self.authorize(actor, Action::ManageEnvironments, None)
            .await
    }

    /// The live subscriptions of an environment (admins).
    pub async fn webhooks(&self, actor: &Actor, env_name: &str) -> Result<Vec<WebhookView>> {
        self.authorize_webhooks(actor).await?;
        let env = environments::find(self.pool(), env_name).await?;
        subscriptions::of_environment(self.pool(), env.id)
            .await?
            .iter()
            .map(subscriptions::Row::view)
            .collect()
    }

    /// Subscribes a URL to an environment's events. The signing secret is
    /// generated here and returned this once; the audit log keeps the URL,
    /// events and format, never the secret.
    pub async fn add_webhook(
        &self,
        actor: &Actor,
        env_name: &str,
        req: &NewWebhook,
    ) -> Result<CreatedWebhook> {
        self.authorize_webhooks(actor).await?;
        let env = environments::find(self.pool(), env_name).await?;
        let url = targets::parse(&req.url)?;
        targets::resolve(&url, req.allow_private).await?;
        let mut events = req.events.clone();
        events.sort_by_key(|e| model::WebhookEvent::ALL.iter().position(|x| x == e));
        events.dedup();
        if events.len() == model::WebhookEvent::ALL.len() {
            events.clear();
        }
        let secrets = self
            .secrets
            .as_deref()
            .ok_or_else(|| Error::Internal("this console holds no secrets key".into()))?;
        let secret = signing::new_secret();
        let url = url.to_string();
        let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        let mut ev = actor.event("webhook.create", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.target = Some(targets::redacted(&url));
        ev.details = serde_json::json!({
            "events": if names.is_empty() { vec!["all"] } else { names },
            "format": req.format,
            "allow_private": req.allow_private,
        });
        // Audited first: a change that cannot be recorded is not made.
        self.audit(ev).await?;
        let id = subscriptions::insert(
            self.pool(),
            secrets,
            &subscriptions::NewRow {
                environment_id: env.id,
                environment: &env.name,
                url: &url,
                events: &events,
                format: req.format,
                allow_private: req.allow_private,
                created_by: &actor.name(),
            },
            &secret,
        )
        .await?;
        Ok(CreatedWebhook {
            webhook: subscriptions::get(self.pool(), id).await?.view()?,
            secret,
        })
    }

    /// Removes a subscription; its pending deliveries are given up.
    pub async fn remove_webhook(&self, actor: &Actor, id: i64) -> Result<WebhookView> {
        self.authorize_webhooks(actor).await?;
        let sub = subscriptions::get(self.pool(), id).await?;
        let mut ev = actor.event("webhook.remove", Outcome::Ok);
        ev.environment = Some(sub.environment.clone());
        ev.target = Some(targets::redacted(&sub.url));
        ev.details = serde_json::json!({ "webhook": id });
        self.audit(ev).await?;
        subscriptions::remove(self.pool(), id).await?;
        sub.view()
    }

    /// A subscription's delivery log, newest first.
    pub async fn webhook_deliveries(&self, actor: &Actor, id: i64) -> Result<Vec<DeliveryView>> {
        self.authorize_webhooks(actor).await?;
        subscriptions::get(self.pool(), id).await?;
        outbox::of_webhook(self.pool(), id, LOG_LIMIT)
            .await?
            .iter()
            .map(outbox::Delivery::view)
            .collect()
    }

    /// Sends a delivery's message again (same `webhook-id` and body), now.
    pub async fn redeliver_webhook(&self, actor: &Actor, delivery_id: i64) -> Result<DeliveryView> {
        self.authorize_webhooks(actor).await?;
        let d = outbox::get(self.pool(), delivery_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("delivery #{delivery_id}")))?;
        let sub = subscriptions::get(self.pool(), d.webhook_id).await?;
        let mut ev = actor.event("webhook.redeliver", Outcome::Ok);
        ev.environment = Some(sub.environment.clone());
        ev.target = Some(targets::redacted(&sub.url));
        ev.details = serde_json::json!({
            "webhook": sub.id, "delivery": d.id, "event": d.event, "message_id": d.message_id,
        });
        self.audit(ev).await?;
        let id = outbox::redeliver(self.pool(), &d).await?;
        outbox::get(self.pool(), id)
            .await?
            .ok_or_else(|| Error::Internal(format!("delivery #{id} vanished")))?
            .view()
    }

    /// One webhook round (the console runs it every second): queue the
    /// events logged since the last round, then send what is due, at most
    /// [`ROUND_BATCH`] at once. Returns how many attempts were made.
    pub async fn webhook_round(&self, timing: &WebhookTiming) -> Result<usize> {
        outbox::fill(self.pool()).await?;
        let Some(secrets) = self.secrets.as_deref() else {
            return Ok(0);
        };
        let now = outbox::now_ms();
        let lease = now
            + i64::try_from((timing.timeout + std::time::Duration::from_secs(5)).as_millis())
                .unwrap_or(i64::MAX / 2);
        let mut claimed = Vec::new();
        for d in outbox::due(self.pool(), now, ROUND_BATCH).await? {
            if outbox::claim(self.pool(), &d, lease).await? {
                claimed.push(d);
            }
        }
        let pool = self.pool();
        let results = futures_util::future::join_all(
            claimed
                .iter()
                .map(|d| delivery::attempt(pool, secrets, timing, d)),
        )
        .await;
        for r in &results {
            if let Err(e) = r {
                tracing::warn!(error = %e, "a webhook attempt could not be recorded");
            }
        }
        Ok(claimed.len())
    }
}
