//! The checkpoint stream's files in the data directory: the signing key
//! (`audit-signing.key`, mode 0600, created at first start) and the stream
//! (`audit-checkpoints.jsonl`, appended to, never rewritten). The console
//! and the `switchyard audit` commands may write at the same time (a
//! rotation while the console checkpoints), so every write holds an flock
//! on `audit-checkpoints.lock` and reads the stream's last line under it.

use super::checkpoint::{self, check_stream, Checkpoint, Stream, StreamBroken};
use super::{Anchors, Verdict};
use crate::error::{Error, Result};
use crate::store::Pool;
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KEY_FILE: &str = "audit-signing.key";
const STREAM_FILE: &str = "audit-checkpoints.jsonl";
const LOCK_FILE: &str = "audit-checkpoints.lock";

/// How long a checkpoint waits for another writer of the stream.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long the configured sink command may take per checkpoint.
const SINK_TIMEOUT: Duration = Duration::from_secs(10);

/// The key file and the stream of one data directory.
#[derive(Clone, Debug)]
pub struct Checkpoints {
    dir: PathBuf,
    /// A shell command each new checkpoint line is piped to (its standard
    /// input), to keep a copy where this machine's writer cannot reach.
    sink: Option<String>,
}

fn internal(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{what} {}: {e}", path.display()))
}

/// An engine's checkpoint files and its last verification (when, and what
/// it found), for the audit page.
pub(crate) struct Seal {
    pub(crate) files: Checkpoints,
    pub(crate) last_check: std::sync::Mutex<Option<(String, Sealed)>>,
}

/// What `check` found: the chain and the checkpoints together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sealed {
    /// The chain checks out up to the newest checkpoint and past it.
    Intact {
        entries: u64,
        newest: Option<Checkpoint>,
    },
    /// The checkpoint stream itself is broken (line number, why).
    StreamBroken(StreamBroken),
    /// The chain is broken, or does not match what a checkpoint signed.
    ChainBroken { id: i64, position: u64, why: String },
    /// The log has entries but no checkpoint vouches for them.
    Unanchored { entries: u64 },
}

impl Checkpoints {
    /// The checkpoint files of `data_dir`, creating the signing key if there
    /// is none yet (the console's first start).
    pub fn open(data_dir: &Path) -> Result<Checkpoints> {
        let c = Checkpoints {
            dir: data_dir.to_path_buf(),
            sink: None,
        };
        if !c.key_path().exists() {
            write_key(&c.key_path(), &new_key())?;
        }
        Ok(c)
    }

    /// The files of `data_dir` as they are, creating nothing (verification).
    pub fn existing(data_dir: &Path) -> Checkpoints {
        Checkpoints {
            dir: data_dir.to_path_buf(),
            sink: None,
        }
    }

    /// Also pipes every new checkpoint line to `command` (run by `sh -c`).
    pub fn with_sink(mut self, command: Option<String>) -> Checkpoints {
        self.sink = command.filter(|c| !c.trim().is_empty());
        self
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    pub fn stream_path(&self) -> PathBuf {
        self.dir.join(STREAM_FILE)
    }

    fn pending_key_path(&self) -> PathBuf {
        self.dir.join(format!("{KEY_FILE}.new"))
    }

    /// The public half of the signing key.
    pub fn public_key(&self) -> Result<VerifyingKey> {
        Ok(read_key(&self.key_path())?.verifying_key())
    }

    /// Every line of a stream file (`None`: this directory's own).
    pub fn read_lines(&self, file: Option<&Path>) -> Result<Vec<String>> {
        let path = file.map_or_else(|| self.stream_path(), Path::to_path_buf);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text.lines().map(str::to_string).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(internal("reading", &path, e)),
        }
    }

    /// The newest checkpoint of this directory's stream, read from the
    /// file's end (`None` before the first, or if the last line is not one).
    pub fn newest(&self) -> Result<Option<Checkpoint>> {
        Ok(last_line(&self.stream_path())?.and_then(|l| Checkpoint::parse(&l).ok()))
    }

    /// The stream, checked against `trusted`.
    pub fn stream(
        &self,
        file: Option<&Path>,
        trusted: &VerifyingKey,
    ) -> Result<std::result::Result<Stream, StreamBroken>> {
        let lines = self.read_lines(file)?;
        Ok(check_stream(lines.iter().map(String::as_str), trusted))
    }

    /// Checks the stream and then the chain against every checkpoint in it.
    pub async fn check(
        &self,
        pool: &Pool,
        file: Option<&Path>,
        trusted: &VerifyingKey,
    ) -> Result<Sealed> {
        let stream = match self.stream(file, trusted)? {
            Ok(s) => s,
            Err(b) => return Ok(Sealed::StreamBroken(b)),
        };
        let anchors: Anchors = stream.anchors();
        Ok(match super::verify_with(pool, &anchors).await? {
            Verdict::Broken { id, position, why } => Sealed::ChainBroken { id, position, why },
            Verdict::Intact { entries } if entries > 0 && stream.newest().is_none() => {
                Sealed::Unanchored { entries }
            }
            Verdict::Intact { entries } => Sealed::Intact {
                entries,
                newest: stream.newest().cloned(),
            },
        })
    }

    /// Signs a checkpoint of the log as it is now, unless the newest one
    /// already vouches for exactly this (then `None`). With `rotate`, the
    /// checkpoint names a fresh key that signs from then on.
    pub async fn checkpoint(&self, pool: &Pool, rotate: bool) -> Result<Option<Checkpoint>> {
        let lock = self.lock().await?;
        // Read under the lock: two checkpoints taken at once must not be
        // written in the opposite order of the heads they read.
        let last: Option<(i64, String)> =
            crate::store::query_as("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
                .fetch_optional(pool)
                .await?;
        let (entries, head) = last.map_or((0, super::GENESIS.to_string()), |(id, h)| (id as u64, h));
        let this = self.clone();
        let written = tokio::task::spawn_blocking(move || {
            let written = this.append_locked(entries, head, rotate);
            drop(lock);
            written
        })
        .await
        .map_err(|e| Error::Internal(format!("checkpoint task: {e}")))??;
        if let (Some(c), Some(command)) = (&written, &self.sink) {
            ship(command, &c.to_line()).await;
        }
        Ok(written)
    }

    /// Takes the stream's flock, polling so no runtime thread blocks.
    async fn lock(&self) -> Result<std::fs::File> {
        let path = self.dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| internal("opening", &path, e))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Internal(format!(
                        "another writer holds {} for too long",
                        path.display()
                    )))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(internal("locking", &path, e)),
            }
        }
    }

    /// The append itself, with the flock held by the caller.
    fn append_locked(&self, entries: u64, head: String, rotate: bool) -> Result<Option<Checkpoint>> {
        let last_line = last_line(&self.stream_path())?;
        let last = last_line
            .as_deref()
            .map(Checkpoint::parse)
            .transpose()
            .map_err(|why| {
                Error::Internal(format!("the last line of {}: {why}", self.stream_path().display()))
            })?;
        let key = self.current_key(last.as_ref())?;
        if let Some(l) = &last {
            if !rotate && l.entries == entries && l.head == head {
                return Ok(None);
            }
        }
        let next = rotate.then(new_key);
        if let Some(next) = &next {
            // Written before the rotation line: if this process dies between
            // the two, `current_key` finds the pending key by the stream.
            write_key(&self.pending_key_path(), next)?;
        }
        let c = Checkpoint::sign(
            &key,
            last.as_ref().map_or(1, |l| l.seq + 1),
            entries,
            head,
            super::timestamp(crate::now()),
            last_line.as_deref(),
            next.as_ref(),
        );
        append_line(&self.stream_path(), &c.to_line())?;
        if next.is_some() {
            self.promote_pending_key()?;
        }
        Ok(Some(c))
    }

    /// The key that must sign next: the key file's, after finishing a
    /// rotation a crash interrupted. Refuses to sign with a key the stream
    /// does not expect (a replaced key file would fork the stream).
    fn current_key(&self, last: Option<&Checkpoint>) -> Result<SigningKey> {
        let pending = self.pending_key_path();
        if pending.exists() {
            let next = read_key(&pending)?;
            let expected = last.map(Checkpoint::next_key);
            if expected == Some(checkpoint::public_key_text(&next.verifying_key()).as_str()) {
                self.promote_pending_key()?;
            } else {
                std::fs::remove_file(&pending).map_err(|e| internal("removing", &pending, e))?;
            }
        }
        let key = read_key(&self.key_path())?;
        let ours = checkpoint::public_key_text(&key.verifying_key());
        match last {
            Some(l) if l.next_key() != ours => Err(Error::Internal(format!(
                "the signing key {ours} is not the one the checkpoint stream expects ({}); \
                 restore {} instead of signing a fork",
                l.next_key(),
                self.key_path().display()
            ))),
            _ => Ok(key),
        }
    }

    fn promote_pending_key(&self) -> Result<()> {
        let (from, to) = (self.pending_key_path(), self.key_path());
        std::fs::rename(&from, &to).map_err(|e| internal("renaming", &from, e))?;
        sync_dir(&self.dir)
    }
}

fn new_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

fn read_key(path: &Path) -> Result<SigningKey> {
    Ok(SigningKey::from_bytes(&crate::key_file::read(path, "a signing key")?))
}

fn write_key(path: &Path, key: &SigningKey) -> Result<()> {
    crate::key_file::write(path, &key.to_bytes())
}

fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| internal("opening", path, e))?;
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| internal("appending to", path, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| internal("syncing", dir, e))
}

/// The file's last line, read from its end (the stream grows for years).
fn last_line(path: &Path) -> Result<Option<String>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(internal("opening", path, e)),
    };
    let len = f.metadata().map_err(|e| internal("reading", path, e))?.len();
    // A checkpoint line is under 700 bytes; 8 KiB always holds the last one.
    let start = len.saturating_sub(8192);
    let mut tail = String::new();
    f.seek(SeekFrom::Start(start))
        .and_then(|_| f.read_to_string(&mut tail))
        .map_err(|e| internal("reading", path, e))?;
    Ok(tail.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string))
}

/// Pipes a checkpoint line to the sink command. A failure is logged, not
/// returned: the local stream already holds the checkpoint.
async fn ship(command: &str, line: &str) {
    use tokio::io::AsyncWriteExt;
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "the audit checkpoint command did not start");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{line}\n").as_bytes()).await;
    }
    match tokio::time::timeout(SINK_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tracing::warn!(%status, "the audit checkpoint command failed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "the audit checkpoint command failed"),
        Err(_) => tracing::warn!("the audit checkpoint command timed out"),
    }
}
