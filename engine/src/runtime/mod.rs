//! Runtime drivers start and stop what runs in a slot. The pipeline only sees
//! the `Runtime` trait; `process` is the embedded default, `docker` runs each
//! slot as a container of a locally present image.

pub mod docker;
pub mod process;

use async_trait::async_trait;
use model::SlotColor;
use std::time::Duration;

pub use docker::DockerRuntime;
pub use process::ProcessRuntime;

/// The variables a slot starts with. Its `Debug` names them and hides every
/// value: a spec that reaches a log line leaks nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SlotEnv(pub Vec<(String, String)>);

impl std::fmt::Debug for SlotEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// What a Docker slot's container gets besides its image (the process
/// runtime ignores it). Checked when the environment is written down
/// (`environment_config`).
#[derive(Clone, Debug, PartialEq)]
pub struct DockerOptions {
    /// The port the service listens on inside the container.
    pub port: u16,
    /// `source:target[:ro]` mounts.
    pub volumes: Vec<String>,
    pub memory_mb: Option<u64>,
    pub cpus: Option<f64>,
    /// Docker's restart policy name, `no` by default.
    pub restart: String,
    pub network: Option<String>,
    /// Registry login for pulls: the user and the name of the secret that
    /// holds the password (resolved into [`SlotSpec::registry`]).
    pub registry_user: Option<String>,
    pub registry_secret: Option<String>,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            port: 8080,
            volumes: Vec::new(),
            memory_mb: None,
            cpus: None,
            restart: "no".into(),
            network: None,
            registry_user: None,
            registry_secret: None,
        }
    }
}

/// A registry login, decrypted for one pull. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What to run in a slot.
#[derive(Clone, Debug)]
pub struct SlotSpec {
    pub environment: String,
    pub color: SlotColor,
    pub version: String,
    /// Driver-specific artifact: for the process runtime, a command line; for
    /// the docker runtime, an image reference.
    pub artifact: String,
    /// The environment's variables and decrypted secrets, set beside `PORT`
    /// and `APP_VERSION` (its `Debug` shows names only).
    pub env: SlotEnv,
    /// The docker runtime's container settings.
    pub docker: DockerOptions,
    /// The registry login a missing image is pulled with, if any.
    pub registry: Option<RegistryLogin>,
}

/// A slot that was started: the driver's handle (pid, container id) and the
/// address its HTTP server will listen on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningSlot {
    pub handle: String,
    pub address: String,
}

/// Whether what runs behind a handle is still alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    Running,
    /// Gone, with what is known about why (exit status when we saw it).
    Exited(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("artifact not found: {0}")]
    ArtifactNotFound(String),
    #[error("invalid artifact: {0}")]
    InvalidArtifact(String),
    #[error("could not start: {0}")]
    StartFailed(String),
    #[error("could not stop {handle}: {reason}")]
    StopFailed { handle: String, reason: String },
    /// The driver's backend (the Docker Engine) cannot be reached.
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Checks that `spec` could be started (artifact exists) without starting it.
    async fn check(&self, spec: &SlotSpec) -> Result<(), RuntimeError>;
    /// Makes `spec`'s artifact present where it can (the docker runtime
    /// pulls a missing image), telling `progress` how far it got. Nothing
    /// to do by default.
    async fn fetch(
        &self,
        spec: &SlotSpec,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), RuntimeError> {
        let _ = (spec, progress);
        Ok(())
    }
    /// Versions this runtime could start for the artifact `template`
    /// (holding `{version}`), newest first, at most `limit`: release
    /// directories for the process runtime, local and registry tags for
    /// Docker. Empty when it cannot tell.
    async fn versions(
        &self,
        template: &str,
        registry: Option<&RegistryLogin>,
        limit: usize,
    ) -> Result<Vec<String>, RuntimeError> {
        let _ = (template, registry, limit);
        Ok(Vec::new())
    }
    /// Starts `spec`. Returns once it was launched, not once it is healthy.
    async fn start(&self, spec: &SlotSpec) -> Result<RunningSlot, RuntimeError>;
    /// Asks it to stop, and forces it after `grace`.
    async fn stop(&self, handle: &str, grace: Duration) -> Result<(), RuntimeError>;
    async fn liveness(&self, handle: &str) -> Liveness;
    /// What the slot of `environment` in `color` printed most recently
    /// (standard output and error together), at most `max_bytes`, oldest
    /// line first; empty when it never ran.
    async fn recent_output(
        &self,
        environment: &str,
        color: SlotColor,
        max_bytes: usize,
    ) -> Result<String, RuntimeError> {
        let _ = (environment, color, max_bytes);
        Err(RuntimeError::Unavailable(
            "this runtime keeps no output".into(),
        ))
    }
}

/// The last `max_bytes` of `bytes`, without the end of a line cut at the
/// window's start.
pub(crate) fn tail_lines(bytes: &[u8], max_bytes: usize) -> String {
    let start = bytes.len().saturating_sub(max_bytes);
    let mut tail = &bytes[start..];
    if start > 0 && bytes[start - 1] != b'\n' {
        tail = match tail.iter().position(|b| *b == b'\n') {
            Some(nl) => &tail[nl + 1..],
            None => &[],
        };
    }
    String::from_utf8_lossy(tail).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tail_starts_at_a_whole_line() {
        let text = b"one\ntwo\nthree\n";
        assert_eq!(super::tail_lines(text, 100), "one\ntwo\nthree\n");
        // "wo\nthree\n": the cut line is dropped.
        assert_eq!(super::tail_lines(text, 9), "three\n");
        // "two\nthree\n" starts right after a newline: kept whole.
        assert_eq!(super::tail_lines(text, 10), "two\nthree\n");
        assert_eq!(super::tail_lines(text, 0), "");
    }
}
