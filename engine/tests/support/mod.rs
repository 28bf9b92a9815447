//! Helpers shared by the engine's integration tests: finding the sibling
//! binaries, starting a real switchyard-proxy, cleaning up Docker containers;
//! and, in [`harness`], the environment the `pipeline_*.rs` tests drive.
// Each test crate uses a different subset of these.
#![allow(dead_code)]

// Not every test binary uses every helper of the pipeline harness.
#[allow(dead_code)]
pub mod harness;

use engine::runtime::docker::LABEL_ENVIRONMENT;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/debug/deps/<test>-…` → `target/debug/<name>`.
pub fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .expect("test executable lives in target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} not found: build it first: cargo build -p demo -p proxy",
        bin.display()
    );
    bin
}

/// SIGKILLs a slot process and its group (the process runtime makes each slot
/// a process group leader).
pub struct ProxyInfo {
    pub public: String,
    pub admin: String,
    /// The preview listener, when started with one.
    pub preview: Option<String>,
}

/// Starts the real switchyard-proxy on ports 0 with its state in `dir` and
/// waits for its ready file.
pub fn spawn_proxy(dir: &Path) -> (Child, ProxyInfo) {
    spawn_proxy_with(dir, false)
}

/// [`spawn_proxy`], with a preview listener (`--preview`, port 0) when
/// `preview` is true.
pub fn spawn_proxy_with(dir: &Path, preview: bool) -> (Child, ProxyInfo) {
    let preview: &[&str] = if preview {
        &["--preview", "127.0.0.1:0"]
    } else {
        &[]
    };
    spawn_proxy_args(dir, preview)
}

/// [`spawn_proxy`] with more flags (`--preview …`, `--admin-socket …`).
pub fn spawn_proxy_args(dir: &Path, extra: &[&str]) -> (Child, ProxyInfo) {
    let ready = dir.join("proxy-ready.json");
    let _ = std::fs::remove_file(&ready);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("proxy.log"))
        .unwrap();
    let mut cmd = Command::new(sibling_bin("switchyard-proxy"));
    cmd.args(extra);
    let mut child = cmd
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .arg("--state-file")
        .arg(dir.join("routing.json"))
        .arg("--token-file")
        .arg(dir.join("proxy-token"))
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn switchyard-proxy");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(bytes) = std::fs::read(&ready) {
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("ready file is JSON");
            assert_eq!(v["pid"].as_u64(), Some(u64::from(child.id())));
            let info = ProxyInfo {
                public: v["listen"].as_str().unwrap().to_string(),
                admin: v["admin"].as_str().unwrap().to_string(),
                preview: v["preview"].as_str().map(str::to_string),
            };
            return (child, info);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default();
            panic!("proxy exited with {status} before it was ready:\n{log}");
        }
        assert!(Instant::now() < deadline, "proxy not ready after 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes every container labelled with `env` (Drop cannot await: the
/// docker CLI does it synchronously).
pub fn remove_containers_of(env: &str) {
    let filter = format!("label={LABEL_ENVIRONMENT}={env}");
    for _ in 0..3 {
        let ids = match Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>(),
            Ok(out) => {
                eprintln!(
                    "cleanup: docker ps failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                continue;
            }
            Err(e) => {
                eprintln!("cleanup: cannot run docker: {e}");
                return;
            }
        };
        if ids.is_empty() {
            return;
        }
        match Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .output()
        {
            Ok(out) if !out.status.success() => eprintln!(
                "cleanup: docker rm -f {ids:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("cleanup: cannot run docker: {e}"),
            Ok(_) => {}
        }
    }
    eprintln!("cleanup: containers of {env} are still there after 3 attempts");
}
