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
        // Generous: on a loaded 2-core machine the first slot can take long.
        let deadline = Instant::now() + Duration::from_secs(120);
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

    /// The body users get through the proxy with `extra` request header
    /// lines, over a plain blocking socket (for threads without a runtime).
    fn users_get_blocking(&self, extra: &str) -> String {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(&self.app).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            conn,
            "GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n{extra}\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or(answer)
    }

    /// Runs `switchyard` on this console's data directory (local commands).
    fn local(&self, args: &[&str]) -> Output {
        let out = child::store::switchyard(self.dir.path())
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

    // A release asked for, edited and cancelled from a pipeline.
    let json = |out: &str| -> serde_json::Value { serde_json::from_str(out).unwrap() };
    let (code, out, err) = site.remote(
        &deployer,
        &[
            "--output",
            "json",
            "release",
            "create",
            "production",
            "v3",
            "--notes",
            "first",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let id = json(&out)["id"].as_i64().unwrap().to_string();
    let (code, out, err) = site.remote(
        &deployer,
        &[
            "--output", "json", "release", "edit", &id, "--notes", "second",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["notes"], "second");
    assert_eq!(json(&out)["revision"], 2);
    let (code, _, err) = site.remote(&viewer, &["release", "cancel", &id, "--reason", "x"]);
    assert_eq!(code, 3, "{err}");
    let (code, out, err) = site.remote(
        &deployer,
        &[
            "--output",
            "json",
            "release",
            "cancel",
            &id,
            "--reason",
            "not needed",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["status"], "cancelled");

    // The audit log, downloaded by a pipeline and verified offline with
    // only the file and the public key.
    let (code, out, err) = site.remote(
        &viewer,
        &[
            "--output",
            "json",
            "audit",
            "export",
            "-o",
            "audit.jsonl",
            "--environment",
            "production",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(summary["bytes"].as_u64().unwrap() > 0, "{out}");
    let file = site.dir.path().join("ci-home/audit.jsonl");
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(exported.contains("deploy.start"), "{exported}");
    assert!(!exported.contains(&deployer[12..]), "a token is exported");
    let key = String::from_utf8_lossy(&site.local(&["audit", "public-key"]).stdout)
        .trim()
        .to_string();
    let verified = Command::new(bin())
        .args(["audit", "verify-export"])
        .arg(&file)
        .args(["--public-key", &key])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{said}");
    assert!(said.starts_with("export verified"), "{said}");
    // Refused (a forged token): 3, and no file, whole or partial.
    let (code, _, err) = site.remote(&forged, &["audit", "export", "-o", "refused.jsonl"]);
    assert_eq!(code, 3, "{err}");
    let home = site.dir.path().join("ci-home");
    assert!(!home.join("refused.jsonl").exists());
    assert!(!home.join("refused.partial").exists());
    // A format the console has not: a usage error before any request.
    let (code, _, _) = site.remote(&viewer, &["audit", "export", "--format", "xml"]);
    assert_eq!(code, 2);
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

/// The id of the deployment holding production's lock, once `status` says
/// it is held; then a little longer, so `deploy --wait` (polling every
/// 500 ms) sees the hold before anyone decides it.
fn held_deployment(site: &Site, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, out, _) = site.remote(token, &["status", "production", "--output", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let held = v["in_progress"]
            .as_str()
            .is_some_and(|m| m.contains("held at preview"));
        if let (true, Some(id)) = (held, v["lock"]["deployment_id"].as_i64()) {
            std::thread::sleep(Duration::from_millis(1500));
            return id.to_string();
        }
        assert!(Instant::now() < deadline, "no deploy was held: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_deploy_is_promoted_or_aborted_from_the_cli_while_deploy_waits() {
    let site = Site::start().await;
    // The environment file turns the hold on (and the watch off, to be quick).
    site.set_pipeline(&[("hold_at_preview", "true"), ("watch_window_ms", "0")]);
    site.local(&["user", "add", "ci", "--role", "deployer"]);
    let deployer = site.token("pipeline", "ci", "deployer");

    std::thread::scope(|s| {
        let waiting = s.spawn(|| site.remote(&deployer, &["deploy", "production", "v2", "--wait"]));
        let id = held_deployment(&site, &deployer);
        let (code, out, err) =
            site.remote(&deployer, &["hold", "promote", &id, "--output", "json"]);
        assert_eq!(code, 0, "{out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["decision"], "promote", "{out}");
        let (code, out, err) = waiting.join().unwrap();
        assert_eq!(code, 0, "{out}{err}");
        assert!(err.contains("held at preview"), "{err}");
        assert!(
            err.contains("✓ hold") && err.contains("promoted by ci"),
            "{err}"
        );
        // Decided once: a second decision is refused with its code.
        let (code, out, _) = site.remote(
            &deployer,
            &["hold", "abort", &id, "--reason", "late", "--output", "json"],
        );
        assert_eq!(code, 3, "{out}");
        assert!(out.contains("\"not_held\""), "{out}");
    });
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v2\n")
    );

    std::thread::scope(|s| {
        let waiting = s.spawn(|| site.remote(&deployer, &["deploy", "production", "v3", "--wait"]));
        let id = held_deployment(&site, &deployer);
        // Testers first, by header; everyone else stays on v2.
        let (code, out, err) = site.remote(
            &deployer,
            &[
                "hold",
                "canary",
                &id,
                "--percent",
                "0",
                "--header",
                "X-Tester: me",
            ],
        );
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("0 % of new users") && out.contains("header X-Tester: me"),
            "{out}"
        );
        assert_eq!(
            site.users_get_blocking("x-tester: me\r\n"),
            "switchyard-demo v3\n"
        );
        assert_eq!(site.users_get_blocking(""), "switchyard-demo v2\n");
        // Bad input: refused naming the field, exit 3, nothing changes.
        let (code, out, _) = site.remote(
            &deployer,
            &[
                "hold",
                "canary",
                &id,
                "--percent",
                "5",
                "--cookie",
                "t=a;b",
                "--output",
                "json",
            ],
        );
        assert_eq!(code, 3, "{out}");
        assert!(out.contains("\"tester_cookie\""), "{out}");
        let (code, _, err) = site.remote(&deployer, &["hold", "canary", &id, "--percent", "101"]);
        assert_ne!(code, 0, "{err}");
        assert_eq!(
            site.users_get_blocking("x-tester: me\r\n"),
            "switchyard-demo v3\n"
        );
        let (code, out, err) =
            site.remote(&deployer, &["hold", "abort", &id, "--reason", "not today"]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = waiting.join().unwrap();
        assert_eq!(code, 1, "an aborted hold exits 1: {out}{err}");
        assert!(out.contains("aborted at its hold"), "{out}");
        // The abort ended the testers' rule with the hold.
        assert_eq!(
            site.users_get_blocking("x-tester: me\r\n"),
            "switchyard-demo v2\n"
        );
    });
    assert_eq!(
        site.users_get().await.as_deref(),
        Some("switchyard-demo v2\n"),
        "users keep v2"
    );
}
