//! `GET /api/deployments/{id}/events` against the real console: `switchyard
//! serve` with its switchyard-proxy and the demo service's slots (process
//! runtime), a real deploy of `v2+slow` (3 s before it binds its port, so its
//! health wait is seen running), followed by a viewer over server-sent events.
//!
//! Needs the sibling binaries (`cargo build --workspace --exclude frontend`):
//! the console spawns switchyard-proxy and the demo's slots from `target/debug`.

mod child;

use model::{DeploymentDetail, DeploymentStatus, Role, StepStatus, WatchStatus};
use std::process::Child;
use std::time::{Duration, Instant};

const PASSWORD: &str = "events-test admin password";
const VIEWER_PASSWORD: &str = "events-test viewer password";
const ENV: &str = "production";

struct Site {
    dir: tempfile::TempDir,
    console: String,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // switchyard-proxy and the slots outlive the console by design; each
        // has this directory in its command line.
        let needle = self.dir.path().display().to_string();
        for pid in std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        {
            let mentions = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false);
            if mentions {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

impl Site {
    async fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("site")).unwrap();
        let [console, app, admin] = child::free_ports();
        let console = format!("127.0.0.1:{console}");
        let child = child::serve(
            dir.path(),
            &console,
            &format!("127.0.0.1:{app}"),
            &format!("127.0.0.1:{admin}"),
            PASSWORD,
        )
        .args(["--health-deadline-secs", "20"])
        .env("RUST_LOG", "info")
        .spawn()
        .unwrap();
        let site = Site {
            dir,
            console,
            child: Some(child),
            // No overall timeout: the event stream is read for many seconds.
            http: reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while site.http.get(site.url("/login")).send().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the console did not come up: {}",
                site.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        site
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.console)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    async fn pool(&self) -> engine::store::Pool {
        child::store::pool(self.dir.path()).await
    }

    async fn sign_in(&self, user: &str, password: &str) -> String {
        child::sign_in(&self.http, &self.url(""), user, password).await
    }

    async fn events(&self, id: i64, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .get(self.url(&format!("/api/deployments/{id}/events")))
            .header("accept", "text/event-stream");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }
}

fn rank(s: StepStatus) -> u8 {
    match s {
        StepStatus::Pending => 0,
        StepStatus::Running => 1,
        StepStatus::Succeeded | StepStatus::Failed | StepStatus::Skipped => 2,
    }
}

#[tokio::test]
async fn a_viewer_follows_a_real_deploy_over_server_sent_events() {
    let site = Site::start().await;
    let pool = site.pool().await;
    engine::users::create(&pool, "vera", VIEWER_PASSWORD, Role::Viewer)
        .await
        .unwrap();
    // A short watch window, so the stream's end (after the watch) comes soon.
    let env = engine::environments::find(&pool, ENV).await.unwrap();
    let timings = engine::environments::Timings {
        watch_window: Duration::from_secs(2),
        ..env.timings()
    };
    engine::environments::set_timings(&pool, env.id, timings)
        .await
        .unwrap();
    let admin = site.sign_in("admin", PASSWORD).await;
    let vera = site.sign_in("vera", VIEWER_PASSWORD).await;

    // Refused before any stream starts: no session, a session that is not
    // one, an unknown deployment.
    for cookie in [None, Some("switchyard_session=forged")] {
        let r = site.events(1, cookie).await;
        assert_eq!(r.status().as_u16(), 401, "{cookie:?}");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(!ct.starts_with("text/event-stream"), "{ct}");
        assert_eq!(r.text().await.unwrap(), "please sign in");
    }
    let r = site.events(9999, Some(&vera)).await;
    assert_eq!(r.status().as_u16(), 404);

    // The deploy's answer only comes at its end: don't wait for it.
    let deploy = {
        let req = site
            .http
            .post(site.url("/api/deploy"))
            .header("accept", "application/json")
            .header("origin", site.url(""))
            .header("cookie", &admin)
            .form(&[("environment", ENV), ("version", "v2+slow")]);
        tokio::spawn(async move { req.send().await.map(|r| r.status()) })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let id: i64 = loop {
        let running: Option<i64> =
            engine::store::query_scalar("SELECT id FROM deployments WHERE status = 'running'")
                .fetch_optional(&pool)
                .await
                .unwrap();
        if let Some(id) = running {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no deploy started: {}",
            site.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let subscribed = Instant::now();
    let resp = site.events(id, Some(&vera)).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let (events, _keep_alives) = child::read_stream(resp, Duration::from_secs(90)).await;
    assert_eq!(deploy.await.unwrap().unwrap().as_u16(), 200);

    let names: Vec<&str> = events.iter().map(|(_, e)| e.name.as_str()).collect();
    assert!(events.len() >= 3, "{names:?}");
    // The current state comes at once, not after a first poll.
    assert!(
        events[0].0 - subscribed < Duration::from_millis(1500),
        "first event after {:?}",
        events[0].0 - subscribed
    );
    // `done` exactly once, last: the server ended the stream after it.
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert!(
        names[..names.len() - 1].iter().all(|n| *n == "message"),
        "{names:?}"
    );

    let details: Vec<DeploymentDetail> = events
        .iter()
        .map(|(_, e)| {
            serde_json::from_str(&e.data).unwrap_or_else(|err| panic!("{err}: {}", e.data))
        })
        .collect();
    assert!(details.iter().all(|d| d.deployment.id == id));
    // Only changes are sent.
    for pair in events.windows(2) {
        assert_ne!(pair[0].1.data, pair[1].1.data, "the same detail twice");
    }
    // In order: no step ever goes back (pending → running → finished).
    for pair in details.windows(2) {
        for (a, b) in pair[0].steps.iter().zip(&pair[1].steps) {
            assert_eq!(a.name, b.name);
            assert!(
                rank(a.status) <= rank(b.status),
                "{} went from {} to {}",
                a.name,
                a.status,
                b.status
            );
        }
    }
    let health = |d: &DeploymentDetail| {
        d.steps
            .iter()
            .find(|s| s.name == "health")
            .map(|s| s.status)
            .unwrap()
    };
    let running_at = details
        .iter()
        .position(|d| health(d) == StepStatus::Running)
        .unwrap_or_else(|| panic!("the health wait was never seen running: {details:#?}"));
    let succeeded_at = details
        .iter()
        .position(|d| health(d) == StepStatus::Succeeded)
        .expect("the health wait was seen succeeding");
    assert!(running_at < succeeded_at);
    // The deploy ended before the watch did: events kept coming in between.
    let deploy_done_at = details
        .iter()
        .position(|d| d.deployment.status == DeploymentStatus::Succeeded)
        .unwrap();
    assert!(details[deploy_done_at]
        .watch
        .as_ref()
        .is_some_and(|w| w.status == WatchStatus::Watching));

    let last = details.last().unwrap();
    assert_eq!(last.deployment.status, DeploymentStatus::Succeeded);
    assert!(
        last.steps.iter().all(|s| s.status == StepStatus::Succeeded),
        "{:?}",
        last.steps
    );
    assert_eq!(
        last.watch.as_ref().map(|w| w.status),
        Some(WatchStatus::Passed),
        "{last:#?}"
    );
    // The final state is what the database says.
    let engine_view = engine::Engine::new(
        pool.clone(),
        std::sync::Arc::new(engine::runtime::ProcessRuntime::new(
            site.dir.path().join("logs"),
        )),
    )
    .deployment(&engine::Actor::system(), id)
    .await
    .unwrap();
    assert_eq!(engine_view.steps, last.steps);
    assert_eq!(engine_view.watch, last.watch);

    // A finished deployment: its final state at once, then the end.
    let resp = site.events(id, Some(&vera)).await;
    assert_eq!(resp.status().as_u16(), 200);
    let (again, _) = child::read_stream(resp, Duration::from_secs(5)).await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].1.name, "done");
}
