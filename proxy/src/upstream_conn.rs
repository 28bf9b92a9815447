//! A client connection's own connections to the slots.
//!
//! Each client connection keeps the upstream connections its requests
//! opened, idle between requests, and reuses one whose slot address matches
//! the request's: no pool shared across clients (so no lock anyone else
//! waits on), no channel hop to a pool task, no task spawned per request —
//! only one per upstream connection, which drives it. A connection goes back
//! to the idle list only once its response body has been read to the end
//! (see [`Release`]), so a request never waits behind another's long
//! response.
//!
//! Idle connections to several addresses are kept side by side: a client
//! connection whose requests go to several environments (a CDN or load
//! balancer in front pools its connections across host names) reuses one
//! per environment instead of reconnecting at every change of host
//! (`switchyard-bench proxy`, the 10-environment table). After any change
//! of the tables, the idle connections to addresses no table routes to any
//! more (the old slot after a switch) are closed at the client's next
//! request: nothing here decides where requests go, the routing tables do.

use crate::routing::Routing;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;

/// At most this many idle upstream connections per client connection: an
/// HTTP/2 client may have several requests in flight at once, and a client
/// connection may carry requests for many environments. Past it, the one
/// idle longest is closed.
const MAX_IDLE: usize = 16;

/// One client connection's upstream connections.
pub struct UpstreamConns {
    connect_timeout: Duration,
    /// Only this client connection's requests touch it: never contended
    /// across clients.
    idle: Mutex<Idle>,
}

/// The idle connections, longest idle first, and the routing epoch they
/// were last checked against.
#[derive(Default)]
struct Idle {
    epoch: u64,
    senders: Vec<Sender>,
}

/// A ready HTTP/1.1 connection to one slot address.
pub struct Sender {
    address: String,
    inner: http1::SendRequest<Incoming>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid address: {0}")]
    Address(#[from] std::net::AddrParseError),
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("no connection within {0:?}")]
    Timeout(Duration),
    #[error("handshake: {0}")]
    Handshake(#[from] hyper::Error),
}

impl UpstreamConns {
    pub fn new(connect_timeout: Duration) -> Self {
        UpstreamConns {
            connect_timeout,
            idle: Mutex::new(Idle::default()),
        }
    }

    /// A connection to `address` ready for a request: an idle one, or a new
    /// one. When `routing` changed since the last request, idle connections
    /// to addresses it no longer routes to are closed first.
    pub async fn take(&self, address: &str, routing: &Routing) -> Result<Sender, ConnectError> {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let epoch = routing.epoch();
            if idle.epoch != epoch {
                idle.senders.retain(|s| routing.serves(&s.address));
                idle.epoch = epoch;
            }
            idle.senders.retain(|s| !s.inner.is_closed());
            // The most recently used one: the likeliest to be still open.
            idle.senders
                .iter()
                .rposition(|s| s.address == address)
                .map(|i| idle.senders.remove(i))
        };
        if let Some(mut sender) = reused {
            // An idle connection the slot closed meanwhile answers Err here.
            if sender.inner.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        self.connect(address).await
    }

    async fn connect(&self, address: &str) -> Result<Sender, ConnectError> {
        let addr: SocketAddr = address.parse()?;
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout(self.connect_timeout))??;
        stream.set_nodelay(true)?;
        let (inner, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Upgrades: a 101 hands the socket over to the tunnel.
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(%err, "upstream connection ended with an error");
            }
        });
        Ok(Sender {
            address: address.to_string(),
            inner,
        })
    }

    /// Keeps `sender` for this client's next request, if still usable.
    fn put_back(&self, sender: Sender) {
        if sender.inner.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.senders.len() >= MAX_IDLE {
            idle.senders.remove(0);
        }
        idle.senders.push(sender);
    }
}

impl Sender {
    pub async fn send(
        &mut self,
        req: Request<Incoming>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        self.inner.send_request(req).await
    }
}

/// Returns a connection to its client's idle list once the response body
/// riding on it has been read to the end; dropped earlier (client gone), the
/// connection is closed instead, since unread bytes would poison it.
pub struct Release {
    conns: Arc<UpstreamConns>,
    sender: Option<Sender>,
}

impl Release {
    pub fn new(conns: Arc<UpstreamConns>, sender: Sender) -> Self {
        Release {
            conns,
            sender: Some(sender),
        }
    }

    /// The body was read to its end.
    pub fn finished(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.conns.put_back(sender);
        }
    }
}
