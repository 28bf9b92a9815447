//! The console's switchyard-proxy processes: their shared admin token, and
//! the launcher (`engine::ProxyLauncher`, which detaches each proxy into its
//! own process group so that stopping or crashing the console never drops a
//! user request) set up for this data directory.

use crate::config::Config;
use anyhow::{bail, Context};
use engine::{ProxyLauncher, ProxyProcess};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates the admin secret once (0600, random), and returns it.
pub fn ensure_token(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let token: String = {
        use rand::Rng;
        let mut rng = rand::rngs::OsRng;
        (0..32)
            .map(|_| format!("{:02x}", rng.gen::<u8>()))
            .collect()
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(token.as_bytes())?;
    Ok(())
}

/// The launcher of this console's proxies (see `engine::ProxyLauncher`):
/// the switchyard-proxy next to this binary, the data directory's token,
/// state files beside the database and output under `logs/`.
pub fn launcher(data_dir: &Path, bin_dir: &Path) -> ProxyLauncher {
    // Environments name the token file by its absolute path.
    let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let data_dir = data_dir.as_path();
    let launcher = ProxyLauncher::new(
        bin_dir.join("switchyard-proxy"),
        data_dir.join(crate::config::PROXY_TOKEN_FILE),
        data_dir.to_path_buf(),
        crate::config::log_dir(data_dir),
    );
    match std::fs::read_to_string(data_dir.join(MAIN_ADMIN_FILE))
        .ok()
        .and_then(|a| a.trim().parse().ok())
    {
        Some(admin) => launcher
            .with_main(
                admin,
                data_dir.join(crate::config::PROXY_STATE_FILE),
                crate::config::log_dir(data_dir).join(MAIN_LOG),
            )
            .with_main_args(
                std::fs::read_to_string(data_dir.join(MAIN_ARGS_FILE))
                    .map(|a| a.lines().map(str::to_string).collect())
                    .unwrap_or_default(),
            ),
        None => launcher,
    }
}

/// Where `serve` records its own proxy's admin address, so that whoever
/// starts that proxy again (the CLI, a console with other flags) gives it
/// back its routing table.
const MAIN_ADMIN_FILE: &str = "proxy-admin.addr";
const MAIN_LOG: &str = "proxy.log";
/// And the flags it was given (`--proxy-tls-*`), one argument per line.
const MAIN_ARGS_FILE: &str = "proxy-args.txt";

/// Records the console's own proxy (see [`MAIN_ADMIN_FILE`]) and its flags.
pub fn record_main(cfg: &Config) -> anyhow::Result<()> {
    let path = cfg.data_dir.join(MAIN_ADMIN_FILE);
    std::fs::write(&path, format!("{}\n", cfg.proxy_admin))
        .with_context(|| format!("writing {}", path.display()))?;
    let path = cfg.data_dir.join(MAIN_ARGS_FILE);
    let args: String = cfg.proxy_tls.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(&path, args).with_context(|| format!("writing {}", path.display()))
}

/// Makes sure the console's own switchyard-proxy (`--app-listen`,
/// `--proxy-admin`, `--proxy-preview`) answers, starting it if needed.
pub async fn ensure_running(cfg: &Config, launcher: &ProxyLauncher) -> anyhow::Result<()> {
    let proxy = ProxyProcess {
        listen: cfg.app_listen,
        admin: cfg.proxy_admin,
        preview: cfg.proxy_preview,
        state_file: cfg.proxy_state_file(),
        log_file: cfg.log_dir().join(MAIN_LOG),
    };
    if launcher.running(&proxy).await {
        tracing::info!(admin = %proxy.admin, "switchyard-proxy already running");
        if !cfg.proxy_tls.is_empty() {
            // It keeps the flags it was started with; a restart of the
            // proxy (not the console) applies these.
            tracing::warn!(admin = %proxy.admin, "switchyard-proxy was already running: --proxy-tls-* apply when it is started again");
        }
        return Ok(());
    }
    if cfg.proxy != crate::config::ProxyAtStart::Spawn {
        bail!(
            "switchyard-proxy does not answer at {} (and --no-spawn-proxy was given)",
            proxy.admin
        );
    }
    launcher.ensure(&proxy).await.map_err(anyhow::Error::msg)
}
