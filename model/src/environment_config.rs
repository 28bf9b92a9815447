//! An environment as people write it down: the Environments page's form,
//! `switchyard env create|edit`, and the `[[environment]]` tables of the
//! file `switchyard apply` reads and `switchyard export` writes. One shape
//! for all three, so what the page saves, the file holds.
//!
//! Secrets appear by name only: their values are set one by one
//! (`switchyard env secret`, the settings page) and never leave the console.

use crate::{PipelineSettings, RouterKind, RuntimeKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The identity: never changed by an edit or an apply.
    pub name: String,
    #[serde(default = "process")]
    pub runtime: RuntimeKind,
    /// A command line (process) or an image reference (docker) holding
    /// `{version}`, e.g. `registry.local:5000/shop:{version}`.
    pub artifact: String,
    /// Where users reach the service.
    pub app_url: String,
    /// host:port of the router's preview listener, where gates reach the
    /// idle slot; empty: gates go to the slot directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_listen: Option<String>,
    /// Builtin router: the host names the environment is served under,
    /// exact (`shop.example.com`) or wildcard (`*.example.com`), as a named
    /// route on a switchyard-proxy several environments share; empty: the
    /// proxy's default table (one environment per proxy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Only paths under this prefix (`/api`), with `hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Plain-HTTP requests to the route are redirected to HTTPS (the proxy
    /// terminates TLS with `--tls-listen`/`--tls-dir`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub redirect_https: bool,
    #[serde(default = "health_path")]
    pub health_path: String,
    /// The status the health path must answer (100-599); any 2xx when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<u16>,
    /// A text the health answer's body must contain (up to 200
    /// characters), for services that answer 200 while not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_body: Option<String>,
    /// How long a stopping slot gets between SIGTERM and SIGKILL.
    #[serde(default = "stop_grace_ms")]
    pub stop_grace_ms: u64,
    /// A release must have succeeded there first (promotion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Exit status 0 = a recent enough backup exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_command: Option<String>,
    /// How long a checklist sign-off stays valid.
    #[serde(default = "signoff_ttl_secs")]
    pub signoff_ttl_secs: u64,
    /// Names of the secrets the slots get (values are never written here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Plain variables the slots get.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    pub router: RouterConfig,
    #[serde(default)]
    pub pipeline: PipelineSettings,
    /// What the containers of a Docker environment get besides the image
    /// (a process environment ignores it).
    #[serde(default)]
    pub docker: DockerConfig,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// The port the service listens on inside the container (told to it as
    /// `PORT`; published on a free loopback port of the host).
    #[serde(default = "container_port")]
    pub port: u16,
    /// Mounts, `source:target[:ro]`: a host path or a named volume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// `no` (the default: Switchyard decides what a dead slot means),
    /// `on-failure[:N]`, `unless-stopped` or `always`.
    #[serde(default = "restart_no")]
    pub restart: String,
    /// A Docker network to attach the containers to; empty: the default
    /// bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The registry login a missing image is pulled with: a user name…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_user: Option<String>,
    /// …and the name of one of the environment's `secrets` holding the
    /// password (that secret is not passed to the container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_password_secret: Option<String>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            port: container_port(),
            volumes: Vec::new(),
            memory_mb: None,
            cpus: None,
            restart: restart_no(),
            network: None,
            registry_user: None,
            registry_password_secret: None,
        }
    }
}

/// Which router switches users, with its settings.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    #[serde(default = "builtin")]
    pub kind: RouterKind,
    /// Builtin: switchyard-proxy's admin API and the file holding its token.
    #[serde(default)]
    pub admin_url: String,
    #[serde(default)]
    pub token_file: String,
    /// Required when `kind` is nginx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxConfig>,
}

/// The nginx router's files: see docs/ARCHITECTURE.md, "nginx router".
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxConfig {
    pub binary: String,
    pub conf: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    pub include: String,
    pub pid_file: String,
    pub upstream: String,
    pub reload_timeout_ms: u64,
}

/// Where a new environment's checklist comes from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecklistSource {
    /// The pre-deployment items common to the runbooks (the default).
    #[default]
    Default,
    /// A copy of another environment's checklist.
    CopyFrom(String),
    /// No checklist: deploys need no release.
    Empty,
}

/// What `apply` would do to one environment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentPlan {
    pub name: String,
    pub action: PlanAction,
    /// Field by field (dotted names, e.g. `pipeline.watch_window_ms`);
    /// empty when unchanged.
    pub changes: Vec<FieldChange>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanAction {
    Create,
    Change,
    Unchanged,
    /// In the console, not in the file: left as it is (apply never drops an
    /// environment; `switchyard env archive` does, with confirmation).
    NotInFile,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// An archived environment: its history and audit entries stay.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedEnvironment {
    pub name: String,
    pub archived_at: String,
    pub archived_by: String,
}

impl Default for PipelineSettings {
    /// The values teams use by hand: poll health every 250 ms for up to a
    /// minute, smoke `/`, 50 samples under p95 200 ms / p99 500 ms / 1 %
    /// errors, a 30 s drain, a 5-minute watch, a 15-minute warm standby, no hold at
    /// preview (30 minutes when turned on).
    fn default() -> Self {
        PipelineSettings {
            health_interval_ms: 250,
            health_deadline_ms: 60_000,
            smoke_paths: "/".into(),
            sample_requests: 50,
            p95_ms: 200,
            p99_ms: 500,
            max_error_pct: 1.0,
            drain_timeout_ms: 30_000,
            watch_window_ms: 300_000,
            standby_window_ms: 900_000,
            hold_at_preview: false,
            hold_timeout_ms: 30 * 60_000,
        }
    }
}

fn container_port() -> u16 {
    8080
}
fn restart_no() -> String {
    "no".into()
}
fn process() -> RuntimeKind {
    RuntimeKind::Process
}
fn builtin() -> RouterKind {
    RouterKind::Builtin
}
fn health_path() -> String {
    "/health".into()
}
fn stop_grace_ms() -> u64 {
    10_000
}
fn signoff_ttl_secs() -> u64 {
    24 * 3600
}

fn is_false(b: &bool) -> bool {
    !*b
}
