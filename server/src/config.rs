//! Runtime configuration of `switchyard serve`, with the embedded defaults the
//! quickstart relies on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    /// Everything Switchyard writes: database, proxy state and secret, logs, releases.
    pub data_dir: PathBuf,
    /// Where the console listens.
    pub listen: SocketAddr,
    /// Where switchyard-proxy listens for users.
    pub app_listen: SocketAddr,
    /// switchyard-proxy's admin API (loopback).
    pub proxy_admin: SocketAddr,
    /// switchyard-proxy's preview listener (`--preview`), where deploys'
    /// gates reach the idle slot; `None`: no preview listener.
    pub proxy_preview: Option<SocketAddr>,
    /// What the console does about switchyard-proxy at start.
    pub proxy: ProxyAtStart,
    /// Register the demo service as environment `production` with v1 live.
    pub demo: bool,
    /// Give the demo environment the default checklist when registering it.
    pub demo_checklist: bool,
    /// Directory holding switchyard-proxy and switchyard-demo (defaults to this binary's).
    pub bin_dir: PathBuf,
    /// Where the compiled front end (pkg/, CSS) is served from.
    pub site_root: PathBuf,
    /// Health-wait deadline for the seeded environment.
    pub health_deadline: Duration,
    /// Send the session cookie with `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    /// Origins people reach the console at (`--public-origin`), besides the
    /// listen address and localhost; requests naming another host are refused.
    pub public_origins: Vec<String>,
    /// Create an `admin` account when the database has none.
    pub first_admin: bool,
    /// That account's password (`SWITCHYARD_ADMIN_PASSWORD`); `None`: one is
    /// generated and shown once.
    pub admin_password: Option<String>,
}

/// What `Console::build` does about switchyard-proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyAtStart {
    /// Start it (with the console's token) unless it already answers.
    Spawn,
    /// Expect it to answer already (`--no-spawn-proxy`); refuse to start otherwise.
    Expect,
    /// Leave proxies alone: every environment names its own. For consoles
    /// whose environments point at proxies that are not running (HTTP tests).
    Unmanaged,
}

impl Config {
    pub fn database_url(&self) -> String {
        format!("sqlite:{}", self.data_dir.join("switchyard.db").display())
    }
    pub fn proxy_token_file(&self) -> PathBuf {
        self.data_dir.join("proxy.token")
    }
    pub fn proxy_state_file(&self) -> PathBuf {
        self.data_dir.join("proxy-routing.json")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
    pub fn releases_dir(&self) -> PathBuf {
        self.data_dir.join("releases")
    }
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

/// `--proxy-preview`: an address, or `off` for no preview listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreviewListen(pub Option<SocketAddr>);

impl std::str::FromStr for PreviewListen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(PreviewListen(None));
        }
        s.parse()
            .map(|a| PreviewListen(Some(a)))
            .map_err(|e| format!("{e}: expected host:port (e.g. 127.0.0.1:8082) or `off`"))
    }
}

/// The directory of the running executable: sibling binaries live there in
/// both `target/debug` and `target/release`.
pub fn default_bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}
