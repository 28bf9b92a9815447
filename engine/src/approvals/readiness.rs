//! Whether a release may be deployed: each item evaluated (signatures,
//! automatic checks), at review time and again when the deploy executes.

use crate::checklists::{self, ApprovalSettings};
use crate::deployments;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{Error, Result};
use crate::migration_check::{self, Verdict};
use crate::releases::{self, Release, ReleaseItem, Signoff};
use chrono::{DateTime, Utc};
use model::{AutoCheck, ItemState, ReleaseStatus, SlotColor, SlotState, TemplateItem};
use std::time::Duration;

/// A backup command that hangs must not hang the release page.
const BACKUP_COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// One item evaluated.
pub(super) struct Evaluated {
    pub(super) item: ReleaseItem,
    pub(super) state: ItemState,
    pub(super) summary: String,
    pub(super) evidence: Vec<String>,
    pub(super) signoff: Option<Signoff>,
}

/// Where a release stands.
pub struct Readiness {
    pub(super) items: Vec<Evaluated>,
    pub blockers: Vec<String>,
}

impl Readiness {
    pub fn deployable(&self) -> bool {
        self.blockers.is_empty()
    }
}

/// When evaluation runs. Inside the deploy worker the deployment itself holds
/// the environment's lock, so "a deployment is running" is not a blocker.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    Review,
    Execution,
}

impl Engine {
    /// The release to deploy for `version` in a protected environment, or an
    /// error saying why there is none.
    pub(crate) async fn release_for(&self, env: &Environment, version: &str) -> Result<Release> {
        releases::latest_open(self.pool(), env.id, version)
            .await?
            .ok_or_else(|| {
                Error::NotApproved(format!(
                    "{} requires an approved release: request {version} and have its checklist signed",
                    env.name
                ))
            })
    }

    /// Fails with the blockers unless `release` (at `revision`) may be
    /// deployed right now.
    pub(crate) async fn ensure_deployable(
        &self,
        release_id: i64,
        revision: i64,
        moment: Moment,
    ) -> Result<Release> {
        let release = releases::get(self.pool(), release_id).await?;
        if release.revision != revision {
            return Err(releases::stale(release_id, revision, release.revision));
        }
        let readiness = self.readiness(&release, moment).await?;
        if !readiness.deployable() {
            return Err(Error::NotApproved(format!(
                "release #{release_id} ({}) is not approved: {}",
                release.version,
                readiness.blockers.join("; ")
            )));
        }
        Ok(release)
    }

    /// Evaluates every item of `release` now.
    pub(crate) async fn readiness(&self, release: &Release, moment: Moment) -> Result<Readiness> {
        let pool = self.pool();
        let items = releases::items(pool, release.id).await?;
        let signoffs = releases::live_signoffs(pool, release.id).await?;
        let settings = checklists::settings(pool, release.environment_id).await?;
        // By id: the release of an archived environment stays readable.
        let env = environments::get(pool, release.environment_id).await?;
        let now = crate::now();
        let mut evaluated = Vec::with_capacity(items.len());
        for item in items {
            let e = match item.item.auto_check {
                None => manual_state(item, &signoffs, release.revision, now),
                Some(check) => {
                    let (state, summary, evidence) = self
                        .auto_state(check, &item.item, release, &env, &settings, moment)
                        .await?;
                    Evaluated {
                        item,
                        state,
                        summary,
                        evidence,
                        signoff: None,
                    }
                }
            };
            evaluated.push(e);
        }
        let mut blockers: Vec<String> = evaluated
            .iter()
            .filter(|e| e.item.item.required && !e.state.satisfied())
            .map(|e| format!("{}: {}", e.item.item.title, e.summary))
            .collect();
        if release.status != ReleaseStatus::Open {
            blockers.insert(0, format!("the release is {}", release.status.as_str()));
        }
        if let Some(deployment) = releases::deployed_as(pool, release.id).await? {
            blockers.insert(
                0,
                format!("the release went live with deployment #{deployment}: request a new release to deploy it again"),
            );
        }
        if env.archived {
            blockers.insert(0, format!("environment {} is archived", env.name));
        }
        Ok(Readiness {
            items: evaluated,
            blockers,
        })
    }

    async fn auto_state(
        &self,
        check: AutoCheck,
        item: &TemplateItem,
        release: &Release,
        env: &Environment,
        settings: &ApprovalSettings,
        moment: Moment,
    ) -> Result<(ItemState, String, Vec<String>)> {
        Ok(match check {
            AutoCheck::UpstreamSucceeded => match &settings.upstream {
                None => (
                    ItemState::NotVerified,
                    "no upstream environment is configured".into(),
                    vec![],
                ),
                Some(up) => {
                    match releases::succeeded_in(self.pool(), up, &release.version).await? {
                        Some((dep, by, at)) => (
                            ItemState::Verified,
                            format!("{} succeeded in {up}", release.version),
                            vec![format!(
                                "deployment #{dep} by {by}, finished {}",
                                at.to_rfc3339()
                            )],
                        ),
                        None => (
                            ItemState::Failed,
                            format!(
                                "{} has not been deployed successfully to {up}",
                                release.version
                            ),
                            vec![],
                        ),
                    }
                }
            },
            AutoCheck::MigrationsAdditive => match migration_check::check(&release.migration_sql) {
                Verdict::NoMigrations => (ItemState::Verified, "no migrations".into(), vec![]),
                Verdict::Additive { statements } => (
                    ItemState::Verified,
                    format!("{statements} statement(s), all additive"),
                    vec![],
                ),
                Verdict::Breaking(findings) => (
                    ItemState::Failed,
                    format!(
                        "{} statement(s) would break the live version",
                        findings.len()
                    ),
                    findings
                        .into_iter()
                        .map(|f| format!("{} — {}", f.statement, f.why))
                        .collect(),
                ),
                Verdict::Unreadable(why) => (
                    ItemState::NotVerified,
                    "the SQL could not be parsed, so it is not known to be additive".into(),
                    vec![why],
                ),
            },
            AutoCheck::IdleSlotHealthy => self.idle_slot_state(release, env, moment).await?,
            AutoCheck::BackupRecent => {
                let hours = item.max_age_hours.unwrap_or(24);
                match &settings.backup_command {
                    None => (
                        ItemState::NotVerified,
                        "no backup command is configured for this environment".into(),
                        vec![],
                    ),
                    Some(cmd) => run_backup_check(cmd, hours).await,
                }
            }
        })
    }

    async fn idle_slot_state(
        &self,
        release: &Release,
        env: &Environment,
        moment: Moment,
    ) -> Result<(ItemState, String, Vec<String>)> {
        let idle = env.active.map(SlotColor::other).unwrap_or(SlotColor::Blue);
        if moment == Moment::Review {
            if let Some((by, since)) = deployments::in_progress(self.pool(), env.id).await? {
                return Ok((
                    ItemState::Failed,
                    format!(
                        "a deployment by {by} is running since {}",
                        since.to_rfc3339()
                    ),
                    vec![],
                ));
            }
        }
        let slot = environments::slot(self.pool(), env.id, idle).await?;
        if matches!(slot.state, SlotState::Draining | SlotState::Starting) {
            return Ok((
                ItemState::Failed,
                format!("the idle slot ({idle}) is {}", slot.state),
                vec![],
            ));
        }
        // A runtime this console lacks fails the item, not the release's page.
        let rt = match self.runtime_for(env) {
            Ok(rt) => rt,
            Err(e) => return Ok((ItemState::Failed, e.to_string(), vec![])),
        };
        let spec = self.check_spec(env, idle, &release.version).await?;
        Ok(match rt.check(&spec).await {
            Ok(()) => (
                ItemState::Verified,
                format!("{idle} is free and the artifact is available"),
                vec![
                    format!("{idle} is {}", slot.state),
                    release.artifact.clone(),
                ],
            ),
            Err(e) => (
                ItemState::Failed,
                format!("the artifact is not available: {e}"),
                vec![],
            ),
        })
    }
}

fn manual_state(
    item: ReleaseItem,
    signoffs: &[Signoff],
    revision: i64,
    now: DateTime<Utc>,
) -> Evaluated {
    let signoff = signoffs
        .iter()
        .find(|s| s.release_item_id == item.id)
        .cloned();
    let (state, summary) = match &signoff {
        Some(s) if s.valid(revision, now) => {
            (ItemState::Signed, format!("signed by {}", s.signed_by_name))
        }
        Some(s) if s.expires_at <= now => (
            ItemState::Pending,
            format!(
                "the signature by {} expired at {}",
                s.signed_by_name,
                s.expires_at.to_rfc3339()
            ),
        ),
        _ => (
            ItemState::Pending,
            format!("waiting for a {} to sign", item.item.required_role),
        ),
    };
    Evaluated {
        // An expired signature is shown (with its summary) but does not count.
        signoff: signoff.filter(|s| s.valid(revision, now)),
        item,
        state,
        summary,
        evidence: vec![],
    }
}

/// Runs the operator's backup command. Only its exit status is reported: its
/// output may name hosts or credentials.
async fn run_backup_check(cmd: &str, max_age_hours: i64) -> (ItemState, String, Vec<String>) {
    let argv = match shell_words::split(cmd) {
        Ok(v) if !v.is_empty() => v,
        _ => {
            return (
                ItemState::NotVerified,
                "the backup command is not a valid command line".into(),
                vec![],
            )
        }
    };
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env("SWITCHYARD_BACKUP_MAX_AGE_HOURS", max_age_hours.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let limit = format!("newer than {max_age_hours} h");
    match tokio::time::timeout(BACKUP_COMMAND_TIMEOUT, command.status()).await {
        Ok(Ok(status)) if status.success() => (
            ItemState::Verified,
            format!("a backup {limit} exists"),
            vec![format!("{} exited 0", argv[0])],
        ),
        Ok(Ok(status)) => (
            ItemState::Failed,
            format!("no backup {limit}"),
            vec![format!("{} exited with {status}", argv[0])],
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "backup command could not be started");
            (
                ItemState::NotVerified,
                "the backup command could not be started".into(),
                vec![],
            )
        }
        Err(_) => (
            ItemState::NotVerified,
            format!(
                "the backup command did not finish within {} s",
                BACKUP_COMMAND_TIMEOUT.as_secs()
            ),
            vec![],
        ),
    }
}
