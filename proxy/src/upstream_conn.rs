//! Idle connections to the slots, shared by every client connection of one
//! data-plane thread.
//!
//! Each data-plane thread runs its own single-threaded runtime (see
//! `lib.rs`), and each has one [`UpstreamPool`]: a request takes an idle
//! HTTP/1.1 connection to its slot's address from its thread's pool, or
//! opens one, and gives it back once its response body has been read to
//! the end (see [`SlotBody`]). So the proxy holds about as many upstream
//! connections as it has requests in flight, whatever the number of
//! clients and environments — as nginx's `keepalive` pool and HAProxy's
//! `http-reuse always` do — rather than idle ones per client connection
//! (50 clients × 10 environments were 500 upstream connections, each with
//! hyper's buffers and a task). The pool's lock is only ever taken by its
//! own thread's tasks (the admin API and the other threads never touch it),
//! so nobody waits on it. No task drives a connection: the task serving the
//! client speaks HTTP/1.1 on it itself ([`crate::upstream_h1`]).
//!
//! Per address the most recently used connection is taken first (LIFO), so
//! the fewest connections stay busy and those a burst opened age out. At
//! most [`PER_ADDRESS`] idle connections per address and [`TOTAL`] in all
//! are kept, the one idle longest closed first past either bound; one idle
//! longer than the idle timeout (`ForwardConfig::upstream_idle_timeout`) is
//! closed by the thread's sweep ([`UpstreamPool::maintain`]), before an app
//! server's own keep-alive timeout would close it under a request.
//!
//! Nothing here decides where requests go, the routing tables do: after any
//! change of the tables the idle connections to addresses no table routes
//! to any more (the old slot after a switch) are closed, at the thread's
//! next request or its next sweep, whichever comes first, and a connection
//! coming back to such an address is closed instead of kept. So a switch
//! never sends anyone to the old slot over a reused connection and a
//! stopped slot is never written to again.
//!
//! A connection never goes back while its response is unread (a dropped
//! body closes it: unread bytes would poison it), nor after an upgrade
//! (the tunnel owns it). An idle connection the slot closed meanwhile (a
//! restart) is passed over when seen closed, and a request that may be sent
//! twice is sent once more on a new connection when the slot closed it
//! without an answer (see [`UpstreamPool::exchange`]).

use crate::routing::Routing;
use crate::upstream_h1::{Answer, ExchangeError, Framing, H1Conn};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::http::request;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Idle connections kept per slot address on one thread: about what one
/// thread has in flight to one slot at a time under load, with room for
/// bursts (`switchyard-bench proxy`, docs/ARCHITECTURE.md section 5).
pub(crate) const PER_ADDRESS: usize = 64;
/// Idle connections kept on one thread in all, whatever the number of
/// environments: bounds the memory they hold.
pub(crate) const TOTAL: usize = 256;
/// Sweeps per idle timeout: a connection is closed once idle between ¾ of
/// the timeout and the whole of it.
const SWEEPS_PER_TIMEOUT: u64 = 4;

/// One data-plane thread's idle upstream connections.
pub struct UpstreamPool {
    routing: Arc<Routing>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    /// Taken by this thread's tasks only, never across an await.
    idle: Mutex<Idle<H1Conn>>,
}

/// A ready HTTP/1.1 connection to one slot address, lent to one request.
pub struct Sender {
    address: Arc<str>,
    /// The routing epoch read before the table lookup that chose `address`:
    /// unchanged at the put-back, the address is still routed to.
    epoch: u64,
    /// Taken from the pool rather than opened for this request.
    reused: bool,
    conn: H1Conn,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid address: {0}")]
    Address(#[from] std::net::AddrParseError),
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("no connection within {0:?}")]
    Timeout(Duration),
}

/// Why a request got no response from its slot.
#[derive(Debug)]
pub enum SendError {
    /// The retry's new connection could not be made.
    Connect(ConnectError),
    /// The slot did not answer on the connection, or not in HTTP/1.x.
    Request(ExchangeError),
}

impl UpstreamPool {
    pub fn new(routing: Arc<Routing>, connect_timeout: Duration, idle_timeout: Duration) -> Self {
        UpstreamPool {
            routing,
            connect_timeout,
            idle_timeout,
            idle: Mutex::new(Idle::new(Limits {
                per_address: PER_ADDRESS,
                total: TOTAL,
                sweeps_per_timeout: SWEEPS_PER_TIMEOUT,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle<H1Conn>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the idle connections to addresses no table routes to any
    /// more, when the tables changed since the last look.
    fn prune_if_changed(&self, idle: &mut Idle<H1Conn>) {
        let now = self.routing.epoch();
        if idle.epoch != now {
            idle.retain_addresses(|address| self.routing.serves(address));
            idle.epoch = now;
        }
    }

    /// A connection to `address` ready for a request: the most recently
    /// used idle one, or a new one. `epoch` is [`Routing::epoch`] read
    /// before the lookup that chose `address`.
    pub async fn take(&self, address: &str, epoch: u64) -> Result<Sender, ConnectError> {
        let reused = {
            let mut idle = self.lock();
            self.prune_if_changed(&mut idle);
            idle.pop(address)
        };
        // `pop` passed over the idle connections the slot had closed.
        if let Some((address, conn)) = reused {
            return Ok(Sender {
                address,
                epoch,
                reused: true,
                conn,
            });
        }
        self.connect(Arc::from(address), epoch).await
    }

    async fn connect(&self, address: Arc<str>, epoch: u64) -> Result<Sender, ConnectError> {
        let addr: SocketAddr = address.parse()?;
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout(self.connect_timeout))??;
        stream.set_nodelay(true)?;
        Ok(Sender {
            address,
            epoch,
            reused: false,
            conn: H1Conn::new(stream),
        })
    }

    /// Sends the request on `sender` and reads its answer's head. When
    /// `sender` came from the pool and the slot closed it before any answer
    /// (its idle timeout, a restart), a request that may be sent twice (an
    /// idempotent method, no body) goes once more on a new connection, which
    /// then replaces `sender`. Others get the error: the slot may have acted
    /// on them.
    pub async fn exchange(
        &self,
        sender: &mut Sender,
        head: &request::Parts,
        body: &mut Incoming,
        upgrade: bool,
    ) -> Result<Answer, SendError> {
        let repeatable = head.method.is_idempotent() && hyper::body::Body::is_end_stream(body);
        match sender.conn.exchange(head, body, upgrade).await {
            Err(ExchangeError::Unanswered) if sender.reused && repeatable => {
                tracing::debug!(address = %sender.address, "idle upstream connection was closed; retrying on a new one");
                *sender = self
                    .connect(Arc::clone(&sender.address), sender.epoch)
                    .await
                    .map_err(SendError::Connect)?;
                sender
                    .conn
                    .exchange(head, body, upgrade)
                    .await
                    .map_err(SendError::Request)
            }
            answer => answer.map_err(SendError::Request),
        }
    }

    /// Keeps `sender` for the thread's next request to its address, unless
    /// it is closed or no table routes there any more.
    fn put_back(&self, sender: Sender) {
        let mut idle = self.lock();
        if idle.stopped {
            return;
        }
        self.prune_if_changed(&mut idle);
        if sender.epoch != idle.epoch && !self.routing.serves(&sender.address) {
            return;
        }
        idle.push(sender.address, sender.conn);
    }

    /// The thread's sweep, until `stopped`: closes connections idle past
    /// the idle timeout, those the slots closed, and, after a change of the
    /// tables, those to addresses no table routes to any more, even when
    /// this thread gets no request. At the stop, closes every idle one and
    /// keeps none after.
    pub async fn maintain(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let period = (self.idle_timeout / SWEEPS_PER_TIMEOUT as u32).max(Duration::from_millis(1));
        let mut sweeps = tokio::time::interval(period);
        sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sweeps.tick().await;
        loop {
            tokio::select! {
                _ = sweeps.tick() => {
                    let mut idle = self.lock();
                    self.prune_if_changed(&mut idle);
                    idle.sweep();
                }
                // An error means the sender is gone, which also means stop.
                _ = stopped.wait_for(|stop| *stop) => break,
            }
        }
        let mut idle = self.lock();
        idle.stopped = true;
        idle.clear();
    }
}

impl Sender {
    /// The socket and the bytes read past the 101's head: the connection
    /// becomes the tunnel's and never goes back to the pool.
    pub fn into_upgraded(self) -> (TcpStream, Bytes) {
        self.conn.into_upgraded()
    }
}

/// A slot's response body, read from its connection as the client's side
/// asks for it. Read to the end, the connection goes back to its thread's
/// pool (when it may carry another request); dropped earlier (the client
/// went away), it is closed, since unread bytes would poison it.
pub struct SlotBody {
    pool: Arc<UpstreamPool>,
    sender: Option<Sender>,
    framing: Framing,
    keep_alive: bool,
}

impl SlotBody {
    pub fn new(
        pool: Arc<UpstreamPool>,
        sender: Sender,
        framing: Framing,
        keep_alive: bool,
    ) -> Self {
        let mut body = SlotBody {
            pool,
            sender: Some(sender),
            framing,
            keep_alive,
        };
        // Nothing to read (204, HEAD, empty): the connection is free now.
        body.release_if_ended();
        body
    }

    pub fn is_end_stream(&self) -> bool {
        self.framing.is_end()
    }

    /// Bytes left, when known.
    pub fn exact(&self) -> Option<u64> {
        self.framing.exact()
    }

    /// The next piece of the body, `None` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let Some(sender) = self.sender.as_mut() else {
            // Read to its end already.
            return Poll::Ready(None);
        };
        let data = self.framing.poll_data(&mut sender.conn, cx);
        if let Poll::Ready(Some(Err(_))) = data {
            // The connection is in no known state: closed, not kept.
            self.sender = None;
        } else {
            self.release_if_ended();
        }
        data
    }

    fn release_if_ended(&mut self) {
        if !self.framing.is_end() {
            return;
        }
        if let Some(sender) = self.sender.take() {
            if self.keep_alive && !sender.conn.has_unread() {
                self.pool.put_back(sender);
            }
        }
    }
}

/// What [`Idle`] needs of a connection (a trait so its bookkeeping is
/// tested without sockets).
trait Connection {
    fn is_closed(&self) -> bool;
}

impl Connection for H1Conn {
    fn is_closed(&self) -> bool {
        H1Conn::is_closed(self)
    }
}

#[derive(Clone, Copy)]
struct Limits {
    per_address: usize,
    total: usize,
    sweeps_per_timeout: u64,
}

/// The idle connections of one thread, per address, each list idle longest
/// first. Few addresses (the slots the tables name), so a list, searched.
struct Idle<C> {
    limits: Limits,
    /// The routing epoch the addresses were last checked against.
    epoch: u64,
    /// Sweeps so far: when each connection was parked, coarsely.
    sweeps: u64,
    /// Put-backs so far: which connection has been idle longest.
    parked: u64,
    total: usize,
    /// The thread is stopping: nothing goes back any more.
    stopped: bool,
    addresses: Vec<Address<C>>,
}

struct Address<C> {
    address: Arc<str>,
    /// Idle longest first: taken from the back, closed from the front.
    conns: VecDeque<Parked<C>>,
}

struct Parked<C> {
    conn: C,
    /// Its put-back's number ([`Idle::parked`]).
    order: u64,
    /// The sweep count when it was put back.
    sweep: u64,
}

impl<C: Connection> Idle<C> {
    fn new(limits: Limits) -> Self {
        Idle {
            limits,
            epoch: 0,
            sweeps: 0,
            parked: 0,
            total: 0,
            stopped: false,
            addresses: Vec::new(),
        }
    }

    /// The most recently parked open connection to `address`, with the
    /// address's shared name.
    fn pop(&mut self, address: &str) -> Option<(Arc<str>, C)> {
        let entry = self.addresses.iter_mut().find(|a| &*a.address == address)?;
        while let Some(parked) = entry.conns.pop_back() {
            self.total -= 1;
            if !parked.conn.is_closed() {
                return Some((Arc::clone(&entry.address), parked.conn));
            }
        }
        None
    }

    /// Parks `conn`, closing the connection idle longest past a bound.
    fn push(&mut self, address: Arc<str>, conn: C) {
        let i = match self
            .addresses
            .iter()
            .position(|a| Arc::ptr_eq(&a.address, &address) || a.address == address)
        {
            Some(i) => i,
            None => {
                self.addresses.push(Address {
                    address,
                    conns: VecDeque::new(),
                });
                self.addresses.len() - 1
            }
        };
        let entry = &mut self.addresses[i];
        if entry.conns.len() >= self.limits.per_address {
            entry.conns.pop_front();
            self.total -= 1;
        }
        entry.conns.push_back(Parked {
            conn,
            order: self.parked,
            sweep: self.sweeps,
        });
        self.parked += 1;
        self.total += 1;
        if self.total > self.limits.total {
            let oldest = self
                .addresses
                .iter_mut()
                .filter_map(|a| Some((a.conns.front()?.order, a)))
                .min_by_key(|(order, _)| *order);
            if let Some((_, a)) = oldest {
                a.conns.pop_front();
                self.total -= 1;
            }
        }
    }

    /// Keeps the addresses `keep` says yes to, closing the others' idle
    /// connections.
    fn retain_addresses(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let mut total = 0;
        self.addresses.retain(|a| {
            let kept = keep(&a.address);
            if kept {
                total += a.conns.len();
            }
            kept
        });
        self.total = total;
    }

    /// One sweep: closes the connections idle a whole timeout and those
    /// closed by their slot.
    fn sweep(&mut self) {
        self.sweeps += 1;
        // Parked between sweeps s and s + 1: at sweep s + n it has been idle
        // more than n - 1 and at most n sweep periods.
        let timeout = self.limits.sweeps_per_timeout;
        for a in &mut self.addresses {
            while a
                .conns
                .front()
                .is_some_and(|p| p.sweep + timeout <= self.sweeps)
            {
                a.conns.pop_front();
            }
        }
        self.drop_closed();
    }

    fn drop_closed(&mut self) {
        let mut total = 0;
        for a in &mut self.addresses {
            a.conns.retain(|p| !p.conn.is_closed());
            total += a.conns.len();
        }
        self.total = total;
    }

    fn clear(&mut self) {
        self.addresses.clear();
        self.total = 0;
    }

    #[cfg(test)]
    fn count(&self, address: &str) -> usize {
        self.addresses
            .iter()
            .find(|a| &*a.address == address)
            .map_or(0, |a| a.conns.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A connection named by a number, closable from the test.
    struct Fake {
        id: u32,
        closed: Rc<Cell<bool>>,
    }

    impl Connection for Fake {
        fn is_closed(&self) -> bool {
            self.closed.get()
        }
    }

    fn fake(id: u32) -> Fake {
        Fake {
            id,
            closed: Rc::new(Cell::new(false)),
        }
    }

    fn idle(per_address: usize, total: usize) -> Idle<Fake> {
        Idle::new(Limits {
            per_address,
            total,
            sweeps_per_timeout: 4,
        })
    }

    fn a(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    fn ids(idle: &mut Idle<Fake>, address: &str) -> Vec<u32> {
        std::iter::from_fn(|| idle.pop(address).map(|(_, c)| c.id)).collect()
    }

    #[test]
    fn the_most_recently_used_connection_is_taken_first() {
        let mut idle = idle(8, 64);
        for id in 1..=3 {
            idle.push(a("10.0.0.1:80"), fake(id));
        }
        idle.push(a("10.0.0.2:80"), fake(9));
        assert_eq!(ids(&mut idle, "10.0.0.1:80"), [3, 2, 1]);
        assert!(idle.pop("10.0.0.3:80").is_none());
        assert_eq!(idle.total, 1);
    }

    #[test]
    fn past_a_bound_the_connection_idle_longest_is_closed() {
        let mut idle = idle(3, 5);
        for id in 1..=4 {
            idle.push(a("blue:1"), fake(id));
        }
        // Per address: the oldest (1) went.
        assert_eq!(idle.count("blue:1"), 3);
        idle.push(a("green:2"), fake(10));
        idle.push(a("green:2"), fake(11));
        assert_eq!(idle.total, 5);
        // In all: the oldest anywhere (2, blue's) goes, not green's.
        idle.push(a("green:2"), fake(12));
        assert_eq!(idle.total, 5);
        assert_eq!(ids(&mut idle, "blue:1"), [4, 3]);
        assert_eq!(ids(&mut idle, "green:2"), [12, 11, 10]);
        assert_eq!(idle.total, 0);
    }

    #[test]
    fn closed_and_expired_connections_go_at_a_sweep() {
        let mut idle = idle(8, 64);
        let old = fake(1);
        idle.push(a("blue:1"), old);
        idle.sweep();
        idle.sweep();
        let closed = fake(2);
        let flag = Rc::clone(&closed.closed);
        idle.push(a("blue:1"), closed);
        idle.push(a("blue:1"), fake(3));
        flag.set(true);
        idle.sweep();
        assert_eq!(idle.count("blue:1"), 2, "the closed one went");
        idle.sweep();
        // Parked at sweep 0: four sweeps later it is past the timeout.
        assert_eq!(idle.count("blue:1"), 1, "the one idle a whole timeout went");
        assert_eq!(ids(&mut idle, "blue:1"), [3]);
        // A closed connection is never handed out.
        let closed = fake(4);
        closed.closed.set(true);
        idle.push(a("blue:1"), closed);
        assert!(idle.pop("blue:1").is_none());
        assert_eq!(idle.total, 0);
    }

    #[test]
    fn addresses_no_table_routes_to_are_dropped() {
        let mut idle = idle(8, 64);
        idle.push(a("blue:1"), fake(1));
        idle.push(a("blue:1"), fake(2));
        idle.push(a("green:2"), fake(3));
        idle.retain_addresses(|address| address == "green:2");
        assert_eq!(idle.total, 1);
        assert!(idle.pop("blue:1").is_none());
        assert_eq!(ids(&mut idle, "green:2"), [3]);
    }
}
