//! Drives a local nginx: the active slot lives in an upstream include file
//! that the operator's nginx configuration `include`s inside `http { }`.
//!
//! `apply` follows the runbook teams use by hand (write, test, reload), minus the
//! ways it breaks: the include is replaced atomically (temp file, fsync,
//! rename), `nginx -t` checks the whole configuration before anything is
//! reloaded, a failed check puts the previous include back byte for byte (so
//! the file on disk always matches what nginx serves), and the reload is
//! confirmed before `apply` answers.
//!
//! State is read back from the include itself: its marker comment carries the
//! generation, the active slot and the preview slot, so two consoles (or a
//! console restarted mid-switch) agree on the fencing generation without a
//! database.
//!
//! **Preview.** With a preview listen address ([`NginxRouter::with_preview`])
//! the include also holds a `server` block listening there, which proxies to
//! a second upstream (`<upstream>_preview`) holding the table's `preview`
//! slot and marks each answer `X-Switchyard-Slot: <slot>`; without a preview
//! slot it answers 503. Users never reach it through the operator's server
//! blocks: only the `<upstream>` upstream is theirs.

#[cfg(test)]
mod tests;

use super::{RouterError, TrafficRouter};
use async_trait::async_trait;
use model::{RoutingTable, SlotColor, Upstream};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The marker line `current()` parses; everything after it is for nginx.
const MARKER: &str = "# switchyard-routing";

/// Where nginx lives and which files Switchyard may rewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NginxSettings {
    /// The nginx executable (`/usr/sbin/nginx` on Debian).
    pub binary: PathBuf,
    /// The main configuration file (`nginx -c`).
    pub conf: PathBuf,
    /// The prefix (`nginx -p`); `None` uses nginx's compiled-in prefix.
    pub prefix: Option<PathBuf>,
    /// The upstream include Switchyard owns; the main configuration must
    /// `include` it in the `http` block and nothing else may write it.
    pub include: PathBuf,
    /// The master's pid file (the `pid` directive of `conf`): reloads are
    /// sent to, and confirmed on, this process.
    pub pid_file: PathBuf,
    /// The upstream's name, used as `proxy_pass http://<name>;` in the
    /// operator's server block.
    pub upstream: String,
    /// How long `nginx -t` and the reload may take each.
    pub reload_timeout: Duration,
}

impl NginxSettings {
    pub const DEFAULT_BINARY: &'static str = "/usr/sbin/nginx";
    pub const DEFAULT_RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

    /// The upstream name an environment gets: `switchyard_<env>`.
    pub fn upstream_for(environment: &str) -> String {
        format!("switchyard_{environment}")
    }
}

/// What the marker line of an include says.
#[derive(Debug, PartialEq, Eq)]
struct Marker {
    generation: u64,
    active: Option<Upstream>,
    preview: Option<Upstream>,
}

#[derive(Debug)]
pub struct NginxRouter {
    settings: NginxSettings,
    /// host:port the preview server block listens on, if any.
    preview_listen: Option<String>,
    /// Serializes applies made through this value; the lock file (below)
    /// serializes them across router values and processes, since the
    /// pipeline builds a router per operation and consoles may share a host.
    local: tokio::sync::Mutex<()>,
}

impl NginxRouter {
    pub fn new(settings: NginxSettings) -> Self {
        NginxRouter {
            settings,
            preview_listen: None,
            local: tokio::sync::Mutex::new(()),
        }
    }

    /// Renders a preview `server` block listening on `listen` (host:port)
    /// in every include this router writes.
    pub fn with_preview(mut self, listen: Option<String>) -> Self {
        self.preview_listen = listen;
        self
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests and benchmarks
    pub fn settings(&self) -> &NginxSettings {
        &self.settings
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests and benchmarks
    /// Writes the include at generation 0 with no active slot (requests get
    /// 502) if it does not exist yet, so nginx can start before the first
    /// switch: its `include` of a missing file is an error. Returns whether
    /// it wrote the file; an existing include is never touched.
    pub fn ensure_include(&self) -> Result<bool, RouterError> {
        if self.read_include()?.is_some() {
            return Ok(false);
        }
        let content = render(
            &self.settings.upstream,
            self.preview_listen.as_deref(),
            &RoutingTable {
                generation: 0,
                active: None,
                preview: None,
                ..RoutingTable::default()
            },
        )?;
        write_atomically(&self.settings.include, content.as_bytes()).map_err(|e| {
            RouterError::Unreachable(format!("writing {}: {e}", self.settings.include.display()))
        })?;
        Ok(true)
    }

    fn lock_path(&self) -> PathBuf {
        sibling(&self.settings.include, ".lock")
    }

    /// Takes the cross-process lock (flock on `<include>.lock`), polling so
    /// no runtime thread blocks; held until the returned file is dropped.
    async fn lock_file(&self) -> Result<File, RouterError> {
        let path = self.lock_path();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| RouterError::Unreachable(format!("lock {}: {e}", path.display())))?;
        // Another apply may legitimately hold it for a whole check + reload.
        let deadline = Instant::now() + self.settings.reload_timeout * 3;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(RouterError::Unreachable(format!(
                        "another switch holds {} for too long",
                        path.display()
                    )))
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(RouterError::Unreachable(format!(
                        "lock {}: {e}",
                        path.display()
                    )))
                }
            }
        }
    }

    /// The include's bytes, `None` if it does not exist yet.
    fn read_include(&self) -> Result<Option<Vec<u8>>, RouterError> {
        match std::fs::read(&self.settings.include) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RouterError::Unreachable(format!(
                "reading {}: {e}",
                self.settings.include.display()
            ))),
        }
    }

    fn marker_of(&self, bytes: Option<&[u8]>) -> Result<Marker, RouterError> {
        match bytes {
            // Nothing written yet: generation 0, so any first table is newer.
            None => Ok(Marker {
                generation: 0,
                active: None,
                preview: None,
            }),
            Some(b) => parse_marker(&String::from_utf8_lossy(b)).ok_or_else(|| {
                RouterError::Rejected(format!(
                    "{} has no `{MARKER}` line: it was not written by Switchyard, refusing to overwrite it",
                    self.settings.include.display()
                ))
            }),
        }
    }

    fn master_pid(&self) -> Result<Pid, RouterError> {
        let path = &self.settings.pid_file;
        let text = std::fs::read_to_string(path).map_err(|e| {
            RouterError::Unreachable(format!("nginx pid file {}: {e}", path.display()))
        })?;
        let pid: i32 = text.trim().parse().map_err(|_| {
            RouterError::Unreachable(format!("nginx pid file {} is not a pid", path.display()))
        })?;
        let pid = Pid::from_raw(pid);
        kill(pid, None).map_err(|e| {
            RouterError::Unreachable(format!(
                "nginx master {pid} (from {}) is not running: {e}",
                path.display()
            ))
        })?;
        Ok(pid)
    }

    /// `nginx -t` on the whole configuration as it now is on disk.
    async fn test_config(&self) -> Result<(), RouterError> {
        let mut cmd = tokio::process::Command::new(&self.settings.binary);
        cmd.arg("-t").arg("-q").arg("-c").arg(&self.settings.conf);
        if let Some(prefix) = &self.settings.prefix {
            cmd.arg("-p").arg(prefix);
        }
        cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
        let out = tokio::time::timeout(self.settings.reload_timeout, cmd.output())
            .await
            .map_err(|_| RouterError::Unreachable("nginx -t did not finish in time".into()))?
            .map_err(|e| {
                RouterError::Unreachable(format!("running {}: {e}", self.settings.binary.display()))
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RouterError::Rejected(format!(
                "nginx -t refused the configuration ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// SIGHUPs the master and waits until the reload took effect.
    ///
    /// "Took effect" means: the master started new worker processes (they
    /// run the configuration read at the reload) and every worker from
    /// before the reload has exited or is "shutting down" (it closed its
    /// listening sockets and only finishes requests it already had). From
    /// then on every new connection is served with the new upstream. This is
    /// checked through /proc rather than with a request through nginx
    /// because it needs no cooperation from the application (a request
    /// cannot tell which upstream answered unless the app says so) and it
    /// also catches a reload the master rejected (e.g. a listen address it
    /// cannot bind, which `nginx -t` does not always see): then no new
    /// workers appear and the wait times out.
    async fn reload(&self) -> Result<(), RouterError> {
        let master = self.master_pid()?;
        let before = children_of(master);
        kill(master, Signal::SIGHUP).map_err(|e| {
            RouterError::Unreachable(format!("SIGHUP to nginx master {master}: {e}"))
        })?;
        let deadline = Instant::now() + self.settings.reload_timeout;
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if kill(master, None).is_err() {
                return Err(RouterError::Unreachable(format!(
                    "nginx master {master} exited during the reload"
                )));
            }
            let now = children_of(master);
            let started = now.difference(&before).count() > 0;
            let old_still_listening = now.intersection(&before).any(|pid| !is_shutting_down(*pid));
            if started && !old_still_listening {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RouterError::Unreachable(format!(
                    "nginx master {master} did not reload within {:?} (see its error_log)",
                    self.settings.reload_timeout
                )));
            }
        }
    }
}

#[async_trait]
impl TrafficRouter for NginxRouter {
    /// The table in the include, provided nginx is running (the pipeline's
    /// preflight asks this to know the router is reachable).
    async fn current(&self) -> Result<RoutingTable, RouterError> {
        self.master_pid()?;
        let bytes = self.read_include()?;
        let m = self.marker_of(bytes.as_deref())?;
        Ok(RoutingTable {
            generation: m.generation,
            active: m.active,
            preview: m.preview,
            ..RoutingTable::default()
        })
    }

    async fn apply(&self, table: &RoutingTable) -> Result<RoutingTable, RouterError> {
        let _local = self.local.lock().await;
        let _file_lock = self.lock_file().await?;
        // Refuse early, before anything on disk changes.
        self.master_pid()?;
        let content = render(
            &self.settings.upstream,
            self.preview_listen.as_deref(),
            table,
        )?;

        // Fencing: read the generation in force under the lock, so two
        // writers cannot both pass the check.
        let previous = self.read_include()?;
        let in_force = self.marker_of(previous.as_deref())?;
        if table.generation <= in_force.generation {
            return Err(RouterError::StaleGeneration(format!(
                "generation {} is not newer than {} in {}",
                table.generation,
                in_force.generation,
                self.settings.include.display()
            )));
        }

        write_atomically(&self.settings.include, content.as_bytes()).map_err(|e| {
            RouterError::Unreachable(format!("writing {}: {e}", self.settings.include.display()))
        })?;

        if let Err(e) = self.test_config().await {
            // nginx still runs the old configuration (it was not reloaded);
            // put the old include back so the file says what is served.
            self.restore(previous.as_deref())?;
            return Err(e);
        }
        if let Err(e) = self.reload().await {
            // The master did not confirm the new configuration: restore the
            // include and ask it to reload again, so whatever it does with
            // the pending signal converges on the old, known-good table.
            self.restore(previous.as_deref())?;
            if let Ok(pid) = self.master_pid() {
                let _ = kill(pid, Signal::SIGHUP);
            }
            return Err(e);
        }
        Ok(table.clone())
    }

    fn preview_url(&self) -> Option<String> {
        self.preview_listen.as_ref().map(|l| format!("http://{l}"))
    }
}

impl NginxRouter {
    fn restore(&self, previous: Option<&[u8]>) -> Result<(), RouterError> {
        let path = &self.settings.include;
        let res = match previous {
            Some(bytes) => write_atomically(path, bytes),
            None => std::fs::remove_file(path),
        };
        res.map_err(|e| {
            RouterError::Unreachable(format!(
                "restoring {} after a refused switch: {e}; the file no longer matches what nginx serves",
                path.display()
            ))
        })
    }
}

/// Only host:port characters: addresses come from runtimes and operators
/// but are written into nginx's configuration, where anything else (`;`,
/// `}`, spaces, newlines) could inject directives.
fn host_port_ok(address: &str) -> bool {
    !address.is_empty()
        && address
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// The marker fields and the `server` line of one upstream.
fn upstream_lines(
    role: &str,
    upstream: Option<&Upstream>,
) -> Result<(String, String), RouterError> {
    match upstream {
        Some(up) => {
            if !host_port_ok(&up.address) {
                return Err(RouterError::Rejected(format!(
                    "slot address {:?} is not host:port",
                    up.address
                )));
            }
            let address_key = if role == "active" {
                "address".to_string()
            } else {
                format!("{role}_address")
            };
            Ok((
                format!("{role}={} {address_key}={}", up.slot, up.address),
                format!("server {};", up.address),
            ))
        }
        // nginx refuses an empty upstream; a server marked `down` keeps the
        // configuration valid and answers 502 (no slot is serving).
        None => Ok((format!("{role}=none"), "server 127.0.0.1:9 down;".into())),
    }
}

/// The include for `table`, with a preview server block when `preview_listen`
/// is set. Every name and address is checked before it reaches the file.
fn render(
    upstream: &str,
    preview_listen: Option<&str>,
    table: &RoutingTable,
) -> Result<String, RouterError> {
    let name_ok = !upstream.is_empty()
        && upstream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if !name_ok {
        return Err(RouterError::Rejected(format!(
            "upstream name {upstream:?} may only use letters, digits, _ and -"
        )));
    }
    let (marker, server) = upstream_lines("active", table.active.as_ref())?;
    let mut text = format!(
        "# Managed by Switchyard: every switch replaces this file; do not edit it.\n\
         {MARKER} generation={} {marker}",
        table.generation
    );
    let body = format!("upstream {upstream} {{\n    {server}\n}}\n");
    let Some(listen) = preview_listen else {
        if table.preview.is_some() {
            return Err(RouterError::Rejected(
                "a preview slot needs a preview listen address, and this environment has none"
                    .into(),
            ));
        }
        return Ok(format!("{text}\n{body}"));
    };
    if !host_port_ok(listen) {
        return Err(RouterError::Rejected(format!(
            "preview listen address {listen:?} is not host:port"
        )));
    }
    if let (Some(a), Some(p)) = (&table.active, &table.preview) {
        if a.slot == p.slot {
            return Err(RouterError::Rejected(format!(
                "preview slot {} is the active slot; preview serves the idle slot",
                p.slot
            )));
        }
    }
    let (preview_marker, _) = upstream_lines("preview", table.preview.as_ref())?;
    text.push(' ');
    text.push_str(&preview_marker);
    // The preview block answers 503 without a preview slot, like
    // switchyard-proxy's preview listener; with one, every answer names the
    // slot so the console can check what it reaches.
    let preview = match &table.preview {
        Some(p) => format!(
            "upstream {upstream}_preview {{\n    server {};\n}}\n\
             server {{\n    listen {listen};\n    \
             add_header X-Switchyard-Slot {} always;\n    \
             location / {{\n        proxy_set_header Host $http_host;\n        \
             proxy_pass http://{upstream}_preview;\n    }}\n}}\n",
            p.address, p.slot
        ),
        None => format!(
            "server {{\n    listen {listen};\n    \
             location / {{\n        return 503 \"switchyard: no preview slot\\n\";\n    }}\n}}\n"
        ),
    };
    Ok(format!("{text}\n{body}{preview}"))
}

fn parse_upstream(slot: Option<&str>, address: Option<&str>) -> Option<Option<Upstream>> {
    match slot? {
        "none" => Some(None),
        slot => Some(Some(Upstream {
            slot: slot.parse::<SlotColor>().ok()?,
            address: address?.to_string(),
        })),
    }
}

fn parse_marker(text: &str) -> Option<Marker> {
    let line = text.lines().find_map(|l| l.strip_prefix(MARKER))?;
    let mut generation = None;
    let (mut active, mut address) = (None, None);
    let (mut preview, mut preview_address) = (None, None);
    for field in line.split_whitespace() {
        let (k, v) = field.split_once('=')?;
        match k {
            "generation" => generation = Some(v.parse().ok()?),
            "active" => active = Some(v),
            "address" => address = Some(v),
            "preview" => preview = Some(v),
            "preview_address" => preview_address = Some(v),
            _ => {}
        }
    }
    Some(Marker {
        generation: generation?,
        active: parse_upstream(active, address)?,
        // Includes written before previews existed have no preview field.
        preview: parse_upstream(preview.or(Some("none")), preview_address)?,
    })
}

/// `dir/name` → `dir/.name<suffix>`: the lock and temp files are hidden and
/// do not end in `.conf`, so an `include dir/*.conf` never picks them up.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{suffix}"))
}

/// Temp file in the same directory, fsync, rename over `path`, fsync the
/// directory: a crash leaves either the old or the new include, never half
/// of one (nginx would refuse to start on a truncated include).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = sibling(path, &format!(".tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Pids whose parent is `parent` (scans /proc; nginx's workers and cache
/// processes are the master's direct children).
fn children_of(parent: Pid) -> HashSet<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashSet::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // `pid (comm) state ppid …`; comm may contain spaces.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(parent.as_raw())
        })
        .map(Pid::from_raw)
        .collect()
}

/// nginx retitles a worker "nginx: worker process is shutting down" once it
/// has closed its listening sockets after a reload. A process that is gone
/// counts as shut down.
fn is_shutting_down(pid: Pid) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(b) => b.is_empty() || String::from_utf8_lossy(&b).contains("shutting down"),
        Err(_) => true,
    }
}
