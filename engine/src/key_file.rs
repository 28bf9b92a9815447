//! A 32-byte key in a file of its own (the audit signing key, the secrets
//! key): 64 hex digits and a newline, created with mode 0600 from the start
//! — never readable by others, not even for an instant — and synced.

use crate::error::{Error, Result};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The key in `path`; `what` names it in the error ("a signing key").
pub(crate) fn read(path: &Path, what: &str) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Internal(format!("reading {}: {e}", path.display())))?;
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::Internal(format!("{} is not {what}", path.display())))
}

/// Writes `bytes` to `path` (replacing it), mode 0600.
pub(crate) fn write(path: &Path, bytes: &[u8; 32]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Internal(format!("creating {}: {e}", path.display())))?;
    writeln!(f, "{}", hex::encode(bytes))
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::Internal(format!("writing {}: {e}", path.display())))
}
