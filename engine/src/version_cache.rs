//! The release form's versions, kept per environment for a short while
//! (`known_versions.rs` asks the runtimes and explains why). Apart from
//! `known_versions.rs` so that the engine's state can hold the cache
//! without the engine and the asking importing each other.

use crate::environments::Environment;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an answer is kept: short, since a push to a registry is not
/// something the console hears about.
pub(crate) const TTL: Duration = Duration::from_secs(30);

/// What an answer depends on besides time: another artifact (or runtime,
/// or login) is another question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AskedAbout {
    runtime: model::RuntimeKind,
    artifact: String,
    registry_user: Option<String>,
}

impl AskedAbout {
    pub(crate) fn of(env: &Environment) -> Self {
        AskedAbout {
            runtime: env.runtime,
            artifact: env.artifact_template.clone(),
            registry_user: env.docker.registry_user.clone(),
        }
    }
}

/// One kept answer: when, about what, and the versions.
type Kept = (Instant, AskedAbout, Vec<String>);

/// Answers by environment id.
#[derive(Debug)]
pub(crate) struct VersionCache {
    ttl: Duration,
    entries: Mutex<HashMap<i64, Kept>>,
}

impl Default for VersionCache {
    fn default() -> Self {
        VersionCache::with_ttl(TTL)
    }
}

impl VersionCache {
    pub(crate) fn with_ttl(ttl: Duration) -> Self {
        VersionCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The kept answer for `env_id`, if it is younger than the TTL and was
    /// asked about the same thing.
    pub(crate) fn fresh(&self, env_id: i64, key: &AskedAbout) -> Option<Vec<String>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&env_id) {
            Some((at, asked, versions)) if asked == key && at.elapsed() < self.ttl => {
                Some(versions.clone())
            }
            _ => None,
        }
    }

    pub(crate) fn keep(&self, env_id: i64, key: AskedAbout, versions: Vec<String>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(env_id, (Instant::now(), key, versions));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_older_than_the_ttl_is_not_used() {
        let key = AskedAbout {
            runtime: model::RuntimeKind::Docker,
            artifact: "img:{version}".into(),
            registry_user: None,
        };
        let kept = VersionCache::with_ttl(Duration::from_secs(60));
        kept.keep(1, key.clone(), vec!["v1".into()]);
        assert_eq!(kept.fresh(1, &key), Some(vec!["v1".to_string()]));
        assert_eq!(kept.fresh(2, &key), None, "another environment");
        let other_login = AskedAbout {
            registry_user: Some("ci".into()),
            ..key.clone()
        };
        assert_eq!(kept.fresh(1, &other_login), None, "another login");
        let expired = VersionCache::with_ttl(Duration::ZERO);
        expired.keep(1, key.clone(), vec!["v1".into()]);
        assert_eq!(expired.fresh(1, &key), None);
    }
}
