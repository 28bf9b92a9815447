//! Deployments: their kinds and outcomes, their steps, the watch after a
//! deploy, the lock while one runs, and the dry-run plan.

use crate::string_enum::string_enum;
use crate::SlotColor;
use serde::{Deserialize, Serialize};

string_enum! {
    pub enum DeploymentKind("deployment kind") {
        Deploy = "deploy",
        Rollback = "rollback",
        Switch = "switch",
    }
}

string_enum! {
    pub enum DeploymentStatus("deployment status") {
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

/// One row of the deployment history.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentView {
    pub id: i64,
    pub environment: String,
    pub kind: DeploymentKind,
    pub status: DeploymentStatus,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub from_slot: Option<SlotColor>,
    pub to_slot: Option<SlotColor>,
    pub requested_by: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
}

/// An environment's deployment lock: which deployment holds it, which
/// console runs its worker, and when that console last said it was alive.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockView {
    pub deployment_id: i64,
    pub kind: DeploymentKind,
    pub requested_by: String,
    pub since: String,
    /// The console process running the worker (`host/pid/start/engine`);
    /// `None` for a deployment written before holders were recorded.
    pub holder: Option<String>,
    pub heartbeat_age_secs: u64,
}

string_enum! {
    /// Where one step of a deployment is.
    pub enum StepStatus("step status") {
        Pending = "pending",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Never reached: an earlier step failed, or there was nothing to do.
        Skipped = "skipped",
    }
}

impl StepStatus {
    /// Pending or running: the step may still change.
    pub fn is_open(self) -> bool {
        matches!(self, StepStatus::Pending | StepStatus::Running)
    }
}

string_enum! {
    /// The steps a deployment can have, in the order a deploy runs them (the
    /// engine's `pipeline` module has one file per step).
    pub enum StepName("step name") {
        Lock = "lock",
        Preflight = "preflight",
        Start = "start",
        Health = "health",
        Gates = "gates",
        /// Hold at preview: waits for a deployer's promote or abort.
        Hold = "hold",
        Switch = "switch",
        Drain = "drain",
        Standby = "standby",
    }
}

/// One step of a deployment's timeline (lock, preflight, start, health,
/// switch, standby for a deploy; lock, switch for a rollback).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    /// Order within the deployment, from 1.
    pub seq: i64,
    pub name: String,
    pub status: StepStatus,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Finished steps: how long they took. A running step: how long it has
    /// been running when this view was made.
    pub duration_ms: Option<i64>,
    pub message: Option<String>,
}

string_enum! {
    /// Where a deploy's watch window is (see the engine's `watch` module).
    pub enum WatchStatus("watch status") {
        Watching = "watching",
        /// The window ended without a breach.
        Passed = "passed",
        /// A threshold was crossed; the engine rolled back (or was refused).
        Breached = "breached",
        /// Ended early: traffic moved for another reason, or the console stopped.
        Stopped = "stopped",
    }
}

/// The watch window after a deploy's switch: the new slot's error rate, p95
/// and health against the environment's thresholds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchView {
    pub status: WatchStatus,
    pub slot: SlotColor,
    pub started_at: String,
    pub until: String,
    /// The latest figures while watching; the evidence after a breach.
    pub message: Option<String>,
    /// The automatic rollback a breach started.
    pub rollback_id: Option<i64>,
}

/// A deployment with its steps, for its own page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentDetail {
    pub deployment: DeploymentView,
    pub steps: Vec<StepView>,
    /// Finished deployments: their duration. A running one: how long it has
    /// been running when this view was made.
    pub elapsed_ms: i64,
    /// Deploys that switched users from a previous slot: the watch after it.
    pub watch: Option<WatchView>,
    /// A succeeded deploy: the environments that take releases from this
    /// one (their upstream), where its version may be promoted.
    #[serde(default)]
    pub promote_to: Vec<String>,
    /// A deploy held at preview (its environment's hold setting): where the
    /// preview is, until when, and how the hold ended.
    #[serde(default)]
    pub hold: Option<HoldView>,
}

/// A deploy's hold at preview: the new slot is live on the preview address
/// and waits for a deployer's decision (or the timeout).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldView {
    /// The preview address (or the slot's own address without one).
    pub preview_url: String,
    pub held_at: String,
    /// The hold's timeout: past it the deploy is aborted.
    pub until: String,
    /// `None` while waiting; `promote`, `abort` or `timeout` afterwards.
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub decided_at: Option<String>,
    /// The canary share and tester rule a deployer set while it was held
    /// (absent: never set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<crate::CanarySetting>,
}

impl HoldView {
    /// Still waiting for a decision (the deployment may have ended anyway,
    /// e.g. its console restarted: see `DeploymentView::status`).
    pub fn waiting(&self) -> bool {
        self.decision.is_none()
    }
}

/// A dry run: what a deploy would do and what stands in its way.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployPlan {
    pub environment: String,
    pub version: String,
    /// No blockers: the deploy would start now.
    pub ready: bool,
    pub blockers: Vec<String>,
    pub steps: Vec<PlanStep>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    pub name: String,
    pub detail: String,
}
