//! The audit log as the console shows, filters and exports it.

use serde::{Deserialize, Serialize};

/// One audit log entry as the console shows and exports it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryView {
    pub id: i64,
    pub at: String,
    pub actor_kind: String,
    pub actor_name: String,
    pub source_ip: Option<String>,
    pub action: String,
    pub environment: Option<String>,
    pub target: Option<String>,
    pub reason: Option<String>,
    pub result: String,
    /// JSON object, as stored.
    pub details: String,
    pub hash: String,
}

/// Which audit entries to show. Empty fields do not filter.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub environment: Option<String>,
    /// Inclusive bounds, RFC 3339 or a prefix of it ("2026-11-22", "2026-11-22T10:00").
    pub since: Option<String>,
    pub until: Option<String>,
    /// Words to find anywhere in the entry.
    pub text: Option<String>,
    /// Keyset pagination: only entries older than this id.
    pub before: Option<i64>,
}

/// One page of the audit log, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` to get the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// The audit log's seal, for the audit page: the newest signed checkpoint
/// and what the console's last verification found.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSealView {
    /// `None` until the first checkpoint is signed.
    pub newest: Option<CheckpointView>,
    /// When the chain and the checkpoints were last verified, and whether
    /// they checked out (`None` before the first verification).
    pub checked_at: Option<String>,
    pub intact: Option<bool>,
    /// What failed, for admins only (others see that it failed).
    pub problem: Option<String>,
}

/// One signed checkpoint: after `entries` entries, at `at`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointView {
    pub seq: u64,
    pub at: String,
    pub entries: u64,
    /// The signing key, `ed25519:<hex>`.
    pub key: String,
}

/// One field of an audit entry's details as the audit page lists it: the
/// key, its value as text, and where the value leads when it names
/// something the console has a page for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailField {
    pub key: String,
    pub value: String,
    pub href: Option<String>,
}

/// The fields of an entry's details (a JSON object, as stored), by key. A deployment or release id links to its page,
/// a person's name to the audit entries of that person; nested values are
/// shown as compact JSON. Details that are not an object (none are written
/// so, but the column is text) come back as one field named `details`.
pub fn detail_fields(details: &str) -> Vec<DetailField> {
    use serde_json::Value;
    let object = match serde_json::from_str::<Value>(details) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => return Vec::new(),
        _ => {
            return vec![DetailField {
                key: "details".into(),
                value: details.into(),
                href: None,
            }]
        }
    };
    object
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(key, v)| {
            let href = match (key.as_str(), &v) {
                ("deployment", Value::Number(n)) if n.is_i64() => Some(format!("/deployments/{n}")),
                ("release", Value::Number(n)) if n.is_i64() => Some(format!("/releases/{n}")),
                ("signed_by" | "owner" | "requested_by", Value::String(name)) => {
                    Some(audit_href("actor", name))
                }
                ("environment", Value::String(name)) => Some(audit_href("environment", name)),
                _ => None,
            };
            let value = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            DetailField { key, value, href }
        })
        .collect()
}

/// The audit page filtered on one field (`actor`, `environment`) = `value`.
pub fn audit_href(field: &str, value: &str) -> String {
    format!("/audit?{field}={}", query_value(value))
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters
/// pass as they are).
pub fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: &str, value: &str, href: Option<&str>) -> DetailField {
        DetailField {
            key: key.into(),
            value: value.into(),
            href: href.map(Into::into),
        }
    }

    #[test]
    fn details_become_fields_with_links_to_what_they_name() {
        let fields = detail_fields(
            r#"{"deployment":12,"release":3,"signed_by":"bob smith","environment":"prod/eu","message":"slow","preview":null,"items":{"a":1}}"#,
        );
        assert_eq!(
            fields,
            vec![
                field("deployment", "12", Some("/deployments/12")),
                field(
                    "environment",
                    "prod/eu",
                    Some("/audit?environment=prod%2Feu")
                ),
                field("items", r#"{"a":1}"#, None),
                field("message", "slow", None),
                field("release", "3", Some("/releases/3")),
                field("signed_by", "bob smith", Some("/audit?actor=bob%20smith")),
            ]
        );
    }

    #[test]
    fn a_deployment_that_is_not_an_id_and_details_that_are_not_an_object_link_nowhere() {
        assert_eq!(
            detail_fields(r#"{"deployment":"<script>"}"#),
            vec![field("deployment", "<script>", None)]
        );
        assert_eq!(
            detail_fields("not json"),
            vec![field("details", "not json", None)]
        );
        assert_eq!(detail_fields("{}"), vec![]);
        assert_eq!(detail_fields("null"), vec![]);
    }
}
