//! Field-by-field differences between two configs of an environment, named
//! the way the file names them (`pipeline.watch_window_ms`,
//! `variables.GREETING`), for `apply`'s plan and the audit entry of an edit.

use model::{EnvironmentConfig, FieldChange};
use serde_json::Value;
use std::collections::BTreeMap;

/// Every field of `c` as dotted name → shown value. A secret appears as
/// `secrets.NAME = "declared"`: its name, never a value (there is none here).
pub(super) fn fields(c: &EnvironmentConfig) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut value = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Some(obj) = value.as_object_mut() {
        if let Some(Value::Array(names)) = obj.remove("secrets") {
            for n in names {
                if let Value::String(n) = n {
                    out.insert(format!("secrets.{n}"), "declared".to_string());
                }
            }
        }
    }
    flatten("", &value, &mut out);
    out
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// What changes from `before` to `after`, in field order.
pub(super) fn changes(before: &EnvironmentConfig, after: &EnvironmentConfig) -> Vec<FieldChange> {
    let (b, a) = (fields(before), fields(after));
    let mut names: Vec<&String> = b.keys().chain(a.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| b.get(*n) != a.get(*n))
        .map(|n| FieldChange {
            field: n.clone(),
            before: b.get(n).cloned(),
            after: a.get(n).cloned(),
        })
        .collect()
}

/// Every field of a new environment, as additions.
pub(super) fn additions(c: &EnvironmentConfig) -> Vec<FieldChange> {
    fields(c)
        .into_iter()
        .map(|(field, v)| FieldChange {
            field,
            before: None,
            after: Some(v),
        })
        .collect()
}
