//! For tests that run `switchyard serve` as a child process: its ports,
//! and cleaning up what it started.
#![allow(dead_code)] // each test file uses its own part of it

use std::path::Path;

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
    let mut c = std::process::Command::new(bin);
    c.arg("--data-dir")
        .arg(dir)
        .args([
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
