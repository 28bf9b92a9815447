//! Runtime configuration of `switchyard serve`, with the embedded defaults the
//! quickstart relies on: the flags (`ServeArgs`) and the `Config` they become,
//! which `Console::build` takes.

use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A session ends after this long without a request…
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 3600);
/// …and this long after sign-in, however active.
pub const SESSION_ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug)]
pub struct Config {
    /// Everything Switchyard writes: database, proxy state and secret, logs, releases.
    pub data_dir: PathBuf,
    /// The database: `sqlite:` under `data_dir` by default, or a
    /// `postgres://` URL several consoles can share (see [`database_url`]).
    pub database_url: String,
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
    /// The TLS flags of the console's own switchyard-proxy
    /// (`--proxy-tls-*`, as the proxy's `--tls-*` arguments; empty: no TLS).
    pub proxy_tls: Vec<String>,
    /// Register the demo service as environment `production` with v1 live.
    pub demo: bool,
    /// Give the demo environment the default checklist when registering it.
    pub demo_checklist: bool,
    /// Where the demo's `staging` environment serves users (its proxy's
    /// admin API on the next port, its preview listener on the one after);
    /// `None`: no staging. Registered with `production` on the first start.
    pub demo_staging: Option<SocketAddr>,
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
    /// How often the audit log gets a signed checkpoint (when entries were
    /// appended since the last one).
    pub audit_checkpoint_interval: Duration,
    /// A shell command each new checkpoint line is piped to, to keep a copy
    /// where whoever can write this machine's files cannot reach.
    pub audit_checkpoint_command: Option<String>,
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
    pub fn proxy_token_file(&self) -> PathBuf {
        self.data_dir.join(PROXY_TOKEN_FILE)
    }
    pub fn proxy_state_file(&self) -> PathBuf {
        self.data_dir.join(PROXY_STATE_FILE)
    }
    pub fn log_dir(&self) -> PathBuf {
        log_dir(&self.data_dir)
    }
    pub fn releases_dir(&self) -> PathBuf {
        self.data_dir.join("releases")
    }
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

/// The flags of `switchyard serve`, each one a `Config` field.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Address users reach (switchyard-proxy's public listener).
    #[arg(long, env = "SWITCHYARD_APP_LISTEN", default_value = "127.0.0.1:8080")]
    pub app_listen: SocketAddr,
    /// switchyard-proxy's admin API; keep it on loopback.
    #[arg(long, env = "SWITCHYARD_PROXY_ADMIN", default_value = "127.0.0.1:8081")]
    pub proxy_admin: SocketAddr,
    /// switchyard-proxy's preview listener, where deploys' gates reach the
    /// idle slot before any user does (`off`: none; gates call the slot directly).
    #[arg(
        long,
        env = "SWITCHYARD_PROXY_PREVIEW",
        default_value = "127.0.0.1:8082"
    )]
    pub proxy_preview: AddrOrOff,
    /// Do not start switchyard-proxy; expect it to be running already.
    #[arg(long)]
    pub no_spawn_proxy: bool,
    /// HTTPS for users: a TLS listener of the console's own switchyard-proxy
    /// besides --app-listen, e.g. 0.0.0.0:443 (same routes, certificates
    /// chosen by SNI, HTTP/2 or HTTP/1.1 by ALPN).
    #[arg(long, env = "SWITCHYARD_PROXY_TLS_LISTEN", value_name = "ADDR")]
    pub proxy_tls_listen: Option<SocketAddr>,
    /// A directory of certificates the proxy reads and re-reads when they
    /// change: DIR/<host>/fullchain.pem + privkey.pem (certbot's live/) or
    /// DIR/<host>.crt + .key; repeatable, comma-separated in the variable.
    #[arg(
        long,
        env = "SWITCHYARD_PROXY_TLS_DIR",
        value_name = "DIR",
        value_delimiter = ',',
        requires = "proxy_tls_listen"
    )]
    pub proxy_tls_dir: Vec<PathBuf>,
    /// One host's certificate: HOST=CERT.pem:KEY.pem (absolute paths; HOST
    /// may be `*.example.com`); repeatable.
    #[arg(long, value_name = "HOST=CERT:KEY", requires = "proxy_tls_listen")]
    pub proxy_tls_cert: Vec<String>,
    /// The host whose certificate clients without SNI get.
    #[arg(
        long,
        env = "SWITCHYARD_PROXY_TLS_DEFAULT",
        value_name = "HOST",
        requires = "proxy_tls_listen"
    )]
    pub proxy_tls_default: Option<String>,
    /// Do not register the demo service.
    #[arg(long)]
    pub no_demo: bool,
    /// Checklist the demo environment gets when it is first registered:
    /// `default` (code reviewed, tests passing, … signed by two other people)
    /// or `none` (any version deploys directly, for trying things alone).
    #[arg(long, env = "SWITCHYARD_DEMO_CHECKLIST", default_value = "default", value_parser = ["default", "none"])]
    pub demo_checklist: String,
    /// Where the demo's `staging` environment serves users, registered with
    /// `production` on the first start as its upstream (its own proxy: admin
    /// API on the next port, preview listener on the one after), or `off`.
    #[arg(
        long,
        env = "SWITCHYARD_DEMO_STAGING",
        default_value = "127.0.0.1:8090"
    )]
    pub demo_staging: AddrOrOff,
    /// Where switchyard-proxy and switchyard-demo are (default: next to this binary).
    #[arg(long, env = "SWITCHYARD_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Compiled front end (cargo-leptos output).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// Health-wait deadline for the demo environment, in seconds.
    #[arg(long, default_value_t = 60)]
    pub health_deadline_secs: u64,
    /// Mark the session cookie Secure and name it `__Host-switchyard_session`
    /// (serve over HTTPS).
    #[arg(long, env = "SWITCHYARD_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// An origin people reach the console at (`https://console.example.com`),
    /// repeatable, comma-separated in the variable. Requests naming any other
    /// host are refused; the listen address and localhost are always allowed.
    #[arg(long, env = "SWITCHYARD_PUBLIC_ORIGIN", value_delimiter = ',')]
    pub public_origin: Vec<String>,
    /// Seconds between the audit log's signed checkpoints (one is also
    /// signed at every deploy and rollback finish and before each export).
    #[arg(long, env = "SWITCHYARD_AUDIT_CHECKPOINT_SECS", default_value_t = 60)]
    pub audit_checkpoint_secs: u64,
    /// A shell command that receives each new checkpoint line on its standard
    /// input, e.g. `ssh audit@vault 'cat >> switchyard-checkpoints.jsonl'`.
    #[arg(long, env = "SWITCHYARD_AUDIT_CHECKPOINT_COMMAND")]
    pub audit_checkpoint_command: Option<String>,
}

impl ServeArgs {
    /// `--proxy-tls-*` as switchyard-proxy's `--tls-*` arguments, with
    /// directories made absolute: the CLI may start the proxy again from
    /// another working directory.
    fn proxy_tls_args(&self) -> std::io::Result<Vec<String>> {
        let Some(listen) = self.proxy_tls_listen else {
            return Ok(Vec::new());
        };
        let mut args = vec!["--tls-listen".to_string(), listen.to_string()];
        for dir in &self.proxy_tls_dir {
            args.push("--tls-dir".into());
            args.push(std::path::absolute(dir)?.display().to_string());
        }
        for pair in &self.proxy_tls_cert {
            args.push("--tls-cert".into());
            args.push(pair.clone());
        }
        if let Some(host) = &self.proxy_tls_default {
            args.push("--tls-default".into());
            args.push(host.clone());
        }
        Ok(args)
    }

    /// The console `switchyard serve` runs: these flags, the data directory
    /// (made absolute: paths under it are handed to switchyard-proxy and
    /// stored in the database, e.g. the demo's releases and proxy token) and
    /// the first admin's password from `SWITCHYARD_ADMIN_PASSWORD`.
    pub fn into_config(self, data_dir: &Path) -> std::io::Result<Config> {
        let data_dir = std::path::absolute(data_dir)?;
        Ok(Config {
            database_url: database_url(&data_dir),
            data_dir,
            listen: self.listen,
            app_listen: self.app_listen,
            proxy_admin: self.proxy_admin,
            proxy_preview: self.proxy_preview.0,
            proxy: if self.no_spawn_proxy {
                ProxyAtStart::Expect
            } else {
                ProxyAtStart::Spawn
            },
            proxy_tls: self.proxy_tls_args()?,
            demo: !self.no_demo,
            demo_checklist: self.demo_checklist == "default",
            demo_staging: self.demo_staging.0,
            bin_dir: self.bin_dir.unwrap_or_else(default_bin_dir),
            site_root: self.site_root,
            health_deadline: Duration::from_secs(self.health_deadline_secs.max(1)),
            secure_cookies: self.secure_cookies,
            session_idle_timeout: SESSION_IDLE_TIMEOUT,
            session_absolute_timeout: SESSION_ABSOLUTE_TIMEOUT,
            public_origins: self.public_origin,
            first_admin: true,
            admin_password: std::env::var("SWITCHYARD_ADMIN_PASSWORD").ok(),
            audit_checkpoint_interval: Duration::from_secs(self.audit_checkpoint_secs.max(1)),
            audit_checkpoint_command: self.audit_checkpoint_command,
        })
    }
}

/// The admin secret every switchyard-proxy of the console shares, in the data directory.
pub const PROXY_TOKEN_FILE: &str = "proxy.token";
/// The routing table of the console's own proxy (`--app-listen`).
pub const PROXY_STATE_FILE: &str = "proxy-routing.json";

/// The database `--database-url` (or `SWITCHYARD_DATABASE_URL`) names, for
/// the whole process: set once by `main` before any command runs.
static DATABASE_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes `url` the database of every command of this process (`serve` and
/// the offline commands alike). The first call wins.
pub fn use_database_url(url: String) {
    let _ = DATABASE_URL.set(url);
}

/// The database: the one [`use_database_url`] named, else the SQLite file
/// under `data_dir`.
pub fn database_url(data_dir: &Path) -> String {
    DATABASE_URL
        .get()
        .cloned()
        .unwrap_or_else(|| format!("sqlite:{}", data_dir.join("switchyard.db").display()))
}

/// The slots' logs under `data_dir`.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

/// `--proxy-preview`, `--demo-staging`: an address, or `off` for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrOrOff(pub Option<SocketAddr>);

impl std::str::FromStr for AddrOrOff {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(AddrOrOff(None));
        }
        s.parse()
            .map(|a| AddrOrOff(Some(a)))
            .map_err(|e| format!("{e}: expected host:port (e.g. 127.0.0.1:8090) or `off`"))
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
