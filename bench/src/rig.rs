//! What the benchmark commands share: their own switchyard-proxy and simple
//! latency statistics.

use anyhow::{bail, Context};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "bench-admin-secret";

/// A switchyard-proxy of the benchmark's own, killed when dropped.
pub struct Proxy {
    pub child: Child,
    pub public: String,
    pub admin: String,
    /// Its admin API's unix socket (`--admin-socket`), when it has one.
    pub socket: Option<std::path::PathBuf>,
    /// Its TLS listener, when started with `--tls-listen`.
    pub tls: Option<String>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn_proxy(bin_dir: &Path, dir: &Path) -> anyhow::Result<Proxy> {
    spawn_proxy_bin(&bin_dir.join("switchyard-proxy"), dir, true)
}

/// [`spawn_proxy`] of the binary at `bin` (an earlier build, to compare,
/// which may not know `--admin-socket`: `socket` false leaves it out).
pub fn spawn_proxy_bin(bin: &Path, dir: &Path, socket: bool) -> anyhow::Result<Proxy> {
    spawn_proxy_args(bin, dir, socket, &[])
}

/// [`spawn_proxy_bin`] with more command-line arguments (`--tls-listen`…).
pub fn spawn_proxy_args(
    bin: &Path,
    dir: &Path,
    socket: bool,
    extra: &[&std::ffi::OsStr],
) -> anyhow::Result<Proxy> {
    spawn_proxy_command(
        Command::new(bin),
        dir,
        socket,
        extra,
        Duration::from_secs(10),
    )
}

/// [`spawn_proxy_args`] for a command that runs the proxy (`valgrind …
/// switchyard-proxy`), ready within `ready_within`.
pub fn spawn_proxy_command(
    mut cmd: Command,
    dir: &Path,
    socket: bool,
    extra: &[&std::ffi::OsStr],
    ready_within: Duration,
) -> anyhow::Result<Proxy> {
    let socket = socket.then(|| dir.join("admin.sock"));
    std::fs::write(dir.join("proxy-token"), TOKEN)?;
    let ready = dir.join("proxy-ready.json");
    let program = cmd.get_program().to_string_lossy().into_owned();
    if let Some(path) = &socket {
        cmd.arg("--admin-socket").arg(path);
    }
    let mut child = cmd
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .arg("--state-file")
        .arg(dir.join("routing.json"))
        .arg("--token-file")
        .arg(dir.join("proxy-token"))
        .arg("--ready-file")
        .arg(&ready)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let deadline = Instant::now() + ready_within;
    loop {
        if let Ok(bytes) = std::fs::read(&ready) {
            let v: serde_json::Value = serde_json::from_slice(&bytes)?;
            let field = |k: &str| v[k].as_str().map(str::to_string);
            return match (field("listen"), field("admin")) {
                (Some(public), Some(admin)) => Ok(Proxy {
                    child,
                    public,
                    admin,
                    socket,
                    tls: field("tls"),
                }),
                _ => bail!("unexpected ready file {v}"),
            };
        }
        if let Some(status) = child.try_wait()? {
            bail!("switchyard-proxy exited with {status} before it was ready");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("switchyard-proxy not ready after {ready_within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }
    pub fn quantile(&self, q: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).copied().unwrap_or_default()
    }
    pub fn row(&self, what: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "  {what:<38} median {:>8.1} ms   p90 {:>8.1} ms   min {:>8.1} ms   max {:>8.1} ms   (n={})",
            ms(self.quantile(0.5)),
            ms(self.quantile(0.9)),
            ms(self.quantile(0.0)),
            ms(self.quantile(1.0)),
            self.0.len()
        )
    }
}

/// A process of the benchmark's own, killed when dropped.
pub(crate) struct Owned(pub(crate) Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(crate) fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?)
}

pub(crate) async fn wait_until_answers(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer within 15 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn start_demo(bin_dir: &Path, version: &str) -> anyhow::Result<(Owned, String)> {
    let port = free_port()?;
    let child = Command::new(bin_dir.join("switchyard-demo"))
        .env("PORT", port.to_string())
        .env("APP_VERSION", version)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting switchyard-demo")?;
    let addr = format!("127.0.0.1:{port}");
    wait_until_answers(&http_client()?, &format!("http://{addr}/health")).await?;
    Ok((Owned(child), addr))
}

pub(crate) fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}
