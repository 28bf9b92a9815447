//! Wire types shared by the browser, the console server and switchyard-proxy.
//!
//! Everything here is plain data: it must compile to WASM, so no I/O and no
//! server-only crates. Timestamps travel as RFC 3339 strings for the same reason.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

mod release;
pub use release::*;

/// One of the two slots of an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotColor {
    Blue,
    Green,
}

impl SlotColor {
    pub const ALL: [SlotColor; 2] = [SlotColor::Blue, SlotColor::Green];

    pub fn other(self) -> SlotColor {
        match self {
            SlotColor::Blue => SlotColor::Green,
            SlotColor::Green => SlotColor::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SlotColor::Blue => "blue",
            SlotColor::Green => "green",
        }
    }
}

impl fmt::Display for SlotColor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SlotColor {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blue" => Ok(SlotColor::Blue),
            "green" => Ok(SlotColor::Green),
            _ => Err(UnknownVariant::new("slot colour", s)),
        }
    }
}

/// Lifecycle of the process or container behind a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    Stopped,
    Starting,
    Healthy,
    Unhealthy,
    Draining,
}

impl SlotState {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotState::Stopped => "stopped",
            SlotState::Starting => "starting",
            SlotState::Healthy => "healthy",
            SlotState::Unhealthy => "unhealthy",
            SlotState::Draining => "draining",
        }
    }
}

impl fmt::Display for SlotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SlotState {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stopped" => Ok(SlotState::Stopped),
            "starting" => Ok(SlotState::Starting),
            "healthy" => Ok(SlotState::Healthy),
            "unhealthy" => Ok(SlotState::Unhealthy),
            "draining" => Ok(SlotState::Draining),
            _ => Err(UnknownVariant::new("slot state", s)),
        }
    }
}

/// Who may do what. Ordered: each role can do everything the previous one can,
/// except that approvers sign and deployers deploy (see `engine::rbac`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Deployer,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Deployer, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may sign a checklist item that requires `required`:
    /// the same role or a higher one (admins sign anything).
    pub fn covers(self, required: Role) -> bool {
        self as u8 >= required as u8
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "deployer" => Ok(Role::Deployer),
            "approver" => Ok(Role::Approver),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownVariant::new("role", s)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentKind {
    Deploy,
    Rollback,
    Switch,
}

impl DeploymentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentKind::Deploy => "deploy",
            DeploymentKind::Rollback => "rollback",
            DeploymentKind::Switch => "switch",
        }
    }
}

impl fmt::Display for DeploymentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeploymentKind {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "deploy" => Ok(DeploymentKind::Deploy),
            "rollback" => Ok(DeploymentKind::Rollback),
            "switch" => Ok(DeploymentKind::Switch),
            _ => Err(UnknownVariant::new("deployment kind", s)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    Running,
    Succeeded,
    Failed,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Running => "running",
            DeploymentStatus::Succeeded => "succeeded",
            DeploymentStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeploymentStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(DeploymentStatus::Running),
            "succeeded" => Ok(DeploymentStatus::Succeeded),
            "failed" => Ok(DeploymentStatus::Failed),
            _ => Err(UnknownVariant::new("deployment status", s)),
        }
    }
}

/// A string that names no variant of one of the enums above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownVariant {
    pub what: &'static str,
    pub value: String,
}

impl UnknownVariant {
    pub(crate) fn new(what: &'static str, value: &str) -> Self {
        UnknownVariant {
            what,
            value: value.to_string(),
        }
    }
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.value)
    }
}

impl std::error::Error for UnknownVariant {}

/// The signed-in user as the browser may see it: never a password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

/// One slot as shown on the dashboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotView {
    pub color: SlotColor,
    pub version: Option<String>,
    pub state: SlotState,
    pub active: bool,
    /// Upstream address (host:port) while the slot runs.
    pub address: Option<String>,
    /// Result of the last health probe: `None` until one ran.
    pub last_health_ok: Option<bool>,
    pub last_health_message: Option<String>,
    pub last_health_at: Option<String>,
    /// A standby: until when it is kept warm (in the past once its window
    /// stopped it; a rollback then starts it again).
    pub standby_until: Option<String>,
    /// Seconds left in the standby window when this view was read (0 once
    /// it has passed); the dashboard refreshes it as a countdown.
    pub standby_left_secs: Option<i64>,
}

/// An environment with both of its slots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentView {
    pub name: String,
    /// The address users reach (switchyard-proxy's public listener).
    pub app_url: String,
    /// Where the router serves the idle slot while a deploy's gates run
    /// (`None`: no preview listener configured; gates go to the slot).
    #[serde(default)]
    pub preview_url: Option<String>,
    pub active: Option<SlotColor>,
    pub slots: Vec<SlotView>,
    /// Set while a deployment runs: "deploy in progress by X since T".
    pub in_progress: Option<String>,
    /// The environment's lock while a deployment runs.
    pub lock: Option<LockView>,
}

/// How an environment's deploys wait and judge, as the settings page shows
/// and edits them. Durations in milliseconds; the error-rate threshold in
/// percent; smoke routes one per line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineSettings {
    pub health_interval_ms: u64,
    pub health_deadline_ms: u64,
    pub smoke_paths: String,
    pub sample_requests: u32,
    pub p95_ms: u64,
    pub p99_ms: u64,
    pub max_error_pct: f64,
    pub drain_timeout_ms: u64,
    pub watch_window_ms: u64,
    pub standby_window_ms: u64,
}

/// An environment's deployment lock: which deployment holds it, which
/// console runs its worker, and when that console last said it was alive.
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

/// One row of the deployment history.
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

/// Where one step of a deployment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Never reached: an earlier step failed, or there was nothing to do.
    Skipped,
}

impl StepStatus {
    pub const ALL: [StepStatus; 5] = [
        StepStatus::Pending,
        StepStatus::Running,
        StepStatus::Succeeded,
        StepStatus::Failed,
        StepStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }

    /// Pending or running: the step may still change.
    pub fn is_open(self) -> bool {
        matches!(self, StepStatus::Pending | StepStatus::Running)
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StepStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVariant::new("step status", s))
    }
}

/// The steps a deployment can have, in the order a deploy runs them (the
/// engine's `pipeline` module has one file per step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepName {
    Lock,
    Preflight,
    Start,
    Health,
    Gates,
    Switch,
    Drain,
    Standby,
}

impl StepName {
    pub const ALL: [StepName; 8] = [
        StepName::Lock,
        StepName::Preflight,
        StepName::Start,
        StepName::Health,
        StepName::Gates,
        StepName::Switch,
        StepName::Drain,
        StepName::Standby,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Lock => "lock",
            StepName::Preflight => "preflight",
            StepName::Start => "start",
            StepName::Health => "health",
            StepName::Gates => "gates",
            StepName::Switch => "switch",
            StepName::Drain => "drain",
            StepName::Standby => "standby",
        }
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StepName {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepName::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVariant::new("step name", s))
    }
}

/// One step of a deployment's timeline (lock, preflight, start, health,
/// switch, standby for a deploy; lock, switch for a rollback).
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

/// Where a deploy's watch window is (see the engine's `watch` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchStatus {
    Watching,
    /// The window ended without a breach.
    Passed,
    /// A threshold was crossed; the engine rolled back (or was refused).
    Breached,
    /// Ended early: traffic moved for another reason, or the console stopped.
    Stopped,
}

impl WatchStatus {
    pub const ALL: [WatchStatus; 4] = [
        WatchStatus::Watching,
        WatchStatus::Passed,
        WatchStatus::Breached,
        WatchStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WatchStatus::Watching => "watching",
            WatchStatus::Passed => "passed",
            WatchStatus::Breached => "breached",
            WatchStatus::Stopped => "stopped",
        }
    }
}

impl fmt::Display for WatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WatchStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WatchStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVariant::new("watch status", s))
    }
}

/// The watch window after a deploy's switch: the new slot's error rate, p95
/// and health against the environment's thresholds.
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

/// One point of a slot's traffic chart: what users got from it through the
/// router during one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// The step ended this many seconds ago.
    pub ago_secs: u64,
    pub requests_per_sec: f64,
    /// 5xx / responses, 0.0..=1.0.
    pub error_rate: f64,
    pub p95_ms: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotSeries {
    pub slot: SlotColor,
    /// Oldest first.
    pub points: Vec<MetricPoint>,
}

/// Both slots' traffic over the last minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficSeries {
    pub window_secs: u64,
    pub step_secs: u64,
    pub slots: Vec<SlotSeries>,
}

/// The dashboard's metrics panel: the series, or why there is none (a router
/// that does not count per slot, a proxy that does not answer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficView {
    pub series: Option<TrafficSeries>,
    pub unavailable: Option<String>,
}

/// A dry run: what a deploy would do and what stands in its way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployPlan {
    pub environment: String,
    pub version: String,
    /// No blockers: the deploy would start now.
    pub ready: bool,
    pub blockers: Vec<String>,
    pub steps: Vec<PlanStep>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    pub name: String,
    pub detail: String,
}

/// A deployment with its steps, for its own page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentDetail {
    pub deployment: DeploymentView,
    pub steps: Vec<StepView>,
    /// Finished deployments: their duration. A running one: how long it has
    /// been running when this view was made.
    pub elapsed_ms: i64,
    /// Deploys that switched users from a previous slot: the watch after it.
    pub watch: Option<WatchView>,
}

/// Where switchyard-proxy sends user traffic. `generation` fences writers:
/// the proxy refuses a table whose generation is not newer than its own, so a
/// stale deploy worker cannot switch traffic back behind a newer one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RoutingTable {
    pub generation: u64,
    pub active: Option<Upstream>,
    /// The idle slot, published on the router's preview address (never
    /// users' traffic) while a deploy's gates run. Absent from the JSON when
    /// unset, so a router that knows only `{generation, active}` reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Upstream>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub slot: SlotColor,
    /// host:port of the slot.
    pub address: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_names() {
        for c in SlotColor::ALL {
            assert_eq!(c.as_str().parse::<SlotColor>().unwrap(), c);
            assert_ne!(c.other(), c);
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        for s in StepStatus::ALL {
            assert_eq!(s.as_str().parse::<StepStatus>().unwrap(), s);
        }
        assert!("purple".parse::<SlotColor>().is_err());
        assert_eq!(
            "root".parse::<Role>().unwrap_err().to_string(),
            "unknown role \"root\""
        );
    }
}

/// One audit log entry as the console shows and exports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryView {
    pub id: i64,
    pub at: String,
    pub actor_kind: String,
    pub actor_name: String,
    pub source_ip: Option<String>,
    pub action: String,
    pub environment: Option<String>,
    pub target: Option<String>,
    pub reason: Option<String>,
    pub result: String,
    /// JSON object, as stored.
    pub details: String,
    pub hash: String,
}

/// Which audit entries to show. Empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub environment: Option<String>,
    /// Inclusive bounds, RFC 3339 or a prefix of it ("2026-11-22", "2026-11-22T10:00").
    pub since: Option<String>,
    pub until: Option<String>,
    /// Words to find anywhere in the entry.
    pub text: Option<String>,
    /// Keyset pagination: only entries older than this id.
    pub before: Option<i64>,
}

/// One page of the audit log, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` to get the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// A console account as the users page shows it (never a hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
}

/// What a sign-in throttle counts failures against (see `engine::throttle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginLockKind {
    /// An attempted username, trimmed and lowercased (whether or not such
    /// an account exists).
    Account,
    /// A source address: an IPv4 address or an IPv6 /64.
    Address,
}

impl LoginLockKind {
    pub const ALL: [LoginLockKind; 2] = [LoginLockKind::Account, LoginLockKind::Address];

    pub fn as_str(self) -> &'static str {
        match self {
            LoginLockKind::Account => "account",
            LoginLockKind::Address => "address",
        }
    }
}

impl fmt::Display for LoginLockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LoginLockKind {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "account" => Ok(LoginLockKind::Account),
            "address" => Ok(LoginLockKind::Address),
            _ => Err(UnknownVariant::new("login lock kind", s)),
        }
    }
}

/// A throttled sign-in key as the admin page shows it: how many consecutive
/// failures it has, and until when it is locked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginLockView {
    pub kind: LoginLockKind,
    pub key: String,
    pub failures: u32,
    /// RFC 3339; `None` before the first lock. In the past once the lock
    /// has passed (the failures still count until they are forgotten).
    pub locked_until: Option<String>,
    /// Seconds left in the lock when this view was read (0 when not locked).
    pub locked_secs_left: u64,
    /// RFC 3339, the last failed attempt.
    pub last_failure_at: Option<String>,
}
