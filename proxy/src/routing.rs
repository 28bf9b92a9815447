//! The active upstream, switched atomically and fenced by generation.

use crate::state_file::{StateFile, StateFileError};
use arc_swap::ArcSwap;
use hyper::http::uri::Authority;
use model::RoutingTable;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("stale generation {offered}: current generation is {current}")]
    Stale { offered: u64, current: u64 },
    #[error("invalid upstream address {address:?}: {reason}")]
    InvalidUpstream { address: String, reason: String },
    #[error(transparent)]
    Persist(#[from] StateFileError),
    #[error("persisting the routing table was interrupted")]
    PersistInterrupted,
}

/// Readers (every user request) take a snapshot with one atomic load and never
/// wait; writers serialize on `writer`, which the data path never touches.
pub struct Routing {
    table: ArcSwap<RoutingTable>,
    writer: tokio::sync::Mutex<()>,
    state_file: StateFile,
}

impl Routing {
    pub fn new(initial: RoutingTable, state_file: StateFile) -> Routing {
        Routing {
            table: ArcSwap::from_pointee(initial),
            writer: tokio::sync::Mutex::new(()),
            state_file,
        }
    }

    /// The table a request is routed by. A switch after this call does not
    /// affect the request holding the snapshot.
    pub fn current(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    /// Installs `next` if its generation is newer. The table is persisted
    /// before it is swapped in: if the proxy dies right after answering 200,
    /// it restarts routing where the console believes it routes.
    pub async fn switch(&self, next: RoutingTable) -> Result<Arc<RoutingTable>, SwitchError> {
        if let Some(upstream) = &next.active {
            validate_address(&upstream.address)?;
        }
        let _writer = self.writer.lock().await;
        let current = self.table.load();
        if next.generation <= current.generation {
            return Err(SwitchError::Stale {
                offered: next.generation,
                current: current.generation,
            });
        }
        let next = Arc::new(next);
        let state_file = self.state_file.clone();
        let to_store = Arc::clone(&next);
        tokio::task::spawn_blocking(move || state_file.store(&to_store))
            .await
            .map_err(|_| SwitchError::PersistInterrupted)??;
        self.table.store(Arc::clone(&next));
        Ok(next)
    }
}

/// An upstream must be `host:port` so `http://{address}/…` is a valid URI for
/// every request; checking once here keeps that failure off the data path.
pub fn validate_address(address: &str) -> Result<Authority, SwitchError> {
    let invalid = |reason: &str| SwitchError::InvalidUpstream {
        address: address.to_string(),
        reason: reason.to_string(),
    };
    let authority: Authority = address.parse().map_err(|_| invalid("expected host:port"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("credentials are not allowed"));
    }
    if authority.port_u16().is_none() {
        return Err(invalid("a port is required"));
    }
    if authority.host().is_empty() {
        return Err(invalid("a host is required"));
    }
    Ok(authority)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{SlotColor, Upstream};

    fn table(generation: u64, port: u16) -> RoutingTable {
        RoutingTable {
            generation,
            active: Some(Upstream {
                slot: SlotColor::Blue,
                address: format!("127.0.0.1:{port}"),
            }),
        }
    }

    #[tokio::test]
    async fn newer_generation_is_persisted_then_swapped_and_stale_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("routing.json"));
        let routing = Routing::new(RoutingTable::default(), file.clone());

        routing.switch(table(1, 9001)).await.unwrap();
        assert_eq!(*routing.current(), table(1, 9001));
        assert_eq!(file.load().unwrap(), Some(table(1, 9001)));

        let err = routing.switch(table(1, 9002)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "stale generation 1: current generation is 1"
        );
        assert_eq!(*routing.current(), table(1, 9001));
        assert_eq!(file.load().unwrap(), Some(table(1, 9001)));
    }

    #[tokio::test]
    async fn failed_persist_leaves_routing_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("missing-dir").join("routing.json"));
        let routing = Routing::new(table(1, 9001), file);
        let err = routing.switch(table(2, 9002)).await.unwrap_err();
        assert!(matches!(err, SwitchError::Persist(_)));
        assert_eq!(*routing.current(), table(1, 9001));
    }

    #[test]
    fn addresses_must_be_host_and_port() {
        assert!(validate_address("127.0.0.1:8080").is_ok());
        assert!(validate_address("localhost:8080").is_ok());
        assert!(validate_address("[::1]:8080").is_ok());
        assert!(validate_address("127.0.0.1").is_err());
        assert!(validate_address("http://127.0.0.1:80").is_err());
        assert!(validate_address("user@host:80").is_err());
        assert!(validate_address("").is_err());
    }
}
