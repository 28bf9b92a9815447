//! One behavioural suite for every runtime driver: each behaviour is written
//! once, as an async fn over a `Fixture` (a `&dyn Runtime` plus how that driver
//! spells a release), and instantiated for the process runtime and the docker
//! runtime by `behaviours!` at the bottom. Test names are `process::<behaviour>`
//! and `docker::<behaviour>`.
//!
//! Needs: `cargo build -p demo` (the process runtime runs the sibling
//! `switchyard-demo` binary) and, for the docker half, a running dockerd with
//! the demo images: `bash scripts/docker.sh`. The docker tests fail (they do
//! not skip) when either is missing.
//!
//! Everything a test starts is removed when it ends, even when it fails: the
//! fixture's `Drop` kills recorded process groups, and removes every container
//! labelled with the test's own environment name (unique per test and run).

use async_trait::async_trait;
use engine::runtime::docker::{LABEL_ENVIRONMENT, LABEL_MANAGED, LABEL_SLOT, LABEL_VERSION};
use engine::runtime::{
    DockerRuntime, Liveness, ProcessRuntime, RunningSlot, Runtime, RuntimeError, SlotSpec,
};
use model::SlotColor;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod support;

use support::{remove_containers_of, sibling_bin};

const DOCKER_HINT: &str = "run `bash scripts/docker.sh` first";

/// A runtime that remembers every handle it started, for cleanup.
struct Recording<R> {
    inner: R,
    started: Mutex<Vec<String>>,
}

#[async_trait]
impl<R: Runtime> Runtime for Recording<R> {
    async fn check(&self, spec: &SlotSpec) -> Result<(), RuntimeError> {
        self.inner.check(spec).await
    }
    async fn start(&self, spec: &SlotSpec) -> Result<RunningSlot, RuntimeError> {
        let slot = self.inner.start(spec).await?;
        self.started.lock().unwrap().push(slot.handle.clone());
        Ok(slot)
    }
    async fn stop(&self, handle: &str, grace: Duration) -> Result<(), RuntimeError> {
        self.inner.stop(handle, grace).await
    }
    async fn liveness(&self, handle: &str) -> Liveness {
        self.inner.liveness(handle).await
    }
    async fn recent_output(
        &self,
        environment: &str,
        color: SlotColor,
        max_bytes: usize,
    ) -> Result<String, RuntimeError> {
        self.inner
            .recent_output(environment, color, max_bytes)
            .await
    }
}

enum Driver {
    Process {
        runtime: Recording<ProcessRuntime>,
        demo: PathBuf,
        logs: tempfile::TempDir,
    },
    Docker {
        runtime: Recording<DockerRuntime>,
    },
}

/// One driver, one unique environment name, and how releases are spelled.
struct Fixture {
    env: String,
    driver: Driver,
}

fn unique_env(driver: &str, test: &str) -> String {
    // Environment names are [a-z0-9-]; container names derive from them.
    let test: String = test
        .chars()
        .map(|c| if c == '_' { '-' } else { c })
        .take(24)
        .collect();
    format!("rb-{driver}-{test}-{}", std::process::id())
}

impl Fixture {
    fn process(test: &str) -> Fixture {
        let logs = tempfile::tempdir().unwrap();
        Fixture {
            env: unique_env("p", test),
            driver: Driver::Process {
                runtime: Recording {
                    inner: ProcessRuntime::new(logs.path()),
                    started: Mutex::default(),
                },
                demo: sibling_bin("switchyard-demo"),
                logs,
            },
        }
    }

    async fn docker(test: &str) -> Fixture {
        let rt = DockerRuntime::connect()
            .await
            .unwrap_or_else(|e| panic!("no Docker Engine ({e}): {DOCKER_HINT}"));
        let fixture = Fixture {
            env: unique_env("d", test),
            driver: Driver::Docker {
                runtime: Recording {
                    inner: rt,
                    started: Mutex::default(),
                },
            },
        };
        for v in ["v1", "v2", "v2+unhealthy", "v2+crash"] {
            if let Err(e) = fixture.rt().check(&fixture.spec(SlotColor::Blue, v)).await {
                panic!("demo image for {v} missing ({e}): {DOCKER_HINT}");
            }
        }
        fixture
    }

    fn rt(&self) -> &dyn Runtime {
        match &self.driver {
            Driver::Process { runtime, .. } => runtime,
            Driver::Docker { runtime } => runtime,
        }
    }

    fn spec_with(&self, color: SlotColor, version: &str, artifact: String) -> SlotSpec {
        SlotSpec {
            environment: self.env.clone(),
            color,
            version: version.into(),
            artifact,
            env: Default::default(),
            docker: Default::default(),
            registry: None,
        }
    }

    /// The demo at `version` (knobs in its build metadata: `+unhealthy`, …).
    fn spec(&self, color: SlotColor, version: &str) -> SlotSpec {
        let artifact = match &self.driver {
            Driver::Process { demo, .. } => demo.display().to_string(),
            // The environment's artifact template, as the pipeline fills it in.
            Driver::Docker { .. } => "switchyard-demo:{version}".replace("{version}", version),
        };
        self.spec_with(color, version, artifact)
    }

    /// A release whose artifact does not exist.
    fn missing_spec(&self, color: SlotColor) -> SlotSpec {
        let artifact = match &self.driver {
            Driver::Process { .. } => "/nonexistent/releases/v404/switchyard-demo".to_string(),
            Driver::Docker { .. } => "switchyard-demo:v404".to_string(),
        };
        self.spec_with(color, "v404", artifact)
    }

    /// Something that keeps running after SIGTERM, where the driver can run
    /// one; `true` when it really ignores SIGTERM. The docker images are
    /// `FROM scratch` with only the demo, which exits on SIGTERM, so there the
    /// behaviour checked is only that stop returns within grace + slack.
    fn stubborn_spec(&self, color: SlotColor) -> (SlotSpec, bool) {
        match &self.driver {
            Driver::Process { .. } => (
                self.spec_with(
                    color,
                    "stubborn",
                    "sh -c 'trap \"\" TERM; while true; do sleep 0.05; done'".into(),
                ),
                true,
            ),
            Driver::Docker { .. } => (self.spec(color, "v1"), false),
        }
    }

    /// True when nothing was launched for the slot (no log opened, no container).
    async fn nothing_started(&self, color: SlotColor) -> bool {
        match &self.driver {
            Driver::Process { logs, .. } => !logs
                .path()
                .join(format!("{}-{color}.log", self.env))
                .exists(),
            Driver::Docker { runtime } => {
                let name = DockerRuntime::container_name(&self.env, color);
                matches!(
                    runtime
                        .inner
                        .client()
                        .inspect_container(
                            &name,
                            None::<bollard::query_parameters::InspectContainerOptions>
                        )
                        .await,
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    })
                )
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        match &self.driver {
            Driver::Process { runtime, .. } => {
                for h in runtime.started.lock().unwrap().iter() {
                    if let Ok(pid) = h.parse::<i32>() {
                        let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
            }
            Driver::Docker { .. } => remove_containers_of(&self.env),
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// GETs `path` until the slot answers at all (it may still be binding).
async fn get_when_up(addr: &str, path: &str) -> (u16, String) {
    let client = http();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match client.get(format!("http://{addr}{path}")).send().await {
            Ok(r) => return (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => assert!(
                Instant::now() < deadline,
                "http://{addr}{path} never answered: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn answers(addr: &str) -> bool {
    http()
        .get(format!("http://{addr}/health"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .is_ok()
}

async fn exited_within(rt: &dyn Runtime, handle: &str, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        if let Liveness::Exited(why) = rt.liveness(handle).await {
            return Some(why);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------
// The behaviours, written once.

/// A started slot serves its version on `/` and is healthy, on loopback.
async fn serves_its_version_and_health(f: &Fixture) {
    let rt = f.rt();
    let slot = rt.start(&f.spec(SlotColor::Blue, "v1")).await.unwrap();
    assert!(slot.address.starts_with("127.0.0.1:"), "{slot:?}");
    assert_eq!(
        get_when_up(&slot.address, "/").await,
        (200, "switchyard-demo v1\n".to_string())
    );
    assert_eq!(get_when_up(&slot.address, "/health").await.0, 200);
    assert_eq!(rt.liveness(&slot.handle).await, Liveness::Running);
    rt.stop(&slot.handle, Duration::from_secs(5)).await.unwrap();
}

/// The environment's variables and secrets are in the slot's process
/// environment (the demo's `/config` shows `GREETING` and only a digest of
/// `API_SECRET`), and cannot override `PORT`.
async fn variables_and_secrets_reach_the_slot(f: &Fixture) {
    let rt = f.rt();
    let mut spec = f.spec(SlotColor::Blue, "v1");
    spec.env = engine::runtime::SlotEnv(vec![
        ("GREETING".into(), "hello from the console".into()),
        ("API_SECRET".into(), "s3cr3t v@lue".into()),
    ]);
    // What a log line of the spec shows: names, never values.
    let shown = format!("{spec:?}");
    assert!(
        shown.contains("API_SECRET") && !shown.contains("s3cr3t"),
        "{shown}"
    );
    let slot = rt.start(&spec).await.unwrap();
    let (status, body) = get_when_up(&slot.address, "/config").await;
    assert_eq!(status, 200, "{body}");
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["greeting"], "hello from the console");
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(b"s3cr3t v@lue"));
    assert_eq!(config["api_secret_sha256"], digest.as_str());
    rt.stop(&slot.handle, Duration::from_secs(5)).await.unwrap();
}

/// What the slot printed is readable, bounded to the newest bytes; a slot
/// that never ran has printed nothing.
async fn recent_output_shows_what_the_slot_printed(f: &Fixture) {
    let rt = f.rt();
    assert_eq!(
        rt.recent_output(&f.env, SlotColor::Green, 4096)
            .await
            .unwrap(),
        ""
    );
    let slot = rt.start(&f.spec(SlotColor::Green, "v1")).await.unwrap();
    get_when_up(&slot.address, "/health").await;
    let out = rt
        .recent_output(&f.env, SlotColor::Green, 4096)
        .await
        .unwrap();
    assert!(out.contains("switchyard-demo v1 listening on"), "{out:?}");
    let short = rt
        .recent_output(&f.env, SlotColor::Green, 10)
        .await
        .unwrap();
    assert!(short.len() <= 10, "{short:?}");
    rt.stop(&slot.handle, Duration::from_secs(5)).await.unwrap();
}

/// `+unhealthy`: it starts and serves, but its health check answers 503.
async fn unhealthy_build_starts_but_fails_health(f: &Fixture) {
    let rt = f.rt();
    let slot = rt
        .start(&f.spec(SlotColor::Green, "v2+unhealthy"))
        .await
        .unwrap();
    let (status, body) = get_when_up(&slot.address, "/").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "switchyard-demo v2+unhealthy\n")
    );
    assert_eq!(get_when_up(&slot.address, "/health").await.0, 503);
    assert_eq!(rt.liveness(&slot.handle).await, Liveness::Running);
    rt.stop(&slot.handle, Duration::from_secs(5)).await.unwrap();
}

/// `+crash` exits with code 1 at start: start reports it launched, liveness
/// then says it exited, with the code.
async fn crash_at_start_is_seen_with_its_exit_code(f: &Fixture) {
    let rt = f.rt();
    let slot = rt
        .start(&f.spec(SlotColor::Blue, "v2+crash"))
        .await
        .unwrap();
    let why = exited_within(rt, &slot.handle, Duration::from_secs(10))
        .await
        .expect("a crashing build is seen as exited");
    // "exit status: 1" (process) / "exit code 1" (docker).
    assert!(
        why.starts_with("exit") && why.ends_with(" 1"),
        "exit reason: {why:?}"
    );
    // Stopping what already exited is not an error.
    rt.stop(&slot.handle, Duration::from_secs(1)).await.unwrap();
}

/// A graceful stop ends the slot well within its grace period.
async fn stop_within_grace_ends_the_slot(f: &Fixture) {
    let rt = f.rt();
    let slot = rt.start(&f.spec(SlotColor::Blue, "v1")).await.unwrap();
    get_when_up(&slot.address, "/health").await;
    let t = Instant::now();
    rt.stop(&slot.handle, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the demo stops on SIGTERM; stop took {:?}",
        t.elapsed()
    );
    assert!(matches!(
        rt.liveness(&slot.handle).await,
        Liveness::Exited(_)
    ));
    assert!(
        !answers(&slot.address).await,
        "a stopped slot still answers"
    );
}

/// Stop forces what ignores SIGTERM once the grace period is over.
async fn stop_escalates_after_grace(f: &Fixture) {
    let rt = f.rt();
    let (spec, ignores_term) = f.stubborn_spec(SlotColor::Green);
    let slot = rt.start(&spec).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rt.liveness(&slot.handle).await, Liveness::Running);
    let grace = Duration::from_secs(1);
    let t = Instant::now();
    rt.stop(&slot.handle, grace).await.unwrap();
    let took = t.elapsed();
    if ignores_term {
        assert!(took >= grace, "forced before the grace period: {took:?}");
    }
    assert!(took < grace + Duration::from_secs(5), "stop took {took:?}");
    assert!(matches!(
        rt.liveness(&slot.handle).await,
        Liveness::Exited(_)
    ));
}

/// A release whose artifact does not exist is refused, by `check` and by
/// `start`, before anything is launched.
async fn missing_artifact_is_refused_before_anything_starts(f: &Fixture) {
    let rt = f.rt();
    let spec = f.missing_spec(SlotColor::Blue);
    let err = rt.check(&spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::ArtifactNotFound(_)), "{err}");
    let err = rt.start(&spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::ArtifactNotFound(_)), "{err}");
    assert!(f.nothing_started(SlotColor::Blue).await);
}

/// Blue and green run side by side, each on its own address with its own version.
async fn blue_and_green_run_side_by_side(f: &Fixture) {
    let rt = f.rt();
    let blue = rt.start(&f.spec(SlotColor::Blue, "v1")).await.unwrap();
    let green = rt.start(&f.spec(SlotColor::Green, "v2")).await.unwrap();
    assert_ne!(blue.address, green.address);
    assert_ne!(blue.handle, green.handle);
    assert_eq!(
        get_when_up(&blue.address, "/").await.1,
        "switchyard-demo v1\n"
    );
    assert_eq!(
        get_when_up(&green.address, "/").await.1,
        "switchyard-demo v2\n"
    );
    // Stopping one leaves the other serving.
    rt.stop(&blue.handle, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        get_when_up(&green.address, "/").await.1,
        "switchyard-demo v2\n"
    );
    assert_eq!(rt.liveness(&green.handle).await, Liveness::Running);
    rt.stop(&green.handle, Duration::from_secs(5))
        .await
        .unwrap();
}

/// After a slot was stopped, the next release starts in it (the pipeline's
/// "replace the previous standby").
async fn a_stopped_slot_takes_the_next_release(f: &Fixture) {
    let rt = f.rt();
    let first = rt.start(&f.spec(SlotColor::Blue, "v1")).await.unwrap();
    get_when_up(&first.address, "/health").await;
    rt.stop(&first.handle, Duration::from_secs(5))
        .await
        .unwrap();
    let second = rt.start(&f.spec(SlotColor::Blue, "v2")).await.unwrap();
    assert_eq!(
        get_when_up(&second.address, "/").await.1,
        "switchyard-demo v2\n"
    );
    rt.stop(&second.handle, Duration::from_secs(5))
        .await
        .unwrap();
}

macro_rules! behaviours {
    ($($name:ident),* $(,)?) => {
        mod process {
            $(
                #[tokio::test]
                async fn $name() {
                    let f = super::Fixture::process(stringify!($name));
                    super::$name(&f).await;
                }
            )*
        }
        mod docker {
            $(
                #[tokio::test]
                async fn $name() {
                    let f = super::Fixture::docker(stringify!($name)).await;
                    super::$name(&f).await;
                }
            )*
        }
    };
}

behaviours!(
    serves_its_version_and_health,
    variables_and_secrets_reach_the_slot,
    recent_output_shows_what_the_slot_printed,
    unhealthy_build_starts_but_fails_health,
    crash_at_start_is_seen_with_its_exit_code,
    stop_within_grace_ends_the_slot,
    stop_escalates_after_grace,
    missing_artifact_is_refused_before_anything_starts,
    blue_and_green_run_side_by_side,
    a_stopped_slot_takes_the_next_release,
);

// ---------------------------------------------------------------------------
// What only the docker driver has: names, labels, containers kept on stop.

fn docker_rt(f: &Fixture) -> &DockerRuntime {
    match &f.driver {
        Driver::Docker { runtime } => &runtime.inner,
        Driver::Process { .. } => unreachable!(),
    }
}

#[tokio::test]
async fn docker_slot_is_a_named_labelled_container_kept_after_stop() {
    let f = Fixture::docker("named-labelled").await;
    let rt = f.rt();
    let slot = rt
        .start(&f.spec(SlotColor::Green, "v2+unhealthy"))
        .await
        .unwrap();
    let c = docker_rt(&f)
        .client()
        .inspect_container(
            &slot.handle,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    assert_eq!(
        c.name.as_deref(),
        Some(format!("/switchyard-{}-green", f.env).as_str())
    );
    let config = c.config.unwrap();
    // `+` is not valid in a tag: the version's build metadata maps to `-`.
    assert_eq!(
        config.image.as_deref(),
        Some("switchyard-demo:v2-unhealthy")
    );
    let labels = config.labels.unwrap();
    assert_eq!(labels[LABEL_MANAGED], "true");
    assert_eq!(labels[LABEL_ENVIRONMENT], f.env);
    assert_eq!(labels[LABEL_SLOT], "green");
    assert_eq!(labels[LABEL_VERSION], "v2+unhealthy");
    let env = config.env.unwrap();
    assert!(
        env.contains(&"APP_VERSION=v2+unhealthy".to_string()),
        "{env:?}"
    );
    assert!(env.contains(&"PORT=8080".to_string()), "{env:?}");
    // Published on loopback only.
    let bindings = c.host_config.unwrap().port_bindings.unwrap();
    let b = bindings["8080/tcp"].as_ref().unwrap();
    assert_eq!(b[0].host_ip.as_deref(), Some("127.0.0.1"));

    rt.stop(&slot.handle, Duration::from_secs(5)).await.unwrap();
    // Stopped, not removed: a late rollback starts it again.
    let c = docker_rt(&f)
        .client()
        .inspect_container(
            &slot.handle,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .expect("the stopped container is kept");
    assert_eq!(c.state.unwrap().running, Some(false));
    assert!(matches!(
        rt.liveness(&slot.handle).await,
        Liveness::Exited(why) if why.starts_with("exit code")
    ));
}

#[tokio::test]
async fn docker_never_replaces_a_running_container() {
    let f = Fixture::docker("no-replace").await;
    let rt = f.rt();
    let live = rt.start(&f.spec(SlotColor::Blue, "v1")).await.unwrap();
    let err = rt.start(&f.spec(SlotColor::Blue, "v2")).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::StartFailed(m) if m.contains("still running")),
        "{err}"
    );
    assert_eq!(rt.liveness(&live.handle).await, Liveness::Running);
    assert_eq!(
        get_when_up(&live.address, "/").await.1,
        "switchyard-demo v1\n"
    );
}

#[tokio::test]
async fn docker_liveness_of_a_removed_container_is_gone() {
    let f = Fixture::docker("gone").await;
    let rt = f.rt();
    let slot = rt.start(&f.spec(SlotColor::Blue, "v1")).await.unwrap();
    remove_containers_of(&f.env);
    assert_eq!(
        rt.liveness(&slot.handle).await,
        Liveness::Exited("container gone".into())
    );
    // Stopping it is then a no-op, not an error.
    rt.stop(&slot.handle, Duration::from_secs(1)).await.unwrap();
}
