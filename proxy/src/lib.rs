//! switchyard-proxy: the data plane. Users' traffic goes through it to the
//! active slot; the console switches the slot over the admin API ([`admin`]).
//! It is its own process so traffic keeps flowing while the console restarts,
//! and it persists its routing table ([`state_file`]) so it survives its own
//! restarts too.
//!
//! * [`serve`]: the listeners, hyper serving each client connection.
//! * [`forward`]: the public listener (active slot, optional canary split
//!   sticky by cookie) and the optional preview listener (always the idle
//!   slot), WebSocket/upgrade passthrough; each data-plane thread keeps one
//!   pool of idle upstream connections its client connections share
//!   (`upstream_conn`).
//! * [`route_table`]: the table ([`route_table::RouteTable`]: active,
//!   preview, canary) and the rules every table must obey.
//! * [`routes`] and [`host_match`]: named routes, one per environment,
//!   chosen by the request's host (exact before wildcard, longest suffix
//!   first) and path prefix, each with its own fenced table and metrics.
//! * [`routing`]: the default table and the route set in effect, swapped
//!   atomically, fenced by generation and persisted ([`state_file`]) before
//!   a change is answered.
//! * [`metrics`]: per slot and listener: requests, responses by status class,
//!   upstream errors, in flight, latency histogram with p50/p95/p99, windowed
//!   views over the last N seconds, Prometheus text.
//! * [`admin`]: the admin API (routing, status, metrics, drain status).
//! * [`upstream_policy`]: which addresses a routing table may send users to.
//! * [`console_cookies`]: the console's session cookie, never forwarded.
//! * [`tls`] and [`certs`]: the optional TLS listener (`--tls-listen`),
//!   certificates by SNI reloaded from their files; [`redirect`]: a route's
//!   HTTP → HTTPS redirect.

pub mod admin;
pub mod admin_api;
mod admin_routes;
pub mod admin_socket;
pub mod certs;
pub mod console_cookies;
pub mod forward;
pub mod host_match;
pub mod metrics;
pub mod ready_file;
mod redirect;
pub mod route_table;
pub mod routes;
pub mod routing;
pub mod serve;
pub mod state_file;
mod stopping;
pub mod tls;
pub mod token;
mod upstream_conn;
mod upstream_h1;
pub mod upstream_policy;

use crate::admin::AdminState;
use crate::certs::{CertStore, ReloadReport};
use crate::forward::{ForwardConfig, Forwarder};
use crate::metrics::{Listener, SlotMetrics};
use crate::route_table::RouteTable;
use crate::routes::RouteSet;
use crate::routing::Routing;
use crate::serve::{Spread, ThreadLoad};
use crate::state_file::{StateFile, StateFileError};
use crate::tls::{TlsConfig, TlsError};
use crate::token::AdminToken;
use crate::upstream_policy::{Network, UpstreamPolicy};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct ProxyConfig {
    /// Public listener for user traffic.
    pub listen: SocketAddr,
    /// Admin API listener; meant for loopback.
    pub admin: SocketAddr,
    /// Optional second public listener that always serves the preview (idle) slot.
    pub preview: Option<SocketAddr>,
    /// The admin API on a unix socket as well (mode 0600), `--admin-socket`.
    pub admin_socket: Option<PathBuf>,
    pub state_file: PathBuf,
    pub token: AdminToken,
    /// Networks upstreams may be in besides loopback (`--allow-upstream`).
    pub allow_upstream: Vec<Network>,
    pub forward: ForwardConfig,
    /// How long a shutdown waits for in-flight requests before giving up.
    pub drain_timeout: Duration,
    /// Data-plane threads besides the caller's runtime: each runs its own
    /// single-threaded runtime serving the client connections the caller's
    /// thread accepts and hands it (the fewest open first), so a client
    /// connection, its upstream connection and their wake-ups stay on one
    /// thread (`switchyard-proxy --threads`; see docs/ARCHITECTURE.md).
    pub extra_workers: usize,
    /// A TLS listener besides the plain one (`--tls-listen`).
    pub tls: Option<TlsConfig>,
}

impl ProxyConfig {
    pub fn new(
        listen: SocketAddr,
        admin: SocketAddr,
        state_file: PathBuf,
        token: AdminToken,
    ) -> Self {
        ProxyConfig {
            listen,
            admin,
            preview: None,
            admin_socket: None,
            state_file,
            token,
            allow_upstream: Vec::new(),
            forward: ForwardConfig::default(),
            drain_timeout: Duration::from_secs(30),
            extra_workers: 0,
            tls: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    StateFile(#[from] StateFileError),
    #[error("cannot serve the admin API on a unix socket: {0}")]
    AdminSocket(#[from] admin_socket::SocketError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot start data-plane thread: {0}")]
    Worker(std::io::Error),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A started proxy. Dropping it leaves the servers running until the runtime
/// ends; call [`RunningProxy::shutdown`] to stop them gracefully.
pub struct RunningProxy {
    pub listen_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub preview_addr: Option<SocketAddr>,
    /// The TLS listener, when started with one.
    pub tls_addr: Option<SocketAddr>,
    pub routing: Arc<Routing>,
    pub metrics: Arc<SlotMetrics>,
    certs: Option<Arc<CertStore>>,
    stop: watch::Sender<bool>,
    servers: JoinHandle<()>,
    workers: Vec<std::thread::JoinHandle<()>>,
    drain_timeout: Duration,
}

impl RunningProxy {
    /// Re-reads the TLS certificate files now (SIGHUP) rather than at the
    /// next tick of the reload timer. Nothing to do without a TLS listener.
    pub async fn reload_certs(&self) -> ReloadReport {
        match &self.certs {
            Some(store) => tls::reload(store).await,
            None => ReloadReport::default(),
        }
    }

    /// Stops accepting connections, lets in-flight requests finish (up to the
    /// drain timeout) and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let workers = self.workers;
        let all = async move {
            let _ = self.servers.await;
            let _ = tokio::task::spawn_blocking(move || {
                for worker in workers {
                    let _ = worker.join();
                }
            })
            .await;
        };
        match tokio::time::timeout(self.drain_timeout, all).await {
            Ok(_) => tracing::info!("stopped"),
            Err(_) => tracing::warn!(
                timeout = ?self.drain_timeout,
                "in-flight requests still running after the drain timeout; stopping anyway"
            ),
        }
    }
}

/// Binds the listeners, restores routing from the state file and serves.
///
/// Binding comes first because the restored table is checked against the
/// addresses the listeners actually got (port 0 picks one).
pub async fn start(config: ProxyConfig) -> Result<RunningProxy, StartError> {
    let public = bind("public listener", config.listen).await?;
    let admin = bind("admin listener", config.admin).await?;
    let admin_unix = match &config.admin_socket {
        Some(path) => Some(admin_socket::bind(path)?),
        None => None,
    };
    let preview = match config.preview {
        Some(addr) => Some((addr, bind("preview listener", addr).await?)),
        None => None,
    };
    let tls_listener = match &config.tls {
        Some(tls) => Some((tls.listen, bind("TLS listener", tls.listen).await?)),
        None => None,
    };
    let listen_addr = local_addr("public listener", config.listen, &public)?;
    let tls_addr = match &tls_listener {
        Some((addr, listener)) => Some(local_addr("TLS listener", *addr, listener)?),
        None => None,
    };
    let admin_addr = local_addr("admin listener", config.admin, &admin)?;
    let preview_addr = match &preview {
        Some((addr, listener)) => Some(local_addr("preview listener", *addr, listener)?),
        None => None,
    };
    let mut policy = UpstreamPolicy::new(config.allow_upstream)
        .with_own_listener("public", listen_addr)
        .with_own_listener("admin", admin_addr);
    if let Some(addr) = preview_addr {
        policy = policy.with_own_listener("preview", addr);
    }
    if let Some(addr) = tls_addr {
        policy = policy.with_own_listener("tls", addr);
    }
    // Certificates before anything serves: a bad file refuses the start.
    let (certs, acceptor) = match config.tls.clone() {
        Some(tls) => {
            let (store, acceptor) = tls::acceptor(tls.certs)?;
            (Some((store, tls.reload_interval)), Some(acceptor))
        }
        None => (None, None),
    };

    let state_file = StateFile::new(&config.state_file);
    let (initial, routes) = match state_file.load_state(&policy)? {
        Some((table, routes)) => {
            log_restored(None, &table, &config.state_file);
            for route in routes.iter() {
                log_restored(Some(route.name()), route.table(), &config.state_file);
            }
            (table, routes)
        }
        None => {
            tracing::info!(state_file = %config.state_file.display(), "no state file yet: no active slot until the console sets one");
            (RouteTable::default(), RouteSet::default())
        }
    };
    if !policy.allowed().is_empty() {
        let allowed: Vec<String> = policy.allowed().iter().map(|n| n.to_string()).collect();
        tracing::info!(allowed = %allowed.join(", "), "upstreams allowed on loopback and in these networks");
    }

    let routing = Arc::new(Routing::with_routes(initial, routes, state_file, policy));
    let metrics = Arc::new(SlotMetrics::default());

    if !admin_addr.ip().is_loopback() {
        tracing::warn!(%admin_addr, "admin API listens on a non-loopback address; the bearer token is all that protects routing");
    }

    let forwarder = Forwarder::new(Arc::clone(&routing), Arc::clone(&metrics), config.forward)
        .with_https_port(tls_addr.map_or(443, |a| a.port()));
    let loads: Arc<[ThreadLoad]> = (0..=config.extra_workers)
        .map(|_| ThreadLoad::default())
        .collect();
    let admin_app = admin_api::app(AdminState {
        routing: Arc::clone(&routing),
        metrics: Arc::clone(&metrics),
        token: Arc::new(config.token),
        threads: Arc::clone(&loads),
    });

    let (stop, stopped) = watch::channel(false);
    // The caller's thread (index 0) and the extra ones; one task per
    // listener on the caller's thread accepts and hands each connection to
    // the thread with the fewest open (see `serve`).
    let (public_spread, public_inboxes) = Spread::over(&loads);
    let (preview_spread, mut preview_inboxes) = match &preview {
        Some(_) => {
            let (spread, inboxes) = Spread::over(&loads);
            (Some(spread), inboxes.into_iter().map(Some).collect())
        }
        None => (None, loads.iter().map(|_| None).collect::<Vec<_>>()),
    };
    let (tls_spread, mut tls_inboxes) = match &tls_listener {
        Some(_) => {
            let (spread, inboxes) = Spread::over(&loads);
            (Some(spread), inboxes.into_iter().map(Some).collect())
        }
        None => (None, loads.iter().map(|_| None).collect::<Vec<_>>()),
    };
    let mut public_inboxes = public_inboxes.into_iter();
    let own_public = public_inboxes.next().expect("one inbox per thread");
    let own_preview = preview_inboxes.remove(0);
    let own_tls = tls_inboxes.remove(0);
    let mut workers = Vec::with_capacity(config.extra_workers);
    for (i, ((public_inbox, preview_inbox), tls_inbox)) in public_inboxes
        .zip(preview_inboxes)
        .zip(tls_inboxes)
        .enumerate()
    {
        // The thread's listeners share its own pool of idle upstream
        // connections, which only its runtime's tasks touch.
        let thread_forwarder = forwarder.on_another_thread();
        let pool = thread_forwarder.pool();
        let public_forwarder = thread_forwarder.for_listener(Listener::Public);
        let preview_forwarder = thread_forwarder.for_listener(Listener::Preview);
        let tls_forwarder = thread_forwarder.over_tls();
        let acceptor = acceptor.clone();
        let stopped = stopped.clone();
        let worker = std::thread::Builder::new()
            .name(format!("data-plane-{}", i + 1))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        tracing::error!(%err, "data-plane thread cannot start its runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let preview = if_any(preview_inbox.map(|inbox| {
                        serve::serve(inbox, preview_forwarder, None, stopped.clone())
                    }));
                    let public =
                        serve::serve(public_inbox, public_forwarder, None, stopped.clone());
                    let tls = if_any(tls_inbox.zip(acceptor).map(|(inbox, acceptor)| {
                        serve::serve(inbox, tls_forwarder, Some(acceptor), stopped.clone())
                    }));
                    tokio::join!(public, preview, tls, pool.maintain(stopped.clone()));
                });
            })
            .map_err(StartError::Worker)?;
        workers.push(worker);
    }
    // The caller's thread accepts for every listener, and serves its share.
    let accepting = {
        let public = serve::accept(public, public_spread, stopped.clone());
        let preview = preview
            .zip(preview_spread)
            .map(|((_, listener), spread)| serve::accept(listener, spread, stopped.clone()));
        let tls = tls_listener
            .zip(tls_spread)
            .map(|((_, listener), spread)| serve::accept(listener, spread, stopped.clone()));
        async move {
            tokio::join!(public, if_any(preview), if_any(tls));
        }
    };
    let preview_server = own_preview.map(|inbox| {
        serve::serve(
            inbox,
            forwarder.for_listener(Listener::Preview),
            None,
            stopped.clone(),
        )
    });
    let tls_server = match (own_tls, acceptor) {
        (Some(inbox), Some(acceptor)) => Some(serve::serve(
            inbox,
            forwarder.over_tls(),
            Some(acceptor),
            stopped.clone(),
        )),
        _ => None,
    };
    let cert_reloader = certs
        .as_ref()
        .map(|(store, every)| tls::reload_every(Arc::clone(store), *every, stopped.clone()));
    // The caller's runtime is a data-plane thread too, with its own pool.
    let pool = forwarder.pool().maintain(stopped.clone());
    let data_server = serve::serve(own_public, forwarder, None, stopped.clone());
    let admin_unix_server = admin_unix.map(|listener| {
        axum::serve(listener, admin_app.clone())
            .with_graceful_shutdown(wait_for_stop(stopped.clone()))
            .into_future()
    });
    let admin_server = axum::serve(admin, admin_app)
        .with_graceful_shutdown(wait_for_stop(stopped.clone()))
        .into_future();
    let ticker = tick_metrics(Arc::clone(&metrics), Arc::clone(&routing), stopped);
    let servers = tokio::spawn(async move {
        let admin_unix = async move {
            match admin_unix_server {
                Some(server) => server.await,
                None => Ok(()),
            }
        };
        let ((), (), admin, admin_unix, (), (), (), (), ()) = tokio::join!(
            data_server,
            accepting,
            admin_server,
            admin_unix,
            if_any(preview_server),
            if_any(tls_server),
            if_any(cert_reloader),
            ticker,
            pool
        );
        if let Err(err) = admin {
            tracing::error!(%err, "admin listener failed");
        }
        if let Err(err) = admin_unix {
            tracing::error!(%err, "admin socket failed");
        }
    });

    tracing::info!(%listen_addr, %admin_addr, preview_addr = ?preview_addr, tls_addr = ?tls_addr, "switchyard-proxy serving");
    Ok(RunningProxy {
        listen_addr,
        admin_addr,
        preview_addr,
        tls_addr,
        certs: certs.map(|(store, _)| store),
        routing,
        metrics,
        stop,
        servers,
        workers,
        drain_timeout: config.drain_timeout,
    })
}

/// Runs `task` when there is one (a listener or reloader the config may
/// leave out).
async fn if_any(task: Option<impl std::future::Future<Output = ()>>) {
    if let Some(task) = task {
        task.await
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

fn local_addr(
    what: &'static str,
    addr: SocketAddr,
    listener: &TcpListener,
) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|source| StartError::Bind { what, addr, source })
}

/// Snapshots the metrics (the default table's and every route's) once a
/// second for windowed views, until stopped.
async fn tick_metrics(
    metrics: Arc<SlotMetrics>,
    routing: Arc<Routing>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {
                metrics.tick();
                for route in routing.routes().iter() {
                    route.metrics().tick();
                }
            }
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Logs where restored traffic goes and whether that slot answers. It does
/// not mark the slot healthy or unhealthy: routing stays as persisted and the
/// console's reconciliation decides what to do about a dead slot.
fn log_restored(route: Option<&str>, table: &RouteTable, path: &std::path::Path) {
    let route = route.unwrap_or("(default)").to_string();
    let Some(upstream) = table.active.clone() else {
        tracing::info!(%route, generation = table.generation, state_file = %path.display(), "restored routing: no active slot");
        return;
    };
    tracing::info!(
        %route,
        generation = table.generation,
        slot = %upstream.slot,
        address = %upstream.address,
        state_file = %path.display(),
        "restored routing"
    );
    tokio::spawn(async move {
        let connect = tokio::net::TcpStream::connect(upstream.address.as_str());
        match tokio::time::timeout(Duration::from_secs(2), connect).await {
            Ok(Ok(_)) => {
                tracing::info!(%route, slot = %upstream.slot, address = %upstream.address, "restored upstream accepts connections")
            }
            Ok(Err(err)) => {
                tracing::warn!(%route, slot = %upstream.slot, address = %upstream.address, %err, "restored upstream is unreachable; still routing to it until the console decides")
            }
            Err(_) => {
                tracing::warn!(%route, slot = %upstream.slot, address = %upstream.address, "restored upstream did not accept a connection within 2 s; still routing to it until the console decides")
            }
        }
    });
}
