//! How often refused requests reach the audit log: the first of a kind from an
//! address, then at most one a minute per kind and address carrying the count
//! of those left out, and at most `GLOBAL_PER_MINUTE` entries a minute in all
//! (many addresses flooding at once). The log stays useful and bounded.

use engine::refusals::{Refusal, RefusedRequest};
use engine::Engine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const GLOBAL_PER_MINUTE: u32 = 120;
/// Addresses remembered at most; older windows are forgotten first.
const MAX_KEYS: usize = 10_000;

#[derive(Clone)]
pub struct RefusalAudit {
    engine: Engine,
    limiter: Arc<Mutex<Limiter>>,
}

#[derive(Default)]
struct Limiter {
    by_key: HashMap<(RefusedRequest, Option<String>), Window>,
    global: Window,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    logged: u32,
    left_out: u64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            started: Instant::now(),
            logged: 0,
            left_out: 0,
        }
    }
}

impl Limiter {
    /// `Some(n)` when this refusal is to be written (n left out before it).
    fn admit(&mut self, key: (RefusedRequest, Option<String>), now: Instant) -> Option<u64> {
        if now.duration_since(self.global.started) >= WINDOW {
            self.global = Window::default();
        }
        if self.by_key.len() >= MAX_KEYS {
            self.by_key
                .retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let w = self.by_key.entry(key).or_default();
        let fresh = w.logged == 0 || now.duration_since(w.started) >= WINDOW;
        if fresh && self.global.logged < GLOBAL_PER_MINUTE {
            let left_out = w.left_out;
            *w = Window {
                started: now,
                logged: 1,
                left_out: 0,
            };
            self.global.logged += 1;
            Some(left_out)
        } else {
            w.left_out += 1;
            None
        }
    }
}

impl RefusalAudit {
    pub fn new(engine: Engine) -> Self {
        RefusalAudit {
            engine,
            limiter: Arc::default(),
        }
    }

    pub async fn record(
        &self,
        kind: RefusedRequest,
        method: &str,
        path: &str,
        source_ip: Option<String>,
    ) {
        let admitted = self
            .limiter
            .lock()
            .map(|mut l| l.admit((kind, source_ip.clone()), Instant::now()))
            .unwrap_or(None);
        let Some(not_logged_since) = admitted else {
            return;
        };
        let refusal = Refusal {
            kind,
            method: method.to_string(),
            path: path.to_string(),
            source_ip,
            not_logged_since,
        };
        if let Err(e) = self.engine.record_refused_request(&refusal).await {
            tracing::error!(error = %e, "could not audit a refused request");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_a_minute_per_kind_and_address_counting_the_rest() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        let key = || (RefusedRequest::CrossOrigin, Some("10.0.0.1".to_string()));
        assert_eq!(l.admit(key(), t0), Some(0));
        for i in 1..=500 {
            assert_eq!(l.admit(key(), t0 + Duration::from_millis(i)), None);
        }
        // Another kind from the same address is its own story.
        assert_eq!(
            l.admit(
                (RefusedRequest::Unauthenticated, Some("10.0.0.1".into())),
                t0
            ),
            Some(0)
        );
        assert_eq!(l.admit(key(), t0 + WINDOW), Some(500));
    }

    #[test]
    fn many_addresses_at_once_are_capped_in_all() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        let written = (0..10_000)
            .filter(|i| {
                l.admit((RefusedRequest::CrossOrigin, Some(format!("10.0.{i}"))), t0)
                    .is_some()
            })
            .count();
        assert_eq!(written, GLOBAL_PER_MINUTE as usize);
    }
}
