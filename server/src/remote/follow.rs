//! `deploy --wait`: follows a deployment step by step until it ends, then
//! its watch window, and turns the outcome into an exit code.

use super::client::{Client, Failure};
use super::{exit, print, Output};
use model::{DeploymentDetail, DeploymentStatus, StepStatus, WatchStatus};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often the deployment is read while it runs.
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
        watch: None,
        started: Instant::now(),
    };
    let deadline = Instant::now() + timeout;
    let mut d = started;
    loop {
        if output == Output::Text {
            progress.show(&d);
        }
        if !is_live(&d) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
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
