//! The data directory holds live session ids, password hashes, the proxy's
//! admin secret and slot logs: nobody but the console's user may read it.
//!
//! Everything the console (and the proxy and slots it starts) creates is
//! private through the process umask; what an older version or another tool
//! left wider is narrowed at start, with a warning naming each path.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// New files 0600, new directories 0700, in this process and its children.
pub fn restrict_umask() {
    use nix::sys::stat::{umask, Mode};
    umask(Mode::from_bits_truncate(0o077));
}

/// Narrows `dir` and everything under it to its owner: group and other
/// permission bits are cleared (an owner's execute bit stays, so release
/// binaries kept there still run). Returns the paths it changed.
pub fn secure_data_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut changed = Vec::new();
    narrow(dir, &mut changed)?;
    for path in &changed {
        tracing::warn!(path = %path.display(), "was readable by other users: narrowed to its owner");
    }
    Ok(changed)
}

fn narrow(path: &Path, changed: &mut Vec<PathBuf>) -> std::io::Result<()> {
    // Symlinks are not followed: they could point outside the data directory.
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(
            path,
            std::fs::Permissions::from_mode(mode & !0o077 & 0o7777),
        )?;
        changed.push(path.to_path_buf());
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            narrow(&entry?.path(), changed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn wide_files_are_narrowed_and_executables_stay_runnable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let db = dir.join("switchyard.db");
        let bin = dir.join("logs/app");
        std::fs::write(&db, "x").unwrap();
        std::fs::write(&bin, "x").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();

        let changed = secure_data_dir(&dir).unwrap();
        assert!(
            changed.contains(&db) && changed.contains(&dir),
            "{changed:?}"
        );
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&bin), 0o700);
        // Already private: nothing to do the second time.
        assert!(secure_data_dir(&dir).unwrap().is_empty());
    }
}
