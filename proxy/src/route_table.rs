//! The routing table itself (active slot, preview slot, canary split) and
//! the rules every table must obey, wherever it comes from: a PUT on the
//! admin API or the state file read at start.

use crate::upstream_policy::{Refusal, UpstreamPolicy};
use model::{RoutingTable, SlotColor, Upstream};
use serde::{Deserialize, Serialize};

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
    pub fn validate(&self, policy: &UpstreamPolicy) -> Result<(), TableError> {
        for (field, upstream) in [("active", &self.active), ("preview", &self.preview)] {
            if let Some(upstream) = upstream {
                policy
                    .check(&upstream.address)
                    .map_err(|reason| TableError::InvalidUpstream {
                        field,
                        address: upstream.address.clone(),
                        reason,
                    })?;
            }
        }
        let invalid = |reason: String| Err(TableError::InvalidTable(reason));
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

/// Why a table is refused: the same reasons whether it came in a PUT or was
/// read from the state file.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{field} upstream {address:?}: {reason}")]
    InvalidUpstream {
        field: &'static str,
        address: String,
        reason: Refusal,
    },
    #[error("invalid routing table: {0}")]
    InvalidTable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> UpstreamPolicy {
        UpstreamPolicy::loopback_only()
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
            Err(TableError::InvalidUpstream { .. })
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
}
