//! `switchyard-proxy`: parse flags, read the token, start, serve until
//! SIGTERM/SIGINT. Exit code 1 when it cannot start.

use clap::Parser;
use proxy::certs::{CertPair, CertSources};
use proxy::console_cookies::{self, ConsoleCookies};
use proxy::ready_file::{self, ReadyInfo};
use proxy::tls::TlsConfig;
use proxy::token::AdminToken;
use proxy::upstream_policy::Network;
use proxy::ProxyConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(
    name = "switchyard-proxy",
    about = "Forwards user traffic to the active blue/green slot"
)]
struct Cli {
    /// Public listener for user traffic, e.g. 127.0.0.1:8080 (port 0 picks one).
    #[arg(long)]
    listen: SocketAddr,
    /// Admin API listener, e.g. 127.0.0.1:8081; keep it on loopback.
    #[arg(long)]
    admin: SocketAddr,
    /// The admin API on a unix socket as well, e.g. /run/switchyard/proxy.sock
    /// (created with mode 0600; a stale file of a dead proxy is replaced).
    #[arg(long)]
    admin_socket: Option<PathBuf>,
    /// Optional preview listener, e.g. 127.0.0.1:8082: always serves the idle
    /// (preview) slot the console sets in the routing table; 503 until it does.
    #[arg(long)]
    preview: Option<SocketAddr>,
    /// Where the routing table is persisted and restored from.
    #[arg(long)]
    state_file: PathBuf,
    /// File holding the admin API bearer token (a file, so it never shows in `ps`).
    #[arg(long)]
    token_file: PathBuf,
    /// Once all listeners are bound, write {"listen","admin","preview"?,"pid"} JSON here.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// A network upstreams may be in besides loopback, e.g. 172.17.0.0/16;
    /// repeat for more. Link-local, unspecified, multicast/broadcast
    /// addresses, port 0 and this proxy's own listeners stay refused.
    #[arg(long = "allow-upstream", value_name = "CIDR")]
    allow_upstream: Vec<Network>,
    /// A cookie removed from every forwarded request (the console's session
    /// cookie, by default); repeat for more. Giving any replaces the defaults.
    #[arg(
        long = "strip-cookie",
        value_name = "NAME",
        value_parser = console_cookies::cookie_name,
        default_values = console_cookies::DEFAULT_NAMES
    )]
    strip_cookie: Vec<String>,
    /// Data-plane threads, each with its own single-threaded runtime
    /// (default: one per CPU). The admin API shares the first.
    #[arg(long)]
    threads: Option<usize>,
    /// A TLS listener besides --listen, e.g. 0.0.0.0:443: same routes,
    /// certificates chosen by SNI, HTTP/2 or HTTP/1.1 by ALPN.
    #[arg(long, value_name = "ADDR")]
    tls_listen: Option<SocketAddr>,
    /// A certificate for a host (or `*.example.com`): PEM chain (leaf first)
    /// and PEM key, e.g. shop.example.com=/etc/letsencrypt/live/shop.example.com/fullchain.pem:/etc/letsencrypt/live/shop.example.com/privkey.pem;
    /// repeat for more.
    #[arg(
        long = "tls-cert",
        value_name = "HOST=CERT:KEY",
        requires = "tls_listen"
    )]
    tls_cert: Vec<CertPair>,
    /// A directory of certificates: DIR/<host>.crt + DIR/<host>.key, or
    /// DIR/<host>/fullchain.pem + privkey.pem (certbot's live/ directory);
    /// `_wildcard.example.com` stands for `*.example.com`. Repeatable.
    #[arg(long = "tls-dir", value_name = "DIR", requires = "tls_listen")]
    tls_dir: Vec<PathBuf>,
    /// The host whose certificate clients without SNI (or with a name no
    /// certificate covers) get; without it their handshake fails.
    #[arg(long, value_name = "HOST", requires = "tls_listen")]
    tls_default: Option<String>,
    /// How often the certificate files are re-read, in seconds (SIGHUP
    /// re-reads them at once).
    #[arg(long, value_name = "SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    tls_reload_secs: u64,
}

// The main thread's runtime is one data-plane thread (plus the admin API);
// `--threads` adds the others (see ProxyConfig::extra_workers).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchyard-proxy: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let token = AdminToken::from_file(&cli.token_file)?;
    let mut config = ProxyConfig::new(cli.listen, cli.admin, cli.state_file, token);
    config.preview = cli.preview;
    config.admin_socket = cli.admin_socket;
    config.allow_upstream = cli.allow_upstream;
    config.forward.console_cookies = ConsoleCookies::new(&cli.strip_cookie)?;
    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    config.extra_workers = threads.max(1) - 1;
    if let Some(listen) = cli.tls_listen {
        let certs = CertSources {
            pairs: cli.tls_cert,
            dirs: cli.tls_dir,
            default_host: cli.tls_default.map(|h| h.to_ascii_lowercase()),
        };
        let mut tls = TlsConfig::new(listen, certs);
        tls.reload_interval = Duration::from_secs(cli.tls_reload_secs);
        config.tls = Some(tls);
    }
    let proxy = proxy::start(config).await?;
    // Signal handlers go in before the ready file says the proxy is up:
    // whoever reads it may send SIGTERM at once, and an uninstalled handler
    // would let that kill the proxy without finishing in-flight requests.
    let stop = StopSignals::install();
    // SIGHUP too (certificate reload): its default action ends the process.
    let hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => Some(hangups),
        Err(err) => {
            tracing::warn!(%err, "cannot listen for SIGHUP; certificates reload on the timer only");
            None
        }
    };

    if let Some(path) = &cli.ready_file {
        let info = ReadyInfo {
            listen: proxy.listen_addr,
            admin: proxy.admin_addr,
            preview: proxy.preview_addr,
            tls: proxy.tls_addr,
            pid: std::process::id(),
        };
        if let Err(err) = ready_file::write(path, &info) {
            proxy.shutdown().await;
            anyhow::bail!("cannot write ready file {}: {err}", path.display());
        }
    }

    let reload_on_hangup = async {
        let Some(mut hangups) = hangups else {
            return std::future::pending().await;
        };
        while hangups.recv().await.is_some() {
            let report = proxy.reload_certs().await;
            tracing::info!(loaded = ?report.loaded, refused = ?report.refused, "SIGHUP: certificates re-read");
        }
    };
    tokio::select! {
        () = stop.wait() => {}
        () = reload_on_hangup => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    proxy.shutdown().await;
    Ok(())
}

/// SIGTERM (how the console and runtimes stop processes) and SIGINT.
struct StopSignals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn install() -> Self {
        let install = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(err) => {
                tracing::warn!(%err, "cannot listen for {name}");
                None
            }
        };
        StopSignals {
            term: install(SignalKind::terminate(), "SIGTERM"),
            int: install(SignalKind::interrupt(), "SIGINT"),
        }
    }

    async fn wait(mut self) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => {}
            _ = recv(&mut self.int) => {}
        }
    }
}
