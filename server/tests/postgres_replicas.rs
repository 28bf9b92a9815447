//! Two real consoles on one PostgreSQL database (issue 18's replicas, first
//! part): a person signed in on one is recognised by the other, what one
//! writes the other reads, and the audit log both append to stays one chain
//! that `switchyard audit verify` accepts. PostgreSQL comes from
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
    child: Child,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        child::kill_everything_under(self.dir.path());
    }
}

impl Replica {
    async fn start(database_url: &str, http: &reqwest::Client) -> Replica {
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
        .args(["--no-demo", "--proxy-preview", "off"])
        .env("SWITCHYARD_DATABASE_URL", database_url)
        .spawn()
        .unwrap();
        let replica = Replica {
            dir,
            console,
            child,
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

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    fn origin(&self) -> String {
        format!("http://{}", self.console)
    }

    async fn post(
        &self,
        http: &reqwest::Client,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = http
            .post(format!("{}{path}", self.origin()))
            .header("accept", "application/json")
            .header("origin", self.origin())
            .form(form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
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

#[tokio::test]
async fn two_consoles_on_one_postgres_share_sessions_users_and_one_audit_chain() {
    let Some(url) = engine::store::testing::postgres_url().await else {
        return;
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let a = Replica::start(&url, &http).await;
    let b = Replica::start(&url, &http).await;

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
