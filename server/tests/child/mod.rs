//! For tests that run `switchyard serve` as a child process: its ports,
//! and cleaning up what it started.
#![allow(dead_code)] // each test file uses its own part of it

// Test files that use both `support` and `child` get it twice: it holds
// no state, so the two copies agree.
#[allow(clippy::duplicate_mod)]
#[path = "../store/mod.rs"]
pub mod store;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `N` distinct free loopback ports. Every listener is held until all are
/// picked: asked one at a time, the kernel may hand the same just-released
/// port out twice, and a console whose preview address is its admin
/// address cannot start its proxy (seen in CI).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// Processes whose command line mentions `dir` (read from /proc).
pub fn pids_mentioning(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

/// SIGKILLs whatever a console left running under `dir`: switchyard-proxy
/// and the slots outlive the console by design, and every one of them has
/// the data directory in its command line.
pub fn kill_everything_under(dir: &Path) {
    for pid in pids_mentioning(dir) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// `switchyard serve` on `dir` as these tests run it: the demo environment
/// without a checklist or staging, the first admin's password given, the
/// sibling binaries (proxy, demo) from this build, its output appended to
/// `dir/console.log`. Callers add their own flags and start it.
pub fn serve(
    dir: &Path,
    console: &str,
    app: &str,
    admin: &str,
    password: &str,
) -> std::process::Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_switchyard"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("console.log"))
        .unwrap();
    let mut c = store::switchyard(dir);
    c.args([
        "serve",
        "--listen",
        console,
        "--app-listen",
        app,
        "--proxy-admin",
        admin,
    ])
    .args(["--demo-checklist", "none", "--demo-staging", "off"])
    .arg("--site-root")
    .arg(dir.join("site"))
    .env("SWITCHYARD_BIN_DIR", bin.parent().unwrap())
    .env("SWITCHYARD_ADMIN_PASSWORD", password)
    .stdin(std::process::Stdio::null())
    .stdout(log.try_clone().unwrap())
    .stderr(log);
    c
}

/// Signs `user` in at the console `origin` (`http://host:port`) as the
/// sign-in form does; the session cookie, ready for a Cookie header.
pub async fn sign_in(http: &reqwest::Client, origin: &str, user: &str, password: &str) -> String {
    let r = http
        .post(format!("{origin}/api/login"))
        .header("accept", "application/json")
        .header("origin", origin)
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "login {user}: {}", r.status());
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("switchyard_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// Whether process `pid` still runs.
pub fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Users asking `url` one request after another until stopped (a few
/// milliseconds apart); every answer that is not a success is kept.
pub struct Users {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(usize, Vec<String>)>>,
}

impl Users {
    pub fn asking(http: &reqwest::Client, url: &str, n: usize) -> Users {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..n)
            .map(|_| {
                let (http, url, stop) = (http.clone(), url.to_string(), stop.clone());
                tokio::spawn(async move {
                    let (mut ok, mut failed) = (0, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        match http.get(&url).send().await {
                            Ok(r) if r.status().is_success() => ok += 1,
                            Ok(r) => failed.push(r.status().to_string()),
                            Err(e) => failed.push(e.to_string()),
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    (ok, failed)
                })
            })
            .collect();
        Users { stop, tasks }
    }

    /// (answered, failures)
    pub async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut ok, mut failed) = (0, Vec::new());
        for t in self.tasks {
            let (o, f) = t.await.unwrap();
            ok += o;
            failed.extend(f);
        }
        (ok, failed)
    }
}

/// One server-sent event: its name (`message` when unnamed) and data.
#[derive(Debug)]
pub struct Sse {
    pub name: String,
    pub data: String,
}

/// Reads the whole stream (until the server ends it) into events; comments
/// (keep-alives) are counted, not kept.
pub async fn read_stream(
    mut resp: reqwest::Response,
    limit: Duration,
) -> (Vec<(Instant, Sse)>, usize) {
    let deadline = Instant::now() + limit;
    let (mut buf, mut events, mut comments) = (String::new(), Vec::new(), 0);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("the stream did not end within {limit:?}: {events:#?}"))
            .unwrap();
        let Some(chunk) = chunk else { break };
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut name, mut data, mut comment) = ("message".to_string(), Vec::new(), false);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim_start().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                } else if line.starts_with(':') {
                    comment = true;
                }
            }
            if data.is_empty() && comment {
                comments += 1;
            } else if !data.is_empty() {
                events.push((
                    Instant::now(),
                    Sse {
                        name,
                        data: data.join("\n"),
                    },
                ));
            }
        }
    }
    assert!(buf.trim().is_empty(), "a partial event at the end: {buf:?}");
    (events, comments)
}
