//! Starts switchyard-proxy as its own long-lived process. It is detached into
//! its own process group so that stopping or crashing the console never drops
//! a user request; a later console finds it again through its admin API.

use crate::config::Config;
use anyhow::{bail, Context};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

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

async fn answers(admin: &str) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .expect("static reqwest configuration");
    matches!(
        client.get(format!("http://{admin}/admin/health")).send().await,
        Ok(r) if r.status().is_success()
    )
}

/// Makes sure switchyard-proxy answers on the configured admin address,
/// starting it if needed.
pub async fn ensure_running(cfg: &Config) -> anyhow::Result<()> {
    let admin = cfg.proxy_admin.to_string();
    if answers(&admin).await {
        tracing::info!(%admin, "switchyard-proxy already running");
        return Ok(());
    }
    if cfg.proxy != crate::config::ProxyAtStart::Spawn {
        bail!("switchyard-proxy does not answer at {admin} (and --no-spawn-proxy was given)");
    }
    let bin = cfg.bin("switchyard-proxy");
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build -p proxy`",
            bin.display()
        );
    }
    std::fs::create_dir_all(cfg.log_dir())?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cfg.log_dir().join("proxy.log"))?;
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--listen")
        .arg(cfg.app_listen.to_string())
        .arg("--admin")
        .arg(&admin)
        .arg("--state-file")
        .arg(cfg.proxy_state_file())
        .arg("--token-file")
        .arg(cfg.proxy_token_file())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    if let Some(preview) = cfg.proxy_preview {
        cmd.arg("--preview").arg(preview.to_string());
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    tracing::info!(pid = child.id(), listen = %cfg.app_listen, %admin, preview = ?cfg.proxy_preview, "started switchyard-proxy");
    for _ in 0..100 {
        if answers(&admin).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "switchyard-proxy did not come up at {admin}; see {}",
        cfg.log_dir().join("proxy.log").display()
    )
}
