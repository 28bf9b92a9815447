//! The routing table itself (active slot, preview slot, canary split,
//! tester rule) and the rules every table must obey, wherever it comes
//! from: a PUT on the admin API or the state file read at start.

use crate::upstream_policy::{Refusal, UpstreamPolicy};
use model::{SlotColor, Upstream};

/// What the proxy routes by is the console's own [`model::RoutingTable`]
/// (generation, active, preview, canary, testers): one type, so what the
/// console writes is what the proxy installs and answers, field for field.
/// The optional fields are absent from the JSON when unset, so a console
/// that only knows `{generation, active}` reads and writes it unchanged.
pub type RouteTable = model::RoutingTable;
pub use model::{Canary, NameValue, TesterRule};

/// The rules and lookups the data path needs on a table.
pub trait TableRules {
    /// The upstream serving `slot` in this table, if any.
    fn upstream(&self, slot: SlotColor) -> Option<&Upstream>;
    /// The canary split in effect: the share and the upstream it goes to.
    fn canary_upstream(&self) -> Option<(u8, &Upstream)>;
    /// The tester rule in effect and the preview upstream it sends to.
    fn tester_upstream(&self) -> Option<(&TesterRule, &Upstream)>;
    /// Checks everything the data path relies on, once, when a table comes
    /// in (a PUT, or the state file at start), so no request meets a bad one.
    fn validate(&self, policy: &UpstreamPolicy) -> Result<(), TableError>;
}

impl TableRules for RouteTable {
    fn upstream(&self, slot: SlotColor) -> Option<&Upstream> {
        [self.active.as_ref(), self.preview.as_ref()]
            .into_iter()
            .flatten()
            .find(|u| u.slot == slot)
    }

    fn canary_upstream(&self) -> Option<(u8, &Upstream)> {
        let canary = self.canary?;
        let preview = self.preview.as_ref().filter(|p| p.slot == canary.slot)?;
        self.active.as_ref()?;
        Some((canary.percent, preview))
    }

    fn tester_upstream(&self) -> Option<(&TesterRule, &Upstream)> {
        let rule = self.testers.as_ref().filter(|r| !r.is_empty())?;
        self.active.as_ref()?;
        Some((rule, self.preview.as_ref()?))
    }

    fn validate(&self, policy: &UpstreamPolicy) -> Result<(), TableError> {
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
        if let Some(testers) = &self.testers {
            if self.active.is_none() || self.preview.is_none() {
                return invalid(
                    "testers need an active and a preview slot (they are sent to `preview`)"
                        .to_string(),
                );
            }
            testers.check().map_err(|(field, reason)| {
                // The model names the console's form fields; here the JSON's.
                let field = match field {
                    "tester_header" => "testers.header",
                    _ => "testers.cookie",
                };
                TableError::InvalidTable(format!("{field}: {reason}"))
            })?;
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
            testers: None,
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
        // (`RouteTable` is `model::RoutingTable`: a table the console sends
        // comes back field for field, canary and testers included.)
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

    fn held() -> RouteTable {
        let up = |slot, port: u16| Upstream {
            slot,
            address: format!("127.0.0.1:{port}"),
        };
        RouteTable {
            generation: 1,
            active: Some(up(SlotColor::Blue, 9001)),
            preview: Some(up(SlotColor::Green, 9002)),
            canary: None,
            testers: Some(TesterRule {
                header: Some(NameValue {
                    name: "X-Tester".into(),
                    value: "me".into(),
                }),
                cookie: Some(NameValue {
                    name: "tester".into(),
                    value: "yes".into(),
                }),
            }),
        }
    }

    fn refusal(t: &RouteTable) -> String {
        t.validate(&loopback()).unwrap_err().to_string()
    }

    #[test]
    fn tester_rules_are_validated_naming_the_field() {
        let t = held();
        assert!(t.validate(&loopback()).is_ok());
        assert_eq!(t.tester_upstream().unwrap().1.slot, SlotColor::Green);

        let mut no_preview = held();
        no_preview.preview = None;
        assert!(refusal(&no_preview).contains("testers need an active and a preview slot"));
        let mut no_active = held();
        no_active.active = None;
        assert!(refusal(&no_active).contains("testers need"));

        let with_header = |name: &str, value: &str| {
            let mut t = held();
            t.testers.as_mut().unwrap().header = Some(NameValue {
                name: name.into(),
                value: value.into(),
            });
            t
        };
        let with_cookie = |name: &str, value: &str| {
            let mut t = held();
            t.testers.as_mut().unwrap().cookie = Some(NameValue {
                name: name.into(),
                value: value.into(),
            });
            t
        };
        for (t, says) in [
            (with_header("", "x"), "testers.header: header name is empty"),
            (
                with_header("X Tester", "x"),
                "testers.header: header name \"X Tester\"",
            ),
            (
                with_header(&"x".repeat(65), "x"),
                "testers.header: header name is too long",
            ),
            (
                with_header("Cookie", "x"),
                "testers.header: header \"Cookie\" cannot",
            ),
            (
                with_header("x-t", ""),
                "testers.header: header value is empty",
            ),
            (
                with_header("x-t", "a\nb"),
                "testers.header: header value holds",
            ),
            (
                with_header("x-t", " a"),
                "testers.header: header value cannot start",
            ),
            (
                with_header("x-t", &"v".repeat(257)),
                "testers.header: header value is too long",
            ),
            (
                with_cookie("a=b", "x"),
                "testers.cookie: cookie name \"a=b\"",
            ),
            (
                with_cookie("t", "a;b"),
                "testers.cookie: cookie value holds",
            ),
            (
                with_cookie("t", "a b"),
                "testers.cookie: cookie value holds",
            ),
        ] {
            let why = refusal(&t);
            assert!(why.contains(says), "{why:?} should say {says:?}");
        }
        // At the limits: accepted.
        assert!(with_header(&"x".repeat(64), &"v".repeat(256))
            .validate(&loopback())
            .is_ok());

        // Wire shape: testers travel as the console wrote them, and a table
        // without them keeps the old shape.
        let json = serde_json::to_string(&held()).unwrap();
        assert!(json.contains(r#""testers":{"header":{"name":"X-Tester","value":"me"},"cookie":{"name":"tester","value":"yes"}}"#), "{json}");
        assert_eq!(serde_json::from_str::<RouteTable>(&json).unwrap(), held());
    }
}
