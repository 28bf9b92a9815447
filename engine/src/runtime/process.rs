//! The process runtime: a slot is a child process started from a command line,
//! told its port through `PORT` and its version through `APP_VERSION`.
//!
//! Children run in their own process group so a Ctrl-C or crash of the console
//! does not take user-facing slots down with it; after a console restart they are
//! found again by pid.

use super::{Liveness, RunningSlot, Runtime, RuntimeError, SlotSpec};
use async_trait::async_trait;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct ProcessRuntime {
    log_dir: PathBuf,
    /// Exit statuses of children this console started and reaped. Without a
    /// reaper an exited child stays a zombie and still looks alive to `kill(0)`.
    exited: Arc<Mutex<HashMap<u32, String>>>,
}

impl ProcessRuntime {
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        ProcessRuntime {
            log_dir: log_dir.into(),
            exited: Arc::default(),
        }
    }

    fn command_line(spec: &SlotSpec) -> Result<Vec<String>, RuntimeError> {
        let words = shell_words::split(&spec.artifact)
            .map_err(|e| RuntimeError::InvalidArtifact(format!("{}: {e}", spec.artifact)))?;
        if words.is_empty() {
            return Err(RuntimeError::InvalidArtifact("empty command".into()));
        }
        Ok(words)
    }

    fn parse_pid(handle: &str) -> Result<u32, RuntimeError> {
        handle.parse().map_err(|_| RuntimeError::StopFailed {
            handle: handle.into(),
            reason: "not a pid".into(),
        })
    }
}

/// Reserves a free loopback port by binding port 0. The port is released again
/// before the child binds it; a collision in that gap makes the child exit,
/// which the health wait reports as such.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[async_trait]
impl Runtime for ProcessRuntime {
    async fn check(&self, spec: &SlotSpec) -> Result<(), RuntimeError> {
        let words = Self::command_line(spec)?;
        let program = Path::new(&words[0]);
        if program.components().count() > 1 && !is_executable(program) {
            return Err(RuntimeError::ArtifactNotFound(format!(
                "no executable at {}",
                program.display()
            )));
        }
        Ok(())
    }

    async fn recent_output(
        &self,
        environment: &str,
        color: model::SlotColor,
        max_bytes: usize,
    ) -> Result<String, RuntimeError> {
        let path = self.log_dir.join(format!("{environment}-{color}.log"));
        let bytes = match tokio::fs::File::open(&path).await {
            Ok(mut f) => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let len = f.metadata().await?.len();
                // One byte more than asked: `tail_lines` looks at the byte
                // before its window to tell a cut line from a whole one.
                let from = len.saturating_sub(max_bytes as u64 + 1);
                f.seek(std::io::SeekFrom::Start(from)).await?;
                let mut buf = Vec::with_capacity((len - from) as usize);
                f.read_to_end(&mut buf).await?;
                if from == 0 {
                    return Ok(String::from_utf8_lossy(&buf).into_owned());
                }
                buf
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(super::tail_lines(&bytes, max_bytes))
    }

    /// The release directories: for `/srv/releases/{version}/bin/app`,
    /// the entries of `/srv/releases` whose `bin/app` exists, most recently
    /// changed first.
    async fn versions(
        &self,
        template: &str,
        _registry: Option<&super::RegistryLogin>,
        limit: usize,
    ) -> Result<Vec<String>, RuntimeError> {
        let program = shell_words::split(template)
            .ok()
            .and_then(|w| w.into_iter().next())
            .unwrap_or_default();
        let Some((dir, rest)) = program.split_once("{version}") else {
            return Ok(Vec::new());
        };
        if !dir.ends_with('/') || !(rest.is_empty() || rest.starts_with('/')) {
            return Ok(Vec::new());
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut found: Vec<(std::time::SystemTime, String)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                crate::version::validate_version(&name).ok()?;
                let program = std::path::PathBuf::from(format!("{dir}{name}{rest}"));
                program.exists().then_some(())?;
                let changed = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((changed, name))
            })
            .collect();
        found.sort_by(|a, b| b.cmp(a));
        Ok(found.into_iter().take(limit).map(|(_, v)| v).collect())
    }

    async fn start(&self, spec: &SlotSpec) -> Result<RunningSlot, RuntimeError> {
        self.check(spec).await?;
        let words = Self::command_line(spec)?;
        let port = free_port()?;
        std::fs::create_dir_all(&self.log_dir)?;
        let log_path = self
            .log_dir
            .join(format!("{}-{}.log", spec.environment, spec.color));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut cmd = tokio::process::Command::new(&words[0]);
        // The console's own settings (SWITCHYARD_ADMIN_PASSWORD, …) are not
        // the service's: a slot inherits the rest of the environment only.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SWITCHYARD_") {
                cmd.env_remove(name);
            }
        }
        cmd.args(&words[1..])
            .envs(spec.env.0.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .env("APP_VERSION", &spec.version)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd
            .spawn()
            .map_err(|e| RuntimeError::StartFailed(format!("{}: {e}", words[0])))?;
        let pid = child
            .id()
            .ok_or_else(|| RuntimeError::StartFailed("child exited before it had a pid".into()))?;
        let exited = self.exited.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => s.to_string(),
                Err(e) => format!("unknown ({e})"),
            };
            exited
                .lock()
                .expect("exit map poisoned")
                .insert(pid, status);
        });
        tracing::info!(env = %spec.environment, slot = %spec.color, version = %spec.version, pid, port, "started slot process");
        Ok(RunningSlot {
            handle: pid.to_string(),
            address: format!("127.0.0.1:{port}"),
        })
    }

    async fn stop(&self, handle: &str, grace: Duration) -> Result<(), RuntimeError> {
        let pid = Self::parse_pid(handle)?;
        if self.liveness(handle).await != Liveness::Running {
            return Ok(());
        }
        let target = Pid::from_raw(pid as i32);
        // The whole group: a shell wrapper's children go too.
        let group = Pid::from_raw(-(pid as i32));
        let _ = kill(group, Signal::SIGTERM).or_else(|_| kill(target, Signal::SIGTERM));
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if self.liveness(handle).await != Liveness::Running {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tracing::warn!(pid, "slot process ignored SIGTERM; sending SIGKILL");
        let _ = kill(group, Signal::SIGKILL).or_else(|_| kill(target, Signal::SIGKILL));
        for _ in 0..200 {
            if self.liveness(handle).await != Liveness::Running {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(RuntimeError::StopFailed {
            handle: handle.into(),
            reason: "still running after SIGKILL".into(),
        })
    }

    async fn liveness(&self, handle: &str) -> Liveness {
        let Ok(pid) = Self::parse_pid(handle) else {
            return Liveness::Exited("no such process".into());
        };
        if let Some(status) = self.exited.lock().expect("exit map poisoned").get(&pid) {
            return Liveness::Exited(status.clone());
        }
        match kill(Pid::from_raw(pid as i32), None) {
            Ok(()) => Liveness::Running,
            Err(_) => Liveness::Exited("no such process".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::SlotColor;

    fn spec(artifact: &str) -> SlotSpec {
        SlotSpec {
            environment: "test".into(),
            color: SlotColor::Blue,
            version: "v1".into(),
            artifact: artifact.into(),
            env: Default::default(),
        docker: Default::default(),
        registry: None,
        }
    }

    #[tokio::test]
    async fn start_passes_port_and_version_then_stop_terminates() {
        let dir = tempfile::tempdir().unwrap();
        let rt = ProcessRuntime::new(dir.path());
        let out = dir.path().join("env.txt");
        let cmd = format!(
            "sh -c 'echo $PORT $APP_VERSION > {}; exec sleep 30'",
            out.display()
        );
        let slot = rt.start(&spec(&cmd)).await.unwrap();
        assert_eq!(rt.liveness(&slot.handle).await, Liveness::Running);
        let port = slot.address.rsplit(':').next().unwrap().to_string();
        let mut seen = String::new();
        for _ in 0..100 {
            seen = std::fs::read_to_string(&out).unwrap_or_default();
            if !seen.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen.trim(), format!("{port} v1"));
        rt.stop(&slot.handle, Duration::from_secs(5)).await.unwrap();
        assert!(matches!(
            rt.liveness(&slot.handle).await,
            Liveness::Exited(_)
        ));
    }

    #[tokio::test]
    async fn stop_escalates_to_sigkill_after_grace() {
        let dir = tempfile::tempdir().unwrap();
        let rt = ProcessRuntime::new(dir.path());
        let slot = rt
            .start(&spec(
                "sh -c 'trap \"\" TERM; while true; do sleep 0.05; done'",
            ))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = std::time::Instant::now();
        rt.stop(&slot.handle, Duration::from_millis(300))
            .await
            .unwrap();
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(matches!(
            rt.liveness(&slot.handle).await,
            Liveness::Exited(_)
        ));
    }

    #[tokio::test]
    async fn exit_at_start_is_seen_with_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let rt = ProcessRuntime::new(dir.path());
        let slot = rt.start(&spec("sh -c 'exit 3'")).await.unwrap();
        let mut l = Liveness::Running;
        for _ in 0..100 {
            l = rt.liveness(&slot.handle).await;
            if l != Liveness::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(l, Liveness::Exited("exit status: 3".into()));
    }

    #[tokio::test]
    async fn missing_artifact_is_refused_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let rt = ProcessRuntime::new(dir.path());
        let err = rt
            .start(&spec("/nonexistent/releases/v9/app --port 1"))
            .await
            .unwrap_err();
        assert!(matches!(err, RuntimeError::ArtifactNotFound(_)), "{err}");
        let err = rt.check(&spec("app 'unclosed")).await.unwrap_err();
        assert!(matches!(err, RuntimeError::InvalidArtifact(_)), "{err}");
    }
}
