//! The pipeline tests' harness: one environment with its own real
//! `switchyard-proxy`, SQLite file and `switchyard-demo` slot processes,
//! driven by the engine with the process runtime (wrapped to record every
//! pid it starts), plus the helpers more than one `pipeline_*.rs` file uses.
//!
//! Every test starts its own proxy and slots and kills all of them when it
//! ends, even when an assertion fails (see `Harness`'s `Drop`).

use super::{sibling_bin, spawn_proxy, spawn_proxy_with};
use async_trait::async_trait;
use engine::environments::{self, NewEnvironment};
use engine::runtime::{Liveness, ProcessRuntime, RunningSlot, Runtime, RuntimeError, SlotSpec};
use engine::users::User;
use engine::Actor;
use engine::Engine;
use model::{DeploymentStatus, DeploymentView, Role, SlotColor, StepStatus, StepView};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ENV: &str = "production";
pub const TOKEN: &str = "pipeline-test-admin-token";
/// Versions that have a release directory; anything else is unknown.
const RELEASES: [&str; 8] = [
    "v1",
    "v2",
    "v3",
    "v2+unhealthy",
    "v2+crash",
    "v2+slow",
    "v2+errors",
    "v2+laggy",
];

pub fn kill_group(pid: u32) {
    let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
}

pub fn pid_alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

pub type Hook = Box<dyn FnOnce() + Send>;

/// The real process runtime, recording every pid it starts (so the test can
/// kill whatever the engine forgot) and able to run a hook right after a slot
/// was launched, i.e. after the pipeline's preflight and before its switch.
pub struct RecordingRuntime {
    inner: ProcessRuntime,
    pub started: Arc<Mutex<Vec<u32>>>,
    pub after_start: Mutex<Option<Hook>>,
}

#[async_trait]
impl Runtime for RecordingRuntime {
    async fn check(&self, spec: &SlotSpec) -> Result<(), RuntimeError> {
        self.inner.check(spec).await
    }

    async fn start(&self, spec: &SlotSpec) -> Result<RunningSlot, RuntimeError> {
        let running = self.inner.start(spec).await?;
        if let Ok(pid) = running.handle.parse() {
            self.started.lock().unwrap().push(pid);
        }
        let hook = self.after_start.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        Ok(running)
    }

    async fn stop(&self, handle: &str, grace: Duration) -> Result<(), RuntimeError> {
        self.inner.stop(handle, grace).await
    }

    async fn liveness(&self, handle: &str) -> Liveness {
        self.inner.liveness(handle).await
    }
}

/// A console of another host: only its heartbeat tells whether it lives
/// (`Holder::is_gone` cannot look at its process).
#[allow(dead_code)] // pipeline_locks.rs, pipeline_watch.rs
pub fn console_elsewhere() -> engine::lock::Holder {
    engine::lock::Holder {
        host: "console-2.internal".into(),
        pid: 4242,
        started: 1,
        engine: "feedbeef".into(),
    }
}

/// The database a test's engine uses (see `engine::store::testing::store_url`).
pub async fn store_url(dir: &Path) -> String {
    engine::store::testing::store_url(dir).await
}

/// Pids the slots table of the database at `url` says are running: what
/// the engine thinks it owns.
pub fn slot_pids_in_db(url: &str) -> Vec<u32> {
    let url = url.to_string();
    std::thread::spawn(move || -> Option<Vec<u32>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let pool = engine::store::open(&url).await.ok()?;
            let rows: Vec<(Option<String>,)> = engine::store::query_as("SELECT handle FROM slots")
                .fetch_all(&pool)
                .await
                .ok()?;
            pool.close().await;
            Some(
                rows.into_iter()
                    .filter_map(|(h,)| h?.parse().ok())
                    .collect(),
            )
        })
    })
    .join()
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// One environment with its own proxy, database and slot processes.
pub struct Harness {
    pub dir: tempfile::TempDir,
    /// The engine's database: a SQLite file in `dir`, or a PostgreSQL
    /// database of its own (see [`store_url`]).
    pub db: String,
    pub engine: Engine,
    pub runtime: Arc<RecordingRuntime>,
    pub proxy: Arc<Mutex<Option<Child>>>,
    pub public: String,
    pub http: reqwest::Client,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut p) = self.proxy.lock().unwrap().take() {
            let _ = p.kill();
            let _ = p.wait();
        }
        let mut pids = self.runtime.started.lock().unwrap().clone();
        pids.extend(slot_pids_in_db(&self.db));
        for pid in pids {
            kill_group(pid);
        }
    }
}

impl Harness {
    pub async fn new(health_deadline: Duration) -> Harness {
        Harness::build(health_deadline, false).await
    }

    /// [`Harness::new`] with the proxy's preview listener (`--preview`) as
    /// the environment's preview address.
    #[allow(dead_code)] // canary.rs
    pub async fn with_preview(health_deadline: Duration) -> Harness {
        Harness::build(health_deadline, true).await
    }

    async fn build(health_deadline: Duration, preview: bool) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let demo = sibling_bin("switchyard-demo");
        for v in RELEASES {
            let release = dir.path().join("releases").join(v);
            std::fs::create_dir_all(&release).unwrap();
            std::os::unix::fs::symlink(&demo, release.join("switchyard-demo")).unwrap();
        }
        std::fs::write(dir.path().join("proxy-token"), format!("{TOKEN}\n")).unwrap();
        let (child, info) = spawn_proxy_with(dir.path(), preview);
        let proxy = Arc::new(Mutex::new(Some(child)));

        let db = store_url(dir.path()).await;
        let pool = engine::store::open(&db).await.unwrap();
        let runtime = Arc::new(RecordingRuntime {
            inner: ProcessRuntime::new(dir.path().join("logs")),
            started: Arc::default(),
            after_start: Mutex::new(None),
        });
        let template = format!(
            "{}/releases/{{version}}/switchyard-demo",
            dir.path().display()
        );
        let mut new = NewEnvironment::new(
            ENV,
            &format!("http://{}/", info.public),
            &template,
            &format!("http://{}", info.admin),
            &dir.path().join("proxy-token").display().to_string(),
        );
        new.health_interval = Duration::from_millis(50);
        new.health_deadline = health_deadline;
        new.stop_grace = Duration::from_secs(2);
        // The watch window runs in the background after a deploy and may roll
        // back by itself; only the tests of the watch turn it on.
        new.watch_window = Duration::ZERO;
        new.preview_listen = info.preview.clone();
        environments::create(&pool, &new).await.unwrap();
        let engine = Engine::new(pool, runtime.clone());
        Harness {
            dir,
            db,
            engine,
            runtime,
            proxy,
            public: info.public,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    pub async fn with_v1_live() -> Harness {
        let h = Harness::new(Duration::from_secs(3)).await;
        let d = h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
        assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
        assert_eq!(h.users_see().await, "switchyard-demo v1\n");
        h
    }

    pub async fn user(&self, name: &str, role: Role) -> Actor {
        let u: User =
            engine::users::create(self.engine.pool(), name, "a long enough password", role)
                .await
                .unwrap();
        Actor::user(u)
    }

    pub async fn get(&self, addr: &str) -> String {
        let resp = self
            .http
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET http://{addr}/: {e}"));
        assert!(
            resp.status().is_success(),
            "GET http://{addr}/: {}",
            resp.status()
        );
        resp.text().await.unwrap()
    }

    /// What a user reaching the application through the proxy gets.
    pub async fn users_see(&self) -> String {
        self.get(&self.public).await
    }

    pub async fn slot(&self, color: SlotColor) -> environments::Slot {
        let env = environments::find(self.engine.pool(), ENV).await.unwrap();
        environments::slot(self.engine.pool(), env.id, color)
            .await
            .unwrap()
    }

    pub async fn active(&self) -> Option<SlotColor> {
        environments::find(self.engine.pool(), ENV)
            .await
            .unwrap()
            .active
    }

    pub async fn history(&self) -> Vec<DeploymentView> {
        self.engine
            .history(&Actor::system(), ENV, 100)
            .await
            .unwrap()
    }

    pub fn kill_proxy(&self) {
        if let Some(mut p) = self.proxy.lock().unwrap().take() {
            p.kill().unwrap();
            p.wait().unwrap();
        }
    }

    /// Starts the proxy again from its state file (new ports).
    pub fn restart_proxy(&mut self) {
        self.kill_proxy();
        let (child, info) = spawn_proxy(self.dir.path());
        *self.proxy.lock().unwrap() = Some(child);
        self.public = info.public;
    }
}

pub fn pid_of(slot: &environments::Slot) -> u32 {
    slot.handle
        .as_deref()
        .unwrap_or_else(|| panic!("{} slot has no process: {slot:?}", slot.color))
        .parse()
        .unwrap()
}

/// (name, status) of each step, in order.
pub fn step_names(steps: &[StepView]) -> Vec<(&str, StepStatus)> {
    steps.iter().map(|s| (s.name.as_str(), s.status)).collect()
}

/// One user request's outcome: status and body, or the transport error.
pub type Answer = Result<(u16, String), String>;

/// Users asking one request after another, `clients` at a time, until
/// stopped.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<Vec<Answer>>>,
}

impl Load {
    pub fn start(h: &Harness, clients: usize) -> Load {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients = (0..clients)
            .map(|i| {
                let (http, url, stop) = (
                    h.http.clone(),
                    format!("http://{}/", h.public),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    // Staggered starts: otherwise clients of a slow slot ask
                    // in lockstep and all their requests end at once.
                    tokio::time::sleep(Duration::from_millis(50 * i as u64)).await;
                    let mut seen = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        seen.push(match http.get(&url).send().await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                Ok((status, r.text().await.unwrap_or_default()))
                            }
                            Err(e) => Err(e.to_string()),
                        });
                    }
                    seen
                })
            })
            .collect();
        Load { stop, clients }
    }

    pub async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all = Vec::new();
        for c in self.clients {
            all.extend(c.await.unwrap());
        }
        all
    }
}
