//! Who calls the API: the bearer token in `Authorization`, checked by the
//! engine on every request (`Engine::token_actor`), and how often they may.
//! The API never reads the session cookie, so a browser page elsewhere
//! cannot make a signed-in person's browser call it (no CSRF), and a token
//! never needs a cookie.

use super::problem::Problem;
use app::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use engine::Actor;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests one token may make per [`WINDOW`].
pub const TOKEN_LIMIT: u32 = 600;
/// Refused tokens one address may present per [`WINDOW`]; past it, its
/// refused requests are answered 429 instead of 401. A valid token is never
/// held back by others' mistakes from the same address (a load balancer in
/// front of the console makes every client one address).
pub const BAD_TOKEN_LIMIT: u32 = 30;
pub const WINDOW: Duration = Duration::from_secs(60);

/// Counts requests per key in fixed windows. Small and in memory: each
/// console counts its own requests.
#[derive(Clone, Default)]
pub struct RateLimit {
    windows: Arc<Mutex<HashMap<String, (Instant, u32)>>>,
}

impl RateLimit {
    /// Counts one request for `key`; `Err(seconds)` when over `limit`.
    fn charge(&self, key: &str, limit: u32) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let (start, count) = windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= limit {
            let left = WINDOW.saturating_sub(now.duration_since(*start));
            return Err(left.as_secs().max(1));
        }
        *count += 1;
        Ok(())
    }

    /// Whether `key` is already over `limit`, without counting.
    fn over(&self, key: &str, limit: u32) -> Option<u64> {
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = windows.get(key)?;
        let age = now.duration_since(*start);
        (age < WINDOW && *count >= limit).then(|| WINDOW.saturating_sub(age).as_secs().max(1))
    }
}

fn limited(retry_after_secs: u64) -> Problem {
    let mut p = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; try again in {retry_after_secs} s"),
    );
    p.retry_after_secs = Some(retry_after_secs);
    p
}

/// The engine actor of an API request.
pub struct ApiActor(pub Actor);

/// The token a request presents in `Authorization: Bearer …`, or why
/// there is none.
pub(super) fn bearer(headers: &HeaderMap) -> Result<&str, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(
            "send the token as `Authorization: Bearer sy_…` (make one on the Tokens page \
             or with `switchyard token create`)",
        );
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or("the Authorization header must be `Bearer <token>`")
}

impl FromRequestParts<AppState> for ApiActor {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Problem> {
        let limits = parts
            .extensions
            .get::<RateLimit>()
            .cloned()
            .unwrap_or_default();
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let bad_key = format!("bad:{}", ip.as_deref().unwrap_or("?"));
        let token = bearer(&parts.headers).map_err(Problem::unauthenticated)?;
        match st.engine.token_actor(token, ip).await {
            Ok(actor) => {
                let (_, prefix) = actor.token().unwrap_or_default();
                limits
                    .charge(&format!("token:{prefix}"), TOKEN_LIMIT)
                    .map_err(limited)?;
                Ok(ApiActor(actor))
            }
            Err(e) => {
                if let engine::Error::BadToken(why) = &e {
                    tracing::warn!(reason = why, "API request with a refused token");
                    if let Some(secs) = limits.over(&bad_key, BAD_TOKEN_LIMIT) {
                        return Err(limited(secs));
                    }
                    let _ = limits.charge(&bad_key, BAD_TOKEN_LIMIT);
                }
                Err(e.into())
            }
        }
    }
}
