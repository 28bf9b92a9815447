//! The routing table in effect ([`RouteTable`]), switched atomically, fenced
//! by generation and persisted in the [`StateFile`] before a switch is
//! answered.

use crate::route_table::{RouteTable, TableError};
use crate::state_file::{StateFile, StateFileError};
use crate::upstream_policy::UpstreamPolicy;
use arc_swap::ArcSwap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("stale generation {offered}: current generation is {current}")]
    Stale { offered: u64, current: u64 },
    #[error(transparent)]
    Invalid(#[from] TableError),
    #[error(transparent)]
    Persist(#[from] StateFileError),
    #[error("persisting the routing table was interrupted")]
    PersistInterrupted,
}

/// Readers (every user request) take a snapshot with one atomic load and never
/// wait; writers serialize on `writer`, which the data path never touches.
pub struct Routing {
    table: ArcSwap<RouteTable>,
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
        Routing {
            table: ArcSwap::from_pointee(initial.into()),
            writer: tokio::sync::Mutex::new(()),
            state_file,
            policy,
        }
    }

    /// What every table installed here is validated against.
    pub fn policy(&self) -> &UpstreamPolicy {
        &self.policy
    }

    /// The table a request is routed by. A switch after this call does not
    /// affect the request holding the snapshot.
    pub fn current(&self) -> Arc<RouteTable> {
        self.table.load_full()
    }

    /// Installs `next` if its generation is newer, and returns once it is
    /// also persisted: if the proxy dies right after answering 200, it
    /// restarts routing where the console believes it routes.
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
        let current = self.table.load();
        if next.generation <= current.generation {
            return Err(SwitchError::Stale {
                offered: next.generation,
                current: current.generation,
            });
        }
        let next = Arc::new(next);
        self.table.store(Arc::clone(&next));
        let state_file = self.state_file.clone();
        let to_store = Arc::clone(&next);
        let persisted = tokio::task::spawn_blocking(move || state_file.store(&to_store))
            .await
            .map_err(|_| SwitchError::PersistInterrupted)
            .and_then(|r| r.map_err(SwitchError::from));
        if let Err(e) = persisted {
            self.table.store(arc_swap::Guard::into_inner(current));
            return Err(e);
        }
        Ok(next)
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
        }
    }

    #[tokio::test]
    async fn newer_generation_is_persisted_then_swapped_and_stale_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("routing.json"));
        let routing = Routing::new(RoutingTable::default(), file.clone(), loopback());

        routing.switch(table(1, 9001)).await.unwrap();
        assert_eq!(*routing.current(), table(1, 9001));
        assert_eq!(file.load(&loopback()).unwrap(), Some(table(1, 9001).into()));

        let err = routing.switch(table(1, 9002)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "stale generation 1: current generation is 1"
        );
        assert_eq!(*routing.current(), table(1, 9001));
        assert_eq!(file.load(&loopback()).unwrap(), Some(table(1, 9001).into()));
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
        assert_eq!(file.load(&loopback()).unwrap(), Some(table(1, 9001).into()));
    }
}
