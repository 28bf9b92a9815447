//! What a delivery's body is: an announcement in its subscription's
//! format. Apart from `events` (what happened) and `slack` (how a chat
//! shows it), which both only describe announcements.

use super::events::Announcement;
use serde_json::{json, Value};

/// The body sent for `a` in a subscription's format.
pub(crate) fn payload(a: &Announcement, format: model::WebhookFormat) -> Value {
    match format {
        model::WebhookFormat::Standard => json!({
            "type": a.event.as_str(),
            "timestamp": a.at,
            "data": a.data,
        }),
        model::WebhookFormat::Slack => super::slack::message(a),
    }
}
