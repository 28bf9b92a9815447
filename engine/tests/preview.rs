//! Gates through the preview address, end to end: a real `switchyard-proxy`
//! started with `--preview`, real `switchyard-demo` slot processes, the
//! engine with the process runtime and a SQLite file (PostgreSQL in the
//! test command's second pass).
//!
//! The proof that gates went through the preview listener is the proxy's own
//! per-slot, per-listener metrics: requests the gates send to the slot's own
//! address never reach the proxy, so the idle slot's preview-listener count
//! can only match the gates' request count if they went through it. While a
//! deploy runs, a watcher reads the metrics and then the routing table, over
//! and over: whenever the table still sends users to the old slot, the new
//! slot's public-listener count must be 0 (users never reached it before the
//! switch).
//!
//! Needs the sibling binaries: `cargo build -p demo -p proxy` first.

use engine::environments::{self, NewEnvironment};
use engine::runtime::ProcessRuntime;
use engine::Actor;
use engine::Engine;
use model::{DeploymentStatus, SlotColor, SlotState, StepStatus};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod support;

use support::harness::slot_pids_in_db;
use support::{sibling_bin, spawn_proxy_with};

const ENV: &str = "production";
const TOKEN: &str = "preview-test-admin-token";
/// What the gates send with the default settings: the check that the
/// preview answers from the idle slot (its health path), smoke `/`, and a
/// sample of 50.
const GATE_REQUESTS: u64 = 1 + 1 + 50;

struct Harness {
    _dir: tempfile::TempDir,
    /// The database (SQLite in the directory, or PostgreSQL: `store_url`).
    url: String,
    engine: Engine,
    proxy: Option<Child>,
    public: String,
    admin: String,
    preview: String,
    http: reqwest::Client,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut p) = self.proxy.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
        // Every slot the engine started is its own process group.
        let pids = slot_pids_in_db(&self.url);
        for pid in pids {
            let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGKILL);
        }
    }
}

impl Harness {
    /// A proxy with a preview listener and an environment that knows it.
    async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let demo = sibling_bin("switchyard-demo");
        for v in ["v1", "v2", "v3", "v2+errors"] {
            let release = dir.path().join("releases").join(v);
            std::fs::create_dir_all(&release).unwrap();
            std::os::unix::fs::symlink(&demo, release.join("switchyard-demo")).unwrap();
        }
        std::fs::write(dir.path().join("proxy-token"), format!("{TOKEN}\n")).unwrap();
        let (child, info) = spawn_proxy_with(dir.path(), true);
        let preview = info.preview.clone().expect("started with --preview");
        let url = engine::store::testing::store_url(dir.path()).await;
        let pool = engine::store::open(&url).await.unwrap();
        let mut new = NewEnvironment::new(
            ENV,
            &format!("http://{}/", info.public),
            &format!(
                "{}/releases/{{version}}/switchyard-demo",
                dir.path().display()
            ),
            &format!("http://{}", info.admin),
            &dir.path().join("proxy-token").display().to_string(),
        );
        new.preview_listen = Some(preview.clone());
        new.health_interval = Duration::from_millis(50);
        new.health_deadline = Duration::from_secs(5);
        new.stop_grace = Duration::from_secs(2);
        new.watch_window = Duration::ZERO;
        environments::create(&pool, &new).await.unwrap();
        let runtime = Arc::new(ProcessRuntime::new(dir.path().join("logs")));
        Harness {
            _dir: dir,
            url,
            engine: Engine::new(pool, runtime),
            proxy: Some(child),
            public: info.public,
            admin: info.admin,
            preview,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    async fn admin_get(&self, path: &str) -> serde_json::Value {
        self.http
            .get(format!("http://{}{path}", self.admin))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Requests the proxy received for `slot` on `listener` since it started.
    async fn requests(&self, slot: SlotColor, listener: &str) -> u64 {
        let m = self.admin_get("/admin/metrics").await;
        m["slots"][slot.as_str()]["listeners"][listener]["requests"]
            .as_u64()
            .unwrap()
    }

    async fn routing(&self) -> serde_json::Value {
        self.admin_get("/admin/routing").await
    }

    async fn get(&self, addr: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn users_see(&self) -> String {
        let (status, body) = self.get(&self.public).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn env(&self) -> environments::Environment {
        environments::find(self.engine.pool(), ENV).await.unwrap()
    }

    /// The engine's recorded generation is the router's: reconcile has
    /// nothing to adopt after preview writes.
    async fn assert_generations_agree(&self, expected: u64) {
        let routed = self.routing().await["generation"].as_u64().unwrap();
        assert_eq!(routed, expected, "router generation");
        assert_eq!(self.env().await.routing_generation, expected, "recorded");
    }

    async fn gates_message(&self, dep_id: i64) -> (StepStatus, String) {
        let d = self
            .engine
            .deployment(&Actor::system(), dep_id)
            .await
            .unwrap();
        let gates = d.steps.iter().find(|s| s.name == "gates").unwrap();
        (gates.status, gates.message.clone().unwrap_or_default())
    }
}

/// Users asking the public listener one request after another until stopped;
/// what they got.
fn user_load(h: &Harness) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Vec<String>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (http, url, flag) = (
        h.http.clone(),
        format!("http://{}/", h.public),
        stop.clone(),
    );
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            match http.get(&url).send().await {
                Ok(r) => seen.push(format!(
                    "{} {}",
                    r.status().as_u16(),
                    r.text().await.unwrap_or_default().trim()
                )),
                Err(e) => seen.push(format!("error {e}")),
            }
        }
        seen
    });
    (stop, task)
}

/// Reads the metrics, then the routing table, until stopped. Whenever the
/// table (read after the metrics) still sends users to `old`, the metrics
/// were taken before the switch: `new`'s public count must be 0. Returns
/// how many such looks saw the gates at work on the preview listener.
fn switch_watcher(
    h: &Harness,
    old: SlotColor,
    new: SlotColor,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (http, admin, flag) = (h.http.clone(), h.admin.clone(), stop.clone());
    let task = tokio::spawn(async move {
        let get = |path: &'static str| {
            let (http, admin) = (http.clone(), admin.clone());
            async move {
                http.get(format!("http://{admin}{path}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        };
        let mut gates_seen = 0;
        loop {
            // One last look after the stop: a deploy that never switched
            // is still "before the switch".
            let last = flag.load(Ordering::Relaxed);
            let m = get("/admin/metrics").await;
            let t = get("/admin/routing").await;
            if t["active"]["slot"] == old.as_str() {
                let listeners = &m["slots"][new.as_str()]["listeners"];
                assert_eq!(
                    listeners["public"]["requests"], 0,
                    "users reached {new} before the switch: {m}"
                );
                if listeners["preview"]["requests"].as_u64().unwrap() > 0 {
                    gates_seen += 1;
                }
            }
            if last {
                return gates_seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_go_through_the_preview_listener_and_users_never_reach_the_idle_slot() {
    let h = Harness::new().await;
    let system = Actor::system();

    // First deploy: blue is the idle slot. Preview write (1), switch (2).
    let d = h.engine.deploy(&system, ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let (status, message) = h.gates_message(d.id).await;
    assert_eq!(status, StepStatus::Succeeded);
    assert!(
        message.starts_with(&format!(
            "through the preview address http://{} (blue): smoke / 200; 50 requests to /",
            h.preview
        )),
        "{message}"
    );
    assert_eq!(h.requests(SlotColor::Blue, "preview").await, GATE_REQUESTS);
    assert_eq!(h.requests(SlotColor::Blue, "public").await, 0);
    h.assert_generations_agree(2).await;
    // The switch ended the preview: no slot is published there any more.
    let table = h.routing().await;
    assert_eq!(table["active"]["slot"], "blue");
    assert!(table.get("preview").is_none(), "{table}");
    let (status, body) = h.get(&h.preview).await;
    assert_eq!(
        (status, body.as_str()),
        (503, "switchyard-proxy: no preview slot\n")
    );
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");

    // Second deploy under user load: green is published on the preview
    // address only; users stay on blue until the switch.
    let (stop_users, users) = user_load(&h);
    let (stop_watch, watcher) = switch_watcher(&h, SlotColor::Blue, SlotColor::Green);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let d = h.engine.deploy(&system, ENV, "v2").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_watch.store(true, Ordering::Relaxed);
    stop_users.store(true, Ordering::Relaxed);
    let gates_seen = watcher.await.unwrap();
    let seen = users.await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert!(
        gates_seen > 0,
        "the watcher never saw the gates' requests on the preview listener before the switch"
    );
    assert_eq!(h.requests(SlotColor::Green, "preview").await, GATE_REQUESTS);
    // Every user answer was a 200 from v1, then v2 — never back, never an error.
    let first_v2 = seen
        .iter()
        .position(|s| s == "200 switchyard-demo v2")
        .expect("users reached v2 after the switch");
    assert!(first_v2 > 0, "no user answer before the switch: {seen:?}");
    assert!(
        seen[..first_v2]
            .iter()
            .all(|s| s == "200 switchyard-demo v1")
            && seen[first_v2..]
                .iter()
                .all(|s| s == "200 switchyard-demo v2"),
        "{seen:?}"
    );
    // What users got from green through the proxy is exactly what they saw
    // as v2 (plus the one request of `users_see` below, not counted yet).
    let v2_answers = (seen.len() - first_v2) as u64;
    assert_eq!(h.requests(SlotColor::Green, "public").await, v2_answers);
    h.assert_generations_agree(4).await;
    let (status, _) = h.get(&h.preview).await;
    assert_eq!(status, 503);

    // Reconcile finds the router and the records in agreement.
    h.engine.reconcile().await.unwrap();
    let env = h.env().await;
    assert_eq!(
        (env.active, env.routing_generation),
        (Some(SlotColor::Green), 4)
    );
    let view = h.engine.environment(&system, ENV).await.unwrap();
    assert_eq!(
        view.preview_url,
        Some(format!("http://{}/", h.preview)),
        "the dashboard shows the preview address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gate_withdraws_the_preview_and_users_stay_on_v1() {
    let h = Harness::new().await;
    let system = Actor::system();
    let d = h.engine.deploy(&system, ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    h.assert_generations_agree(2).await;

    let (stop_users, users) = user_load(&h);
    let (stop_watch, watcher) = switch_watcher(&h, SlotColor::Blue, SlotColor::Green);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let d = h.engine.deploy(&system, ENV, "v2+errors").await.unwrap();
    stop_watch.store(true, Ordering::Relaxed);
    stop_users.store(true, Ordering::Relaxed);
    let gates_seen = watcher.await.unwrap();
    let seen = users.await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    assert!(
        gates_seen > 0,
        "the gates never showed on the preview listener"
    );

    let (status, message) = h.gates_message(d.id).await;
    assert_eq!(status, StepStatus::Failed);
    assert!(
        message.starts_with(&format!(
            "deployment failed: gates: through the preview address http://{}: ",
            h.preview
        )),
        "{message}"
    );
    assert!(
        message.contains("performance: errors 50.0 % = 25/50 (limit < 1.0 %)"),
        "{message}"
    );
    assert!(
        message.ends_with("; the preview was withdrawn"),
        "{message}"
    );

    // Users: every answer was v1, and the proxy never sent them to green.
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|s| s == "200 switchyard-demo v1"),
        "{seen:?}"
    );
    assert_eq!(h.requests(SlotColor::Green, "public").await, 0);
    assert_eq!(h.requests(SlotColor::Green, "preview").await, GATE_REQUESTS);
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");

    // The preview is withdrawn (a write of its own) and green is stopped.
    let table = h.routing().await;
    assert_eq!(table["active"]["slot"], "blue");
    assert!(table.get("preview").is_none(), "{table}");
    let (status, body) = h.get(&h.preview).await;
    assert_eq!(
        (status, body.as_str()),
        (503, "switchyard-proxy: no preview slot\n")
    );
    h.assert_generations_agree(4).await;
    let env = h.env().await;
    assert_eq!(env.active, Some(SlotColor::Blue));
    let green = environments::slot(h.engine.pool(), env.id, SlotColor::Green)
        .await
        .unwrap();
    assert_eq!((green.state, green.handle), (SlotState::Stopped, None));

    // The generations stayed consistent: the next deploy is not refused.
    let d = h.engine.deploy(&system, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(h.users_see().await, "switchyard-demo v2\n");
    h.assert_generations_agree(6).await;
}

#[tokio::test]
async fn without_a_preview_address_gates_go_direct_and_a_dead_one_fails_the_gates() {
    let h = Harness::new().await;
    let system = Actor::system();
    let env = h.env().await;
    environments::set_preview_listen(h.engine.pool(), env.id, None)
        .await
        .unwrap();

    // No preview configured: the gates call blue directly, the proxy sees
    // none of it, and the deploy writes the router once.
    let d = h.engine.deploy(&system, ENV, "v1").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let (_, message) = h.gates_message(d.id).await;
    let blue = environments::slot(h.engine.pool(), env.id, SlotColor::Blue)
        .await
        .unwrap();
    assert!(
        message.starts_with(&format!(
            "directly at {} (no preview address configured): smoke / 200",
            blue.address.unwrap()
        )),
        "{message}"
    );
    assert_eq!(h.requests(SlotColor::Blue, "preview").await, 0);
    assert_eq!(h.requests(SlotColor::Blue, "public").await, 0);
    h.assert_generations_agree(1).await;

    // A preview address nothing listens on: the gates fail saying so; users
    // stay on v1.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    environments::set_preview_listen(h.engine.pool(), env.id, Some(&dead_addr))
        .await
        .unwrap();
    let d = h.engine.deploy(&system, ENV, "v2").await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Failed, "{d:?}");
    let (status, message) = h.gates_message(d.id).await;
    assert_eq!(status, StepStatus::Failed);
    assert!(
        message.contains("the preview address did not answer (connection refused)"),
        "{message}"
    );
    assert!(
        message.ends_with("; the preview was withdrawn"),
        "{message}"
    );
    assert_eq!(h.users_see().await, "switchyard-demo v1\n");
    h.assert_generations_agree(3).await;

    // Bad addresses are refused before they reach a router.
    for bad in ["8082", "127.0.0.1:0", "a b:1", "127.0.0.1:1; }", ":80"] {
        let e = environments::set_preview_listen(h.engine.pool(), env.id, Some(bad))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                engine::Error::InvalidInput {
                    field: "preview_listen",
                    ..
                }
            ),
            "{bad:?}: {e}"
        );
    }
}
