//! The data plane's listeners: accept, serve each client connection with
//! hyper directly (HTTP/1.1 or HTTP/2, upgrades included), and on stop let
//! every connection finish what it is doing.
//!
//! Each connection task holds one [`ClientConn`]; a request costs an `Arc`
//! clone and the forward itself — no router, no state clone, no extra task.

use crate::forward::{self, ClientConn, Forwarder};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves `listener` until `stopped` says so, then waits for the open
/// connections' requests to finish (the caller bounds the wait).
pub async fn data_plane(
    listener: TcpListener,
    forwarder: Forwarder,
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
