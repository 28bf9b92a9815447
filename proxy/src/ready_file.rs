//! Tells whoever started the proxy (on port 0) which ports it got.

use crate::state_file::write_atomically;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyInfo {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    /// The preview listener, when started with `--preview`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<SocketAddr>,
    /// The TLS listener, when started with `--tls-listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SocketAddr>,
    pub pid: u32,
}

/// Written atomically so a reader polling for the file never sees half of it.
pub fn write(path: &Path, info: &ReadyInfo) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(info).map_err(std::io::Error::other)?;
    write_atomically(path, &bytes)
}
