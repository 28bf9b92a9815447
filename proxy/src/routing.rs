//! The routing table (active slot, preview slot, canary split), switched
//! atomically and fenced by generation.

use crate::state_file::{StateFile, StateFileError};
use crate::upstream_policy::{Refusal, UpstreamPolicy};
use arc_swap::ArcSwap;
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

    /// Checks everything the data path relies on, once, when a table comes
    /// in (a PUT, or the state file at start), so no request meets a bad one.
    pub fn validate(&self, policy: &UpstreamPolicy) -> Result<(), SwitchError> {
        for (field, upstream) in [("active", &self.active), ("preview", &self.preview)] {
            if let Some(upstream) = upstream {
                policy
                    .check(&upstream.address)
                    .map_err(|reason| SwitchError::InvalidUpstream {
                        field,
                        address: upstream.address.clone(),
                        reason,
                    })?;
            }
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
    #[error("{field} upstream {address:?}: {reason}")]
    InvalidUpstream {
        field: &'static str,
        address: String,
        reason: Refusal,
    },
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
    use model::{SlotColor, Upstream};

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
        assert!(t.validate(&loopback()).is_ok());
        assert_eq!(t.canary_upstream().unwrap().1.address, "127.0.0.1:9002");
        assert_eq!(
            t.upstream(SlotColor::Green).unwrap().address,
            "127.0.0.1:9002"
        );

        t.canary.as_mut().unwrap().percent = 101;
        assert!(t.validate(&loopback()).is_err());
        t.canary.as_mut().unwrap().percent = 100;
        t.canary.as_mut().unwrap().slot = SlotColor::Blue;
        assert!(t
            .validate(&loopback())
            .unwrap_err()
            .to_string()
            .contains("must be the preview slot"));
        t.canary = None;
        t.preview = Some(up(SlotColor::Blue, 9003));
        assert!(t
            .validate(&loopback())
            .unwrap_err()
            .to_string()
            .contains("is the active slot"));
        t.preview = Some(Upstream {
            slot: SlotColor::Green,
            address: "nope".into(),
        });
        assert!(matches!(
            t.validate(&loopback()),
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
