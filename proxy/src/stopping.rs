//! How a data-plane thread's client connections learn that the proxy is
//! stopping: each finishes the request it is serving, then closes; an idle
//! keep-alive connection closes at once ([`Stopping::stop`] waits for all).
//!
//! hyper-util's `GracefulShutdown` does the same through a watch channel
//! whose receiver every connection polls on *every* poll of the connection:
//! a mutex taken and a waker compared per poll, a few times per request
//! (~2 % of the proxy's own CPU time in a profile under wrk). Here a poll
//! costs an atomic load and a waker comparison without a lock: the
//! connection's waker is registered once and again only if the task's
//! waker changes (never, for a task on a current-thread runtime), and
//! [`Stopping::stop`] wakes every registered connection once.

use hyper_util::server::graceful::GracefulConnection;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

/// One thread's (one listener's) stop signal and its watched connections.
#[derive(Clone, Default)]
pub(crate) struct Stopping(Arc<Shared>);

#[derive(Default)]
struct Shared {
    stopping: AtomicBool,
    /// Watched connections not yet finished.
    open: AtomicUsize,
    /// Fires when `open` reaches 0.
    all_closed: Notify,
    next_key: AtomicU64,
    /// The waker of each watched connection that has been polled.
    wakers: Mutex<HashMap<u64, Waker>>,
}

impl Shared {
    fn wakers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waker>> {
        self.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Stopping {
    /// A place among the connections [`Stopping::stop`] waits for, taken
    /// before a TLS handshake so that a connection still shaking hands is
    /// waited for too; [`Ticket::watch`] then watches its connection.
    pub(crate) fn ticket(&self) -> Ticket {
        self.0.open.fetch_add(1, Ordering::AcqRel);
        Ticket(Arc::clone(&self.0))
    }

    /// `conn`, told to shut down gracefully once [`Stopping::stop`] is called.
    pub(crate) fn watch<C: GracefulConnection>(&self, conn: C) -> Watched<C> {
        self.ticket().watch(conn)
    }

    /// Tells every watched connection to finish and close, and waits until
    /// all have (the caller bounds the wait).
    pub(crate) async fn stop(&self) {
        self.0.stopping.store(true, Ordering::Release);
        let wakers: Vec<Waker> = self.0.wakers().drain().map(|(_, w)| w).collect();
        for waker in wakers {
            waker.wake();
        }
        loop {
            let closed = self.0.all_closed.notified();
            tokio::pin!(closed);
            // Registered before the count is read: a last close between
            // the read and the await still wakes this.
            closed.as_mut().enable();
            if self.0.open.load(Ordering::Acquire) == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// Counts one connection among those [`Stopping::stop`] waits for, until
/// dropped.
pub(crate) struct Ticket(Arc<Shared>);

impl Ticket {
    pub(crate) fn watch<C: GracefulConnection>(self, conn: C) -> Watched<C> {
        Watched {
            conn: Box::pin(conn),
            key: self.0.next_key.fetch_add(1, Ordering::Relaxed),
            ticket: self,
            waker: None,
            told: false,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

/// A client connection that shuts down gracefully when told to stop.
pub(crate) struct Watched<C> {
    conn: Pin<Box<C>>,
    ticket: Ticket,
    key: u64,
    /// The waker registered in the shared wakers, if any.
    waker: Option<Waker>,
    /// `graceful_shutdown` was called.
    told: bool,
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = &mut *self;
        let shared = &this.ticket.0;
        if !this.told {
            let registered = this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
            if !registered && !shared.stopping.load(Ordering::Acquire) {
                let waker = cx.waker().clone();
                shared.wakers().insert(this.key, waker.clone());
                this.waker = Some(waker);
            }
            // Read after registering: a stop that drained the wakers before
            // this one was inserted is seen here.
            if shared.stopping.load(Ordering::Acquire) {
                this.told = true;
                this.conn.as_mut().graceful_shutdown();
            }
        }
        this.conn.as_mut().poll(cx)
    }
}

impl<C> Drop for Watched<C> {
    fn drop(&mut self) {
        if self.waker.is_some() {
            self.ticket.0.wakers().remove(&self.key);
        }
        // The ticket, dropped after this, counts the connection closed.
    }
}
