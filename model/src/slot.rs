//! Slots and environments as the dashboard shows them.

use crate::string_enum::string_enum;
use crate::LockView;
use serde::{Deserialize, Serialize};

string_enum! {
    /// One of the two slots of an environment.
    pub enum SlotColor("slot colour") {
        Blue = "blue",
        Green = "green",
    }
}

impl SlotColor {
    pub fn other(self) -> SlotColor {
        match self {
            SlotColor::Blue => SlotColor::Green,
            SlotColor::Green => SlotColor::Blue,
        }
    }
}

string_enum! {
    /// Which driver runs an environment's slots.
    pub enum RuntimeKind("runtime") {
        /// Local processes (the default): `artifact_template` is a command.
        Process = "process",
        /// Docker Engine containers: `artifact_template` is an image.
        Docker = "docker",
    }
}

string_enum! {
    /// Which traffic router switches an environment's users.
    pub enum RouterKind("router") {
        /// switchyard-proxy, through its admin API (the default).
        Builtin = "builtin",
        /// nginx: an include file and a confirmed reload.
        Nginx = "nginx",
    }
}

string_enum! {
    /// Lifecycle of the process or container behind a slot.
    pub enum SlotState("slot state") {
        Stopped = "stopped",
        Starting = "starting",
        Healthy = "healthy",
        Unhealthy = "unhealthy",
        Draining = "draining",
    }
}

/// One slot as shown on the dashboard.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// While a freeze window holds: "deploys to X are frozen until T: reason".
    #[serde(default)]
    pub frozen: Option<String>,
}

/// How an environment's deploys wait and judge, as the settings page shows
/// and edits them. Durations in milliseconds; the error-rate threshold in
/// percent; smoke routes one per line.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Hold each deploy after its gates, the preview live, until a deployer
    /// promotes or aborts it (or `hold_timeout_ms` passes: aborted).
    pub hold_at_preview: bool,
    pub hold_timeout_ms: u64,
}

/// An environment's variables (values shown) and secrets (never shown: only
/// that they are set, when and by whom), for admins.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotEnvView {
    pub variables: Vec<VariableView>,
    pub secrets: Vec<SecretView>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableView {
    pub name: String,
    pub value: String,
    pub updated_at: String,
    pub updated_by: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretView {
    pub name: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// What a slot printed most recently (standard output and error), for
/// deployers and admins; the environment's secret values are masked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotOutputView {
    pub color: SlotColor,
    pub text: String,
    /// At most this many bytes are shown (the newest).
    pub limit_bytes: u64,
}
