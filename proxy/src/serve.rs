//! The data plane's listeners: accept, serve each client connection with
//! hyper directly (HTTP/1.1 or HTTP/2, upgrades included), and on stop let
//! every connection finish what it is doing.
//!
//! Each connection task holds one [`ClientConn`]; a request costs an `Arc`
//! clone and the forward itself — no router, no state clone, no extra task.

use crate::forward::{self, ClientConn, Forwarder};
use crate::tls::HANDSHAKE_TIMEOUT;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// Serves `listener` until `stopped` says so, then waits for the open
/// connections' requests to finish (the caller bounds the wait). With an
/// acceptor, each connection shakes hands first ([`crate::tls`]), in its own
/// task so a slow client never holds up the accept loop.
pub async fn data_plane(
    listener: TcpListener,
    forwarder: Forwarder,
    tls: Option<TlsAcceptor>,
    stopped: watch::Receiver<bool>,
) {
    let forwarder = Arc::new(forwarder);
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let stop = async move {
        let mut stopped = stopped;
        // An error means the sender is gone, which also means stop.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: pause, do not spin.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
        let client = Arc::new(ClientConn::new(Arc::clone(&forwarder), peer.ip()));
        if let Some(acceptor) = &tls {
            tokio::spawn(serve_tls(
                acceptor.clone(),
                stream,
                client,
                builder.clone(),
                graceful.watcher(),
            ));
            continue;
        }
        let service = service_fn(move |req| {
            let client = Arc::clone(&client);
            async move { Ok::<_, Infallible>(forward::forward(client, req).await) }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One TLS client connection: the handshake (bounded), then hyper as on
/// the plain listener. A failed handshake (no certificate for the name, a
/// client that does not trust it, garbage) ends this connection only.
async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    client: Arc<ClientConn>,
    builder: auto::Builder<TokioExecutor>,
    graceful: Watcher,
) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            tracing::debug!(%err, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out");
            return;
        }
    };
    let service = service_fn(move |req| {
        let client = Arc::clone(&client);
        async move { Ok::<_, Infallible>(forward::forward(client, req).await) }
    });
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .into_owned();
    if let Err(err) = graceful.watch(connection).await {
        tracing::debug!(%err, "TLS client connection ended with an error");
    }
}
