//! The remote CLI as a pipeline runs it: a real `switchyard` process with
//! `--server` and `SWITCHYARD_TOKEN`, driving a real console (its own
//! switchyard-proxy, demo slots from the process runtime) over the REST API.
//! Each outcome gets its documented exit code, and what users get matches:
//! a deploy that fails leaves them on the old version.

mod child;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "remote-cli admin password";

struct Site {
    dir: tempfile::TempDir,
    console: String,
    app: String,
    child: Option<Child>,
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        child::kill_everything_under(self.dir.path());
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchyard")
}

impl Site {
    async fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("site")).unwrap();
        let [console, app, admin, preview] = child::free_ports();
        let (console, app) = (format!("127.0.0.1:{console}"), format!("127.0.0.1:{app}"));
        let child = child::serve(
            dir.path(),
            &console,
            &app,
            &format!("127.0.0.1:{admin}"),
            PASSWORD,
        )
        .args(["--proxy-preview", &format!("127.0.0.1:{preview}")])
        .args(["--health-deadline-secs", "4"])
        .spawn()
        .unwrap();
        let site = Site {
            dir,
            console,
            app,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while site.users_get().await.is_none() {
            assert!(
                Instant::now() < deadline,
                "the console did not come up: {}",
                site.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        site
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    async fn users_get(&self) -> Option<String> {
        let r = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
            .get(format!("http://{}/", self.app))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    }

    /// Runs `switchyard` on this console's data directory (local commands).
    fn local(&self, args: &[&str]) -> Output {
        let out = Command::new(bin())
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Changes production's pipeline settings the way an admin's file
    /// does: `export`, edit, `apply --yes` (the console reads them at the
    /// next deploy).
    fn set_pipeline(&self, edits: &[(&str, &str)]) {
        let file = self.dir.path().join("environments.toml");
        self.local(&["export", "-o", file.to_str().unwrap()]);
        let mut text = std::fs::read_to_string(&file).unwrap();
        for (from, to) in edits {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{from} = ")))
                .unwrap_or_else(|| panic!("no {from} in {text}"))
                .to_string();
            text = text.replace(&line, &format!("{from} = {to}"));
        }
        std::fs::write(&file, text).unwrap();
        self.local(&["apply", "-f", file.to_str().unwrap(), "--yes"]);
    }

    /// A token made with `switchyard token create`, read from its output.
    fn token(&self, name: &str, owner: &str, role: &str) -> String {
        let out = self.local(&["token", "create", name, "--owner", owner, "--role", role]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find_map(|l| l.split("(shown once; store it as a CI secret): ").nth(1))
            .unwrap_or_else(|| panic!("no token in {text:?}"))
            .trim()
            .to_string()
    }

    /// Runs the remote CLI as a pipeline would: no data directory of its
    /// own, the console's URL and a token from the environment.
    fn remote(&self, token: &str, args: &[&str]) -> (i32, String, String) {
        let home = self.dir.path().join("ci-home");
        std::fs::create_dir_all(&home).unwrap();
        let out = Command::new(bin())
            .current_dir(&home)
            .args(["--server", &format!("http://{}", self.console)])
            .args(args)
            .env("SWITCHYARD_TOKEN", token)
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_deploys_with_the_cli_and_each_outcome_has_its_exit_code() {
    let site = Site::start().await;
    // `--wait` follows the watch window too: a short one keeps this quick.
    site.set_pipeline(&[("watch_window_ms", "1500")]);
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v1\n")
    );
    site.local(&["user", "add", "ci", "--role", "deployer"]);
    site.local(&["user", "add", "watcher", "--role", "viewer"]);
    let deployer = site.token("pipeline", "ci", "deployer");
    let viewer = site.token("dashboards", "watcher", "viewer");

    // Refused: a viewer's token, a forged token, an unknown environment.
    let (code, _, err) = site.remote(&viewer, &["deploy", "production", "v2", "--wait"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("viewer may not deploy"), "{err}");
    let forged = format!("{}{}", &deployer[..12], "0".repeat(64));
    let (code, _, err) = site.remote(&forged, &["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("unknown token"), "{err}");
    let (code, _, _) = site.remote(&deployer, &["deploy", "nowhere", "v2", "--wait"]);
    assert_eq!(code, 3);

    // Succeeded: 0, with the steps shown as they went by.
    let (code, out, err) = site.remote(&deployer, &["deploy", "production", "v2", "--wait"]);
    assert_eq!(code, 0, "{out}{err}");
    for step in ["lock", "health", "gates", "switch", "drain", "standby"] {
        assert!(
            err.contains(&format!("✓ {step}")),
            "{step} not shown: {err}"
        );
    }
    assert!(out.contains("succeeded"), "{out}");
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v2\n")
    );

    // Health never passes: 1, users stay on v2.
    let (code, out, err) = site.remote(
        &deployer,
        &["deploy", "production", "v2+unhealthy", "--wait"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("✗ health"), "{err}");
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v2\n")
    );

    // Too slow for the p95 gate: 4, users stay on v2.
    let (code, out, err) = site.remote(&deployer, &["deploy", "production", "v2+laggy", "--wait"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("✗ gates"), "{err}");
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v2\n")
    );

    // Waiting less than the deploy takes: 6; the deploy goes on, and a
    // second one meanwhile is refused (3) naming who holds the lock.
    let (code, out, err) = site.remote(
        &deployer,
        &[
            "deploy",
            "production",
            "v2+slow",
            "--wait",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(code, 6, "{out}{err}");
    let (code, _, err) = site.remote(&deployer, &["deploy", "production", "v3"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("deploy in progress"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while site.users_get().await.as_deref() != Some("switchyard-demo v2+slow\n") {
        assert!(Instant::now() < deadline, "the slow deploy did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Status and a rollback, as JSON for scripts.
    let (code, out, _) = site.remote(&viewer, &["--output", "json", "status", "production"]);
    assert_eq!(code, 0);
    let env: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(env["name"], "production");
    let (code, out, err) = site.remote(
        &deployer,
        &[
            "--output",
            "json",
            "rollback",
            "production",
            "--reason",
            "slow start",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let rollback: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rollback["to_version"], "v2");
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v2\n")
    );
    // A refusal in JSON is the problem document.
    let (code, out, _) = site.remote(
        &viewer,
        &[
            "--output",
            "json",
            "rollback",
            "production",
            "--reason",
            "x",
        ],
    );
    assert_eq!(code, 3);
    let problem: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(problem["code"], "forbidden");

    // Gates that let a bad build through, and users on it: the watch
    // window rolls back by itself, and the pipeline hears 5.
    site.set_pipeline(&[
        ("smoke_paths", "\"\""),
        ("sample_requests", "0"),
        ("watch_window_ms", "30000"),
    ]);
    let users = {
        let app = site.app.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let _ = http.get(format!("http://{app}/")).send().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let (code, out, err) = site.remote(&deployer, &["deploy", "production", "v2+errors", "--wait"]);
    users.abort();
    assert_eq!(code, 5, "{out}{err}");
    assert!(err.contains("watch      breached"), "{err}");
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v2\n")
    );
}

#[tokio::test]
async fn login_saves_the_token_for_its_owner_only() {
    let site = Site::start().await;
    site.local(&["user", "add", "ci", "--role", "viewer"]);
    let token = site.token("laptop", "ci", "viewer");
    let home = site.dir.path().join("person");
    std::fs::create_dir_all(&home).unwrap();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut c = Command::new(bin())
            .args(["--server", &format!("http://{}", site.console)])
            .args(args)
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("SWITCHYARD_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // A wrong token is not saved.
    let (code, out) = run(&["login"], "sy_abcdefgh_0000\n");
    assert_eq!(code, 3, "{out}");
    let file = home.join(".config/switchyard/credentials");
    assert!(!file.exists());
    let (code, out) = run(&["login"], &format!("{token}\n"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signed in as ci (viewer)"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (code, out) = run(&["status"], "");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("production: users on v1 (blue)"), "{out}");
    // Readable by others: refused until fixed.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out) = run(&["status"], "");
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("readable by other users"), "{out}");
}
