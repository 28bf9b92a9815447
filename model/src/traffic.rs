//! Where users go (the routing table a router serves) and what they got
//! from each slot (the dashboard's traffic series).

use crate::SlotColor;
use serde::{Deserialize, Serialize};

/// Where switchyard-proxy sends user traffic. `generation` fences writers:
/// the proxy refuses a table whose generation is not newer than its own, so a
/// stale deploy worker cannot switch traffic back behind a newer one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RoutingTable {
    pub generation: u64,
    pub active: Option<Upstream>,
    /// The idle slot, published on the router's preview address (never
    /// users' traffic) while a deploy's gates run. Absent from the JSON when
    /// unset, so a router that knows only `{generation, active}` reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Upstream>,
    /// A share of new users sent to the preview slot (a held deploy's
    /// canary). Absent (off) unless set, like `testers`: every table the
    /// pipeline writes leaves both out, so a switch, abort or withdrawal
    /// ends them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Users whose request carries this header or cookie reach the preview
    /// slot on the public address (testers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testers: Option<TesterRule>,
}

/// `percent` % of new clients on the public address go to `slot`, which
/// must be the table's preview slot; a cookie keeps each on its slot.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    pub slot: SlotColor,
    /// 0 (nobody new) to 100.
    pub percent: u8,
}

/// Requests that match either part go to the preview slot.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TesterRule {
    /// A request header (name matched case-insensitively, value exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<NameValue>,
    /// A cookie (name and value matched exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<NameValue>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// The longest tester header or cookie name (the proxy matches names of up
/// to this length without allocating).
pub const MAX_TESTER_NAME: usize = 64;
/// The longest tester header or cookie value.
pub const MAX_TESTER_VALUE: usize = 256;

impl TesterRule {
    /// Neither part set: the same as no rule.
    pub fn is_empty(&self) -> bool {
        self.header.is_none() && self.cookie.is_none()
    }

    /// Checks the rule the proxy and the console both enforce. The error
    /// names the field (`tester_header`, `tester_cookie`) and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(h) = &self.header {
            check_name("tester_header", "header", &h.name)?;
            if h.name.eq_ignore_ascii_case("cookie") || h.name.eq_ignore_ascii_case("host") {
                return Err((
                    "tester_header",
                    format!(
                        "header {:?} cannot be a tester rule (use the cookie rule for cookies)",
                        h.name
                    ),
                ));
            }
            check_value("tester_header", "header", &h.value, |b| {
                (0x21..=0x7e).contains(&b) || b == b' '
            })?;
            if h.value.starts_with(' ') || h.value.ends_with(' ') {
                return Err((
                    "tester_header",
                    "header value cannot start or end with a space".to_string(),
                ));
            }
        }
        if let Some(c) = &self.cookie {
            check_name("tester_cookie", "cookie", &c.name)?;
            // RFC 6265 cookie-octet: no space, quote, comma, semicolon or backslash.
            check_value(
                "tester_cookie",
                "cookie",
                &c.value,
                |b| matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e),
            )?;
        }
        Ok(())
    }
}

/// An RFC 9110 token (header and cookie names).
fn check_name(field: &'static str, what: &str, name: &str) -> Result<(), (&'static str, String)> {
    if name.is_empty() {
        return Err((field, format!("{what} name is empty")));
    }
    if name.len() > MAX_TESTER_NAME {
        return Err((
            field,
            format!("{what} name is too long (at most {MAX_TESTER_NAME} characters)"),
        ));
    }
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(tchar) {
        return Err((
            field,
            format!("{what} name {name:?} may hold only letters, digits and !#$%&'*+-.^_`|~"),
        ));
    }
    Ok(())
}

fn check_value(
    field: &'static str,
    what: &str,
    value: &str,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), (&'static str, String)> {
    if value.is_empty() {
        return Err((field, format!("{what} value is empty")));
    }
    if value.len() > MAX_TESTER_VALUE {
        return Err((
            field,
            format!("{what} value is too long (at most {MAX_TESTER_VALUE} characters)"),
        ));
    }
    if !value.bytes().all(allowed) {
        return Err((
            field,
            format!("{what} value holds a character a {what} cannot carry"),
        ));
    }
    Ok(())
}

/// A held deploy's canary as a deployer sets it (and as its hold shows it):
/// the share of new users and the testers' header and cookie.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CanarySetting {
    /// 0 (off) to 100.
    pub percent: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<NameValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<NameValue>,
}

impl CanarySetting {
    /// Nothing routed to the preview slot by it.
    pub fn is_off(&self) -> bool {
        self.percent == 0 && self.header.is_none() && self.cookie.is_none()
    }

    /// The tester rule it sets, if any.
    pub fn testers(&self) -> Option<TesterRule> {
        let rule = TesterRule {
            header: self.header.clone(),
            cookie: self.cookie.clone(),
        };
        (!rule.is_empty()).then_some(rule)
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub slot: SlotColor,
    /// host:port of the slot.
    pub address: String,
}

/// One point of a slot's traffic chart: what users got from it through the
/// router during one step.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// The step ended this many seconds ago.
    pub ago_secs: u64,
    pub requests_per_sec: f64,
    /// 5xx / responses, 0.0..=1.0.
    pub error_rate: f64,
    pub p95_ms: Option<f64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotSeries {
    pub slot: SlotColor,
    /// Oldest first.
    pub points: Vec<MetricPoint>,
}

/// Both slots' traffic over the last minutes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficSeries {
    pub window_secs: u64,
    pub step_secs: u64,
    pub slots: Vec<SlotSeries>,
    /// How long ago traffic last switched slots (a deploy's or a rollback's
    /// switch step), when that was inside the window: the charts mark it.
    #[serde(default)]
    pub switched_ago_secs: Option<u64>,
}

/// The dashboard's metrics panel: the series, or why there is none (a router
/// that does not count per slot, a proxy that does not answer).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficView {
    pub series: Option<TrafficSeries>,
    pub unavailable: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_tables_and_holds_read_and_write_the_same() {
        let old = r#"{"generation":4,"active":{"slot":"blue","address":"127.0.0.1:1"}}"#;
        let t: RoutingTable = serde_json::from_str(old).unwrap();
        assert_eq!((t.canary, t.testers.clone()), (None, None));
        assert_eq!(serde_json::to_string(&t).unwrap(), old);
        let hold = r#"{"preview_url":"http://p","held_at":"a","until":"b","decision":null,"decided_by":null,"reason":null,"decided_at":null}"#;
        let h: crate::HoldView = serde_json::from_str(hold).unwrap();
        assert_eq!(h.canary, None);
        assert_eq!(serde_json::to_string(&h).unwrap(), hold);
    }

    #[test]
    fn a_setting_is_off_only_without_share_and_testers() {
        let mut s = CanarySetting::default();
        assert!(s.is_off() && s.testers().is_none());
        s.cookie = Some(NameValue {
            name: "t".into(),
            value: "1".into(),
        });
        assert!(!s.is_off());
        assert!(s.testers().unwrap().check().is_ok());
        s.cookie.as_mut().unwrap().value = "a\"b".into();
        assert_eq!(s.testers().unwrap().check().unwrap_err().0, "tester_cookie");
    }
}
