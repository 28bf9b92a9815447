//! Webhook subscriptions and their deliveries as admins see them: the
//! signing secret is shown once, when a subscription is made.

use crate::string_enum::string_enum;
use serde::{Deserialize, Serialize};

string_enum! {
    /// What a subscription is told about (`type` of a Standard Webhooks
    /// payload).
    pub enum WebhookEvent("webhook event") {
        ReleaseRequested = "release.requested",
        /// A release waits for signatures; the payload names the roles that
        /// may sign its items.
        SignatureNeeded = "signature.needed",
        ItemSigned = "item.signed",
        DeployStarted = "deploy.started",
        DeploySucceeded = "deploy.succeeded",
        DeployFailed = "deploy.failed",
        /// The watch window saw a breach and rolled back (with the evidence).
        RollbackAutomatic = "rollback.automatic",
        LockBroken = "lock.broken",
        StandbyExpired = "standby.expired",
    }
}

string_enum! {
    /// The body a subscription receives: Standard Webhooks JSON, or a Slack
    /// incoming-webhook message (`{"text": ...}`). Both are signed.
    pub enum WebhookFormat("webhook format") {
        Standard = "standard",
        Slack = "slack",
    }
}

string_enum! {
    /// Where a delivery stands: waiting for its (next) attempt, answered
    /// with a 2xx, or given up 24 h after its first attempt.
    pub enum DeliveryStatus("delivery status") {
        Pending = "pending",
        Delivered = "delivered",
        GaveUp = "gave_up",
    }
}

/// What an admin asks for when subscribing a URL to an environment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http` or `https`; redirects are never followed.
    pub url: String,
    /// The events to send; empty for all of them.
    #[serde(default)]
    pub events: Vec<WebhookEvent>,
    #[serde(default = "standard")]
    pub format: WebhookFormat,
    /// Lets the URL reach loopback and private addresses (refused otherwise).
    #[serde(default)]
    pub allow_private: bool,
}

fn standard() -> WebhookFormat {
    WebhookFormat::Standard
}

/// A subscription as lists show it: never its secret.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: i64,
    pub environment: String,
    pub url: String,
    /// Empty: every event.
    pub events: Vec<WebhookEvent>,
    pub format: WebhookFormat,
    pub allow_private: bool,
    pub created_by: String,
    pub created_at: String,
}

/// A subscription just made: the only time its signing secret is seen.
/// `Debug` leaves the secret out.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedWebhook {
    pub webhook: WebhookView,
    /// `whsec_` and base64: the key receivers verify `webhook-signature` with.
    pub secret: String,
}

impl std::fmt::Debug for CreatedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedWebhook")
            .field("webhook", &self.webhook)
            .finish_non_exhaustive()
    }
}

/// One message to one subscription, and how its attempts went.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: i64,
    pub webhook_id: i64,
    /// The `webhook-id` header: the same on every attempt and redelivery.
    pub message_id: String,
    pub event: WebhookEvent,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub created_at: String,
    pub last_attempt_at: Option<String>,
    /// The receiver's HTTP status at the last attempt, if it answered.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed (timeout, refused, redirect, status).
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    /// The delivery this one sends again (a redelivery).
    pub redelivery_of: Option<i64>,
}
