//! The admin API on a unix socket (`--admin-socket`), beside loopback TCP:
//! a switch pays no TCP handshake, and the file's mode (0600) keeps every
//! other local user out before the bearer token is even read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio::net::UnixListener;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("{path}: another switchyard-proxy answers there")]
    InUse { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Binds `path` with mode 0600. A socket file left by a proxy that died is
/// replaced; one a live process still answers on is refused.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let io = |source| SocketError::Io {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse {
                path: path.display().to_string(),
            });
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    // Narrowed right after the bind (the umask is process-wide, so it is
    // left alone): in between, the bearer token still guards every route.
    let bound = UnixListener::bind(path);
    let listener = bound.map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}
