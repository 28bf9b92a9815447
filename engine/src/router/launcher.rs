//! The switchyard-proxy processes a console runs for its environments.
//!
//! Environments with host names are named routes and may share one proxy
//! (same admin, users' and preview addresses): it is one process, started
//! by whichever of them comes first, with files named after its admin
//! address; a second one finds it answering and takes it as this
//! console's. A port some other program (or another environment's proxy-
//! less use) holds is still refused.
//!
//! An environment on the builtin router whose proxy answers on a loopback
//! admin address with the console's own token, at an app address that is an
//! IP literal, is the console's to run: creating it (page, CLI, applied
//! file) checks that its addresses are free and starts its proxy; every
//! console start starts the ones that are not running. Each proxy is
//! detached into its own process group, so stopping or crashing the console
//! never drops a user request; a later console finds it again through its
//! admin API. Environments whose proxy runs elsewhere (another host, another
//! token) are left to whoever runs it.

use crate::environments::{Environment, NewEnvironment};
use crate::error::{Error, Result};
use model::RouterKind;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Where the console's proxies come from and keep their files.
#[derive(Clone, Debug)]
pub struct ProxyLauncher {
    bin: PathBuf,
    token_file: PathBuf,
    state_dir: PathBuf,
    log_dir: PathBuf,
    /// The console's own proxy (`serve --proxy-admin`), by admin address,
    /// with the files it has always had: an environment on it must find its
    /// routing table there, whoever starts the proxy again.
    main: Option<(SocketAddr, PathBuf, PathBuf)>,
    /// Flags the console's own proxy gets besides its addresses and files:
    /// its TLS listener and certificates (`serve --proxy-tls-*`).
    main_args: Vec<String>,
}

/// One proxy the console runs: its three addresses and its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyProcess {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub preview: Option<SocketAddr>,
    /// Its routing table, kept across restarts (`--state-file`).
    pub state_file: PathBuf,
    pub log_file: PathBuf,
}

impl ProxyLauncher {
    /// `bin`: the switchyard-proxy executable; `token_file`: the admin
    /// secret every proxy of this console shares; state files go to
    /// `state_dir`, output to `log_dir`.
    pub fn new(bin: PathBuf, token_file: PathBuf, state_dir: PathBuf, log_dir: PathBuf) -> Self {
        ProxyLauncher {
            bin,
            token_file,
            state_dir,
            log_dir,
            main: None,
            main_args: Vec::new(),
        }
    }

    /// The proxy at `admin` keeps `state_file` and `log_file` (the console's
    /// own, named before environments had proxies of their own).
    pub fn with_main(mut self, admin: SocketAddr, state_file: PathBuf, log_file: PathBuf) -> Self {
        self.main = Some((admin, state_file, log_file));
        self
    }

    /// Flags for the proxy of [`ProxyLauncher::with_main`] whoever starts it
    /// (the console, the CLI), e.g. `--tls-listen 0.0.0.0:443 --tls-dir
    /// /etc/letsencrypt/live`.
    pub fn with_main_args(mut self, args: Vec<String>) -> Self {
        self.main_args = args;
        self
    }

    /// The proxy this console runs for `env`, or `None` when someone else
    /// runs it (another router, another token, an admin address off this
    /// host, an app address that is a host name).
    pub(crate) fn process_for(&self, env: ProxyOf<'_>) -> Option<ProxyProcess> {
        if env.router != RouterKind::Builtin || Path::new(&env.proxy_token_file) != self.token_file
        {
            return None;
        }
        let admin = socket_of(env.proxy_admin_url).filter(|a| a.ip().is_loopback())?;
        let listen = socket_of(env.app_url)?;
        let preview = match env.preview_listen {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        let (state_file, log_file) = match &self.main {
            Some((main, state, log)) if *main == admin => (state.clone(), log.clone()),
            // Shared by the environments that name hosts on it: its files
            // are the proxy's, whichever of them starts it.
            _ if env.routed => (
                self.state_dir.join(format!(
                    "proxy-{}-{}-routing.json",
                    admin.ip(),
                    admin.port()
                )),
                self.log_dir
                    .join(format!("proxy-{}-{}.log", admin.ip(), admin.port())),
            ),
            _ => (
                self.state_dir
                    .join(format!("proxy-{}-routing.json", env.name)),
                self.log_dir.join(format!("proxy-{}.log", env.name)),
            ),
        };
        Some(ProxyProcess {
            listen,
            admin,
            preview,
            state_file,
            log_file,
        })
    }

    /// Refuses addresses another program holds, naming the field each came
    /// from, and a proxy asked to listen twice on one address. A proxy that
    /// already answers on `p.admin` is taken as this console's (it kept
    /// running while the console was away).
    ///
    /// The probe binds as the proxy will (std and tokio both set
    /// SO_REUSEADDR on Unix): on Linux that never binds over a live
    /// listener, on any of its addresses, and does not refuse a port that
    /// only has connections in TIME_WAIT, which the proxy could take.
    pub(crate) async fn check_free(&self, p: &ProxyProcess) -> Result<()> {
        let fields = [
            ("app_url", "users' address", Some(p.listen)),
            ("admin_url", "switchyard-proxy's admin address", Some(p.admin)),
            ("preview_listen", "preview address", p.preview),
        ];
        for (i, (field, what, addr)) in fields.iter().enumerate() {
            let Some(addr) = addr else { continue };
            if let Some((other, other_what, _)) = fields[..i].iter().find(|f| f.2 == Some(*addr)) {
                return Err(Error::invalid(
                    field,
                    format!("{field}: the {what} {addr} is also the {other_what} ({other}): each needs its own port"),
                ));
            }
        }
        if answers(p.admin).await {
            return Ok(());
        }
        for (field, what, addr) in fields {
            let Some(addr) = addr else { continue };
            // Bound and dropped at once: the proxy binds it moments later.
            if let Err(e) = std::net::TcpListener::bind(addr) {
                let why = match e.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        "is already in use by another program: choose a free port".into()
                    }
                    _ => format!("cannot be listened on here ({e})"),
                };
                return Err(Error::invalid(field, format!("{field}: the {what} {addr} {why}")));
            }
        }
        Ok(())
    }

    /// Whether the proxy at `admin` answers (it runs).
    pub async fn running(&self, p: &ProxyProcess) -> bool {
        answers(p.admin).await
    }

    /// Starts `p` unless it answers already, and waits until it does.
    pub async fn ensure(&self, p: &ProxyProcess) -> std::result::Result<(), String> {
        if answers(p.admin).await {
            return Ok(());
        }
        if !self.bin.exists() {
            return Err(format!(
                "{} not found: build it with `cargo build -p proxy`",
                self.bin.display()
            ));
        }
        let spawn = || -> std::io::Result<std::process::Child> {
            std::fs::create_dir_all(&self.log_dir)?;
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p.log_file)?;
            let mut cmd = std::process::Command::new(&self.bin);
            cmd.arg("--listen")
                .arg(p.listen.to_string())
                .arg("--admin")
                .arg(p.admin.to_string())
                .arg("--state-file")
                .arg(&p.state_file)
                .arg("--token-file")
                .arg(&self.token_file)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log));
            if let Some(preview) = p.preview {
                cmd.arg("--preview").arg(preview.to_string());
            }
            if self.main.as_ref().is_some_and(|(admin, ..)| *admin == p.admin) {
                cmd.args(&self.main_args);
            }
            // Its own process group: a Ctrl-C or kill of the console's group
            // does not reach the proxy users go through.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            cmd.spawn()
        };
        let mut child = spawn().map_err(|e| format!("starting {}: {e}", self.bin.display()))?;
        tracing::info!(pid = child.id(), listen = %p.listen, admin = %p.admin, preview = ?p.preview, "started switchyard-proxy");
        for _ in 0..100 {
            if answers(p.admin).await {
                return Ok(());
            }
            // A proxy that exits at once (a port in use, a certificate it
            // cannot read) says why on its last line.
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "switchyard-proxy exited ({status}): {}",
                    last_line(&p.log_file).unwrap_or_else(|| format!("see {}", p.log_file.display()))
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "switchyard-proxy did not come up at {}; see {}",
            p.admin,
            p.log_file.display()
        ))
    }
}

/// What of an environment (new or stored) says who runs its proxy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProxyOf<'a> {
    pub name: &'a str,
    pub router: RouterKind,
    pub app_url: &'a str,
    pub proxy_admin_url: &'a str,
    pub proxy_token_file: &'a str,
    pub preview_listen: Option<&'a str>,
    /// A named route on it (the environment has host names): the proxy may
    /// be shared, so its files are named after its admin address.
    pub routed: bool,
}

impl<'a> From<&'a NewEnvironment> for ProxyOf<'a> {
    fn from(e: &'a NewEnvironment) -> Self {
        ProxyOf {
            name: &e.name,
            router: e.router,
            app_url: &e.app_url,
            proxy_admin_url: &e.proxy_admin_url,
            proxy_token_file: &e.proxy_token_file,
            preview_listen: e.preview_listen.as_deref(),
            routed: e.route.is_routed(),
        }
    }
}

impl<'a> From<&'a Environment> for ProxyOf<'a> {
    fn from(e: &'a Environment) -> Self {
        ProxyOf {
            name: &e.name,
            router: e.router,
            app_url: &e.app_url,
            proxy_admin_url: &e.proxy_admin_url,
            proxy_token_file: &e.proxy_token_file,
            preview_listen: e.preview_listen.as_deref(),
            routed: e.route.is_routed(),
        }
    }
}

/// `http://127.0.0.1:8080/…` → 127.0.0.1:8080 (`localhost` is 127.0.0.1;
/// host names are not resolved: whoever names one runs the proxy).
fn socket_of(url: &str) -> Option<SocketAddr> {
    let authority = url
        .strip_prefix("http://")?
        .split(['/', '?', '#'])
        .next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = match host {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        other => other.parse().ok()?,
    };
    Some(SocketAddr::new(ip, port))
}

/// The last non-empty line of a proxy's log, for an error message.
fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.trim().to_string())
}

/// Whether a switchyard-proxy answers its unauthenticated health route at `admin`.
pub async fn answers(admin: SocketAddr) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .expect("static reqwest configuration");
    matches!(
        client.get(format!("http://{admin}/admin/health")).send().await,
        Ok(r) if r.status().is_success()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launcher() -> ProxyLauncher {
        ProxyLauncher::new(
            "/bin/switchyard-proxy".into(),
            "/data/proxy.token".into(),
            "/data".into(),
            "/data/logs".into(),
        )
    }

    fn env(app: &str, admin: &str, token: &str) -> NewEnvironment {
        NewEnvironment::new("shop", app, "img:{version}", admin, token)
    }

    #[test]
    fn runs_the_proxies_it_holds_the_token_of_on_loopback() {
        let l = launcher();
        let mut e = env(
            "http://127.0.0.1:3190/",
            "http://127.0.0.1:3191",
            "/data/proxy.token",
        );
        e.preview_listen = Some("127.0.0.1:3192".into());
        let p = l.process_for((&e).into()).expect("the console's own proxy");
        assert_eq!(p.listen, "127.0.0.1:3190".parse().unwrap());
        assert_eq!(p.admin, "127.0.0.1:3191".parse().unwrap());
        assert_eq!(p.preview, Some("127.0.0.1:3192".parse().unwrap()));
        assert_eq!(p.state_file, Path::new("/data/proxy-shop-routing.json"));
        assert_eq!(
            l.process_for(
                (&env(
                    "http://localhost:3190",
                    "http://localhost:3191",
                    "/data/proxy.token"
                ))
                    .into()
            )
            .map(|p| p.listen),
            Some("127.0.0.1:3190".parse().unwrap())
        );
    }

    #[test]
    fn the_consoles_own_proxy_keeps_its_files() {
        let l = launcher().with_main(
            "127.0.0.1:8081".parse().unwrap(),
            "/data/proxy-routing.json".into(),
            "/data/logs/proxy.log".into(),
        );
        let production = NewEnvironment::new(
            "production",
            "http://127.0.0.1:8080/",
            "img:{version}",
            "http://127.0.0.1:8081",
            "/data/proxy.token",
        );
        let p = l.process_for((&production).into()).unwrap();
        assert_eq!(p.state_file, Path::new("/data/proxy-routing.json"));
        assert_eq!(p.log_file, Path::new("/data/logs/proxy.log"));
        let staging = env(
            "http://127.0.0.1:8090/",
            "http://127.0.0.1:8091",
            "/data/proxy.token",
        );
        let p = l.process_for((&staging).into()).unwrap();
        assert_eq!(p.state_file, Path::new("/data/proxy-shop-routing.json"));
    }

    /// Environments with host names may share a proxy: whichever of them
    /// names it, its files are the same, named after its admin address.
    #[test]
    fn a_shared_proxy_has_one_set_of_files() {
        let l = launcher();
        let routed = |name: &str, host: &str| {
            let mut e = NewEnvironment::new(
                name,
                "http://127.0.0.1:3190/",
                "img:{version}",
                "http://127.0.0.1:3191",
                "/data/proxy.token",
            );
            e.route.hosts = vec![host.into()];
            e
        };
        let (shop, blog) = (routed("shop", "shop.example.com"), routed("blog", "blog.example.com"));
        let (a, b) = (
            l.process_for((&shop).into()).unwrap(),
            l.process_for((&blog).into()).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(a.state_file, Path::new("/data/proxy-127.0.0.1-3191-routing.json"));
        assert_eq!(a.log_file, Path::new("/data/logs/proxy-127.0.0.1-3191.log"));
    }

    #[test]
    fn leaves_other_proxies_to_whoever_runs_them() {
        let l = launcher();
        let other_token = env(
            "http://127.0.0.1:3190/",
            "http://127.0.0.1:3191",
            "/etc/other.token",
        );
        let remote_admin = env(
            "http://127.0.0.1:3190/",
            "http://10.0.0.5:3191",
            "/data/proxy.token",
        );
        let host_name = env(
            "http://shop.example.com/",
            "http://127.0.0.1:3191",
            "/data/proxy.token",
        );
        let mut nginx = env(
            "http://127.0.0.1:3190/",
            "http://127.0.0.1:3191",
            "/data/proxy.token",
        );
        nginx.router = RouterKind::Nginx;
        for e in [other_token, remote_admin, host_name, nginx] {
            assert_eq!(l.process_for((&e).into()), None, "{}: {}", e.app_url, e.proxy_admin_url);
        }
    }

    #[tokio::test]
    async fn refuses_an_address_another_program_holds() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let [free, free_b]: [SocketAddr; 2] = {
            let held: Vec<_> = (0..2)
                .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
                .collect();
            std::array::from_fn(|i| held[i].local_addr().unwrap())
        };
        let p = ProxyProcess {
            listen: free,
            admin: taken.local_addr().unwrap(),
            preview: None,
            state_file: "/nonexistent".into(),
            log_file: "/nonexistent".into(),
        };
        let err = launcher().check_free(&p).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field: "admin_url", message } if message.contains("already in use")),
            "{err:?}"
        );
        // A program on every address holds the port on loopback too.
        let wildcard = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let on_loopback = SocketAddr::from(([127, 0, 0, 1], wildcard.local_addr().unwrap().port()));
        let err = launcher()
            .check_free(&ProxyProcess {
                admin: free_b,
                preview: Some(on_loopback),
                ..p.clone()
            })
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("preview_listen"), "{err:?}");
        // One proxy cannot listen twice on one address.
        let err = launcher()
            .check_free(&ProxyProcess {
                admin: free_b,
                preview: Some(free_b),
                ..p.clone()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field: "preview_listen", message } if message.contains("admin address")),
            "{err:?}"
        );
        // Free addresses pass.
        let ok = ProxyProcess {
            admin: free_b,
            ..p.clone()
        };
        launcher().check_free(&ok).await.unwrap();
    }
}
