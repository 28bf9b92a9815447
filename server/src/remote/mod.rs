//! The remote CLI: `switchyard --server URL …` drives a console over its
//! REST API with a token (`credentials`), as a pipeline does. Every command
//! takes `--output json`; exit codes are in `exit`.

mod client;
pub mod credentials;
mod download;
pub mod exit;
mod follow;
mod sse;

pub use client::{Client, Failure};

use model::{DeploymentDetail, DeploymentView, EnvironmentView, HoldView, ReleaseView};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;

/// How answers are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// What a remote command asks of the console.
pub enum Remote {
    Login,
    Status {
        environment: Option<String>,
    },
    EnvList,
    Deploy {
        environment: String,
        version: String,
        wait: bool,
        timeout: Duration,
        override_freeze: Option<String>,
    },
    ReleaseDeploy {
        id: i64,
        wait: bool,
        timeout: Duration,
        override_freeze: Option<String>,
    },
    Rollback {
        environment: String,
        reason: String,
    },
    ReleaseCreate {
        environment: String,
        version: String,
        notes: String,
    },
    ReleaseShow {
        id: i64,
    },
    ReleaseEdit {
        id: i64,
        notes: Option<String>,
        sql_file: Option<std::path::PathBuf>,
    },
    ReleaseCancel {
        id: i64,
        reason: String,
    },
    ReleaseSign {
        id: i64,
        item: i64,
        note: String,
    },
    Promote {
        deployment: i64,
        to: String,
    },
    AuditExport {
        /// `format` and the filter, as query parameters.
        query: Vec<(String, String)>,
        /// Standard output when absent.
        file: Option<std::path::PathBuf>,
    },
    HoldPromote {
        deployment: i64,
    },
    HoldAbort {
        deployment: i64,
        reason: String,
    },
    HoldCanary {
        deployment: i64,
        setting: model::CanarySetting,
    },
}

/// What `hold canary` says it set.
fn canary_text(deployment: i64, s: &model::CanarySetting) -> String {
    let mut text = format!(
        "deployment #{deployment}: {} % of new users to the held release",
        s.percent
    );
    if let Some(h) = &s.header {
        text.push_str(&format!("; testers by header {}: {}", h.name, h.value));
    }
    if let Some(c) = &s.cookie {
        text.push_str(&format!("; testers by cookie {}={}", c.name, c.value));
    }
    text
}

fn print<T: Serialize>(output: Output, value: &T, text: impl FnOnce() -> String) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Text => println!("{}", text()),
    }
}

fn environment_text(e: &EnvironmentView) -> String {
    let live = e.active.and_then(|c| e.slots.iter().find(|s| s.color == c));
    let mut out = format!(
        "{}: users on {}",
        e.name,
        live.map_or_else(
            || "nothing yet".to_string(),
            |s| format!("{} ({})", s.version.as_deref().unwrap_or("?"), s.color)
        )
    );
    for s in &e.slots {
        out += &format!(
            "\n  {:<5} {:<12} {}",
            s.color.to_string(),
            s.version.as_deref().unwrap_or("-"),
            s.state
        );
    }
    if let Some(running) = &e.in_progress {
        out += &format!("\n  {running}");
    }
    out
}

fn release_text(r: &ReleaseView) -> String {
    let mut out = format!(
        "release #{} (revision {}): {} to {}, requested by {} — {}",
        r.id, r.revision, r.version, r.environment, r.requested_by, r.status
    );
    for i in &r.items {
        let state = serde_json::to_value(i.state).unwrap_or_default();
        let state = state.as_str().unwrap_or("?");
        out += &format!("\n  [{state}] #{} {} ({})", i.id, i.title, i.summary);
    }
    for b in &r.blockers {
        out += &format!("\n  blocked: {b}");
    }
    out
}

/// Runs one remote command; returns the process's exit code.
pub async fn run(server: &str, output: Output, command: Remote) -> i32 {
    let result = match command {
        Remote::Login => login(server, output).await,
        other => match credentials::token().and_then(|t| Client::new(server, t)) {
            Ok(client) => execute(&client, output, other).await,
            Err(e) => {
                eprintln!("error: {e:#}");
                return exit::REFUSED;
            }
        },
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            match (output, &f.problem) {
                (Output::Json, Some(p)) => {
                    println!("{}", serde_json::to_string_pretty(p).unwrap_or_default())
                }
                _ => eprintln!("error: {}", f.message),
            }
            f.code
        }
    }
}

/// Reads a token from standard input, checks it with the console and saves
/// it for later commands.
async fn login(server: &str, output: Output) -> Result<i32, Failure> {
    let local = |m: String| Failure {
        code: exit::REFUSED,
        message: m,
        problem: None,
    };
    let mut token = String::new();
    std::io::stdin()
        .read_line(&mut token)
        .map_err(|e| local(format!("reading the token from standard input: {e}")))?;
    let client = Client::new(server, token.trim().to_string()).map_err(|e| local(e.to_string()))?;
    let me: serde_json::Value = client.get("/me").await?;
    let path = credentials::save(token.trim()).map_err(|e| local(format!("{e:#}")))?;
    print(output, &me, || {
        format!(
            "signed in as {} ({}) with token {}; saved to {}",
            me["username"].as_str().unwrap_or("?"),
            me["role"].as_str().unwrap_or("?"),
            me["token"].as_str().unwrap_or("?"),
            path.display()
        )
    });
    Ok(exit::OK)
}

async fn execute(client: &Client, output: Output, command: Remote) -> Result<i32, Failure> {
    match command {
        Remote::Login => unreachable!("handled before a token is read"),
        Remote::Status {
            environment: Some(name),
        } => {
            let e: EnvironmentView = client.get(&format!("/environments/{name}")).await?;
            print(output, &e, || environment_text(&e));
        }
        Remote::Status { environment: None } => {
            let all: Vec<EnvironmentView> = client.get("/environments").await?;
            print(output, &all, || {
                all.iter()
                    .map(environment_text)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Remote::EnvList => {
            let all: Vec<EnvironmentView> = client.get("/environments").await?;
            let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
            print(output, &names, || names.join("\n"));
        }
        Remote::Deploy {
            environment,
            version,
            wait,
            timeout,
            override_freeze,
        } => {
            let started: DeploymentDetail = client
                .post(
                    &format!("/environments/{environment}/deployments"),
                    json!({ "version": version, "override_freeze": override_freeze }),
                )
                .await?;
            return follow::deployment(client, output, started, wait, timeout).await;
        }
        Remote::ReleaseDeploy {
            id,
            wait,
            timeout,
            override_freeze,
        } => {
            let release: ReleaseView = client.get(&format!("/releases/{id}")).await?;
            let started: DeploymentDetail = client
                .post(
                    &format!("/releases/{id}/deploy"),
                    json!({ "revision": release.revision, "override_freeze": override_freeze }),
                )
                .await?;
            return follow::deployment(client, output, started, wait, timeout).await;
        }
        Remote::Rollback {
            environment,
            reason,
        } => {
            let d: DeploymentView = client
                .post(
                    &format!("/environments/{environment}/rollback"),
                    json!({ "reason": reason }),
                )
                .await?;
            print(output, &d, || {
                format!(
                    "rollback #{} {}: users on {} ({})",
                    d.id,
                    d.status,
                    d.to_version.as_deref().unwrap_or("?"),
                    d.to_slot.map(|c| c.to_string()).unwrap_or_default()
                )
            });
            if d.status != model::DeploymentStatus::Succeeded {
                return Ok(exit::FAILED);
            }
        }
        Remote::ReleaseCreate {
            environment,
            version,
            notes,
        } => {
            let r: ReleaseView = client
                .post(
                    "/releases",
                    json!({ "environment": environment, "version": version, "notes": notes }),
                )
                .await?;
            print(output, &r, || release_text(&r));
        }
        Remote::ReleaseShow { id } => {
            let r: ReleaseView = client.get(&format!("/releases/{id}")).await?;
            print(output, &r, || release_text(&r));
        }
        Remote::ReleaseEdit {
            id,
            notes,
            sql_file,
        } => {
            let sql = match sql_file {
                Some(f) => Some(std::fs::read_to_string(&f).map_err(|e| Failure {
                    code: exit::FAILED,
                    message: format!("reading {}: {e}", f.display()),
                    problem: None,
                })?),
                None => None,
            };
            let seen: ReleaseView = client.get(&format!("/releases/{id}")).await?;
            let r: ReleaseView = client
                .call(
                    reqwest::Method::PATCH,
                    &format!("/releases/{id}"),
                    Some(
                        json!({ "revision": seen.revision, "notes": notes, "migration_sql": sql }),
                    ),
                )
                .await?;
            print(output, &r, || release_text(&r));
        }
        Remote::ReleaseCancel { id, reason } => {
            let seen: ReleaseView = client.get(&format!("/releases/{id}")).await?;
            let r: ReleaseView = client
                .post(
                    &format!("/releases/{id}/cancel"),
                    json!({ "revision": seen.revision, "reason": reason }),
                )
                .await?;
            print(output, &r, || release_text(&r));
        }
        Remote::ReleaseSign { id, item, note } => {
            let seen: ReleaseView = client.get(&format!("/releases/{id}")).await?;
            let r: ReleaseView = client
                .post(
                    &format!("/releases/{id}/items/{item}/sign"),
                    json!({ "revision": seen.revision, "note": note }),
                )
                .await?;
            print(output, &r, || release_text(&r));
        }
        Remote::Promote { deployment, to } => {
            let r: ReleaseView = client
                .post(
                    &format!("/deployments/{deployment}/promote"),
                    json!({ "target": to }),
                )
                .await?;
            print(output, &r, || release_text(&r));
        }
        Remote::AuditExport { query, file } => {
            let (bytes, to) = download::audit_export(client, &query, file.as_deref()).await?;
            let summary = json!({ "file": to, "bytes": bytes });
            // The export itself may be on standard output: the summary goes
            // to standard error then, so a pipe gets the file alone.
            match (output, file.is_some()) {
                (Output::Json, true) => print(output, &summary, String::new),
                _ => eprintln!("audit export: {bytes} bytes written to {to}"),
            }
        }
        Remote::HoldPromote { deployment } => {
            let h: HoldView = client
                .post(
                    &format!("/deployments/{deployment}/hold/promote"),
                    json!({}),
                )
                .await?;
            print(output, &h, || {
                format!("deployment #{deployment} promoted: it goes on to the switch")
            });
        }
        Remote::HoldAbort { deployment, reason } => {
            let h: HoldView = client
                .post(
                    &format!("/deployments/{deployment}/hold/abort"),
                    json!({ "reason": reason }),
                )
                .await?;
            print(output, &h, || {
                format!("deployment #{deployment} aborted: its new slot stops, users stay")
            });
        }
        Remote::HoldCanary {
            deployment,
            setting,
        } => {
            let h: HoldView = client
                .call(
                    reqwest::Method::PUT,
                    &format!("/deployments/{deployment}/canary"),
                    Some(json!(setting)),
                )
                .await?;
            print(output, &h, || canary_text(deployment, &setting));
        }
    }
    Ok(exit::OK)
}
