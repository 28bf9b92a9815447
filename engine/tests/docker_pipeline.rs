//! The deploy pipeline on real Docker: a real `switchyard-proxy` in front of
//! demo containers started by the engine's docker runtime. The main scenario
//! also runs on the process runtime, so both drivers are held to the same
//! pipeline behaviour (and their deploy times can be compared: run with
//! `--nocapture` to see them).
//!
//! Needs `cargo build -p demo -p proxy` and a running dockerd with the demo
//! images (`bash scripts/docker.sh`); fails, never skips, without them.
//! Every test removes the containers labelled with its own environment name
//! and kills its proxy when it ends, even when it fails.

use engine::environments::{self, NewEnvironment};
use engine::runtime::{DockerRuntime, Liveness, ProcessRuntime, Runtime};
use engine::Actor;
use engine::{Engine, Error};
use model::{DeploymentStatus, SlotColor};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use support::harness::slot_pids_in_db;
use support::{remove_containers_of, sibling_bin, spawn_proxy_with};

const TOKEN: &str = "docker-pipeline-test-admin-token";
const DOCKER_HINT: &str = "run `bash scripts/docker.sh` first";

/// Container names are global to the daemon: every harness gets its own
/// environment name (process id + counter).
fn unique_env() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "dp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

struct Harness {
    _dir: tempfile::TempDir,
    env: String,
    /// The engine's database.
    url: String,
    engine: Engine,
    process: Arc<ProcessRuntime>,
    docker: Option<Arc<DockerRuntime>>,
    proxy: Child,
    public: String,
    http: reqwest::Client,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
        remove_containers_of(&self.env);
        // Process slots: what the records still point at. Read through a
        // pool of its own: the engine's belongs to the test's runtime, which
        // is blocked here, and a PostgreSQL connection of it never wakes.
        let pids = slot_pids_in_db(&self.url);
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(-(pid as i32)),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Harness {
    /// An environment on `runtime` (`docker` or `process`); `with_docker`
    /// says whether the engine is configured with the docker runtime.
    async fn new(runtime: &str, with_docker: bool) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("proxy-token"), format!("{TOKEN}\n")).unwrap();
        // With a preview listener: the gates reach the idle container through
        // it, as in production.
        let (
            proxy,
            support::ProxyInfo {
                public,
                admin,
                preview,
                ..
            },
        ) = spawn_proxy_with(dir.path(), true);
        let url = engine::store::testing::store_url(dir.path()).await;
        let pool = engine::store::open(&url).await.unwrap();
        let env = unique_env();
        let template = match runtime {
            "docker" => "switchyard-demo:{version}".to_string(),
            _ => sibling_bin("switchyard-demo").display().to_string(),
        };
        let mut new = NewEnvironment::new(
            &env,
            &format!("http://{public}/"),
            &template,
            &format!("http://{admin}"),
            &dir.path().join("proxy-token").display().to_string(),
        );
        new.runtime = runtime.parse().expect("a runtime kind");
        new.health_interval = Duration::from_millis(50);
        new.health_deadline = Duration::from_secs(3);
        new.stop_grace = Duration::from_secs(2);
        new.preview_listen = preview;
        environments::create(&pool, &new).await.unwrap();

        let process = Arc::new(ProcessRuntime::new(dir.path().join("logs")));
        let mut engine = Engine::new(pool, process.clone());
        let mut docker = None;
        if with_docker {
            let rt = Arc::new(
                DockerRuntime::connect()
                    .await
                    .unwrap_or_else(|e| panic!("no Docker Engine ({e}): {DOCKER_HINT}")),
            );
            engine = engine.with_runtime(model::RuntimeKind::Docker, rt.clone());
            docker = Some(rt);
        }
        Harness {
            _dir: dir,
            env,
            url,
            engine,
            process,
            docker,
            proxy,
            public,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    fn runtime(&self) -> &dyn Runtime {
        match &self.docker {
            Some(d) => d.as_ref(),
            None => self.process.as_ref(),
        }
    }

    async fn users_see(&self) -> String {
        let r = self
            .http
            .get(format!("http://{}/", self.public))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "through the proxy: {}", r.status());
        r.text().await.unwrap()
    }

    async fn slot(&self, color: SlotColor) -> environments::Slot {
        let e = environments::find(self.engine.pool(), &self.env)
            .await
            .unwrap();
        environments::slot(self.engine.pool(), e.id, color)
            .await
            .unwrap()
    }

    async fn deploy_ok(&self, version: &str) -> Duration {
        let t = Instant::now();
        let d = self
            .engine
            .deploy(&Actor::system(), &self.env, version)
            .await
            .unwrap();
        let took = t.elapsed();
        assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
        took
    }
}

/// Deploy v1, then v2: users move to v2, v1's slot stays warm, and a
/// rollback is a switch back to it.
async fn deploy_switch_and_rollback(runtime: &str) {
    let h = Harness::new(runtime, runtime == "docker").await;
    let first = h.deploy_ok("v1").await;
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let second = h.deploy_ok("v2").await;
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");

    let blue = h.slot(SlotColor::Blue).await;
    assert_eq!(blue.version.as_deref(), Some("v1"));
    assert_eq!(
        h.runtime().liveness(blue.handle.as_deref().unwrap()).await,
        Liveness::Running,
        "the previous slot is kept warm"
    );
    let t = Instant::now();
    let r = h
        .engine
        .rollback(&Actor::system(), &h.env, "test")
        .await
        .unwrap();
    let rollback = t.elapsed();
    assert_eq!(r.status, DeploymentStatus::Succeeded, "{r:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    eprintln!(
        "[{runtime}] first deploy {} ms, second deploy {} ms, rollback {} ms",
        first.as_millis(),
        second.as_millis(),
        rollback.as_millis()
    );
}

#[tokio::test]
async fn docker_deploy_switches_users_and_rolls_back() {
    deploy_switch_and_rollback("docker").await;
}

#[tokio::test]
async fn process_deploy_switches_users_and_rolls_back() {
    deploy_switch_and_rollback("process").await;
}

#[tokio::test]
async fn docker_failed_releases_leave_users_on_the_previous_slot() {
    let h = Harness::new("docker", true).await;
    h.deploy_ok("v1").await;
    let v1 = "switchyard-demo v1\n";
    let system = Actor::system();

    // No such image: refused as an unknown version before anything starts.
    let rows = h.engine.history(&system, &h.env, 100).await.unwrap().len();
    let err = h.engine.deploy(&system, &h.env, "v9").await.unwrap_err();
    assert!(matches!(err, Error::UnknownVersion { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("neither on this machine nor in its registry"),
        "{err}"
    );
    assert_eq!(
        h.engine.history(&system, &h.env, 100).await.unwrap().len(),
        rows
    );
    assert_eq!(h.slot(SlotColor::Green).await.handle, None);
    assert_eq!(h.users_see().await, v1);

    // A container that exits at start: the deployment fails and says why.
    let d = h.engine.deploy(&system, &h.env, "v2+crash").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let msg = d.message.unwrap_or_default();
    assert!(msg.contains("exited (exit code 1)"), "{msg}");
    assert_eq!(h.users_see().await, v1);
    assert_eq!(h.slot(SlotColor::Green).await.handle, None);

    // Health never passes: failed after the deadline, its container stopped.
    let d = h
        .engine
        .deploy(&system, &h.env, "v2+unhealthy")
        .await
        .unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let msg = d.message.unwrap_or_default();
    assert!(msg.contains("not healthy within"), "{msg}");
    assert_eq!(h.users_see().await, v1);
    let name = DockerRuntime::container_name(&h.env, SlotColor::Green);
    assert!(
        matches!(h.runtime().liveness(&name).await, Liveness::Exited(_)),
        "the unhealthy container was stopped"
    );
    let blue = h.slot(SlotColor::Blue).await;
    assert_eq!(
        h.runtime().liveness(blue.handle.as_deref().unwrap()).await,
        Liveness::Running,
        "the active slot was never touched"
    );

    // Every second answer is a 500: the gates fail on the idle slot, before
    // the switch, and its container is stopped.
    let d = h.engine.deploy(&system, &h.env, "v2+errors").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let msg = d.message.unwrap_or_default();
    assert!(
        msg.contains("gates: through the preview address http://")
            && msg.contains("performance: errors 50.0 % = 25/50"),
        "{msg}"
    );
    assert_eq!(h.users_see().await, v1);
    assert!(
        matches!(h.runtime().liveness(&name).await, Liveness::Exited(_)),
        "the container that failed its gates was stopped"
    );

    // The slot is usable again right after (the stopped leftovers are replaced).
    h.deploy_ok("v2").await;
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
}

#[tokio::test]
async fn an_environment_on_an_unconfigured_runtime_is_refused_before_anything_starts() {
    // The environment asks for docker; this engine only has the process runtime.
    let h = Harness::new("docker", false).await;
    let err = h
        .engine
        .deploy(&Actor::system(), &h.env, "v1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "runtime",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("\"docker\" runtime"), "{err}");
    assert!(h
        .engine
        .history(&Actor::system(), &h.env, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.slot(SlotColor::Blue).await.handle, None);
}

/// The environment's container settings reach Docker: the service listens on
/// the environment's port (told as PORT, published on loopback), with its
/// memory and CPU limits, restart policy and mounts; users are served.
#[tokio::test]
async fn containers_get_the_environments_port_limits_and_mounts() {
    let h = Harness::new("docker", true).await;
    let data = h._dir.path().join("shared");
    std::fs::create_dir_all(&data).unwrap();
    engine::store::query(
        "UPDATE environments SET container_port = 9090, docker_memory_mb = 64, docker_cpus = 0.5, \
         docker_restart = 'on-failure:2', docker_volumes = ? WHERE name = ?",
    )
    .bind(format!("{}:/data:ro", data.display()))
    .bind(&h.env)
    .execute(h.engine.pool())
    .await
    .unwrap();
    h.deploy_ok("v1").await;
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");

    let slot = h.slot(SlotColor::Blue).await;
    let docker = h.docker.as_ref().unwrap().client();
    let c = docker
        .inspect_container(
            slot.handle.as_deref().unwrap(),
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    let env = c
        .config
        .as_ref()
        .and_then(|c| c.env.clone())
        .unwrap_or_default();
    assert!(env.contains(&"PORT=9090".to_string()), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with("DEMO_BIND")), "{env:?}");
    let host = c.host_config.unwrap();
    assert_eq!(host.memory, Some(64 * 1024 * 1024));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    let restart = host.restart_policy.unwrap();
    assert_eq!(
        restart.name,
        Some(bollard::models::RestartPolicyNameEnum::ON_FAILURE)
    );
    assert_eq!(restart.maximum_retry_count, Some(2));
    assert_eq!(
        host.binds,
        Some(vec![format!("{}:/data:ro", data.display())])
    );
    let bindings = host.port_bindings.unwrap();
    let published = bindings["9090/tcp"].as_ref().unwrap();
    assert_eq!(published[0].host_ip.as_deref(), Some("127.0.0.1"));
}

/// The registry `scripts/registry.sh` runs: its address and login.
fn test_registry() -> (String, String, String) {
    let dir = std::env::var("SWITCHYARD_REGISTRY_DIR")
        .unwrap_or_else(|_| "/tmp/switchyard-registry".into());
    let read = |f: &str| {
        std::fs::read_to_string(format!("{dir}/{f}"))
            .unwrap_or_else(|e| panic!("{dir}/{f}: {e}: run `bash scripts/registry.sh` first"))
            .trim()
            .to_string()
    };
    (read("address"), read("user"), read("password"))
}

/// A missing image is pulled from a real registry (Debian's
/// `docker-registry`, htpasswd login) with the login the environment names:
/// a wrong password and a tag that exists nowhere are refused at preflight
/// with the registry's reason and change nothing; the right one pulls and
/// serves, and the password never reaches the container.
#[tokio::test]
async fn a_missing_image_is_pulled_with_the_environments_registry_login() {
    let (registry, user, password) = test_registry();
    let h = Harness::new("docker", true).await;
    let engine = h
        .engine
        .clone()
        .with_secrets(engine::SecretBox::open(h._dir.path()).unwrap());
    let docker = h.docker.as_ref().unwrap().client();
    let image = format!("{registry}/shop:v1");
    // Not here, whatever an earlier run left: the deploy has to pull.
    let _ = docker
        .remove_image(
            &image,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
    engine::store::query(
        "UPDATE environments SET artifact_template = ?, docker_registry_user = ?, \
         docker_registry_secret = 'REGISTRY_PASSWORD' WHERE name = ?",
    )
    .bind(format!("{registry}/shop:{{version}}"))
    .bind(&user)
    .bind(&h.env)
    .execute(engine.pool())
    .await
    .unwrap();
    let system = Actor::system();
    engine
        .set_secret(&system, &h.env, "REGISTRY_PASSWORD", "not-the-password")
        .await
        .unwrap();
    let err = engine.deploy(&system, &h.env, "v1").await.unwrap_err();
    let why = err.to_string();
    assert!(
        why.contains("neither on this machine nor in its registry"),
        "{why}"
    );
    assert!(!why.contains("not-the-password"), "{why}");

    engine
        .set_secret(&system, &h.env, "REGISTRY_PASSWORD", &password)
        .await
        .unwrap();
    let err = engine.deploy(&system, &h.env, "v9").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("neither on this machine nor in its registry"),
        "{err}"
    );
    assert!(
        h.slot(SlotColor::Blue).await.handle.is_none(),
        "nothing started"
    );

    // The pull's progress is the start step's message while it runs (the
    // dashboard and the deployment page show it): watched from the store.
    let shown = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let watcher = {
        let pool = engine.pool().clone();
        let shown = shown.clone();
        tokio::spawn(async move {
            loop {
                let messages: Vec<Option<String>> = engine::store::query_scalar(
                    "SELECT message FROM deployment_steps WHERE name = 'start' AND status = 'running'",
                )
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
                shown.lock().unwrap().extend(messages.into_iter().flatten());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let t = Instant::now();
    let d = engine.deploy(&system, &h.env, "v1").await.unwrap();
    let took = t.elapsed();
    watcher.abort();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    let shown = shown.lock().unwrap().clone();
    assert!(
        shown
            .iter()
            .any(|m| m.starts_with("pulling ") && m.contains("/shop:v1")),
        "the pull was not shown on the start step: {shown:?}"
    );
    eprintln!(
        "[docker] deploy with a pull from the registry: {} ms",
        took.as_millis()
    );
    docker
        .inspect_image(&image)
        .await
        .expect("the image was pulled");
    let slot = h.slot(SlotColor::Blue).await;
    let c = docker
        .inspect_container(
            slot.handle.as_deref().unwrap(),
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    let env = c.config.and_then(|c| c.env).unwrap_or_default();
    assert!(
        !env.iter()
            .any(|e| e.contains(&password) || e.starts_with("REGISTRY_PASSWORD")),
        "the registry password reached the container: {env:?}"
    );
}

/// The versions a release form offers: the process runtime's release
/// directories (most recently changed first, only those holding the
/// program), Docker's local tags and the registry's (only with the login).
#[tokio::test]
async fn runtimes_list_the_versions_they_could_start() {
    let dir = tempfile::tempdir().unwrap();
    let releases = dir.path().join("releases");
    let now = std::time::SystemTime::now();
    for (i, v) in ["v1", "v2", "v10"].iter().enumerate() {
        let d = releases.join(v);
        std::fs::create_dir_all(d.join("bin")).unwrap();
        std::fs::write(d.join("bin/app"), "").unwrap();
        let when = now - Duration::from_secs(3600 * (3 - i as u64));
        std::fs::File::open(&d).unwrap().set_modified(when).unwrap();
    }
    std::fs::create_dir_all(releases.join("v3-incomplete")).unwrap();
    let process = ProcessRuntime::new(dir.path().join("logs"));
    let template = format!("{}/{{version}}/bin/app --port 8080", releases.display());
    assert_eq!(
        process.versions(&template, None, 10).await.unwrap(),
        ["v10", "v2", "v1"]
    );
    assert_eq!(process.versions(&template, None, 2).await.unwrap().len(), 2);

    let docker = DockerRuntime::connect()
        .await
        .unwrap_or_else(|e| panic!("no Docker Engine ({e}): {DOCKER_HINT}"));
    let local = docker
        .versions("switchyard-demo:{version}", None, 50)
        .await
        .unwrap();
    for v in ["v1", "v2", "v3", "v2-unhealthy"] {
        assert!(local.contains(&v.to_string()), "{v} missing from {local:?}");
    }
    let (registry, user, password) = test_registry();
    let template = format!("{registry}/shop:{{version}}");
    let login = engine::runtime::RegistryLogin {
        username: user,
        password,
    };
    let listed = docker.versions(&template, Some(&login), 50).await.unwrap();
    for v in ["v1", "v2", "v3", "v2-unhealthy"] {
        assert!(
            listed.contains(&v.to_string()),
            "{v} missing from {listed:?}"
        );
    }
    let anonymous = docker.versions(&template, None, 50).await.unwrap();
    assert!(
        !anonymous.contains(&"v2-unhealthy".to_string()),
        "the registry listed its tags without the login: {anonymous:?}"
    );
}
