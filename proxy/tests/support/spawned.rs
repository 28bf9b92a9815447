//! The real binaries as child processes: `switchyard-proxy`, started the way
//! a supervisor starts it (flags, token file, ready file), and
//! `switchyard-demo` as the app in the slots.

use super::TOKEN;
use proxy::ready_file::ReadyInfo;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROXY_BIN: &str = env!("CARGO_BIN_EXE_switchyard-proxy");

/// Kills the process when dropped, so a failing assertion leaves no orphans.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The proxy binary with both listeners on a free loopback port, its state in
/// `dir/routing.json` and its token read from `token_file`.
pub fn proxy_command(dir: &Path, token_file: &Path) -> Command {
    let mut command = Command::new(PROXY_BIN);
    command
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .arg("--state-file")
        .arg(dir.join("routing.json"))
        .arg("--token-file")
        .arg(token_file);
    command
}

/// A running proxy binary and the ports its ready file named.
pub struct SpawnedProxy {
    pub process: Process,
    pub info: ReadyInfo,
}

impl SpawnedProxy {
    pub fn kill(mut self) {
        // SIGKILL: no chance to flush or clean up, like a power cut.
        self.process.0.kill().expect("SIGKILL proxy");
        self.process.0.wait().expect("reap proxy");
    }
}

/// Spawns the proxy binary on [`proxy_command`] with [`TOKEN`] in
/// `dir/token`, and waits (up to 10 s) for its ready file. Its log goes to
/// `dir/proxy.log`.
pub fn start_proxy(dir: &Path) -> SpawnedProxy {
    start_proxy_with(dir, &[])
}

/// [`start_proxy`] with `extra` flags.
pub fn start_proxy_with(dir: &Path, extra: &[&str]) -> SpawnedProxy {
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let ready = dir.join("ready.json");
    let _ = std::fs::remove_file(&ready);
    let log = std::fs::File::create(dir.join("proxy.log")).unwrap();
    let child = proxy_command(dir, &token_file)
        .arg("--ready-file")
        .arg(&ready)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn switchyard-proxy");
    let mut process = Process(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(bytes) = std::fs::read(&ready) {
            let info: ReadyInfo = serde_json::from_slice(&bytes).expect("ready file is JSON");
            assert_eq!(info.pid, process.0.id());
            return SpawnedProxy { process, info };
        }
        if let Ok(Some(status)) = process.0.try_wait() {
            let log = std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default();
            panic!("proxy exited with {status} before it was ready:\n{log}");
        }
        assert!(Instant::now() < deadline, "proxy not ready after 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `target/debug/deps/switch-…` → `target/debug/switchyard-demo`.
fn demo_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("switchyard-demo"))
        .expect("test executable lives in target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} not found: build it first: cargo build -p demo",
        bin.display()
    );
    bin
}

/// Spawns `switchyard-demo --app-version version` on a free port; the
/// process and the address it listens on.
pub fn start_demo(version: &str) -> (Process, String) {
    let mut child = Command::new(demo_bin())
        .args(["--app-version", version])
        .env("PORT", "0")
        .env_remove("HOST")
        .env_remove("DEMO_ERROR_RATE")
        .env_remove("DEMO_LATENCY_MS")
        .env_remove("DEMO_FAIL_HEALTH")
        .env_remove("DEMO_STARTUP_DELAY_MS")
        .env_remove("DEMO_EXIT_AT_START")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn switchyard-demo");
    let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
    let addr = loop {
        let line = lines.next().expect("demo exited early").expect("stderr");
        if let Some((_, addr)) = line.split_once(" listening on ") {
            break addr.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Process(child), addr)
}
