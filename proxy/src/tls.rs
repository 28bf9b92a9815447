//! TLS termination for the `--tls-listen` listener: rustls with the `ring`
//! provider (no C toolchain beyond what `ring` needs), certificates chosen
//! by SNI from a [`CertStore`] that reloads itself, ALPN offering `h2` and
//! `http/1.1`. After the handshake a connection is served exactly like a
//! plain one (same forwarder, same route matching); the forwarder only
//! learns that it is TLS, for `X-Forwarded-Proto: https`.

use crate::certs::{CertError, CertSources, CertStore};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish its handshake before the
/// connection is dropped (a slow or silent client holds only its socket).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS listener's settings (`--tls-listen`, `--tls-cert`, `--tls-dir`,
/// `--tls-default`, `--tls-reload-secs`).
#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    pub certs: CertSources,
    /// How often the certificate files are re-read (SIGHUP also does).
    pub reload_interval: Duration,
}

impl TlsConfig {
    pub fn new(listen: SocketAddr, certs: CertSources) -> Self {
        TlsConfig {
            listen,
            certs,
            reload_interval: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificates loaded and the acceptor every data-plane thread's TLS
/// listener shares.
pub(crate) fn acceptor(certs: CertSources) -> Result<(Arc<CertStore>, TlsAcceptor), TlsError> {
    let provider = Arc::new(provider());
    let store = Arc::new(CertStore::load(certs, Arc::clone(&provider))?);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(store.resolver());
    // hyper's auto builder tells the protocols apart by the connection
    // preface; ALPN is what lets clients pick HTTP/2 in the first place.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((store, TlsAcceptor::from(Arc::new(config))))
}

/// rustls' `ring` provider. rustls 0.23.48 deprecates it for lacking
/// post-quantum key exchange; aws-lc-rs has that but needs cmake and a C
/// build the proxy's build machines avoid. Clients still get X25519, P-256
/// and P-384.
#[allow(deprecated)]
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Re-reads the certificate files every `interval` until stopped. Existing
/// connections keep the certificate they shook hands with; new handshakes
/// get the new one.
pub(crate) async fn reload_every(
    store: Arc<CertStore>,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        // The reload is awaited outside the select: `wait_for`'s future is
        // not `Send` and must not live across another await.
        let stop = tokio::select! {
            _ = ticker.tick() => false,
            _ = stopped.wait_for(|stop| *stop) => true,
        };
        if stop {
            return;
        }
        reload(&store).await;
    }
}

/// One reload off the data plane (file IO blocks).
pub(crate) async fn reload(store: &Arc<CertStore>) -> crate::certs::ReloadReport {
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || store.reload()).await {
        Ok(report) => report,
        Err(err) => {
            tracing::error!(%err, "certificate reload failed");
            crate::certs::ReloadReport::default()
        }
    }
}
