//! `GET /api/deployments/{id}/events` (the page, by session) and
//! `GET /api/v1/deployments/{id}/events` (pipelines and the remote CLI, by
//! token): one deployment's detail (the same `DeploymentDetail` its page
//! shows) as server-sent events, so a follower sees a running deploy and its
//! watch window without asking again.
//!
//! The stream reads the database every [`POLL`] and sends an unnamed
//! (`message`) event only when what the page shows changed: a step's status or
//! progress message (the drain's in-flight count), the deployment's status,
//! the watch's figures. The running clocks ("4.2 s so far") count as a change
//! once per whole second, as the page's old one-second refresh did. Once the
//! deployment has ended and no watch window runs, the final detail goes out as
//! a `done` event and the stream ends. A stream also ends after [`LIFETIME`]
//! (an idle tab must not hold a connection forever) and as soon as its user
//! is disabled, has their password reset, or loses the right to view — or,
//! for a token, as soon as the token is revoked or expires or its owner is
//! disabled: who is watching is checked again before every read.
//!
//! Everything is decided before the first byte: no session → 401, unknown
//! deployment → 404. GET only; nothing is written.

use app::state::AppState;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, State};
use axum::http::{Extensions, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use engine::Actor;
use engine::Engine;
use model::{DeploymentDetail, DeploymentStatus, StepStatus, WatchStatus};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;
use tower_sessions::Session;

/// How often the stream reads the deployment.
pub const POLL: Duration = Duration::from_millis(250);
/// A comment line this often when nothing changed, so proxies and the
/// browser see the connection is alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The longest a stream lives; the page falls back to asking once a second.
pub const LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Whether the page has anything left to follow: the deployment runs, or its
/// watch window does.
pub fn is_live(d: &DeploymentDetail) -> bool {
    d.deployment.status == DeploymentStatus::Running
        || d.watch
            .as_ref()
            .is_some_and(|w| w.status == WatchStatus::Watching)
}

/// What decides whether an event is due: the detail with its running clocks
/// counted in whole seconds (they change on every read otherwise).
fn change_key(d: &DeploymentDetail) -> String {
    let mut d = d.clone();
    if d.deployment.status == DeploymentStatus::Running {
        d.elapsed_ms /= 1000;
    }
    for s in &mut d.steps {
        if s.status == StepStatus::Running {
            s.duration_ms = s.duration_ms.map(|ms| ms / 1000);
        }
    }
    serde_json::to_string(&d).unwrap_or_default()
}

fn event(name: Option<&str>, d: &DeploymentDetail) -> Event {
    let e = Event::default();
    let e = match name {
        Some(n) => e.event(n),
        None => e,
    };
    // DeploymentDetail is plain data: serializing it cannot fail.
    e.json_data(d)
        .unwrap_or_else(|_| Event::default().comment("unencodable"))
}

/// Who follows the stream, as read again before every poll.
pub(crate) enum Viewer {
    /// A signed-in person: the session's user and the password epoch it
    /// was made under.
    Session { user_id: i64, auth_epoch: i64 },
    /// An API token, presented again to the engine on every read (the
    /// secret stays in this process's memory only for the stream's life).
    Token { secret: String },
}

struct Follow {
    engine: Engine,
    viewer: Viewer,
    source_ip: Option<String>,
    id: i64,
    /// The detail not sent yet (the first one, read before the stream began).
    pending: Option<DeploymentDetail>,
    last_key: String,
    until: Instant,
    finished: bool,
}

impl Follow {
    /// The account, read fresh: a disabled user, a reset password or a
    /// revoked token ends the stream, a role change applies to the next read.
    async fn actor(&self) -> Option<Actor> {
        let ip = self.source_ip.clone();
        let found = match &self.viewer {
            Viewer::Session {
                user_id,
                auth_epoch,
            } => self
                .engine
                .session_user(*user_id, Some(*auth_epoch))
                .await
                .map(|u| u.map(|u| Actor::user(u).from_ip(ip))),
            Viewer::Token { secret } => match self.engine.token_actor(secret, ip).await {
                Ok(actor) => Ok(Some(actor)),
                Err(engine::Error::BadToken(_)) => Ok(None),
                Err(e) => Err(e),
            },
        };
        found.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "deployment events: reading who follows");
            None
        })
    }

    /// The next event, or `None` when the stream is over.
    async fn next(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        loop {
            let detail = match self.pending.take() {
                Some(d) => d,
                None => {
                    if Instant::now() >= self.until {
                        return None;
                    }
                    tokio::time::sleep(POLL).await;
                    let actor = self.actor().await?;
                    match self.engine.deployment(&actor, self.id).await {
                        Ok(d) => d,
                        Err(e) => {
                            if !matches!(e, engine::Error::Forbidden { .. }) {
                                tracing::warn!(error = %e, id = self.id, "deployment events stopped");
                            }
                            return None;
                        }
                    }
                }
            };
            if !is_live(&detail) {
                self.finished = true;
                return Some(event(Some("done"), &detail));
            }
            let key = change_key(&detail);
            if key != self.last_key {
                self.last_key = key;
                return Some(event(None, &detail));
            }
        }
    }
}

pub async fn deployment_events(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    extensions: Extensions,
) -> Response {
    let user = match app::auth::ssr::user_of(&state, &session).await {
        Ok(Some(u)) => u,
        Ok(None) => return (StatusCode::UNAUTHORIZED, "please sign in").into_response(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let source_ip = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let viewer = Viewer::Session {
        user_id: user.id,
        auth_epoch: user.auth_epoch,
    };
    let actor = Actor::user(user).from_ip(source_ip.clone());
    let first = match state.engine.deployment(&actor, id).await {
        Ok(d) => d,
        Err(e @ engine::Error::NotFound(_)) => {
            return (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Err(e @ engine::Error::Forbidden { .. }) => {
            return (StatusCode::FORBIDDEN, e.to_string()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "deployment events");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    stream(state.engine.clone(), viewer, source_ip, first)
}

/// The event stream of a deployment whose first detail `viewer` may read
/// (checked by the caller, so refusals are a status before the first byte).
pub(crate) fn stream(
    engine: Engine,
    viewer: Viewer,
    source_ip: Option<String>,
    first: DeploymentDetail,
) -> Response {
    let follow = Follow {
        engine,
        viewer,
        source_ip,
        id: first.deployment.id,
        pending: Some(first),
        last_key: String::new(),
        until: Instant::now() + LIFETIME,
        finished: false,
    };
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        let e = f.next().await?;
        Some((Ok::<_, Infallible>(e), f))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{DeploymentKind, DeploymentView, StepView};

    fn detail(status: DeploymentStatus, elapsed_ms: i64, step_ms: i64) -> DeploymentDetail {
        DeploymentDetail {
            deployment: DeploymentView {
                id: 1,
                environment: "production".into(),
                kind: DeploymentKind::Deploy,
                status,
                from_version: None,
                to_version: Some("v2".into()),
                from_slot: None,
                to_slot: None,
                requested_by: "dana".into(),
                reason: None,
                message: None,
                started_at: "2024-01-01T00:00:00Z".into(),
                finished_at: None,
                duration_ms: None,
            },
            steps: vec![StepView {
                seq: 1,
                name: "health".into(),
                status: StepStatus::Running,
                started_at: None,
                finished_at: None,
                duration_ms: Some(step_ms),
                message: None,
            }],
            elapsed_ms,
            watch: None,
            promote_to: Vec::new(),
            hold: None,
        }
    }

    #[test]
    fn running_clocks_count_once_a_second_and_real_changes_at_once() {
        let a = detail(DeploymentStatus::Running, 1_100, 300);
        assert_eq!(
            change_key(&a),
            change_key(&detail(DeploymentStatus::Running, 1_900, 800))
        );
        assert_ne!(
            change_key(&a),
            change_key(&detail(DeploymentStatus::Running, 2_000, 800))
        );
        let mut progress = a.clone();
        progress.steps[0].message = Some("2 requests in flight".into());
        assert_ne!(change_key(&a), change_key(&progress));
        assert!(is_live(&a));
        assert!(!is_live(&detail(DeploymentStatus::Succeeded, 1_100, 300)));
    }
}
