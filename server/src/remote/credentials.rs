//! Where the remote CLI finds its token: `SWITCHYARD_TOKEN`, or the
//! credentials file `switchyard login` writes (`$XDG_CONFIG_HOME` or
//! `~/.config`, `switchyard/credentials`, mode 0600). A file others can read
//! is refused, as ssh refuses such a key.

use anyhow::{bail, Context};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

pub fn path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".config"),
    };
    Ok(base.join("switchyard").join("credentials"))
}

/// The token to send: the environment variable wins over the file.
pub fn token() -> anyhow::Result<String> {
    if let Some(t) = std::env::var("SWITCHYARD_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Ok(t.trim().to_string());
    }
    let path = path()?;
    let meta = std::fs::metadata(&path).with_context(|| {
        format!(
            "no token: set SWITCHYARD_TOKEN or run `switchyard login --server URL` ({} is missing)",
            path.display()
        )
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is readable by other users; `chmod 600` it (or run `switchyard login` again)",
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path)?;
    let token = text.trim();
    if token.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(token.to_string())
}

/// Writes the token, readable by its owner only, replacing any earlier one.
pub fn save(token: &str) -> anyhow::Result<PathBuf> {
    let path = path()?;
    let dir = path.parent().context("credentials path has no parent")?;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        writeln!(f, "{}", token.trim())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
