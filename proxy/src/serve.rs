//! The data plane's listeners: accept, hand each client connection to the
//! data-plane thread with the fewest open ones, serve it there with hyper
//! directly (HTTP/1.1 or HTTP/2, upgrades included), and on stop let every
//! connection finish what it is doing.
//!
//! One task accepts for each listener ([`accept`], on the caller's thread)
//! and each thread serves what it is handed ([`serve`]). When every thread
//! accepted from the one socket itself, the first awake took a whole burst
//! of new connections before the others ran: wrk's 50 connections were seen
//! all on one of two threads, which then did all the work while the other
//! idled. Handing them out by count, as HAProxy does between its threads,
//! keeps the threads even whatever wakes first; the cost is a channel send
//! and the socket's move between reactors, once per connection, not per
//! request.
//!
//! Each connection task holds one [`ClientConn`]; a request costs an `Arc`
//! clone and the forward itself — no router, no state clone, no extra task.

use crate::forward::{self, ClientConn, Forwarder};
use crate::stopping::{Stopping, Ticket};
use crate::tls::HANDSHAKE_TIMEOUT;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

/// How many client connections a data-plane thread has open, over all its
/// listeners: what [`accept`] balances.
#[derive(Clone, Default)]
pub struct ThreadLoad(Arc<AtomicUsize>);

impl ThreadLoad {
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counts one connection open on its thread until dropped (when its task
/// ends, finished or cancelled at shutdown).
struct Open(ThreadLoad);

impl Open {
    fn new(load: &ThreadLoad) -> Self {
        load.0.fetch_add(1, Ordering::Relaxed);
        Open(load.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An accepted connection on its way to the thread that serves it; its
/// count on that thread already taken.
pub struct Handed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    open: Open,
}

/// One thread's way in for one listener.
struct Door {
    to: mpsc::UnboundedSender<Handed>,
    load: ThreadLoad,
}

/// The threads one listener's connections are spread over.
pub struct Spread {
    doors: Vec<Door>,
}

/// What a thread serves one listener's connections from.
pub struct Inbox {
    from: mpsc::UnboundedReceiver<Handed>,
}

impl Spread {
    /// A spread over threads with these loads (the same for every listener,
    /// so a thread's count covers all of them); an [`Inbox`] per thread, in
    /// the same order.
    pub fn over(loads: &[ThreadLoad]) -> (Spread, Vec<Inbox>) {
        let (doors, inboxes) = loads
            .iter()
            .map(|load| {
                let (to, from) = mpsc::unbounded_channel();
                (
                    Door {
                        to,
                        load: load.clone(),
                    },
                    Inbox { from },
                )
            })
            .unzip();
        (Spread { doors }, inboxes)
    }

    /// The door of the thread with the fewest open connections (the first
    /// of them on a tie).
    fn least_loaded(&self) -> Option<&Door> {
        self.doors.iter().min_by_key(|door| door.load.open())
    }
}

/// Accepts on `listener` until `stopped` says so, handing each connection
/// to the least loaded thread.
pub async fn accept(listener: TcpListener, spread: Spread, stopped: watch::Receiver<bool>) {
    let stop = stop_signal(stopped);
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
        // Off this thread's reactor, onto the serving thread's.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(err) => {
                tracing::debug!(%err, "cannot hand an accepted connection over");
                continue;
            }
        };
        let Some(door) = spread.least_loaded() else {
            break;
        };
        let handed = Handed {
            stream,
            peer,
            open: Open::new(&door.load),
        };
        if door.to.send(handed).is_err() {
            // That thread has stopped serving: so has the proxy.
            break;
        }
    }
}

/// Serves the connections handed to this thread for one listener until
/// `stopped` says so, then waits for their requests to finish (the caller
/// bounds the wait). With an acceptor, each connection shakes hands first
/// ([`crate::tls`]), in its own task so a slow client never holds up the
/// others.
pub async fn serve(
    mut inbox: Inbox,
    forwarder: Forwarder,
    tls: Option<TlsAcceptor>,
    stopped: watch::Receiver<bool>,
) {
    let forwarder = Arc::new(forwarder);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if tls.is_none() {
        // Over plain TCP each HTTP/1 response goes out as one buffer (head
        // and body copied together) rather than a `writev` of both: 5–7 %
        // less CPU per request for small answers in three of four
        // measurements, no worse for 1 MiB ones (docs/ARCHITECTURE.md,
        // section 5). TLS keeps hyper's default: rustls copies into its
        // records anyway, and no run showed a difference there beyond the
        // benchmark's ±5 %.
        builder.http1().writev(false);
    }
    let stopping = Stopping::default();
    let stop = stop_signal(stopped);
    tokio::pin!(stop);
    loop {
        let handed = tokio::select! {
            handed = inbox.from.recv() => match handed {
                Some(handed) => handed,
                // The accepting task has ended: so has the proxy.
                None => break,
            },
            () = &mut stop => break,
        };
        let Handed { stream, peer, open } = handed;
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(err) => {
                tracing::debug!(%err, "cannot serve a handed connection");
                continue;
            }
        };
        let client = Arc::new(ClientConn::new(Arc::clone(&forwarder), peer.ip()));
        if let Some(acceptor) = &tls {
            tokio::spawn(serve_tls(
                acceptor.clone(),
                stream,
                client,
                builder.clone(),
                stopping.ticket(),
                open,
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
        let connection = stopping.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "client connection ended with an error");
            }
            drop(open);
        });
    }
    drop(inbox);
    stopping.stop().await;
}

/// Resolves once `stopped` says stop (or its sender is gone, which also
/// means stop).
async fn stop_signal(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// One TLS client connection: the handshake (bounded), then hyper as on
/// the plain listener. A failed handshake (no certificate for the name, a
/// client that does not trust it, garbage) ends this connection only.
async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    client: Arc<ClientConn>,
    builder: auto::Builder<TokioExecutor>,
    ticket: Ticket,
    _open: Open,
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
    if let Err(err) = ticket.watch(connection).await {
        tracing::debug!(%err, "TLS client connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_thread_with_the_fewest_open() {
        let loads = vec![ThreadLoad::default(), ThreadLoad::default()];
        let (spread, _inboxes) = Spread::over(&loads);
        let mut held = Vec::new();
        for _ in 0..10 {
            let door = spread.least_loaded().unwrap();
            held.push(Open::new(&door.load));
        }
        assert_eq!((loads[0].open(), loads[1].open()), (5, 5));
        // Thread 0's connections close: the next ones go there.
        held.retain(|open| !Arc::ptr_eq(&open.0 .0, &loads[0].0));
        assert_eq!(loads[0].open(), 0);
        for _ in 0..3 {
            let door = spread.least_loaded().unwrap();
            held.push(Open::new(&door.load));
        }
        assert_eq!((loads[0].open(), loads[1].open()), (3, 5));
    }
}
