//! `deploy --wait`: follows a deployment step by step, from the console's
//! event stream, until it ends, then its watch window, and turns the outcome
//! into an exit code.

use super::client::{unreachable, Client, Failure};
use super::sse::SseReader;
use super::{exit, print, Output};
use model::{DeploymentDetail, DeploymentStatus, StepStatus, WatchStatus};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often the deployment is read while it runs, when the console does
/// not stream its events.
const POLL: Duration = Duration::from_millis(500);

fn is_live(d: &DeploymentDetail) -> bool {
    d.deployment.status == DeploymentStatus::Running
        || d.watch
            .as_ref()
            .is_some_and(|w| w.status == WatchStatus::Watching)
}

/// The exit code a finished deployment means.
pub fn outcome(d: &DeploymentDetail) -> i32 {
    if d.watch
        .as_ref()
        .is_some_and(|w| w.status == WatchStatus::Breached)
    {
        return exit::ROLLED_BACK;
    }
    match d.deployment.status {
        DeploymentStatus::Succeeded => exit::OK,
        DeploymentStatus::Running => exit::TIMED_OUT,
        DeploymentStatus::Failed => {
            let gates = d
                .steps
                .iter()
                .any(|s| s.name == "gates" && s.status == StepStatus::Failed);
            if gates {
                exit::GATES_FAILED
            } else {
                exit::FAILED
            }
        }
    }
}

/// Prints each step the first time it is seen in a new state.
struct Progress {
    seen: HashMap<String, StepStatus>,
    /// The hold at preview was announced.
    held: bool,
    watch: Option<WatchStatus>,
    started: Instant,
}

impl Progress {
    fn show(&mut self, d: &DeploymentDetail) {
        for s in &d.steps {
            if s.status == StepStatus::Pending || self.seen.get(&s.name) == Some(&s.status) {
                continue;
            }
            self.seen.insert(s.name.clone(), s.status);
            let mark = match s.status {
                StepStatus::Running => "…",
                StepStatus::Succeeded => "✓",
                StepStatus::Failed => "✗",
                StepStatus::Skipped => "-",
                StepStatus::Pending => " ",
            };
            eprintln!(
                "[{:>6.1}s] {mark} {:<10} {}",
                self.started.elapsed().as_secs_f64(),
                s.name,
                s.message.as_deref().unwrap_or("")
            );
        }
        if let Some(h) = d.hold.as_ref().filter(|h| h.waiting() && !self.held) {
            self.held = true;
            let id = d.deployment.id;
            eprintln!(
                "[{:>6.1}s]   held at preview {} until {}: `switchyard hold promote {id}` or \
                 `switchyard hold abort {id} --reason …`; still waiting",
                self.started.elapsed().as_secs_f64(),
                h.preview_url,
                h.until
            );
        }
        if let Some(w) = &d.watch {
            if self.watch != Some(w.status) {
                self.watch = Some(w.status);
                eprintln!(
                    "[{:>6.1}s]   watch      {} until {} {}",
                    self.started.elapsed().as_secs_f64(),
                    w.status,
                    w.until,
                    w.message.as_deref().unwrap_or("")
                );
            }
        }
    }
}

/// Follows the deployment's event stream until its `done` event (returned)
/// or until the stream or the time runs out (`None`); `seen` gets every
/// detail on the way.
async fn follow_stream(
    client: &Client,
    id: i64,
    deadline: Instant,
    seen: &mut impl FnMut(&DeploymentDetail),
) -> Result<Option<DeploymentDetail>, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut res = match client
        .open(&format!("/deployments/{id}/events"), left)
        .await
    {
        Ok(res) => res,
        Err(f) if f.code == exit::UNREACHABLE => return Ok(None),
        Err(f) => return Err(f),
    };
    let mut reader = SseReader::default();
    // A read error (the time limit, a cut connection) ends this stream;
    // the caller reads the deployment and decides.
    while let Ok(Some(chunk)) = res.chunk().await {
        for event in reader.push(&chunk) {
            let detail: DeploymentDetail = serde_json::from_str(&event.data)
                .map_err(|e| unreachable(format!("unexpected event from the console: {e}")))?;
            seen(&detail);
            if event.name.as_deref() == Some("done") {
                return Ok(Some(detail));
            }
        }
    }
    Ok(None)
}

pub async fn deployment(
    client: &Client,
    output: Output,
    started: DeploymentDetail,
    wait: bool,
    timeout: Duration,
) -> Result<i32, Failure> {
    let id = started.deployment.id;
    if !wait {
        print(output, &started, || {
            format!(
                "deployment #{id} of {} to {} started; follow it with --wait or GET /api/v1/deployments/{id}",
                started.deployment.to_version.as_deref().unwrap_or("?"),
                started.deployment.environment
            )
        });
        return Ok(exit::OK);
    }
    let mut progress = Progress {
        seen: HashMap::new(),
        held: false,
        watch: None,
        started: Instant::now(),
    };
    let deadline = Instant::now() + timeout;
    let mut d = started;
    let mut streams = true;
    loop {
        if output == Output::Text {
            progress.show(&d);
        }
        if !is_live(&d) || Instant::now() >= deadline {
            break;
        }
        if streams {
            match follow_stream(client, id, deadline, &mut |next| {
                if output == Output::Text {
                    progress.show(next);
                }
            })
            .await
            {
                // The final detail: the deployment and its watch are over.
                Ok(Some(last)) => {
                    d = last;
                    continue;
                }
                // The stream ended early (its lifetime, a dropped
                // connection): read the state and open a new one, not at
                // once, so a console that keeps cutting it is not hammered.
                Ok(None) => tokio::time::sleep(POLL).await,
                // A console without the stream, or one refusing it: ask
                // the deployment every POLL instead.
                Err(f) if f.code == exit::REFUSED => streams = false,
                Err(f) => return Err(f),
            }
        } else {
            tokio::time::sleep(POLL).await;
        }
        d = client.get(&format!("/deployments/{id}")).await?;
    }
    let code = if is_live(&d) {
        exit::TIMED_OUT
    } else {
        outcome(&d)
    };
    print(output, &d, || {
        let what = match code {
            exit::OK => "succeeded",
            exit::GATES_FAILED => "failed at its gates; users stay on the old version",
            exit::ROLLED_BACK => "was rolled back by its watch window",
            exit::TIMED_OUT => "is still running (timed out waiting; it goes on in the console)",
            _ if d
                .hold
                .as_ref()
                .is_some_and(|h| !h.waiting() && h.decision.as_deref() != Some("promote")) =>
            {
                "was aborted at its hold at preview; users stay on the old version"
            }
            _ => "failed; users stay on the old version",
        };
        format!(
            "deployment #{id} of {} to {} {what}{}",
            d.deployment.to_version.as_deref().unwrap_or("?"),
            d.deployment.environment,
            d.deployment
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )
    });
    Ok(code)
}
