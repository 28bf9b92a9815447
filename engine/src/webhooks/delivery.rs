//! Sending one delivery: sign it, check where it goes, POST it with no
//! redirects and a time limit, and decide when to try again.

use super::outbox::{self, Attempt, Delivery};
use super::{signing, subscriptions, targets};
use crate::error::Result;
use crate::slot_env::cipher::SecretBox;
use crate::store::Pool;
use std::time::Duration;

/// When deliveries are tried again. The defaults are the documented ones;
/// tests shorten them (`SWITCHYARD_WEBHOOK_RETRY_MS`).
#[derive(Clone, Copy, Debug)]
pub struct WebhookTiming {
    /// The wait after the first failed attempt; each failure doubles it.
    pub first_retry: Duration,
    /// The longest wait between two attempts.
    pub max_retry: Duration,
    /// How long after its first attempt a delivery is given up.
    pub give_up_after: Duration,
    /// How long one attempt may take, connection included.
    pub timeout: Duration,
}

impl Default for WebhookTiming {
    fn default() -> Self {
        WebhookTiming {
            first_retry: Duration::from_secs(10),
            max_retry: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
        }
    }
}

impl WebhookTiming {
    /// The defaults, with the first retry taken from
    /// `SWITCHYARD_WEBHOOK_RETRY_MS` when set (tests watch a retry happen in
    /// seconds; nobody needs it in production).
    pub fn from_env() -> Self {
        let mut t = WebhookTiming::default();
        if let Some(ms) = std::env::var("SWITCHYARD_WEBHOOK_RETRY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
        {
            t.first_retry = Duration::from_millis(ms);
        }
        t
    }

    /// The wait after the `failures`-th failed attempt.
    pub(crate) fn backoff(&self, failures: i64) -> Duration {
        let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.first_retry
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max_retry)
    }
}

/// What one HTTP attempt came to.
struct Answer {
    status_code: Option<u16>,
    error: Option<String>,
}

/// Sends `d` once and records how it went.
pub(crate) async fn attempt(
    pool: &Pool,
    secrets: &SecretBox,
    timing: &WebhookTiming,
    d: &Delivery,
) -> Result<()> {
    let started = outbox::now_ms();
    let answer = match subscriptions::get(pool, d.webhook_id).await {
        Ok(sub) => send(secrets, timing, &sub, d).await,
        Err(e) => Answer {
            status_code: None,
            error: Some(e.to_string()),
        },
    };
    let at_ms = outbox::now_ms();
    let next_ms = answer.error.as_ref().and_then(|_| {
        let first = d.first_attempt_ms.unwrap_or(started);
        let deadline = first + duration_ms(timing.give_up_after);
        let next = at_ms + duration_ms(timing.backoff(d.attempts + 1));
        (at_ms < deadline).then_some(next.min(deadline))
    });
    if let Some(e) = &answer.error {
        tracing::info!(delivery = d.id, webhook = d.webhook_id, error = %e, "webhook attempt failed");
    }
    outbox::record(
        pool,
        d,
        &Attempt {
            at_ms,
            status_code: answer.status_code,
            error: answer.error,
            next_ms,
        },
    )
    .await
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn send(
    secrets: &SecretBox,
    timing: &WebhookTiming,
    sub: &subscriptions::Row,
    d: &Delivery,
) -> Answer {
    let failed = |error: String| Answer {
        status_code: None,
        error: Some(error),
    };
    let url = match targets::parse(&sub.url) {
        Ok(u) => u,
        Err(e) => return failed(e.to_string()),
    };
    // Checked again at every attempt: the name may resolve elsewhere now.
    // The lookup counts against the attempt's time too: the claim's lease
    // assumes no attempt outlasts it.
    let addrs =
        match tokio::time::timeout(timing.timeout, targets::resolve(&url, sub.allow_private)).await
        {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return failed(e.to_string()),
            Err(_) => return failed("resolving the host took too long".into()),
        };
    let secret = match sub.secret(secrets) {
        Ok(s) => s,
        Err(_) => {
            return failed("the signing secret cannot be read with this console's key".into())
        }
    };
    let timestamp = crate::now().timestamp();
    let signature = match signing::sign(&secret, &d.message_id, timestamp, &d.payload) {
        Ok(s) => s,
        Err(e) => return failed(e.to_string()),
    };
    let host = url.host_str().unwrap_or_default().to_string();
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timing.timeout)
        .no_proxy()
        // Connect to the addresses just checked, not to a second lookup's.
        .resolve_to_addrs(&host, &addrs)
        .user_agent("Switchyard-Webhooks/1")
        .build()
    {
        Ok(c) => c,
        Err(e) => return failed(format!("building the HTTP client: {e}")),
    };
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone())
        .send()
        .await;
    match sent {
        Ok(res) => {
            let status = res.status();
            let code = Some(status.as_u16());
            if status.is_success() {
                Answer {
                    status_code: code,
                    error: None,
                }
            } else if status.is_redirection() {
                let to = res
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("?")
                    .chars()
                    .take(200)
                    .collect::<String>();
                Answer {
                    status_code: code,
                    error: Some(format!("redirect ({status}) to {to} not followed")),
                }
            } else {
                Answer {
                    status_code: code,
                    error: Some(format!("the receiver answered {status}")),
                }
            }
        }
        Err(e) if e.is_timeout() => failed(format!(
            "no answer within {} s",
            timing.timeout.as_secs_f32()
        )),
        // Without the URL: its path may be a credential, and this text is
        // logged.
        Err(e) if e.is_connect() => {
            failed(format!("could not connect to {host}: {}", e.without_url()))
        }
        Err(e) => failed(format!("sending failed: {}", e.without_url())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_retry_up_to_the_cap() {
        let t = WebhookTiming::default();
        let secs: Vec<u64> = (1..=11).map(|n| t.backoff(n).as_secs()).collect();
        assert_eq!(
            secs,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(t.backoff(1000).as_secs(), 3600);
    }
}
