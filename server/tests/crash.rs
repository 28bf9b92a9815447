//! Crash recovery with the real console: `switchyard serve` is killed with
//! SIGKILL while a deploy is in a given step (or while it watches one), then
//! started again on the same data directory. Users keep asking the app
//! through switchyard-proxy the whole time.
//!
//! Checked each time: not one user request failed; nothing is left running
//! in the database; the interrupted step says why; users are on the version
//! the records say; a slot the dead deploy started is stopped.
//!
//! Needs the sibling binaries (`cargo build --workspace`): the console spawns
//! switchyard-proxy and the demo's slots from `target/debug`.

mod child;

use engine::environments;
use model::StepStatus;
use std::process::Child;
use std::time::{Duration, Instant};

const PASSWORD: &str = "crash-test admin password";
const ENV: &str = "production";

/// One data directory and its four addresses, shared by both lives of the
/// console.
struct Site {
    dir: tempfile::TempDir,
    console: String,
    app: String,
    admin: String,
    preview: String,
    child: Option<Child>,
    http: reqwest::Client,
    /// `SWITCHYARD_FAILPOINTS` for the next console started (see
    /// engine/src/failpoint.rs): pauses inside steps too short to hit.
    failpoints: String,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.kill_console();
        child::kill_everything_under(self.dir.path());
    }
}

impl Site {
    fn new() -> Site {
        let [console, app, admin, preview] = child::free_ports();
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
            console: format!("127.0.0.1:{console}"),
            app: format!("127.0.0.1:{app}"),
            admin: format!("127.0.0.1:{admin}"),
            preview: format!("127.0.0.1:{preview}"),
            child: None,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            failpoints: String::new(),
        };
        std::fs::create_dir_all(site.dir.path().join("site")).unwrap();
        site
    }

    /// Starts the console and waits until it answers and users get an answer.
    async fn start_console(&mut self) {
        let child = child::serve(
            self.dir.path(),
            &self.console,
            &self.app,
            &self.admin,
            PASSWORD,
        )
        .args([
            "--proxy-preview",
            &self.preview,
            "--health-deadline-secs",
            "20",
        ])
        .env("RUST_LOG", "info")
        .env("SWITCHYARD_FAILPOINTS", &self.failpoints)
        .spawn()
        .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = self
                .http
                .get(format!("http://{}/login", self.console))
                .send()
                .await
                .is_ok();
            if up && self.users_get().await.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the console did not come up: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill_console(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL: no shutdown code runs.
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    async fn users_get(&self) -> Option<String> {
        let r = self
            .http
            .get(format!("http://{}/", self.app))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    }

    async fn pool(&self) -> engine::store::Pool {
        child::store::pool(self.dir.path()).await
    }

    async fn sign_in(&self) -> String {
        let origin = format!("http://{}", self.console);
        child::sign_in(&self.http, &origin, "admin", PASSWORD).await
    }

    /// Asks the console to deploy `version`, as the dashboard's form does.
    /// The answer is never awaited: the console dies before it comes.
    fn request_deploy(&self, cookie: &str, version: &str) -> tokio::task::JoinHandle<()> {
        let req = self
            .http
            .post(format!("http://{}/api/deploy", self.console))
            .header("accept", "application/json")
            .header("origin", format!("http://{}", self.console))
            .header("cookie", cookie)
            .form(&[("environment", ENV), ("version", version)]);
        tokio::spawn(async move {
            let _ = req.send().await;
        })
    }
}

/// Users of `site`'s app asking for `path` (`/`, or e.g. `/sleep/3000`: slow
/// answers, requests still in flight when traffic switches).
fn users_of(site: &Site, n: usize, path: &str) -> child::Users {
    child::Users::asking(&site.http, &format!("http://{}{path}", site.app), n)
}

/// Waits until the running deployment of ENV is in step `step`; its id.
async fn wait_for_step(pool: &engine::store::Pool, step: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found: Option<i64> = engine::store::query_scalar(
            "SELECT d.id FROM deployments d JOIN deployment_steps s ON s.deployment_id = d.id \
             WHERE d.status = 'running' AND s.name = ? AND s.status = 'running'",
        )
        .bind(step)
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some(id) = found {
            return id;
        }
        assert!(Instant::now() < deadline, "no deploy reached {step}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How a deploy killed in a step must end after the restart.
#[derive(PartialEq)]
enum Outcome {
    /// Before the switch: failed, users on v1, the new slot stopped.
    UsersStayOnOld,
    /// After the router switched: completed, users on the new version, the
    /// old slot kept warm and a rollback to it works.
    UsersOnNew,
}

/// Kills the console while a deploy of `version` is in `step` (with
/// `failpoints` holding it there when the step is too short to hit), starts
/// it again, and checks what users and the records see.
async fn kill_during(step: &str, version: &str, failpoints: &str, outcome: Outcome) {
    kill_during_with(step, version, failpoints, outcome, false).await
}

/// [`kill_during`], with production holding deploys at preview when `hold`.
async fn kill_during_with(
    step: &str,
    version: &str,
    failpoints: &str,
    outcome: Outcome,
    hold: bool,
) {
    let mut site = Site::new();
    site.failpoints = failpoints.to_string();
    site.start_console().await;
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v1\n")
    );
    let pool = site.pool().await;
    if hold {
        let env = environments::find(&pool, ENV).await.unwrap();
        let mut t = env.timings();
        t.hold_at_preview = true;
        environments::set_timings(&pool, env.id, t).await.unwrap();
    }
    let cookie = site.sign_in().await;
    let users = users_of(&site, 3, "/");
    // Slow requests too, so some are in flight at the switch: the drain
    // waits for them, and they must not fail when the console dies.
    let slow_users = users_of(&site, 2, "/sleep/2500");

    let _answer = site.request_deploy(&cookie, version);
    let dep = wait_for_step(&pool, step).await;
    let env = environments::find(&pool, ENV).await.unwrap();
    let green = environments::slot(&pool, env.id, model::SlotColor::Green)
        .await
        .unwrap();
    let blue = environments::slot(&pool, env.id, model::SlotColor::Blue)
        .await
        .unwrap();
    site.kill_console();
    // With no console at all, users are still served.
    tokio::time::sleep(Duration::from_millis(500)).await;
    site.failpoints.clear();
    site.start_console().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (answered, mut failed) = users.finish().await;
    let (slow_answered, slow_failed) = slow_users.finish().await;
    failed.extend(slow_failed);
    assert!(slow_answered > 0, "no slow request finished");

    assert!(
        failed.is_empty(),
        "{} of {} user requests failed across the crash in {step}: {failed:?}",
        failed.len(),
        answered + failed.len()
    );
    assert!(answered > 0);
    let running: i64 =
        engine::store::query_scalar("SELECT COUNT(*) FROM deployments WHERE status = 'running'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(running, 0, "the lock is free again");
    let steps = engine::steps::list(&pool, dep).await.unwrap();
    let interrupted = steps.iter().find(|s| s.name == step).unwrap();
    assert_eq!(interrupted.status, StepStatus::Failed, "{steps:?}");
    assert_eq!(
        interrupted.message.as_deref(),
        Some(engine::steps::INTERRUPTED)
    );
    assert!(
        steps.iter().all(|s| !s.status.is_open()),
        "every step is closed: {steps:?}"
    );
    let d = engine::deployments::get(&pool, dep).await.unwrap();
    if hold {
        // The hold nobody decided is closed with the deployment: no page
        // offers to promote it.
        let h = engine::holds::get(&pool, dep).await.unwrap().unwrap();
        assert_eq!(h.decision, Some(engine::holds::Decision::Abort), "{h:?}");
        assert!(
            h.reason.as_deref().unwrap_or("").starts_with("interrupted"),
            "{h:?}"
        );
    }
    if outcome == Outcome::UsersOnNew {
        users_on_new_after_the_crash(&site, &pool, &d, &blue, &cookie).await;
        return;
    }
    assert_eq!(d.status, model::DeploymentStatus::Failed, "{d:?}");
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v1\n"),
        "users stay on v1"
    );
    // Whatever step died, the preview address does not point at the slot
    // that was stopped (the gates had published it there).
    let preview = site
        .http
        .get(format!("http://{}/", site.preview))
        .send()
        .await
        .unwrap();
    assert_eq!(
        preview.status().as_u16(),
        503,
        "preview after the crash in {step}"
    );
    let env = environments::find(&pool, ENV).await.unwrap();
    assert_eq!(env.active, Some(model::SlotColor::Blue));
    let after = environments::slot(&pool, env.id, model::SlotColor::Green)
        .await
        .unwrap();
    assert_eq!(
        after.handle, None,
        "the dead deploy's slot is recorded stopped"
    );
    if let Some(pid) = green.handle.and_then(|h| h.parse::<i32>().ok()) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while child::pid_alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!child::pid_alive(pid), "the slot process {pid} was stopped");
    }
}

/// The checks after a crash past the switch: the deployment completed, users
/// are on v2 (green), the records follow the router, and v1 (blue) is still
/// the warm standby a rollback goes back to.
async fn users_on_new_after_the_crash(
    site: &Site,
    pool: &engine::store::Pool,
    d: &model::DeploymentView,
    blue: &environments::Slot,
    cookie: &str,
) {
    assert_eq!(d.status, model::DeploymentStatus::Succeeded, "{d:?}");
    assert!(
        d.message
            .as_deref()
            .unwrap_or("")
            .starts_with("completed: traffic had switched to green"),
        "{d:?}"
    );
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v2\n"),
        "users are on v2"
    );
    let env = environments::find(pool, ENV).await.unwrap();
    assert_eq!(env.active, Some(model::SlotColor::Green));
    let standby = environments::slot(pool, env.id, model::SlotColor::Blue)
        .await
        .unwrap();
    assert_eq!(standby.handle, blue.handle, "v1 still runs in blue");
    assert!(standby.standby_until.is_some(), "{standby:?}");
    let pid: i32 = blue.handle.as_deref().unwrap().parse().unwrap();
    assert!(child::pid_alive(pid));

    let r = site
        .http
        .post(format!("http://{}/api/rollback", site.console))
        .header("accept", "application/json")
        .header("origin", format!("http://{}", site.console))
        .header("cookie", cookie)
        .form(&[("environment", ENV), ("reason", "after the crash")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "rollback: {}", r.status());
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v1\n"),
        "the rollback to the warm standby works"
    );
}

#[tokio::test]
async fn a_console_killed_in_the_preflight_comes_back_with_users_on_the_old_slot() {
    kill_during(
        "preflight",
        "v2",
        "preflight.checked=4000",
        Outcome::UsersStayOnOld,
    )
    .await;
}

#[tokio::test]
async fn a_console_killed_in_the_start_step_comes_back_with_users_on_the_old_slot() {
    // Starting a process takes a millisecond: a failpoint holds the step
    // open after the slot runs and is recorded.
    kill_during("start", "v2", "start.spawned=4000", Outcome::UsersStayOnOld).await;
}

#[tokio::test]
async fn a_console_killed_in_the_health_wait_comes_back_with_users_on_the_old_slot() {
    // v2+slow takes 3 s to bind its port: the deploy sits in its health wait.
    kill_during("health", "v2+slow", "", Outcome::UsersStayOnOld).await;
}

#[tokio::test]
async fn a_console_killed_in_the_gates_comes_back_with_users_on_the_old_slot() {
    // v2+laggy answers in 300 ms: the 50-request sample takes seconds.
    kill_during("gates", "v2+laggy", "", Outcome::UsersStayOnOld).await;
}

#[tokio::test]
async fn a_console_killed_while_a_deploy_is_held_comes_back_with_users_on_the_old_slot() {
    // The hold waits for a person: the console dies while it waits.
    kill_during_with("hold", "v2", "", Outcome::UsersStayOnOld, true).await;
}

#[tokio::test]
async fn a_console_killed_right_after_the_switch_comes_back_with_the_switch_done() {
    // The router already sends users to green; the records do not say so
    // yet when the console dies (a failpoint holds it there).
    kill_during("switch", "v2", "switch.applied=4000", Outcome::UsersOnNew).await;
}

#[tokio::test]
async fn a_console_killed_in_the_drain_comes_back_with_the_switch_done() {
    // The slow users' 2.5 s requests are in flight on blue at the switch:
    // the drain waits for them, and the console dies meanwhile.
    kill_during("drain", "v2", "", Outcome::UsersOnNew).await;
}

#[tokio::test]
async fn a_watch_window_goes_on_after_the_console_is_killed() {
    let mut site = Site::new();
    site.start_console().await;
    let pool = site.pool().await;
    let cookie = site.sign_in().await;
    let users = users_of(&site, 2, "/");
    site.request_deploy(&cookie, "v2").await.unwrap();
    let dep: i64 = engine::store::query_scalar("SELECT MAX(id) FROM deployments")
        .fetch_one(&pool)
        .await
        .unwrap();
    let watch = |pool: engine::store::Pool| async move {
        engine::watch::view(&pool, dep)
            .await
            .unwrap()
            .expect("watched")
    };
    let before = watch(pool.clone()).await;
    assert_eq!(before.status, model::WatchStatus::Watching, "{before:?}");

    site.kill_console();
    site.start_console().await;
    // The resumed watch writes fresh figures within a second or two.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = watch(pool.clone()).await;
        assert_eq!(now.status, model::WatchStatus::Watching, "{now:?}");
        if now.message != before.message
            && now
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("watching: "))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the watch did not resume: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, failed) = users.finish().await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v2\n")
    );
}

#[tokio::test]
async fn a_console_killed_in_the_standby_step_comes_back_with_the_switch_done() {
    kill_during(
        "standby",
        "v2",
        "standby.recording=4000",
        Outcome::UsersOnNew,
    )
    .await;
}
