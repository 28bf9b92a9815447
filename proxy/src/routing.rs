//! The routing table (active slot, preview slot, canary split), switched
//! atomically and fenced by generation.

use crate::state_file::{StateFile, StateFileError};
use arc_swap::ArcSwap;
use hyper::http::uri::Authority;
use model::{RoutingTable, SlotColor, Upstream};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What the proxy routes by: [`model::RoutingTable`] (generation, active,
/// preview) plus the optional canary split. On the wire it is a superset of
/// `model::RoutingTable`: the optional fields default to absent when a PUT
/// leaves them out, and are left out of answers when absent, so a console
/// that only knows `{generation, active}` reads and writes it unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RouteTable {
    pub generation: u64,
    pub active: Option<Upstream>,
    /// The idle slot, served on the preview listener (`--preview`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Upstream>,
    /// Send a share of new public clients to the preview slot; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
}

/// `percent` % of new clients on the public listener go to `slot`, which must
/// be the preview slot; a cookie keeps each client on the slot it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    pub slot: SlotColor,
    pub percent: u8,
}

impl From<RoutingTable> for RouteTable {
    fn from(t: RoutingTable) -> Self {
        RouteTable {
            generation: t.generation,
            active: t.active,
            preview: t.preview,
            canary: None,
        }
    }
}

impl PartialEq<RoutingTable> for RouteTable {
    fn eq(&self, other: &RoutingTable) -> bool {
        self.generation == other.generation
            && self.active == other.active
            && self.preview == other.preview
            && self.canary.is_none()
    }
}

impl RouteTable {
    /// The upstream serving `slot` in this table, if any.
    pub fn upstream(&self, slot: SlotColor) -> Option<&Upstream> {
        [self.active.as_ref(), self.preview.as_ref()]
            .into_iter()
            .flatten()
            .find(|u| u.slot == slot)
    }

    /// The canary split in effect: the share and the upstream it goes to.
    pub fn canary_upstream(&self) -> Option<(u8, &Upstream)> {
        let canary = self.canary?;
        let preview = self.preview.as_ref().filter(|p| p.slot == canary.slot)?;
        self.active.as_ref()?;
        Some((canary.percent, preview))
    }

    /// Checks everything the data path relies on, once, at PUT time.
    pub fn validate(&self) -> Result<(), SwitchError> {
        for upstream in [self.active.as_ref(), self.preview.as_ref()]
            .into_iter()
            .flatten()
        {
            validate_address(&upstream.address)?;
        }
        let invalid = |reason: String| Err(SwitchError::InvalidTable(reason));
        if let (Some(active), Some(preview)) = (&self.active, &self.preview) {
            if active.slot == preview.slot {
                return invalid(format!(
                    "preview slot {} is the active slot; preview serves the idle slot",
                    preview.slot
                ));
            }
        }
        if let Some(canary) = &self.canary {
            if canary.percent > 100 {
                return invalid(format!("canary percent {} is over 100", canary.percent));
            }
            if self.active.is_none() {
                return invalid("a canary needs an active slot".to_string());
            }
            if self.preview.as_ref().map(|p| p.slot) != Some(canary.slot) {
                return invalid(format!(
                    "canary slot {} must be the preview slot (its address comes from `preview`)",
                    canary.slot
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("stale generation {offered}: current generation is {current}")]
    Stale { offered: u64, current: u64 },
    #[error("invalid upstream address {address:?}: {reason}")]
    InvalidUpstream { address: String, reason: String },
    #[error("invalid routing table: {0}")]
    InvalidTable(String),
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
}

impl Routing {
    pub fn new(initial: impl Into<RouteTable>, state_file: StateFile) -> Routing {
        Routing {
            table: ArcSwap::from_pointee(initial.into()),
            writer: tokio::sync::Mutex::new(()),
            state_file,
        }
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
        next.validate()?;
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
            preview: None,
        }
    }

    #[tokio::test]
    async fn newer_generation_is_persisted_then_swapped_and_stale_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("routing.json"));
        let routing = Routing::new(RoutingTable::default(), file.clone());

        routing.switch(table(1, 9001)).await.unwrap();
        assert_eq!(*routing.current(), table(1, 9001));
        assert_eq!(file.load().unwrap(), Some(table(1, 9001).into()));

        let err = routing.switch(table(1, 9002)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "stale generation 1: current generation is 1"
        );
        assert_eq!(*routing.current(), table(1, 9001));
        assert_eq!(file.load().unwrap(), Some(table(1, 9001).into()));
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
    fn preview_and_canary_are_validated() {
        let up = |slot, port: u16| Upstream {
            slot,
            address: format!("127.0.0.1:{port}"),
        };
        let mut t = RouteTable {
            generation: 1,
            active: Some(up(SlotColor::Blue, 9001)),
            preview: Some(up(SlotColor::Green, 9002)),
            canary: Some(Canary {
                slot: SlotColor::Green,
                percent: 10,
            }),
        };
        assert!(t.validate().is_ok());
        assert_eq!(t.canary_upstream().unwrap().1.address, "127.0.0.1:9002");
        assert_eq!(
            t.upstream(SlotColor::Green).unwrap().address,
            "127.0.0.1:9002"
        );

        t.canary.as_mut().unwrap().percent = 101;
        assert!(t.validate().is_err());
        t.canary.as_mut().unwrap().percent = 100;
        t.canary.as_mut().unwrap().slot = SlotColor::Blue;
        assert!(t
            .validate()
            .unwrap_err()
            .to_string()
            .contains("must be the preview slot"));
        t.canary = None;
        t.preview = Some(up(SlotColor::Blue, 9003));
        assert!(t
            .validate()
            .unwrap_err()
            .to_string()
            .contains("is the active slot"));
        t.preview = Some(Upstream {
            slot: SlotColor::Green,
            address: "nope".into(),
        });
        assert!(matches!(
            t.validate(),
            Err(SwitchError::InvalidUpstream { .. })
        ));

        // The console's old shape still parses, and answers keep that shape.
        let old: RouteTable = serde_json::from_str(r#"{"generation":3,"active":null}"#).unwrap();
        assert_eq!(
            old,
            RouteTable {
                generation: 3,
                ..RouteTable::default()
            }
        );
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"generation":3,"active":null}"#
        );
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
