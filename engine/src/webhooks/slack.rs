//! The Slack-compatible body: an incoming-webhook message, `text` for
//! notifications and a section block with the same words marked up.

use super::events::Announcement;
use serde_json::{json, Value};

/// Slack treats `<`, `>` and `&` as markup (links, mentions): user-written
/// words are escaped so a release note cannot ping `@channel`.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(crate) fn message(a: &Announcement) -> Value {
    let text = escape(&format!("[{}] {}", a.environment, a.text));
    json!({
        "text": text,
        "blocks": [{
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("*{}*\n{}", a.event.as_str(), text) },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::WebhookEvent;

    #[test]
    fn text_is_escaped_for_slack() {
        let a = Announcement {
            event: WebhookEvent::DeployFailed,
            environment: "prod".into(),
            at: "2026-12-05T00:00:00Z".into(),
            data: json!({}),
            text: "Deploy of v2 failed: <!channel> & more".into(),
        };
        let m = message(&a);
        assert_eq!(
            m["text"],
            "[prod] Deploy of v2 failed: &lt;!channel&gt; &amp; more"
        );
        assert!(m["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("*deploy.failed*"));
    }
}
