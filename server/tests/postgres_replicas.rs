//! Two real consoles on one PostgreSQL database (issue 18's replicas): a
//! person signed in on one is recognised by the other, what one writes the
//! other reads, the audit log both append to stays one chain that
//! `switchyard audit verify` accepts, and when the console running a deploy
//! is SIGKILLed the other recovers its lock and goes on deploying through
//! the same switchyard-proxy, users served throughout, while a person
//! following the deploy on the other sees it live to its end. PostgreSQL comes from
//! `scripts/postgres.sh` (`SWITCHYARD_TEST_POSTGRES`, see
//! engine/src/store/testing.rs); without it the test is skipped, except
//! under `CI=true`.

mod child;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const PASSWORD: &str = "replica-test-password-1";
const RITA_PASSWORD: &str = "replica-test-password-2";

/// One console process and its data directory.
struct Replica {
    dir: tempfile::TempDir,
    console: String,
    /// Where its switchyard-proxy serves users.
    app: String,
    child: Option<Child>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill_console();
        child::kill_everything_under(self.dir.path());
    }
}

/// What a replica serves besides its console.
enum Serves<'a> {
    /// Nothing: no environment, no proxy of its own.
    Nothing,
    /// The demo environment, on a switchyard-proxy it starts.
    Demo,
    /// No environment of its own; the proxy of `other` (already running)
    /// is its proxy too.
    ProxyOf(&'a Replica),
}

impl Replica {
    async fn start(database_url: &str, http: &reqwest::Client) -> Replica {
        Replica::start_serving(database_url, http, Serves::Nothing).await
    }

    async fn start_serving(
        database_url: &str,
        http: &reqwest::Client,
        serves: Serves<'_>,
    ) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("site")).unwrap();
        let [console, app, admin] = child::free_ports();
        let console = format!("127.0.0.1:{console}");
        let (mut app, mut admin) = (format!("127.0.0.1:{app}"), format!("127.0.0.1:{admin}"));
        let mut args = vec!["--proxy-preview", "off", "--health-deadline-secs", "20"];
        match &serves {
            Serves::Nothing => args.push("--no-demo"),
            Serves::Demo => {}
            Serves::ProxyOf(other) => {
                // The proxy checks its admin callers' token: the replicas
                // share it (scripts/ha.sh gives them one file).
                std::fs::copy(
                    other.dir.path().join("proxy.token"),
                    dir.path().join("proxy.token"),
                )
                .unwrap();
                app = other.app.clone();
                admin = other.admin_of_proxy();
                args.extend(["--no-demo", "--no-spawn-proxy"]);
            }
        }
        let child = child::serve(dir.path(), &console, &app, &admin, PASSWORD)
            .args(&args)
            .env("SWITCHYARD_DATABASE_URL", database_url)
            .spawn()
            .unwrap();
        let replica = Replica {
            dir,
            console,
            app,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http
            .get(format!("http://{}/login", replica.console))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the console did not come up: {}",
                replica.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        replica
    }

    /// The admin address of the proxy this replica started (as `serve`
    /// records it).
    fn admin_of_proxy(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy-admin.addr"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// SIGKILLs the console alone: its proxy and slots run on, as after a
    /// crash of its machine's console process.
    fn kill_console(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    fn origin(&self) -> String {
        format!("http://{}", self.console)
    }

    /// A POST as the console's forms send it (JSON answer, same origin).
    fn request(
        &self,
        http: &reqwest::Client,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let req = http
            .post(format!("{}{path}", self.origin()))
            .header("accept", "application/json")
            .header("origin", self.origin())
            .form(form);
        match cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        }
    }

    async fn post(
        &self,
        http: &reqwest::Client,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.request(http, path, cookie, form).send().await.unwrap()
    }

    async fn sign_in(&self, http: &reqwest::Client, user: &str, password: &str) -> String {
        child::sign_in(http, &self.origin(), user, password).await
    }

    /// Who the console says is signed in with `cookie`, if anyone.
    async fn signed_in_as(&self, http: &reqwest::Client, cookie: &str) -> Option<String> {
        let r = self
            .post(http, "/api/load_overview", Some(cookie), &[])
            .await;
        if !r.status().is_success() {
            return None;
        }
        let v: serde_json::Value = r.json().await.unwrap();
        v["user"]["username"].as_str().map(str::to_string)
    }
}

fn switchyard(dir: &Path, database_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("SWITCHYARD_DATABASE_URL", database_url)
        .env("SWITCHYARD_PASSWORD", RITA_PASSWORD)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// A fresh PostgreSQL database for the consoles of one test, and the HTTP
/// client that talks to them; `None` where no PostgreSQL server is given
/// (outside CI: see `engine::store::testing`).
async fn cluster() -> Option<(String, reqwest::Client)> {
    let url = engine::store::testing::postgres_url().await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Some((url, http))
}

#[tokio::test]
async fn two_consoles_on_one_postgres_share_sessions_users_and_one_audit_chain() {
    let Some((url, http)) = cluster().await else {
        return;
    };
    let a = Replica::start(&url, &http).await;
    let b = Replica::start(&url, &http).await;

    // Both tell a load balancer they can serve.
    for r in [&a, &b] {
        let health = http
            .get(format!("{}/api/health", r.origin()))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(health.text().await.unwrap(), "ok\n");
    }

    // Signed in on A, recognised on B; a wrong cookie on neither.
    let cookie = a.sign_in(&http, "admin", PASSWORD).await;
    assert_eq!(
        a.signed_in_as(&http, &cookie).await.as_deref(),
        Some("admin")
    );
    assert_eq!(
        b.signed_in_as(&http, &cookie).await.as_deref(),
        Some("admin"),
        "B did not recognise A's session: {}",
        b.log()
    );
    assert_eq!(
        b.signed_in_as(&http, "switchyard_session=forged").await,
        None
    );

    // A user made on B (by its command line, on the shared database) signs
    // in on A.
    let made = switchyard(
        b.dir.path(),
        &url,
        &["user", "add", "rita", "--role", "viewer"],
    );
    assert!(
        made.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let rita = a.sign_in(&http, "rita", RITA_PASSWORD).await;
    assert_eq!(b.signed_in_as(&http, &rita).await.as_deref(), Some("rita"));

    // Both consoles appended (start-up checkpoints, sign-ins, the new
    // user): one chain, intact.
    let verified = switchyard(a.dir.path(), &url, &["audit", "verify"]);
    let said = String::from_utf8_lossy(&verified.stdout).to_string();
    assert!(
        verified.status.success(),
        "audit verify: {said} {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(said.contains("intact"), "{said}");
}

/// What users get from `app`, if they get an answer.
async fn users_get(http: &reqwest::Client, app: &str) -> Option<String> {
    let r = http.get(format!("http://{app}/")).send().await.ok()?;
    r.status().is_success().then_some(())?;
    r.text().await.ok()
}

/// Polls `check` every 100 ms until it gives `Some`, for at most `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The running deployment's id once it is in step `step`.
async fn running_in_step(pool: &engine::store::Pool, step: &str) -> Option<i64> {
    engine::store::query_scalar(
        "SELECT d.id FROM deployments d JOIN deployment_steps s ON s.deployment_id = d.id \
         WHERE d.status = 'running' AND s.name = ? AND s.status = 'running'",
    )
    .bind(step)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_replica_killed_mid_deploy_is_recovered_by_the_other_with_users_served() {
    let Some((url, http)) = cluster().await else {
        return;
    };
    // A serves the demo (v1 live) through its proxy; B shares database and
    // proxy.
    let mut a = Replica::start_serving(&url, &http, Serves::Demo).await;
    let app = a.app.clone();
    eventually(Duration::from_secs(30), "users reach v1", || {
        let (http, app) = (http.clone(), app.clone());
        async move {
            users_get(&http, &app)
                .await
                .filter(|body| body == "switchyard-demo v1\n")
        }
    })
    .await;
    let b = Replica::start_serving(&url, &http, Serves::ProxyOf(&a)).await;
    let pool = engine::store::open(&url).await.unwrap();
    let users = child::Users::asking(&http, &format!("http://{app}/"), 3);

    // A deploy on A, killed with A while it waits for v2+slow (3 s to bind
    // its port) to be healthy.
    let cookie = a.sign_in(&http, "admin", PASSWORD).await;
    let deploy = a.request(
        &http,
        "/api/deploy",
        Some(&cookie),
        &[("environment", "production"), ("version", "v2+slow")],
    );
    // Never answered: the console dies first.
    let _answer = tokio::spawn(deploy.send());
    let dep = eventually(
        Duration::from_secs(30),
        "the deploy reaches its health wait",
        || {
            let pool = pool.clone();
            async move { running_in_step(&pool, "health").await }
        },
    )
    .await;
    // Someone follows that deploy live on B, which does not run it.
    let stream = http
        .get(format!("{}/api/deployments/{dep}/events", b.origin()))
        .header("accept", "text/event-stream")
        .header("cookie", &cookie)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert!(
        stream.status().is_success(),
        "events on B: {}",
        stream.status()
    );
    let followed = tokio::spawn(child::read_stream(stream, Duration::from_secs(90)));
    let env = engine::environments::find(&pool, "production")
        .await
        .unwrap();
    let green = engine::environments::slot(&pool, env.id, model::SlotColor::Green)
        .await
        .unwrap();
    a.kill_console();

    // B's monitor round takes the lease of the dead console at once and
    // recovers its lock: the deploy fails where it was, the slot it
    // started is stopped, users stay on v1.
    eventually(Duration::from_secs(45), "B recovers A's lock", || {
        let pool = pool.clone();
        async move {
            let running: i64 = engine::store::query_scalar(
                "SELECT COUNT(*) FROM deployments WHERE status = 'running'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (running == 0).then_some(())
        }
    })
    .await;
    let d = engine::deployments::get(&pool, dep).await.unwrap();
    assert_eq!(d.status, model::DeploymentStatus::Failed, "{d:?}");
    let steps = engine::steps::list(&pool, dep).await.unwrap();
    let health = steps.iter().find(|s| s.name == "health").unwrap();
    assert_eq!(health.status, model::StepStatus::Failed, "{steps:?}");
    assert_eq!(health.message.as_deref(), Some(engine::steps::INTERRUPTED));
    let leases =
        engine::store::query_scalar::<String>("SELECT holder FROM leases WHERE name = 'monitor'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        leases
            .split('/')
            .nth(1)
            .and_then(|pid| pid.parse::<u32>().ok()),
        b.child.as_ref().map(Child::id),
        "B runs the monitor round now"
    );
    assert_eq!(
        users_get(&http, &app).await.as_deref(),
        Some("switchyard-demo v1\n")
    );
    if let Some(pid) = green.handle.and_then(|h| h.parse::<i32>().ok()) {
        eventually(
            Duration::from_secs(15),
            "the dead deploy's slot stops",
            || async move { (!child::pid_alive(pid)).then_some(()) },
        )
        .await;
    }

    // The follower on B saw the deploy running on A, then its end as B's
    // recovery wrote it.
    let (events, _) = followed.await.unwrap();
    let details: Vec<(String, model::DeploymentDetail)> = events
        .into_iter()
        .map(|(_, e)| (e.name, serde_json::from_str(&e.data).unwrap()))
        .collect();
    let (first, last) = (&details[0].1, &details[details.len() - 1]);
    assert_eq!(first.deployment.status, model::DeploymentStatus::Running);
    assert_eq!(last.0, "done");
    assert_eq!(last.1.deployment.status, model::DeploymentStatus::Failed);
    assert!(
        last.1
            .steps
            .iter()
            .any(|s| s.name == "health" && s.message.as_deref() == Some(engine::steps::INTERRUPTED)),
        "{:?}",
        last.1.steps
    );

    // B goes on deploying through the same proxy: the session A issued
    // works on B, and users reach v2.
    // The answer comes once the deploy has switched users.
    let r = b
        .request(
            &http,
            "/api/deploy",
            Some(&cookie),
            &[("environment", "production"), ("version", "v2")],
        )
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "deploy on B: {} {}",
        r.status(),
        b.log()
    );
    assert_eq!(
        users_get(&http, &app).await.as_deref(),
        Some("switchyard-demo v2\n")
    );
    let (answered, failed) = users.finish().await;
    assert!(answered > 0);
    assert!(
        failed.is_empty(),
        "{} of {} user requests failed across the replica's death: {failed:?}",
        failed.len(),
        answered + failed.len()
    );
}

#[tokio::test]
async fn a_console_whose_database_is_gone_tells_its_load_balancer() {
    let Some((url, http)) = cluster().await else {
        return;
    };
    let a = Replica::start(&url, &http).await;
    let health = || http.get(format!("{}/api/health", a.origin())).send();
    assert_eq!(health().await.unwrap().status(), 200);

    // The database goes away under the console (its connections closed).
    let server = std::env::var(engine::store::testing::POSTGRES_VAR).unwrap();
    engine::store::testing::drop_database(&server, &url)
        .await
        .unwrap();
    let r = health().await.unwrap();
    assert_eq!(r.status(), 503, "{}", a.log());
    assert_eq!(r.text().await.unwrap(), "database unreachable\n");
}
