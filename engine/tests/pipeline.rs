//! The deploy pipeline end to end: a real `switchyard-proxy` in front of real
//! `switchyard-demo` slot processes, driven by the engine with the process
//! runtime and a SQLite file.
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` (or
//! `cargo build --workspace`) before `cargo test`.
//!
//! Every test starts its own proxy and slots and kills all of them when it
//! ends, even when an assertion fails (see `Harness`'s `Drop`).

use async_trait::async_trait;
use engine::environments::{self, NewEnvironment};
use engine::runtime::{Liveness, ProcessRuntime, RunningSlot, Runtime, RuntimeError, SlotSpec};
use engine::users::User;
use engine::Actor;
use engine::{steps, Engine, Error};
use model::{
    DeploymentKind, DeploymentStatus, DeploymentView, Role, SlotColor, SlotState, StepName,
    StepStatus, StepView,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

use support::{sibling_bin, spawn_proxy};

const ENV: &str = "production";
const TOKEN: &str = "pipeline-test-admin-token";
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

fn kill_group(pid: u32) {
    let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
}

fn pid_alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

type Hook = Box<dyn FnOnce() + Send>;

/// The real process runtime, recording every pid it starts (so the test can
/// kill whatever the engine forgot) and able to run a hook right after a slot
/// was launched, i.e. after the pipeline's preflight and before its switch.
struct RecordingRuntime {
    inner: ProcessRuntime,
    started: Arc<Mutex<Vec<u32>>>,
    after_start: Mutex<Option<Hook>>,
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

/// Pids the slots table says are running: what the engine thinks it owns.
fn slot_pids_in_db(db: &Path) -> Vec<u32> {
    let url = format!("sqlite:{}", db.display());
    std::thread::spawn(move || -> Option<Vec<u32>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.ok()?;
            let rows: Vec<(Option<String>,)> = sqlx::query_as("SELECT handle FROM slots")
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
struct Harness {
    dir: tempfile::TempDir,
    db: PathBuf,
    engine: Engine,
    runtime: Arc<RecordingRuntime>,
    proxy: Arc<Mutex<Option<Child>>>,
    public: String,
    http: reqwest::Client,
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
    async fn new(health_deadline: Duration) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let demo = sibling_bin("switchyard-demo");
        for v in RELEASES {
            let release = dir.path().join("releases").join(v);
            std::fs::create_dir_all(&release).unwrap();
            std::os::unix::fs::symlink(&demo, release.join("switchyard-demo")).unwrap();
        }
        std::fs::write(dir.path().join("proxy-token"), format!("{TOKEN}\n")).unwrap();
        let (child, info) = spawn_proxy(dir.path());
        let proxy = Arc::new(Mutex::new(Some(child)));

        let db = dir.path().join("switchyard.db");
        let pool = engine::store::open(&format!("sqlite:{}", db.display()))
            .await
            .unwrap();
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

    async fn with_v1_live() -> Harness {
        let h = Harness::new(Duration::from_secs(3)).await;
        let d = h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
        assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
        assert_eq!(h.users_see().await, "switchyard-demo v1\n");
        h
    }

    async fn user(&self, name: &str, role: Role) -> Actor {
        let u: User =
            engine::users::create(self.engine.pool(), name, "a long enough password", role)
                .await
                .unwrap();
        Actor::user(u)
    }

    async fn get(&self, addr: &str) -> String {
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
    async fn users_see(&self) -> String {
        self.get(&self.public).await
    }

    async fn slot(&self, color: SlotColor) -> environments::Slot {
        let env = environments::find(self.engine.pool(), ENV).await.unwrap();
        environments::slot(self.engine.pool(), env.id, color)
            .await
            .unwrap()
    }

    async fn active(&self) -> Option<SlotColor> {
        environments::find(self.engine.pool(), ENV)
            .await
            .unwrap()
            .active
    }

    async fn history(&self) -> Vec<DeploymentView> {
        self.engine
            .history(&Actor::system(), ENV, 100)
            .await
            .unwrap()
    }

    fn kill_proxy(&self) {
        if let Some(mut p) = self.proxy.lock().unwrap().take() {
            p.kill().unwrap();
            p.wait().unwrap();
        }
    }

    /// Starts the proxy again from its state file (new ports).
    fn restart_proxy(&mut self) {
        self.kill_proxy();
        let (child, info) = spawn_proxy(self.dir.path());
        *self.proxy.lock().unwrap() = Some(child);
        self.public = info.public;
    }
}

fn pid_of(slot: &environments::Slot) -> u32 {
    slot.handle
        .as_deref()
        .unwrap_or_else(|| panic!("{} slot has no process: {slot:?}", slot.color))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn deploy_switches_users_keeps_old_slot_warm_and_rollback_restarts_nothing() {
    // Bootstrap: the system puts v1 live on blue.
    let h = Harness::with_v1_live().await;
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    let boot = &h.history().await[0];
    assert_eq!(boot.kind, DeploymentKind::Deploy);
    assert_eq!(boot.requested_by, "system");
    assert_eq!(boot.to_version.as_deref(), Some("v1"));

    // A deployer ships v2: users move to green, blue stays up as standby.
    let dora = h.user("dora", Role::Deployer).await;
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
    assert_eq!(h.active().await, Some(SlotColor::Green));

    let blue = h.slot(SlotColor::Blue).await;
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(blue.version.as_deref(), Some("v1"));
    assert!(
        pid_alive(pid_of(&blue)),
        "standby process must keep running"
    );
    assert_eq!(
        h.get(blue.address.as_deref().unwrap()).await,
        "switchyard-demo v1\n",
        "the standby still answers on its own address"
    );
    assert_eq!(green.version.as_deref(), Some("v2"));
    assert_eq!(green.state, SlotState::Healthy);

    let view = h.engine.environment(&dora, ENV).await.unwrap();
    assert_eq!(view.active, Some(SlotColor::Green));
    assert_eq!(view.in_progress, None);

    let history = h.history().await;
    assert_eq!(history.len(), 2);
    let row = &history[0];
    assert_eq!(row.kind, DeploymentKind::Deploy);
    assert_eq!(row.status, DeploymentStatus::Succeeded);
    assert_eq!(row.from_version.as_deref(), Some("v1"));
    assert_eq!(row.to_version.as_deref(), Some("v2"));
    assert_eq!(row.from_slot, Some(SlotColor::Blue));
    assert_eq!(row.to_slot, Some(SlotColor::Green));
    assert_eq!(row.requested_by, "dora");
    assert!(row.finished_at.is_some());

    // Roll back: users get v1 again, from the very same processes.
    let pids_before = (pid_of(&blue), pid_of(&green));
    let r = h
        .engine
        .rollback(&dora, ENV, "v2 breaks checkout")
        .await
        .unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    let pids_after = (
        pid_of(&h.slot(SlotColor::Blue).await),
        pid_of(&h.slot(SlotColor::Green).await),
    );
    assert_eq!(pids_before, pids_after, "a rollback restarts nothing");
    assert!(pid_alive(pids_after.0) && pid_alive(pids_after.1));
    assert_eq!(
        h.runtime.started.lock().unwrap().len(),
        2,
        "only the two deploys started processes"
    );

    let row = &h.history().await[0];
    assert_eq!(row.id, r.id);
    assert_eq!(row.kind, DeploymentKind::Rollback);
    assert_eq!(row.status, DeploymentStatus::Succeeded);
    assert_eq!(row.reason.as_deref(), Some("v2 breaks checkout"));
    assert_eq!(row.requested_by, "dora");
    assert_eq!(row.from_version.as_deref(), Some("v2"));
    assert_eq!(row.to_version.as_deref(), Some("v1"));
    let ms = row.duration_ms.expect("a finished rollback has a duration");
    assert!(
        ms < 1000,
        "rollback took {ms} ms; it is a switch, not a redeploy"
    );
}

/// Asserts `r` is a refusal of the given kind and that users still get `expected`.
async fn assert_refused(
    h: &Harness,
    what: &str,
    r: Result<DeploymentView, Error>,
    expected: &str,
) -> Error {
    let err = match r {
        Err(e) => e,
        Ok(d) => panic!("{what}: expected a refusal, got {d:?}"),
    };
    assert_eq!(h.users_see().await, expected, "{what}: users moved");
    err
}

#[tokio::test]
async fn bad_versions_leave_users_on_the_slot_they_were_on() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let v1 = "switchyard-demo v1\n";
    let rows = h.history().await.len();

    let e = assert_refused(&h, "empty", h.engine.deploy(&dora, ENV, "").await, v1).await;
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    let e = assert_refused(&h, "blank", h.engine.deploy(&dora, ENV, "   ").await, v1).await;
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    for bad in [
        "v1;rm -rf /",
        "../v1",
        "v1/../../bin",
        "v 2",
        "$(id)",
        ".hidden",
    ] {
        let e = assert_refused(&h, bad, h.engine.deploy(&dora, ENV, bad).await, v1).await;
        assert!(matches!(e, Error::InvalidInput(_)), "{bad}: {e}");
    }
    let e = assert_refused(&h, "unknown", h.engine.deploy(&dora, ENV, "v9").await, v1).await;
    assert!(matches!(e, Error::UnknownVersion { .. }), "{e}");
    assert!(e.to_string().contains("v9"), "{e}");
    // Refusals happen before anything is recorded or started.
    assert_eq!(h.history().await.len(), rows);
    assert_eq!(h.runtime.started.lock().unwrap().len(), 1);
    assert_eq!(h.slot(SlotColor::Green).await.state, SlotState::Stopped);

    // A build whose health check never passes: a failed deployment, users stay.
    let d = h.engine.deploy(&dora, ENV, "v2+unhealthy").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let msg = d.message.clone().unwrap_or_default();
    assert!(msg.contains("health"), "{msg}");
    assert_eq!(h.users_see().await, v1);
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(green.handle, None, "the failed slot is stopped: {green:?}");
    assert_eq!(green.address, None);
    assert_ne!(green.state, SlotState::Healthy);
    let unhealthy_pid = *h.runtime.started.lock().unwrap().last().unwrap();
    assert!(
        !pid_alive(unhealthy_pid),
        "the unhealthy slot's process is gone"
    );
    assert!(pid_alive(pid_of(&h.slot(SlotColor::Blue).await)));

    // A build that exits at start.
    let d = h.engine.deploy(&dora, ENV, "v2+crash").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let msg = d.message.clone().unwrap_or_default();
    assert!(msg.contains("process exited"), "{msg}");
    assert_eq!(h.users_see().await, v1);
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    assert_eq!(h.slot(SlotColor::Green).await.handle, None);

    let history = h.history().await;
    assert_eq!(history.len(), rows + 2);
    assert!(history[..2]
        .iter()
        .all(|d| d.status == DeploymentStatus::Failed && d.requested_by == "dora"));

    // And the environment still deploys fine afterwards.
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
}

#[tokio::test]
async fn rollback_refusals_change_nothing() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let v1 = "switchyard-demo v1\n";

    // Right after the first deploy there is nothing to roll back to.
    let e = assert_refused(
        &h,
        "no standby",
        h.engine.rollback(&dora, ENV, "just because").await,
        v1,
    )
    .await;
    assert!(matches!(e, Error::NoStandby(_)), "{e}");

    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let v2 = "switchyard-demo v2\n";
    let rows = h.history().await.len();
    for reason in ["", "   "] {
        let e = assert_refused(
            &h,
            "no reason",
            h.engine.rollback(&dora, ENV, reason).await,
            v2,
        )
        .await;
        assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    }
    let e = assert_refused(
        &h,
        "long reason",
        h.engine.rollback(&dora, ENV, &"x".repeat(501)).await,
        v2,
    )
    .await;
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    assert_eq!(h.history().await.len(), rows);
    assert_eq!(h.active().await, Some(SlotColor::Green));

    // A standby whose process died is not a rollback target.
    let blue_pid = pid_of(&h.slot(SlotColor::Blue).await);
    kill_group(blue_pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.runtime.liveness(&blue_pid.to_string()).await == Liveness::Running {
        assert!(Instant::now() < deadline, "blue did not die");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = assert_refused(
        &h,
        "dead standby",
        h.engine.rollback(&dora, ENV, "v2 is bad").await,
        v2,
    )
    .await;
    assert!(matches!(e, Error::NoStandby(_)), "{e}");
    assert_eq!(h.history().await.len(), rows);
    assert_eq!(h.active().await, Some(SlotColor::Green));
}

#[tokio::test]
async fn viewers_and_approvers_cannot_deploy_or_roll_back() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let v2 = "switchyard-demo v2\n";
    let rows = h.history().await.len();
    let started = h.runtime.started.lock().unwrap().len();

    for (name, role) in [("vera", Role::Viewer), ("abe", Role::Approver)] {
        let actor = h.user(name, role).await;
        let e = assert_refused(&h, name, h.engine.deploy(&actor, ENV, "v3").await, v2).await;
        assert!(matches!(e, Error::Forbidden { .. }), "{name}: {e}");
        assert_eq!(e.to_string(), format!("{role} may not deploy"));
        let e = assert_refused(
            &h,
            name,
            h.engine.rollback(&actor, ENV, "I want to").await,
            v2,
        )
        .await;
        assert!(matches!(e, Error::Forbidden { .. }), "{name}: {e}");
        assert_eq!(e.to_string(), format!("{role} may not roll back"));
        // Reading is allowed.
        assert_eq!(
            h.engine.environment(&actor, ENV).await.unwrap().active,
            Some(SlotColor::Green)
        );
    }
    // A disabled deployer is treated as signed out.
    let mut gone = h
        .user("gone", Role::Deployer)
        .await
        .as_user()
        .cloned()
        .unwrap();
    gone.disabled = true;
    let e = assert_refused(
        &h,
        "disabled",
        h.engine.deploy(&Actor::user(gone), ENV, "v3").await,
        v2,
    )
    .await;
    assert!(matches!(e, Error::Unauthenticated), "{e}");

    assert_eq!(h.history().await.len(), rows, "no deployment was recorded");
    assert_eq!(
        h.runtime.started.lock().unwrap().len(),
        started,
        "nothing was started"
    );
    assert_eq!(h.active().await, Some(SlotColor::Green));
    assert_eq!(h.slot(SlotColor::Blue).await.version.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_second_deploy_while_one_runs_is_refused_with_who_and_since() {
    // +slow binds its port after 3 s: give it room.
    let h = Harness::new(Duration::from_secs(15)).await;
    let d = h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let dora = h.user("dora", Role::Deployer).await;
    let sam = h.user("sam", Role::Deployer).await;

    let first = tokio::spawn({
        let engine = h.engine.clone();
        let dora = dora.clone();
        async move { engine.deploy(&dora, ENV, "v2+slow").await }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let in_progress = loop {
        if let Some(s) = h.engine.environment(&sam, ENV).await.unwrap().in_progress {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the slow deploy never showed as running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        in_progress.starts_with("deploy in progress by dora since "),
        "{in_progress}"
    );

    let e = h.engine.deploy(&sam, ENV, "v3").await.unwrap_err();
    assert!(
        matches!(&e, Error::DeployInProgress { by, .. } if by == "dora"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("deploy in progress by dora since "),
        "{e}"
    );
    assert_eq!(
        h.users_see().await,
        "switchyard-demo v1\n",
        "users stay on v1 meanwhile"
    );

    let d = first.await.unwrap().unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2+slow\n");
    let history = h.history().await;
    assert_eq!(
        history.len(),
        2,
        "the refused deploy left no row: {history:?}"
    );
    // The lock is released: the next deploy goes through.
    let d = h.engine.deploy(&sam, ENV, "v3").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v3\n");
}

#[tokio::test]
async fn a_failed_switch_leaves_the_previous_slot_active() {
    let mut h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;

    // The proxy dies after the preflight passed and the new slot was launched:
    // the switch step cannot reach it.
    let proxy = h.proxy.clone();
    *h.runtime.after_start.lock().unwrap() = Some(Box::new(move || {
        if let Some(mut p) = proxy.lock().unwrap().take() {
            p.kill().unwrap();
            p.wait().unwrap();
        }
    }));
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let msg = d.message.clone().unwrap_or_default();
    assert!(msg.contains("switch"), "{msg}");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    let blue = h.slot(SlotColor::Blue).await;
    assert!(pid_alive(pid_of(&blue)), "the active slot was not touched");
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(green.handle, None, "the new slot was stopped: {green:?}");
    let v2_pid = *h.runtime.started.lock().unwrap().last().unwrap();
    assert!(!pid_alive(v2_pid));

    // The proxy comes back from its state file still serving v1.
    h.restart_proxy();
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
}

#[tokio::test]
async fn reconcile_fails_an_interrupted_deploy_and_keeps_traffic_on_the_active_slot() {
    let h = Harness::with_v1_live().await;
    let pool = h.engine.pool().clone();
    let env = environments::find(&pool, ENV).await.unwrap();
    let dora = h.user("dora", Role::Deployer).await;
    let dora_user = dora.as_user().unwrap();

    // What a console that died in the middle of the health wait leaves behind:
    // a running deployment row and a starting green slot with a live process.
    let spec = SlotSpec {
        environment: ENV.into(),
        color: SlotColor::Green,
        version: "v2".into(),
        artifact: format!("{}/releases/v2/switchyard-demo", h.dir.path().display()),
    };
    let half = h.runtime.start(&spec).await.unwrap();
    environments::set_slot(
        &pool,
        env.id,
        SlotColor::Green,
        Some("v2"),
        SlotState::Starting,
        Some(&half.handle),
        Some(&half.address),
    )
    .await
    .unwrap();
    let dep = engine::deployments::begin(
        &pool,
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Deploy,
            from_version: Some("v1"),
            to_version: Some("v2"),
            from_slot: Some(SlotColor::Blue),
            to_slot: Some(SlotColor::Green),
            requested_by: Some(dora_user.id),
            reason: None,
            holder: None,
        },
    )
    .await
    .unwrap();

    // A restarted console: new engine and runtime over the same database.
    let restarted = Engine::new(
        pool.clone(),
        Arc::new(ProcessRuntime::new(h.dir.path().join("logs"))),
    );
    restarted.reconcile().await.unwrap();

    let row = engine::deployments::get(&pool, dep).await.unwrap();
    assert_eq!(row.status, DeploymentStatus::Failed, "{row:?}");
    assert!(
        row.message.as_deref().unwrap_or("").contains("interrupted"),
        "{row:?}"
    );
    assert!(row.finished_at.is_some());
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(green.state, SlotState::Stopped, "{green:?}");
    assert_eq!(green.handle, None);
    let half_pid: u32 = half.handle.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(half_pid) {
        assert!(
            Instant::now() < deadline,
            "the half-started slot was not stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pid_alive(pid_of(&h.slot(SlotColor::Blue).await)));

    // The lock is free again.
    let d = restarted.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
}

#[tokio::test]
async fn reconcile_never_stops_a_slot_the_router_may_be_serving() {
    let mut h = Harness::with_v1_live().await;
    let pool = h.engine.pool().clone();
    let env = environments::find(&pool, ENV).await.unwrap();

    // The console died right after the proxy switched users to green and
    // before it recorded that: the proxy serves green, the records say blue.
    let spec = SlotSpec {
        environment: ENV.into(),
        color: SlotColor::Green,
        version: "v2".into(),
        artifact: format!("{}/releases/v2/switchyard-demo", h.dir.path().display()),
    };
    let green = h.runtime.start(&spec).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while h
        .http
        .get(format!("http://{}/health", green.address))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "green never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    environments::set_slot(
        &pool,
        env.id,
        SlotColor::Green,
        Some("v2"),
        SlotState::Healthy,
        Some(&green.handle),
        Some(&green.address),
    )
    .await
    .unwrap();
    let dep = engine::deployments::begin(
        &pool,
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Deploy,
            from_version: Some("v1"),
            to_version: Some("v2"),
            from_slot: Some(SlotColor::Blue),
            to_slot: Some(SlotColor::Green),
            requested_by: None,
            reason: None,
            holder: None,
        },
    )
    .await
    .unwrap();
    use engine::router::{BuiltinRouter, TrafficRouter};
    let router = BuiltinRouter::new(&env.proxy_admin_url, TOKEN.into());
    let generation = router.current().await.unwrap().generation + 1;
    router
        .apply(&model::RoutingTable {
            generation,
            active: Some(model::Upstream {
                slot: SlotColor::Green,
                address: green.address.clone(),
            }),
            preview: None,
        })
        .await
        .unwrap();
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    // The console restarts while the proxy is down for a moment.
    h.kill_proxy();
    let restarted = Engine::new(
        pool.clone(),
        Arc::new(ProcessRuntime::new(h.dir.path().join("logs"))),
    );
    restarted.reconcile().await.unwrap();
    let row = engine::deployments::get(&pool, dep).await.unwrap();
    assert_eq!(row.status, DeploymentStatus::Failed, "{row:?}");
    let green_pid: u32 = green.handle.parse().unwrap();
    assert!(
        pid_alive(green_pid),
        "reconcile stopped a slot the router may be serving, without asking the router"
    );

    // The proxy is back (serving green from its state file); the next
    // reconciliation adopts what it serves.
    h.restart_proxy();
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
    let admin_url = {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(h.dir.path().join("proxy-ready.json")).unwrap())
                .unwrap();
        format!("http://{}", v["admin"].as_str().unwrap())
    };
    sqlx::query("UPDATE environments SET proxy_admin_url = ? WHERE id = ?")
        .bind(&admin_url)
        .bind(env.id)
        .execute(&pool)
        .await
        .unwrap();
    restarted.reconcile().await.unwrap();
    assert_eq!(h.active().await, Some(SlotColor::Green));
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
}

/// Each action leaves exactly its audit entry, in order, with who, where and
/// why — and the chain verifies. Passwords never appear.
#[tokio::test]
async fn every_action_leaves_exactly_its_audit_entry() {
    use engine::audit::{self, Verdict};
    let h = Harness::with_v1_live().await;
    let pool = h.engine.pool().clone();
    let before = audit::recent(&pool, 1000).await.unwrap().len();

    let admin = Actor::system();
    let dora = h
        .engine
        .create_user(&admin, "dora", "dora's long password", Role::Deployer)
        .await
        .unwrap();
    let vic = h
        .engine
        .create_user(&admin, "vic", "vic's long password", Role::Viewer)
        .await
        .unwrap();
    let ip = Some("192.0.2.7".to_string());
    h.engine
        .login("dora", "dora's long password", ip.clone())
        .await
        .unwrap();
    assert!(h
        .engine
        .login("dora", "not the password at all", ip.clone())
        .await
        .is_err());
    let dora = Actor::user(dora).from_ip(ip.clone());
    let vic = Actor::user(vic).from_ip(ip.clone());
    assert!(h.engine.deploy(&vic, ENV, "v2").await.is_err());
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded);
    let failed = h.engine.deploy(&dora, ENV, "v2+crash").await.unwrap();
    assert_eq!(failed.status, DeploymentStatus::Failed);
    // The failed deploy replaced the standby, so deploy v3 to have one again.
    h.engine.deploy(&dora, ENV, "v3").await.unwrap();
    h.engine
        .rollback(&dora, ENV, "checkout errors after v3")
        .await
        .unwrap();
    h.engine.logout(&dora).await.unwrap();

    let mut rows = audit::recent(&pool, 1000).await.unwrap();
    rows.truncate(rows.len() - before);
    rows.reverse();
    let seen: Vec<(String, String, String, Option<String>)> = rows
        .iter()
        .map(|e| {
            (
                e.action.clone(),
                e.actor_name.clone(),
                e.result.clone(),
                e.target.clone(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    let expected = vec![
        (s("user.create"), s("system"), s("ok"), Some(s("dora"))),
        (s("user.create"), s("system"), s("ok"), Some(s("vic"))),
        (s("auth.login"), s("dora"), s("ok"), None),
        (s("auth.login"), s("dora"), s("failed"), None),
        (s("deploy.request"), s("vic"), s("denied"), None),
        (s("deploy.start"), s("dora"), s("ok"), Some(s("v2"))),
        (s("deploy.finish"), s("dora"), s("ok"), Some(s("v2"))),
        (s("deploy.start"), s("dora"), s("ok"), Some(s("v2+crash"))),
        (
            s("deploy.finish"),
            s("dora"),
            s("failed"),
            Some(s("v2+crash")),
        ),
        (s("deploy.start"), s("dora"), s("ok"), Some(s("v3"))),
        (s("deploy.finish"), s("dora"), s("ok"), Some(s("v3"))),
        (s("rollback.start"), s("dora"), s("ok"), Some(s("v2"))),
        (s("rollback.finish"), s("dora"), s("ok"), Some(s("v2"))),
        (s("auth.logout"), s("dora"), s("ok"), None),
    ];
    assert_eq!(seen, expected);

    let failed_login = &rows[3];
    assert_eq!(failed_login.actor_kind, "anonymous");
    let rollback = &rows[11];
    assert_eq!(rollback.reason.as_deref(), Some("checkout errors after v3"));
    assert_eq!(rollback.source_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(rollback.environment.as_deref(), Some(ENV));
    assert!(rows[8].details.contains("exited"), "{}", rows[8].details);

    let everything: String = audit::recent(&pool, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    for secret in [
        "dora's long password",
        "not the password at all",
        TOKEN,
        "$argon2",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked into the audit log"
        );
    }
    assert!(matches!(
        audit::verify(&pool).await.unwrap(),
        Verdict::Intact { .. }
    ));
}

/// (name, status) of each step, in order.
fn step_names(steps: &[StepView]) -> Vec<(&str, StepStatus)> {
    steps.iter().map(|s| (s.name.as_str(), s.status)).collect()
}

fn at(ts: &Option<String>) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(ts.as_deref().expect("a timestamp"))
        .expect("an RFC 3339 timestamp")
}

#[tokio::test]
async fn a_deploy_records_its_steps_in_order_as_they_happen() {
    use StepStatus::*;
    let h = Harness::with_v1_live().await;
    let vic = h.user("vic", Role::Viewer).await;
    let dora = h.user("dora", Role::Deployer).await;

    // The first deploy has no old slot to keep warm.
    let boot = h.history().await[0].id;
    let first = h.engine.deployment(&vic, boot).await.unwrap();
    assert_eq!(
        step_names(&first.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Succeeded),
            ("gates", Succeeded),
            ("switch", Succeeded),
            ("drain", Skipped),
            ("standby", Skipped),
        ]
    );
    assert!(first.steps[7]
        .message
        .as_deref()
        .unwrap()
        .contains("first deploy"));

    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    // Viewers read a deployment's steps as they read the history.
    let detail = h.engine.deployment(&vic, d.id).await.unwrap();
    assert_eq!(detail.deployment, d);
    assert_eq!(detail.elapsed_ms, d.duration_ms.unwrap());
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Succeeded),
            ("gates", Succeeded),
            ("switch", Succeeded),
            ("drain", Succeeded),
            ("standby", Succeeded),
        ]
    );
    let started = at(&Some(d.started_at.clone()));
    let finished = at(&d.finished_at);
    let mut previous_end = started;
    for (i, s) in detail.steps.iter().enumerate() {
        assert_eq!(s.seq, i as i64 + 1);
        let (from, to) = (at(&s.started_at), at(&s.finished_at));
        assert!(
            from >= previous_end,
            "{} began before the step before it ended",
            s.name
        );
        assert!(to >= from, "{} ended before it began", s.name);
        assert!(to <= finished, "{} ended after the deployment", s.name);
        assert_eq!(s.duration_ms, Some((to - from).num_milliseconds()));
        assert!(s.message.as_deref().is_some_and(|m| !m.is_empty()), "{s:?}");
        previous_end = to;
    }
    let message = |name: &str| {
        detail
            .steps
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.message.clone())
            .unwrap()
    };
    assert!(
        message("start").contains("v2 started in green"),
        "{}",
        message("start")
    );
    assert!(
        message("switch").contains("users now reach green"),
        "{}",
        message("switch")
    );
    assert!(
        message("drain").starts_with("blue gets no new requests; "),
        "{}",
        message("drain")
    );
    assert!(
        message("standby").contains("blue (v1)"),
        "{}",
        message("standby")
    );

    // A rollback: the lock, then the switch back.
    let r = h.engine.rollback(&dora, ENV, "steps test").await.unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    let detail = h.engine.deployment(&vic, r.id).await.unwrap();
    assert_eq!(
        step_names(&detail.steps),
        [("lock", Succeeded), ("switch", Succeeded)]
    );
    assert!(detail.steps[1]
        .message
        .as_deref()
        .unwrap()
        .starts_with("switched back to blue (v1)"));

    // Nothing in any step is a secret.
    for id in [boot, d.id, r.id] {
        let detail = h.engine.deployment(&vic, id).await.unwrap();
        let text = format!("{detail:?}");
        assert!(!text.contains(TOKEN), "the proxy token leaked: {text}");
    }
    let e = h.engine.deployment(&vic, 9999).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e}");
}

#[tokio::test]
async fn a_deploy_that_never_turns_healthy_says_why_and_skips_the_rest() {
    use StepStatus::*;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let d = h.engine.deploy(&dora, ENV, "v2+unhealthy").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    assert_eq!(
        h.users_see().await,
        "switchyard-demo v1\n",
        "users stay on v1"
    );
    assert_eq!(h.active().await, Some(SlotColor::Blue));

    let detail = h.engine.deployment(&dora, d.id).await.unwrap();
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Failed),
            ("gates", Skipped),
            ("switch", Skipped),
            ("drain", Skipped),
            ("standby", Skipped),
        ]
    );
    let health = &detail.steps[3];
    let why = health.message.as_deref().unwrap();
    assert!(why.contains("not healthy within 3.0 s"), "{why}");
    assert!(
        why.contains("503"),
        "the last probe's answer is shown: {why}"
    );
    assert!(health.finished_at.is_some());
    assert!(
        health.duration_ms.unwrap() >= 3000,
        "the health wait lasted its deadline: {health:?}"
    );
    for s in &detail.steps[4..] {
        assert_eq!(
            (&s.started_at, &s.finished_at, &s.message),
            (&None, &None, &None),
            "{s:?} was never reached"
        );
    }
}

#[tokio::test]
async fn a_running_deploy_shows_its_progress() {
    // +slow binds its port after 3 s: the health step runs for a while.
    let h = Harness::new(Duration::from_secs(15)).await;
    let d = h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let dora = h.user("dora", Role::Deployer).await;
    let vic = h.user("vic", Role::Viewer).await;

    let deploy = tokio::spawn({
        let engine = h.engine.clone();
        async move { engine.deploy(&dora, ENV, "v2+slow").await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let newest = h.history().await[0].clone();
        if newest.id != d.id {
            let detail = h.engine.deployment(&vic, newest.id).await.unwrap();
            if detail
                .steps
                .iter()
                .any(|s| s.name == "health" && s.status == StepStatus::Running)
            {
                break detail;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the health step never showed as running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen.deployment.status, DeploymentStatus::Running);
    assert_eq!(seen.deployment.duration_ms, None);
    use StepStatus::*;
    assert_eq!(
        step_names(&seen.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Running),
            ("gates", Pending),
            ("switch", Pending),
            ("drain", Pending),
            ("standby", Pending),
        ]
    );
    let health = &seen.steps[3];
    assert!(health.started_at.is_some() && health.finished_at.is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = h.engine.deployment(&vic, seen.deployment.id).await.unwrap();
    if later.deployment.status == DeploymentStatus::Running {
        assert!(later.elapsed_ms > seen.elapsed_ms, "{later:?}");
        assert!(later.steps[3].duration_ms > health.duration_ms, "{later:?}");
    }

    let done = deploy.await.unwrap().unwrap();
    assert_eq!(done.status, DeploymentStatus::Succeeded, "{done:?}");
    let detail = h.engine.deployment(&vic, done.id).await.unwrap();
    assert!(
        detail.steps.iter().all(|s| s.status == Succeeded),
        "{detail:?}"
    );
}

#[tokio::test]
async fn reconcile_closes_the_step_a_dead_console_left_running() {
    use StepStatus::*;
    let h = Harness::with_v1_live().await;
    let pool = h.engine.pool().clone();
    let env = environments::find(&pool, ENV).await.unwrap();

    // What a console that died during the health wait leaves behind.
    let dep = engine::deployments::begin(
        &pool,
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Deploy,
            from_version: Some("v1"),
            to_version: Some("v2"),
            from_slot: Some(SlotColor::Blue),
            to_slot: Some(SlotColor::Green),
            requested_by: None,
            reason: None,
            holder: None,
        },
    )
    .await
    .unwrap();
    steps::plan(&pool, dep, engine::pipeline::DEPLOY)
        .await
        .unwrap();
    for done in [StepName::Lock, StepName::Preflight, StepName::Start] {
        steps::start(&pool, dep, done).await.unwrap();
        steps::finish(&pool, dep, done, Succeeded, "ok")
            .await
            .unwrap();
    }
    steps::start(&pool, dep, StepName::Health).await.unwrap();

    let restarted = Engine::new(
        pool.clone(),
        Arc::new(ProcessRuntime::new(h.dir.path().join("logs"))),
    );
    restarted.reconcile().await.unwrap();

    let detail = restarted.deployment(&Actor::system(), dep).await.unwrap();
    assert_eq!(detail.deployment.status, DeploymentStatus::Failed);
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Failed),
            ("gates", Skipped),
            ("switch", Skipped),
            ("drain", Skipped),
            ("standby", Skipped),
        ]
    );
    let health = &detail.steps[3];
    assert_eq!(health.message.as_deref(), Some(steps::INTERRUPTED));
    assert!(health.finished_at.is_some());
    assert!(detail.steps[..3]
        .iter()
        .all(|s| s.message.as_deref() == Some("ok")));
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
}

/// A console that really dies mid-deploy (its runtime is dropped while the
/// health wait runs): the next console's reconcile closes the step.
#[tokio::test]
async fn a_console_killed_during_the_health_wait_leaves_a_closed_timeline() {
    use StepStatus::*;
    let h = Harness::new(Duration::from_secs(15)).await;
    let d = h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");

    // The doomed console: its own tokio runtime, pool and engine over the same
    // database, deploying a build that takes 3 s to come up.
    let url = format!("sqlite:{}", h.db.display());
    let logs = h.dir.path().join("logs");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let doomed = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.spawn(async move {
            let pool = engine::store::open(&url).await.unwrap();
            let engine = Engine::new(pool, Arc::new(ProcessRuntime::new(logs)));
            let _ = engine.deploy(&Actor::system(), ENV, "v2+slow").await;
        });
        // Wait for the signal, then die without finishing anything.
        let _ = rx.recv();
        rt.shutdown_background();
    });

    let deadline = Instant::now() + Duration::from_secs(10);
    let dep = loop {
        let newest = h.history().await[0].clone();
        if newest.id != d.id {
            let detail = h
                .engine
                .deployment(&Actor::system(), newest.id)
                .await
                .unwrap();
            if detail
                .steps
                .iter()
                .any(|s| s.name == "health" && s.status == Running)
            {
                break newest.id;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the health step never showed as running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tx.send(()).unwrap();
    doomed.join().unwrap();

    h.engine.reconcile().await.unwrap();
    let detail = h.engine.deployment(&Actor::system(), dep).await.unwrap();
    assert_eq!(
        detail.deployment.status,
        DeploymentStatus::Failed,
        "{detail:?}"
    );
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Failed),
            ("gates", Skipped),
            ("switch", Skipped),
            ("drain", Skipped),
            ("standby", Skipped),
        ]
    );
    assert_eq!(detail.steps[3].message.as_deref(), Some(steps::INTERRUPTED));
    // Users never left v1, and the half-started slot was stopped.
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    assert_eq!(h.slot(SlotColor::Green).await.handle, None);
}

/// The gates step of a deploy that failed it, after checking that users never
/// left v1 and the failed release is not left running.
async fn failed_gates(h: &Harness, actor: &Actor, version: &str) -> String {
    use StepStatus::*;
    let d = h.engine.deploy(actor, ENV, version).await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{version}: {d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n", "{version}");
    assert_eq!(h.active().await, Some(SlotColor::Blue), "{version}");
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(
        (green.state, green.handle.as_deref()),
        (SlotState::Stopped, None),
        "{version}: the release that failed its gates is stopped"
    );
    let detail = h.engine.deployment(actor, d.id).await.unwrap();
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("preflight", Succeeded),
            ("start", Succeeded),
            ("health", Succeeded),
            ("gates", Failed),
            ("switch", Skipped),
            ("drain", Skipped),
            ("standby", Skipped),
        ],
        "{version}"
    );
    detail.steps[4].message.clone().unwrap()
}

#[tokio::test]
async fn a_release_that_fails_its_gates_never_reaches_users() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();

    // Defaults: smoke "/" and 50 sample requests. Every second request of
    // v2+errors answers 500: the smoke request is the first, the sample's
    // error rate is 50 %.
    let why = failed_gates(&h, &dora, "v2+errors").await;
    assert!(
        why.contains("performance: errors 50.0 % = 25/50 (limit < 1.0 %)"),
        "{why}"
    );

    // A second smoke route gets the second request: it answers 500.
    let mut gates = env.gates.clone();
    gates.smoke_paths = vec!["/".into(), "/api/orders".into()];
    environments::set_gates(h.engine.pool(), env.id, &gates)
        .await
        .unwrap();
    let why = failed_gates(&h, &dora, "v2+errors").await;
    assert!(
        why.contains("smoke: /api/orders answered 500 Internal Server Error"),
        "{why}"
    );

    // 300 ms per answer: the sample's p95 crosses 200 ms.
    gates.sample_requests = 12;
    environments::set_gates(h.engine.pool(), env.id, &gates)
        .await
        .unwrap();
    let why = failed_gates(&h, &dora, "v2+laggy").await;
    let p95: f64 = why
        .split("p95 ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no measured p95 in {why}"));
    assert!(p95 >= 300.0, "the demo sleeps 300 ms per answer: {why}");
    assert!(why.contains(" ms (limit < 200.0 ms)"), "{why}");

    // Invalid settings are refused and change nothing.
    let bad = engine::gates::GateSettings {
        smoke_paths: vec!["api".into()],
        ..gates.clone()
    };
    let e = environments::set_gates(h.engine.pool(), env.id, &bad)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    let stored = environments::find(h.engine.pool(), ENV)
        .await
        .unwrap()
        .gates;
    assert_eq!(stored, gates);

    // A good release passes both gates and says what it measured.
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
    let detail = h.engine.deployment(&dora, d.id).await.unwrap();
    let passed = detail.steps[4].message.clone().unwrap();
    assert_eq!(detail.steps[4].name, "gates");
    assert!(passed.contains("smoke / 200, /api/orders 200"), "{passed}");
    assert!(passed.contains("12 requests to /: p95 "), "{passed}");
}

/// One user request's outcome: status and body, or the transport error.
type Answer = Result<(u16, String), String>;

/// Users asking one request after another, `clients` at a time, until
/// stopped.
struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<Vec<Answer>>>,
}

impl Load {
    fn start(h: &Harness, clients: usize) -> Load {
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

    async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all = Vec::new();
        for c in self.clients {
            all.extend(c.await.unwrap());
        }
        all
    }
}

/// Deploys `version` while 6 users keep asking; asserts every one of their
/// requests was answered 200 and returns the drain step's message.
async fn deploy_under_load(h: &Harness, actor: &Actor, version: &str) -> String {
    let load = Load::start(h, 6);
    // Let the slow answers pile up in flight before the switch.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let d = h.engine.deploy(actor, ENV, version).await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let answers = load.finish().await;
    let failed: Vec<_> = answers
        .iter()
        .filter(|a| !matches!(a, Ok((200, _))))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed while deploying {version}: {failed:?}",
        failed.len(),
        answers.len()
    );
    let new = format!("switchyard-demo {version}\n");
    assert!(
        answers.iter().any(|a| matches!(a, Ok((_, b)) if *b == new)),
        "no user reached {version}"
    );
    let detail = h.engine.deployment(actor, d.id).await.unwrap();
    let drain = detail.steps.iter().find(|s| s.name == "drain").unwrap();
    assert_eq!(drain.status, StepStatus::Succeeded, "{drain:?}");
    drain.message.clone().unwrap()
}

/// The number right before `marker` in `text`.
fn number_before(text: &str, marker: &str) -> u64 {
    text.split(marker)
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {marker:?} in {text}"))
}

#[tokio::test]
async fn the_old_slot_finishes_its_requests_after_the_switch() {
    let h = Harness::new(Duration::from_secs(3)).await;
    let dora = h.user("dora", Role::Deployer).await;
    let pool = h.engine.pool();
    let env = environments::find(pool, ENV).await.unwrap();
    // A slow release (300 ms per answer) goes live; its gates allow for that.
    let mut gates = env.gates.clone();
    gates.p95 = Duration::from_secs(2);
    gates.p99 = Duration::from_secs(3);
    gates.sample_requests = 8;
    environments::set_gates(pool, env.id, &gates).await.unwrap();
    let d = h.engine.deploy(&dora, ENV, "v2+laggy").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");

    // v3 replaces it under load: requests that reached blue before the
    // switch finish there, and the drain waited for them.
    let drained = deploy_under_load(&h, &dora, "v3").await;
    assert!(
        drained.starts_with("blue gets no new requests; "),
        "{drained}"
    );
    assert!(
        number_before(&drained, " in flight at the switch") >= 1,
        "6 users with 300 ms answers had requests in flight: {drained}"
    );
    assert!(drained.contains(", 0 after "), "{drained}");

    // Back on the slow release, with a drain deadline shorter than one of its
    // answers: the deploy goes on after the deadline, and the requests still
    // running on blue finish anyway (it stays up as the standby).
    let r = h.engine.rollback(&dora, ENV, "drain test").await.unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    let timings = environments::Timings {
        drain_timeout: Duration::from_millis(100),
        ..env.timings()
    };
    environments::set_timings(pool, env.id, timings)
        .await
        .unwrap();
    let drained = deploy_under_load(&h, &dora, "v1").await;
    assert!(
        drained.starts_with("drain deadline of 0.1 s passed with "),
        "{drained}"
    );
    assert!(
        number_before(&drained, " request(s) still in flight on blue") >= 1,
        "{drained}"
    );
}

/// Waits (up to 30 s) for a deploy's watch window to end, and returns it.
async fn watch_outcome(h: &Harness, actor: &Actor, id: i64) -> model::WatchView {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let w = h
            .engine
            .deployment(actor, id)
            .await
            .unwrap()
            .watch
            .expect("the deploy is watched");
        // A breach is recorded before its rollback runs: wait for its end too.
        let settled = match w.status {
            model::WatchStatus::Watching => false,
            model::WatchStatus::Breached => {
                w.rollback_id.is_some()
                    || w.message
                        .as_deref()
                        .is_some_and(|m| m.contains("the automatic rollback was refused"))
            }
            _ => true,
        };
        if settled {
            return w;
        }
        assert!(Instant::now() < deadline, "still watching: {w:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Turns the watch on for the harness's environment.
async fn watch_for(h: &Harness, window: Duration) {
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let timings = environments::Timings {
        watch_window: window,
        ..env.timings()
    };
    environments::set_timings(h.engine.pool(), env.id, timings)
        .await
        .unwrap();
}

#[tokio::test]
async fn errors_after_the_switch_roll_back_by_themselves_with_the_evidence() {
    use model::WatchStatus;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    // Gates that let a bad build through (no smoke route, no sample): the
    // watch is the last line of defence.
    let lax = engine::gates::GateSettings {
        smoke_paths: vec![],
        sample_requests: 0,
        ..env.gates.clone()
    };
    environments::set_gates(h.engine.pool(), env.id, &lax)
        .await
        .unwrap();
    watch_for(&h, Duration::from_secs(60)).await;

    let load = Load::start(&h, 4);
    let d = h.engine.deploy(&dora, ENV, "v2+errors").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let w = watch_outcome(&h, &dora, d.id).await;
    load.finish().await;

    assert_eq!(w.status, WatchStatus::Breached, "{w:?}");
    assert_eq!(w.slot, SlotColor::Green);
    let evidence = w.message.clone().unwrap();
    assert!(evidence.starts_with("error rate "), "{evidence}");
    assert!(evidence.contains("(limit < 1.0 %)"), "{evidence}");
    let rb = h
        .engine
        .deployment(&dora, w.rollback_id.expect("a rollback was started"))
        .await
        .unwrap()
        .deployment;
    assert_eq!(
        (rb.kind, rb.status, rb.requested_by.as_str()),
        (
            DeploymentKind::Rollback,
            DeploymentStatus::Succeeded,
            "system"
        )
    );
    let reason = rb.reason.unwrap();
    assert!(
        reason.starts_with(&format!(
            "automatic rollback of deployment #{}: error rate ",
            d.id
        )),
        "{reason}"
    );
    assert!(
        evidence.contains(&format!("rolled back by deployment #{}", rb.id)),
        "{evidence}"
    );
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
}

#[tokio::test]
async fn a_slot_that_dies_after_the_switch_is_rolled_back_from() {
    use model::WatchStatus;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    watch_for(&h, Duration::from_secs(60)).await;
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    let green = h.slot(SlotColor::Green).await;
    kill_group(green.handle.unwrap().parse().unwrap());
    let w = watch_outcome(&h, &dora, d.id).await;
    assert_eq!(w.status, WatchStatus::Breached, "{w:?}");
    let evidence = w.message.clone().unwrap();
    assert!(
        evidence.starts_with("3 failed health probes in a row (last: connection refused"),
        "{evidence}"
    );
    assert!(w.rollback_id.is_some(), "{w:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
}

#[tokio::test]
async fn a_quiet_window_passes_and_a_manual_rollback_ends_one_early() {
    use model::WatchStatus;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    watch_for(&h, Duration::from_secs(2)).await;

    let load = Load::start(&h, 2);
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let watching = h
        .engine
        .deployment(&dora, d.id)
        .await
        .unwrap()
        .watch
        .unwrap();
    assert_eq!(watching.status, WatchStatus::Watching, "{watching:?}");
    let w = watch_outcome(&h, &dora, d.id).await;
    let answers = load.finish().await;
    assert!(answers.iter().all(|a| matches!(a, Ok((200, _)))));
    assert_eq!(w.status, WatchStatus::Passed, "{w:?}");
    let m = w.message.unwrap();
    assert!(m.starts_with("passed: no breach in 2 s; "), "{m}");
    assert!(m.contains(" answers since the switch, errors 0.0 %"), "{m}");
    assert_eq!(w.rollback_id, None);
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    // A person rolls back while v3 is watched: the watch ends, it does not
    // fight the rollback.
    watch_for(&h, Duration::from_secs(60)).await;
    let d = h.engine.deploy(&dora, ENV, "v3").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let r = h
        .engine
        .rollback(&dora, ENV, "changed my mind")
        .await
        .unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    let w = watch_outcome(&h, &dora, d.id).await;
    assert_eq!(w.status, WatchStatus::Stopped, "{w:?}");
    assert!(
        w.message
            .as_deref()
            .unwrap()
            .starts_with("ended early: traffic moved"),
        "{w:?}"
    );
    assert_eq!(w.rollback_id, None);
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    // Watching is off when the window is 0.
    watch_for(&h, Duration::ZERO).await;
    let d = h.engine.deploy(&dora, ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.engine.deployment(&dora, d.id).await.unwrap().watch, None);
}

#[tokio::test]
async fn the_dashboard_reads_what_users_got_from_each_slot() {
    let h = Harness::with_v1_live().await;
    let vic = h.user("vic", Role::Viewer).await;
    let load = Load::start(&h, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answers = load.finish().await;
    assert!(answers.iter().all(|a| matches!(a, Ok((200, _)))));

    let t = h.engine.traffic(&vic, ENV).await.unwrap();
    assert_eq!(t.unavailable, None);
    let series = t.series.unwrap();
    assert_eq!((series.window_secs, series.step_secs), (300, 10));
    let slot = |c: SlotColor| series.slots.iter().find(|s| s.slot == c).unwrap();
    let (blue, green) = (slot(SlotColor::Blue), slot(SlotColor::Green));
    assert_eq!(blue.points.len(), 30);
    let now = blue.points.last().unwrap();
    assert_eq!(now.ago_secs, 0);
    // The proxy is younger than one step: the newest point holds every answer.
    let served = now.requests_per_sec * 10.0;
    assert!(
        served >= answers.len() as f64 * 0.5,
        "{} answers, chart says {:.1}/s",
        answers.len(),
        now.requests_per_sec
    );
    assert_eq!(now.error_rate, 0.0);
    assert!(now.p95_ms.is_some());
    assert!(green.points.iter().all(|p| p.requests_per_sec == 0.0));

    // Without a proxy the panel says so; the call itself does not fail.
    h.kill_proxy();
    let t = h.engine.traffic(&vic, ENV).await.unwrap();
    assert_eq!(t.series, None);
    assert!(
        t.unavailable
            .as_deref()
            .unwrap()
            .starts_with("traffic figures unavailable: "),
        "{t:?}"
    );
    let e = h.engine.traffic(&vic, "nowhere").await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e}");
}

#[tokio::test]
async fn a_standby_past_its_window_is_stopped_and_a_rollback_starts_it_again() {
    use StepStatus::*;
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let timings = environments::Timings {
        standby_window: Duration::from_secs(1),
        ..env.timings()
    };
    environments::set_timings(h.engine.pool(), env.id, timings)
        .await
        .unwrap();
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let blue = h.slot(SlotColor::Blue).await;
    let until = blue
        .standby_until
        .expect("blue is the standby, with a deadline");
    assert!(h.slot(SlotColor::Green).await.standby_until.is_none());
    let standby_step = h.engine.deployment(&dora, d.id).await.unwrap().steps[7]
        .message
        .clone()
        .unwrap();
    assert!(
        standby_step.contains(&format!("until {} UTC", until.format("%H:%M:%S"))),
        "{standby_step}"
    );

    // Inside the window nothing happens.
    h.engine.expire_standbys().await.unwrap();
    let pid: u32 = h
        .slot(SlotColor::Blue)
        .await
        .handle
        .unwrap()
        .parse()
        .unwrap();
    assert!(pid_alive(pid));

    // Past it, the standby is stopped; its version and deadline stay.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    h.engine.expire_standbys().await.unwrap();
    let blue = h.slot(SlotColor::Blue).await;
    assert_eq!(
        (blue.handle.as_deref(), blue.state, blue.version.as_deref()),
        (None, SlotState::Stopped, Some("v1"))
    );
    assert_eq!(blue.standby_until, Some(until));
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!pid_alive(pid), "the expired standby's process ended");
    assert_eq!(
        h.users_see().await,
        "switchyard-demo v2\n",
        "users never noticed"
    );

    // The rollback starts v1 again in blue, waits for health, then switches.
    let r = h.engine.rollback(&dora, ENV, "v2 is wrong").await.unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let detail = h.engine.deployment(&dora, r.id).await.unwrap();
    assert_eq!(
        step_names(&detail.steps),
        [
            ("lock", Succeeded),
            ("start", Succeeded),
            ("health", Succeeded),
            ("switch", Succeeded)
        ]
    );
    assert!(
        detail.steps[1]
            .message
            .as_deref()
            .unwrap()
            .starts_with("v1 started again in blue"),
        "{detail:?}"
    );
    // v2, the slot users left, is the standby now, with a fresh deadline.
    let green = h.slot(SlotColor::Green).await;
    assert!(green.handle.is_some());
    assert!(green.standby_until.unwrap() > until);
    assert_eq!(h.slot(SlotColor::Blue).await.standby_until, None);

    // A slot whose deploy failed is no standby: nothing to roll back to.
    let f = h.engine.deploy(&dora, ENV, "v2+unhealthy").await.unwrap();
    assert_eq!(f.status, DeploymentStatus::Failed);
    let e = h.engine.rollback(&dora, ENV, "again").await.unwrap_err();
    assert!(matches!(e, Error::NoStandby(_)), "{e}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
}

#[tokio::test]
async fn a_dry_run_shows_the_plan_and_what_blocks_it_without_changing_anything() {
    let h = Harness::with_v1_live().await;
    let dora = h.user("dora", Role::Deployer).await;
    let vic = h.user("vic", Role::Viewer).await;
    let before_history = h.history().await;
    let before_env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let before_green = h.slot(SlotColor::Green).await;

    let plan = h.engine.plan_deploy(&dora, ENV, " v2 ").await.unwrap();
    assert!(plan.ready, "{plan:?}");
    assert_eq!(
        (plan.environment.as_str(), plan.version.as_str()),
        (ENV, "v2")
    );
    let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
    let mut expected: Vec<&str> = engine::pipeline::DEPLOY
        .iter()
        .map(|s| s.as_str())
        .collect();
    expected.push("watch");
    assert_eq!(names, expected);
    let detail = |n: &str| {
        plan.steps
            .iter()
            .find(|s| s.name == n)
            .unwrap()
            .detail
            .clone()
    };
    assert_eq!(detail("lock"), "take production's lock (free now)");
    assert!(
        detail("start").starts_with("start v2 in green with the process runtime"),
        "{}",
        detail("start")
    );
    assert!(
        detail("health").starts_with("GET /health every 50 ms until 2xx, for up to 3 s"),
        "{}",
        detail("health")
    );
    assert!(
        detail("gates")
            .contains("smoke routes / must answer 2xx; 50 sample requests: p95 < 200 ms"),
        "{}",
        detail("gates")
    );
    assert!(
        detail("switch").starts_with("users move from blue (v1) to green (v2)"),
        "{}",
        detail("switch")
    );
    assert!(
        detail("standby").starts_with("blue (v1) stays warm for 15 min"),
        "{}",
        detail("standby")
    );
    assert_eq!(detail("watch"), "off for this environment");

    // Everything in the way, in one answer.
    let plan = h.engine.plan_deploy(&dora, ENV, "v9").await.unwrap();
    assert!(!plan.ready);
    assert!(
        plan.blockers[0].starts_with("unknown version v9: "),
        "{plan:?}"
    );
    h.kill_proxy();
    let plan = h.engine.plan_deploy(&dora, ENV, "v2").await.unwrap();
    assert!(!plan.ready);
    assert!(
        plan.blockers
            .iter()
            .any(|b| b.starts_with("the builtin router does not answer")),
        "{plan:?}"
    );

    // Refused the same way as a deploy.
    let e = h.engine.plan_deploy(&vic, ENV, "v2").await.unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    let e = h
        .engine
        .plan_deploy(&dora, ENV, "../etc")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");

    // Nothing changed.
    assert_eq!(h.history().await, before_history);
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    assert_eq!(
        (env.active, env.routing_generation),
        (before_env.active, before_env.routing_generation)
    );
    let green = h.slot(SlotColor::Green).await;
    assert_eq!(
        (green.handle, green.version, green.state),
        (
            before_green.handle,
            before_green.version,
            before_green.state
        )
    );
}

/// Starts a deploy of `v2+slow` (it binds its port after 3 s) by `who` in the
/// background and returns it once its health step runs.
async fn slow_deploy_in_health(
    h: &Harness,
    who: &Actor,
) -> (
    tokio::task::JoinHandle<engine::error::Result<DeploymentView>>,
    i64,
) {
    let before = h.history().await.first().map(|d| d.id);
    let task = tokio::spawn({
        let engine = h.engine.clone();
        let who = who.clone();
        async move { engine.deploy(&who, ENV, "v2+slow").await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let newest = h.history().await[0].clone();
        if Some(newest.id) != before {
            let detail = h
                .engine
                .deployment(&Actor::system(), newest.id)
                .await
                .unwrap();
            if detail
                .steps
                .iter()
                .any(|s| s.name == "health" && s.status == StepStatus::Running)
            {
                return (task, newest.id);
            }
        }
        assert!(
            Instant::now() < deadline,
            "the slow deploy never reached its health step"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lock_row(h: &Harness, dep: i64) -> (String, Option<String>, Option<String>) {
    sqlx::query_as("SELECT status, holder, heartbeat_at FROM deployments WHERE id = ?")
        .bind(dep)
        .fetch_one(h.engine.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_running_deploy_holds_the_lock_with_its_console_and_a_heartbeat() {
    let mut h = Harness::new(Duration::from_secs(15)).await;
    h.engine = h.engine.clone().with_lock_timing(engine::lock::LockTiming {
        heartbeat_every: Duration::from_millis(100),
        ttl: Duration::from_secs(30),
    });
    h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    let dora = h.user("dora", Role::Deployer).await;
    let vic = h.user("vic", Role::Viewer).await;
    let (task, dep) = slow_deploy_in_health(&h, &dora).await;

    let (status, holder, first_beat) = lock_row(&h, dep).await;
    assert_eq!(status, "running");
    assert_eq!(
        holder.as_deref(),
        Some(h.engine.holder().to_string().as_str())
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, _, later_beat) = lock_row(&h, dep).await;
    assert!(later_beat > first_beat, "{first_beat:?} → {later_beat:?}");

    // Everyone can see who holds it.
    let lock = h.engine.environment(&vic, ENV).await.unwrap().lock.unwrap();
    assert_eq!(lock.deployment_id, dep);
    assert_eq!(lock.requested_by, "dora");
    assert_eq!(lock.holder, holder);
    assert!(lock.heartbeat_age_secs <= 1, "{lock:?}");
    // A live worker of this console is never recovered from under it.
    assert_eq!(h.engine.recover_locks().await.unwrap(), 0);

    let done = task.await.unwrap().unwrap();
    assert_eq!(done.status, DeploymentStatus::Succeeded, "{done:?}");
    assert!(h
        .engine
        .environment(&vic, ENV)
        .await
        .unwrap()
        .lock
        .is_none());
}

#[tokio::test]
async fn an_admin_breaks_a_running_deploys_lock_and_users_stay_where_they_were() {
    use engine::audit;
    let h = Harness::new(Duration::from_secs(15)).await;
    h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    let dora = h.user("dora", Role::Deployer).await;
    let ada = h.user("ada", Role::Admin).await;
    let (task, dep) = slow_deploy_in_health(&h, &dora).await;
    let green_pid = pid_of(&h.slot(SlotColor::Green).await);

    // Refusals change nothing: a deployer, no reason, a lock that changed hands.
    let e = h
        .engine
        .break_lock(&dora, ENV, dep, "stuck")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    let e = h.engine.break_lock(&ada, ENV, dep, "  ").await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    let e = h
        .engine
        .break_lock(&ada, ENV, dep + 1, "stuck")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    assert_eq!(lock_row(&h, dep).await.0, "running");

    let broken = h
        .engine
        .break_lock(&ada, ENV, dep, "health wait hangs, INC-42")
        .await
        .unwrap();
    assert_eq!(broken.status, DeploymentStatus::Failed, "{broken:?}");
    let message = broken.message.clone().unwrap();
    assert!(
        message.starts_with(
            "lock broken by ada: health wait hangs, INC-42; the green slot it started was stopped"
        ),
        "{message}"
    );
    // The worker stopped without closing the row over the breaker's words.
    let from_worker = task.await.unwrap().unwrap();
    assert_eq!(from_worker.message.as_deref(), Some(message.as_str()));
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    assert_eq!(h.active().await, Some(SlotColor::Blue));
    assert!(!pid_alive(green_pid), "the half-started slot still runs");
    let detail = h.engine.deployment(&ada, dep).await.unwrap();
    let health = detail.steps.iter().find(|s| s.name == "health").unwrap();
    assert_eq!(health.status, StepStatus::Failed);
    assert_eq!(
        health.message.as_deref(),
        Some("the lock was broken during this step")
    );
    let entry = audit::recent(h.engine.pool(), 20)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "lock.break")
        .expect("lock.break audited");
    assert_eq!(entry.actor_name, "ada");
    assert_eq!(entry.reason.as_deref(), Some("health wait hangs, INC-42"));
    assert!(
        entry.details.contains(&format!("\"deployment\":{dep}")),
        "{}",
        entry.details
    );

    // The environment is free again.
    let e = h
        .engine
        .break_lock(&ada, ENV, dep, "again")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
}

/// A deployment row as another console (on another host) would leave it.
async fn foreign_lock(h: &Harness, heartbeat_age: chrono::Duration) -> i64 {
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let other = engine::lock::Holder {
        host: "console-2.internal".into(),
        pid: 4242,
        started: 1,
        engine: "feedbeef".into(),
    };
    let active = env.active.unwrap();
    let dep = engine::deployments::begin(
        h.engine.pool(),
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Deploy,
            from_version: None,
            to_version: Some("v2"),
            from_slot: Some(active),
            to_slot: Some(active.other()),
            requested_by: None,
            reason: None,
            holder: Some(&other),
        },
    )
    .await
    .unwrap();
    sqlx::query("UPDATE deployments SET heartbeat_at = ? WHERE id = ?")
        .bind(chrono::Utc::now() - heartbeat_age)
        .bind(dep)
        .execute(h.engine.pool())
        .await
        .unwrap();
    steps::plan(h.engine.pool(), dep, engine::pipeline::DEPLOY)
        .await
        .unwrap();
    dep
}

#[tokio::test]
async fn a_lock_whose_console_went_silent_expires_and_a_live_one_is_not_broken() {
    use engine::audit;
    let h = Harness::with_v1_live().await;
    let ada = h.user("ada", Role::Admin).await;

    // Another console beat 3 s ago: alive. Nobody recovers it, and an admin
    // cannot break it from here (its worker would go on acting).
    let dep = foreign_lock(&h, chrono::Duration::seconds(3)).await;
    assert_eq!(h.engine.recover_locks().await.unwrap(), 0);
    let e = h
        .engine
        .break_lock(&ada, ENV, dep, "looks stuck")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Refused(_)), "{e}");
    assert!(e.to_string().contains("console-2.internal"), "{e}");
    assert_eq!(lock_row(&h, dep).await.0, "running");
    let e = h.engine.deploy(&ada, ENV, "v3").await.unwrap_err();
    assert!(matches!(e, Error::DeployInProgress { .. }), "{e}");

    // Silent for longer than the time to live (30 s): the lock expires.
    sqlx::query("UPDATE deployments SET heartbeat_at = ? WHERE id = ?")
        .bind(chrono::Utc::now() - chrono::Duration::seconds(45))
        .bind(dep)
        .execute(h.engine.pool())
        .await
        .unwrap();
    assert_eq!(h.engine.recover_locks().await.unwrap(), 1);
    let row = engine::deployments::get(h.engine.pool(), dep)
        .await
        .unwrap();
    assert_eq!(row.status, DeploymentStatus::Failed, "{row:?}");
    assert!(
        row.message
            .as_deref()
            .unwrap()
            .starts_with("interrupted: its console sent no heartbeat for 45 s"),
        "{row:?}"
    );
    let entry = audit::recent(h.engine.pool(), 5)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "lock.expire")
        .expect("lock.expire audited");
    assert!(
        entry.details.contains("console-2.internal"),
        "{}",
        entry.details
    );
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let d = h.engine.deploy(&ada, ENV, "v3").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");

    // An admin may break a silent lock without waiting for the expiry pass.
    let dep = foreign_lock(&h, chrono::Duration::seconds(120)).await;
    let broken = h
        .engine
        .break_lock(&ada, ENV, dep, "console-2 was decommissioned")
        .await
        .unwrap();
    assert_eq!(broken.status, DeploymentStatus::Failed);
    assert_eq!(h.users_see().await, "switchyard-demo v3\n");
    // It never got to its start step: the standby (v1 on blue) stays warm.
    let blue = h.slot(SlotColor::Blue).await;
    assert!(pid_alive(pid_of(&blue)), "{blue:?}");
    assert_eq!(blue.version.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_worker_whose_lock_was_taken_over_cannot_switch() {
    // Heartbeats far apart: the fence before the switch is what must catch
    // it, as for a console that was paused past its lock's time to live.
    let mut h = Harness::new(Duration::from_secs(15)).await;
    h.engine = h.engine.clone().with_lock_timing(engine::lock::LockTiming {
        heartbeat_every: Duration::from_secs(3600),
        ttl: Duration::from_secs(30),
    });
    h.engine.deploy(&Actor::system(), ENV, "v1").await.unwrap();
    let generation = environments::find(h.engine.pool(), ENV)
        .await
        .unwrap()
        .routing_generation;
    let (task, dep) = slow_deploy_in_health(&h, &Actor::system()).await;

    // Another console takes the lock over while this one waits for health.
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    let held = engine::lock::of_environment(h.engine.pool(), env.id)
        .await
        .unwrap()
        .unwrap();
    let other = engine::lock::Holder {
        host: "console-2.internal".into(),
        pid: 4242,
        started: 1,
        engine: "feedbeef".into(),
    };
    assert!(engine::lock::take_over(h.engine.pool(), &held, &other)
        .await
        .unwrap());

    let row = task.await.unwrap().unwrap();
    // It neither switched nor closed the row the other console now holds.
    assert_eq!(row.status, DeploymentStatus::Running, "{row:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let env = environments::find(h.engine.pool(), ENV).await.unwrap();
    assert_eq!(env.active, Some(SlotColor::Blue));
    assert_eq!(env.routing_generation, generation);
    let detail = h.engine.deployment(&Actor::system(), dep).await.unwrap();
    let switch = detail.steps.iter().find(|s| s.name == "switch").unwrap();
    assert_ne!(switch.status, StepStatus::Succeeded, "{detail:?}");
    let (_, holder, _) = lock_row(&h, dep).await;
    assert_eq!(holder, Some(other.to_string()));
}

#[tokio::test]
async fn admins_change_the_pipeline_settings_and_the_next_deploy_uses_them() {
    use engine::audit;
    let h = Harness::with_v1_live().await;
    let vic = h.user("vic", Role::Viewer).await;
    let dora = h.user("dora", Role::Deployer).await;
    let ada = h.user("ada", Role::Admin).await;
    let before = h.engine.pipeline_settings(&vic, ENV).await.unwrap();
    assert_eq!(before.sample_requests, 50);
    assert_eq!(before.p95_ms, 200);

    let mut wanted = before.clone();
    wanted.smoke_paths = "/\n/health".into();
    wanted.sample_requests = 20;
    wanted.p95_ms = 150;
    wanted.drain_timeout_ms = 5_000;
    wanted.standby_window_ms = 0;

    // Only admins; refusals change nothing.
    for who in [&vic, &dora] {
        let e = h
            .engine
            .set_pipeline_settings(who, ENV, &wanted)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden { .. }), "{e}");
    }
    let mut bad = Vec::new();
    type Change = fn(&mut model::PipelineSettings);
    let changes: [(&str, Change); 8] = [
        ("p95 0", |s| s.p95_ms = 0),
        ("relative smoke route", |s| s.smoke_paths = "health".into()),
        ("deadline below interval", |s| s.health_deadline_ms = 10),
        ("drain 0", |s| s.drain_timeout_ms = 0),
        ("errors 150 %", |s| s.max_error_pct = 150.0),
        ("errors NaN", |s| s.max_error_pct = f64::NAN),
        ("huge sample", |s| s.sample_requests = 1_000_000),
        ("a year of standby", |s| {
            s.standby_window_ms = 365 * 24 * 3600 * 1000
        }),
    ];
    for (what, change) in changes {
        let mut s = wanted.clone();
        change(&mut s);
        match h.engine.set_pipeline_settings(&ada, ENV, &s).await {
            Err(Error::InvalidInput(m)) => bad.push(m),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(bad.len(), 8);
    assert_eq!(h.engine.pipeline_settings(&vic, ENV).await.unwrap(), before);

    let saved = h
        .engine
        .set_pipeline_settings(&ada, ENV, &wanted)
        .await
        .unwrap();
    assert_eq!(saved, wanted);
    assert_eq!(h.engine.pipeline_settings(&vic, ENV).await.unwrap(), wanted);
    let entry = audit::recent(h.engine.pool(), 5)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "environment.settings")
        .expect("audited");
    assert_eq!(entry.actor_name, "ada");
    assert!(
        entry.details.contains("\"sample_requests\":20"),
        "{}",
        entry.details
    );
    assert!(
        entry.details.contains("\"sample_requests\":50"),
        "{}",
        entry.details
    );

    // The next deploy runs with them: its gates step reports 20 requests on
    // two smoke routes.
    let d = h.engine.deploy(&dora, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let detail = h.engine.deployment(&vic, d.id).await.unwrap();
    let gates = detail.steps.iter().find(|s| s.name == "gates").unwrap();
    let m = gates.message.as_deref().unwrap();
    assert!(m.contains("/health") && m.contains("20 requests"), "{m}");
}

#[tokio::test]
async fn an_interrupted_cold_rollback_stops_the_slot_it_started_again_and_keeps_its_version() {
    use engine::runtime::Runtime as _;
    let h = Harness::with_v1_live().await;
    let pool = h.engine.pool().clone();
    let env = environments::find(&pool, ENV).await.unwrap();
    // A standby window of 1 ms: after the deploy, the expiry pass stops blue.
    environments::set_timings(
        &pool,
        env.id,
        environments::Timings {
            drain_timeout: Duration::from_secs(5),
            watch_window: Duration::ZERO,
            standby_window: Duration::from_millis(1),
        },
    )
    .await
    .unwrap();
    let d = h.engine.deploy(&Actor::system(), ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.engine.expire_standbys().await.unwrap();
    assert_eq!(h.slot(SlotColor::Blue).await.handle, None);

    // A console that died while a cold rollback waited for blue's health:
    // blue runs again, users are still on green.
    let env = environments::find(&pool, ENV).await.unwrap();
    let again = h
        .runtime
        .start(&Engine::spec(&env, SlotColor::Blue, "v1"))
        .await
        .unwrap();
    environments::set_slot(
        &pool,
        env.id,
        SlotColor::Blue,
        Some("v1"),
        SlotState::Starting,
        Some(&again.handle),
        Some(&again.address),
    )
    .await
    .unwrap();
    let dep = engine::deployments::begin(
        &pool,
        &engine::deployments::NewDeployment {
            environment_id: env.id,
            kind: DeploymentKind::Rollback,
            from_version: Some("v2"),
            to_version: Some("v1"),
            from_slot: Some(SlotColor::Green),
            to_slot: Some(SlotColor::Blue),
            requested_by: None,
            reason: Some("bad release"),
            holder: None,
        },
    )
    .await
    .unwrap();
    steps::plan(&pool, dep, engine::pipeline::ROLLBACK_COLD)
        .await
        .unwrap();
    for done in [StepName::Lock, StepName::Start] {
        steps::start(&pool, dep, done).await.unwrap();
        steps::finish(&pool, dep, done, StepStatus::Succeeded, "ok")
            .await
            .unwrap();
    }
    steps::start(&pool, dep, StepName::Health).await.unwrap();

    let restarted = Engine::new(pool.clone(), h.runtime.clone());
    restarted.reconcile().await.unwrap();
    let row = engine::deployments::get(&pool, dep).await.unwrap();
    assert_eq!(row.status, DeploymentStatus::Failed, "{row:?}");
    assert!(
        row.message
            .as_deref()
            .unwrap()
            .contains("the blue slot it started was stopped"),
        "{row:?}"
    );
    let blue = h.slot(SlotColor::Blue).await;
    assert_eq!(blue.handle, None, "{blue:?}");
    assert!(!pid_alive(again.handle.parse().unwrap()));
    // Still the standby a rollback can start again.
    assert_eq!(blue.version.as_deref(), Some("v1"));
    assert!(blue.standby_until.is_some(), "{blue:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    let r = restarted
        .rollback(&Actor::system(), ENV, "bad release, again")
        .await
        .unwrap();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
}
