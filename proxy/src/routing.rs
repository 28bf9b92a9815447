//! What the proxy routes by, switched atomically, fenced by generation and
//! persisted in the [`StateFile`] before a change is answered: the default
//! table ([`RouteTable`], `/admin/routing`) and the named routes
//! ([`RouteSet`], `/admin/routes`), one per environment, each with its own
//! fenced table.

use crate::route_table::{RouteTable, TableError, TableRules};
use crate::routes::{CheckedClaim, NamedRoute, RouteError, RouteLive, RouteSet};
use crate::state_file::{ProxyState, StateFile, StateFileError};
use crate::upstream_policy::UpstreamPolicy;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("stale generation {offered}: current generation is {current}")]
    Stale { offered: u64, current: u64 },
    #[error(transparent)]
    Invalid(#[from] TableError),
    // Boxed: by far the largest reason; keeps every `Result<_, SwitchError>`
    // (and so every admin answer) small.
    #[error(transparent)]
    Route(Box<RouteError>),
    #[error("no route named {0:?}")]
    NoSuchRoute(String),
    #[error(transparent)]
    Persist(#[from] StateFileError),
    #[error("persisting the routing table was interrupted")]
    PersistInterrupted,
}

impl From<RouteError> for SwitchError {
    fn from(e: RouteError) -> Self {
        SwitchError::Route(Box::new(e))
    }
}

/// What a named route should become (`PUT /admin/routes/{name}`).
#[derive(Clone, Debug)]
pub struct RouteChange {
    pub hosts: Vec<String>,
    pub path_prefix: Option<String>,
    /// Plain-listener requests are answered 308 to HTTPS (default off).
    pub redirect_https: bool,
    /// `None` keeps the route's table (an empty one for a new route);
    /// `Some` is fenced by generation like `PUT /admin/routing`.
    pub table: Option<RouteTable>,
}

/// Where one request goes.
pub(crate) enum Lookup {
    /// A named route claims its host (and path).
    Route(Arc<NamedRoute>),
    /// No named route claims it, or there are none: the default table.
    Default(Arc<RouteTable>),
    /// Named routes exist, none claims it, and the default table was never
    /// set: the request belongs to no environment.
    Unrouted,
}

/// Readers (every user request) take a snapshot with one atomic load and never
/// wait; writers serialize on `writer`, which the data path never touches.
pub struct Routing {
    table: ArcSwap<RouteTable>,
    routes: ArcSwap<RouteSet>,
    /// Counts every change of the default table or the route set, so each
    /// data-plane thread's idle upstream connections are checked against
    /// the tables only when they changed (`upstream_conn`).
    epoch: AtomicU64,
    writer: tokio::sync::Mutex<()>,
    state_file: StateFile,
    policy: UpstreamPolicy,
}

impl Routing {
    /// `initial` is trusted: it is the default table or one already
    /// validated against `policy` (the state file's, at start).
    pub fn new(
        initial: impl Into<RouteTable>,
        state_file: StateFile,
        policy: UpstreamPolicy,
    ) -> Routing {
        Routing::with_routes(initial, RouteSet::default(), state_file, policy)
    }

    /// [`Routing::new`] with named routes (trusted the same way).
    pub fn with_routes(
        initial: impl Into<RouteTable>,
        routes: RouteSet,
        state_file: StateFile,
        policy: UpstreamPolicy,
    ) -> Routing {
        Routing {
            table: ArcSwap::from_pointee(initial.into()),
            routes: ArcSwap::from_pointee(routes),
            epoch: AtomicU64::new(0),
            writer: tokio::sync::Mutex::new(()),
            state_file,
            policy,
        }
    }

    fn set_table(&self, table: Arc<RouteTable>) {
        self.table.store(table);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn set_routes(&self, routes: Arc<RouteSet>) {
        self.routes.store(routes);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Changes so far (of the default table or the route set).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether any table (the default one or a route's) sends requests to
    /// `address` now, on its active or preview slot.
    pub(crate) fn serves(&self, address: &str) -> bool {
        let uses = |t: &RouteTable| {
            [t.active.as_ref(), t.preview.as_ref()]
                .into_iter()
                .flatten()
                .any(|u| u.address == address)
        };
        uses(&self.table.load()) || self.routes.load().iter().any(|r| uses(r.table()))
    }

    /// What every table installed here is validated against.
    pub fn policy(&self) -> &UpstreamPolicy {
        &self.policy
    }

    /// The default table (`/admin/routing`). A switch after this call does
    /// not affect the request holding the snapshot.
    pub fn current(&self) -> Arc<RouteTable> {
        self.table.load_full()
    }

    /// Every named route as of now.
    pub fn routes(&self) -> Arc<RouteSet> {
        self.routes.load_full()
    }

    /// Where a request with this host (raw `Host` or authority, asked for
    /// only when there are routes) and path goes. No lock and no
    /// allocation: one atomic load of the route set, and one more of the
    /// default table when no route claims the request.
    pub(crate) fn lookup<'r>(&self, host: impl FnOnce() -> Option<&'r [u8]>, path: &str) -> Lookup {
        {
            let routes = self.routes.load();
            if routes.is_empty() {
                // One environment per proxy, as before routes existed: every
                // host is the default table's (503 while it has no slot).
                return Lookup::Default(self.current());
            }
            if let Some(route) = host().and_then(|h| routes.find(h, path)) {
                return Lookup::Route(Arc::clone(route));
            }
        }
        let table = self.current();
        // Generation 0 is the table nobody ever PUT (a PUT needs 1 or more).
        if table.generation == 0 {
            Lookup::Unrouted
        } else {
            Lookup::Default(table)
        }
    }

    /// Installs `next` as the default table if its generation is newer, and
    /// returns once it is also persisted: if the proxy dies right after
    /// answering 200, it restarts routing where the console believes it
    /// routes.
    ///
    /// The swap comes first and the fsyncs after it, so users reach the new
    /// slot without waiting for the disk (the switch latency is the swap,
    /// not two fsyncs). If the proxy dies in between, the console never got
    /// its answer and treats the switch as not done — and the restarted
    /// proxy, reading the old file, agrees. If persisting fails, the
    /// previous table is put back before the error is returned (the writer
    /// lock is held, so nothing else was installed meanwhile): the caller
    /// is told "not switched" and users are where that says.
    pub async fn switch(
        &self,
        next: impl Into<RouteTable>,
    ) -> Result<Arc<RouteTable>, SwitchError> {
        let next = next.into();
        next.validate(&self.policy)?;
        let _writer = self.writer.lock().await;
        let current = self.table.load_full();
        if next.generation <= current.generation {
            return Err(SwitchError::Stale {
                offered: next.generation,
                current: current.generation,
            });
        }
        let next = Arc::new(next);
        self.set_table(Arc::clone(&next));
        if let Err(e) = self.persist(Arc::clone(&next), self.routes()).await {
            self.set_table(current);
            return Err(e);
        }
        Ok(next)
    }

    /// Creates or replaces the route `name`, and returns it (and whether it
    /// is new) once persisted. A table in `change` must have a newer
    /// generation than the route's (0 for a new route), exactly as
    /// [`Routing::switch`] fences the default table; the route keeps its
    /// metrics across the change. Persisting works as in
    /// [`Routing::switch`]: swap first, put back on failure.
    pub async fn put_route(
        &self,
        name: &str,
        change: RouteChange,
    ) -> Result<(Arc<NamedRoute>, bool), SwitchError> {
        let claim = CheckedClaim::check(name, &change.hosts, change.path_prefix.as_deref())?
            .redirect_https(change.redirect_https);
        if let Some(table) = &change.table {
            table.validate(&self.policy).map_err(RouteError::Table)?;
        }
        let _writer = self.writer.lock().await;
        let current = self.routes.load_full();
        let existing = current.get(name);
        let table = match (change.table, existing) {
            (Some(next), existing) => {
                let now = existing.map_or(0, |r| r.table().generation);
                if next.generation <= now {
                    return Err(SwitchError::Stale {
                        offered: next.generation,
                        current: now,
                    });
                }
                Arc::new(next)
            }
            (None, Some(existing)) => Arc::clone(existing.table()),
            (None, None) => Arc::new(RouteTable::default()),
        };
        let live = existing.map_or_else(RouteLive::default, |r| r.live());
        let created = existing.is_none();
        let next = Arc::new(current.with(claim.into_route(table, live))?);
        self.set_routes(Arc::clone(&next));
        if let Err(e) = self.persist(self.current(), Arc::clone(&next)).await {
            self.set_routes(current);
            return Err(e);
        }
        match next.get(name) {
            Some(route) => Ok((Arc::clone(route), created)),
            // `with` just put it there, under this name.
            None => Err(SwitchError::NoSuchRoute(name.to_string())),
        }
    }

    /// [`Routing::switch`] for the table of the route `name`, which must
    /// exist; its hosts and prefix stay.
    pub async fn switch_route(
        &self,
        name: &str,
        next: impl Into<RouteTable>,
    ) -> Result<Arc<RouteTable>, SwitchError> {
        let next = next.into();
        next.validate(&self.policy).map_err(RouteError::Table)?;
        let _writer = self.writer.lock().await;
        let current = self.routes.load_full();
        let Some(existing) = current.get(name) else {
            return Err(SwitchError::NoSuchRoute(name.to_string()));
        };
        let now = existing.table().generation;
        if next.generation <= now {
            return Err(SwitchError::Stale {
                offered: next.generation,
                current: now,
            });
        }
        let table = Arc::new(next);
        // Same claims as before: no conflict can appear.
        let next = Arc::new(current.with(existing.with_table(Arc::clone(&table)))?);
        self.set_routes(Arc::clone(&next));
        if let Err(e) = self.persist(self.current(), next).await {
            self.set_routes(current);
            return Err(e);
        }
        Ok(table)
    }

    /// Removes the route `name` once persisted; its hosts go to the default
    /// table (or nowhere) from the next request on.
    pub async fn delete_route(&self, name: &str) -> Result<Arc<NamedRoute>, SwitchError> {
        let _writer = self.writer.lock().await;
        let current = self.routes.load_full();
        let (Some(removed), Some(next)) = (current.get(name), current.without(name)) else {
            return Err(SwitchError::NoSuchRoute(name.to_string()));
        };
        let removed = Arc::clone(removed);
        let next = Arc::new(next);
        self.set_routes(Arc::clone(&next));
        if let Err(e) = self.persist(self.current(), next).await {
            self.set_routes(current);
            return Err(e);
        }
        Ok(removed)
    }

    /// Writes the default table and every route to the state file, off the
    /// runtime (fsync). Called with the writer lock held.
    async fn persist(
        &self,
        table: Arc<RouteTable>,
        routes: Arc<RouteSet>,
    ) -> Result<(), SwitchError> {
        let state_file = self.state_file.clone();
        tokio::task::spawn_blocking(move || {
            let state = ProxyState {
                default: RouteTable::clone(&table),
                routes: routes.iter().map(|r| r.spec()).collect(),
            };
            state_file.store_state(&state)
        })
        .await
        .map_err(|_| SwitchError::PersistInterrupted)
        .and_then(|r| r.map_err(SwitchError::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{RoutingTable, SlotColor, Upstream};

    fn loopback() -> UpstreamPolicy {
        UpstreamPolicy::loopback_only()
    }

    fn table(generation: u64, port: u16) -> RoutingTable {
        RoutingTable {
            generation,
            active: Some(Upstream {
                slot: SlotColor::Blue,
                address: format!("127.0.0.1:{port}"),
            }),
            preview: None,
            ..RoutingTable::default()
        }
    }

    #[tokio::test]
    async fn newer_generation_is_persisted_then_swapped_and_stale_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("routing.json"));
        let routing = Routing::new(RoutingTable::default(), file.clone(), loopback());

        routing.switch(table(1, 9001)).await.unwrap();
        assert_eq!(*routing.current(), table(1, 9001));
        assert_eq!(file.load(&loopback()).unwrap(), Some(table(1, 9001)));

        let err = routing.switch(table(1, 9002)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "stale generation 1: current generation is 1"
        );
        assert_eq!(*routing.current(), table(1, 9001));
        assert_eq!(file.load(&loopback()).unwrap(), Some(table(1, 9001)));
    }

    #[tokio::test]
    async fn failed_persist_leaves_routing_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("missing-dir").join("routing.json"));
        let routing = Routing::new(table(1, 9001), file, loopback());
        let err = routing.switch(table(2, 9002)).await.unwrap_err();
        assert!(matches!(err, SwitchError::Persist(_)));
        assert_eq!(*routing.current(), table(1, 9001));
    }

    #[tokio::test]
    async fn a_refused_upstream_names_its_field_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("routing.json"));
        let routing = Routing::new(RoutingTable::default(), file.clone(), loopback());
        routing.switch(table(1, 9001)).await.unwrap();

        let mut next = RouteTable::from(table(2, 9002));
        next.preview = Some(Upstream {
            slot: SlotColor::Green,
            address: "169.254.169.254:80".into(),
        });
        let err = routing.switch(next).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"preview upstream "169.254.169.254:80": link-local/metadata addresses are never allowed"#
        );
        let err = routing.switch(table(2, 0)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"active upstream "127.0.0.1:0": port 0 is never allowed"#
        );
        assert_eq!(*routing.current(), table(1, 9001));
        assert_eq!(file.load(&loopback()).unwrap(), Some(table(1, 9001)));
    }
}
