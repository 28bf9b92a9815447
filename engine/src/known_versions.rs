//! The versions a release form offers: what the environment's runtime
//! could start (release directories, local and registry image tags),
//! newest first. A typed version is still accepted and checked when the
//! release is requested.
//!
//! Asking is not free: the Docker runtime asks the daemon and the registry
//! (up to 2 s), and the Releases page asks for every environment on every
//! load. So an answer is kept for a short while
//! ([`crate::version_cache::TTL`]) per environment, keyed by what it
//! was asked about (runtime, artifact template, registry user): changing
//! the artifact asks again at once. A push to the registry is not something
//! the console hears about, so a new tag shows up within that time; until
//! then it can still be typed, and is checked when the release is requested.

use crate::actor::Actor;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::Result;
use crate::rbac::Action;
use crate::version_cache::AskedAbout;

/// How many a form offers.
const OFFERED: usize = 20;

impl Engine {
    pub async fn known_versions(&self, actor: &Actor, env_name: &str) -> Result<Vec<String>> {
        self.authorize(actor, Action::ViewEnvironments, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let key = AskedAbout::of(&env);
        if let Some(versions) = self.inner.known_versions.fresh(env.id, &key) {
            return Ok(versions);
        }
        let versions = self.ask_runtime(&env).await;
        self.inner
            .known_versions
            .keep(env.id, key, versions.clone());
        Ok(versions)
    }

    /// The runtime's answer; empty when it cannot tell (also kept: a
    /// registry that times out would otherwise slow every page load).
    async fn ask_runtime(&self, env: &Environment) -> Vec<String> {
        let Ok(runtime) = self.runtime_for(env) else {
            return Vec::new();
        };
        // A form's suggestions: without the login (a secret that does not
        // decrypt), the registry's tags are left out, not the page.
        let login = self.registry_login(env).await.unwrap_or_else(|e| {
            tracing::warn!(env = %env.name, error = %e, "no registry login to list versions with");
            None
        });
        match runtime
            .versions(&env.artifact_template, login.as_ref(), OFFERED)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(env = %env.name, error = %e, "could not list versions");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environments::NewEnvironment;
    use crate::runtime::{Liveness, RegistryLogin, RunningSlot, Runtime, RuntimeError, SlotSpec};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// Answers `versions` with the template's name and counts the calls;
    /// starts nothing (the release form only asks).
    #[derive(Default)]
    struct CountingRuntime {
        asked: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Runtime for CountingRuntime {
        async fn check(&self, _: &SlotSpec) -> std::result::Result<(), RuntimeError> {
            Ok(())
        }
        async fn versions(
            &self,
            template: &str,
            _: Option<&RegistryLogin>,
            _: usize,
        ) -> std::result::Result<Vec<String>, RuntimeError> {
            let n = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(vec![format!("{template}#{n}")])
        }
        async fn start(&self, _: &SlotSpec) -> std::result::Result<RunningSlot, RuntimeError> {
            Err(RuntimeError::StartFailed(
                "a test double starts nothing".into(),
            ))
        }
        async fn stop(&self, _: &str, _: Duration) -> std::result::Result<(), RuntimeError> {
            Ok(())
        }
        async fn liveness(&self, _: &str) -> Liveness {
            Liveness::Exited("never started".into())
        }
    }

    async fn engine_with(runtime: Arc<CountingRuntime>) -> (Engine, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("db").display());
        let pool = crate::store::open(&url).await.unwrap();
        let engine = Engine::new(pool, runtime);
        environments::create(
            engine.pool(),
            &NewEnvironment::new(
                "shop",
                "http://127.0.0.1:1/",
                "/opt/shop/{version}/run",
                "http://127.0.0.1:2",
                "/nonexistent/token",
            ),
        )
        .await
        .unwrap();
        (engine, dir)
    }

    #[tokio::test]
    async fn a_second_ask_within_the_ttl_is_answered_without_the_runtime() {
        let runtime = Arc::new(CountingRuntime::default());
        let (engine, _dir) = engine_with(runtime.clone()).await;
        let system = Actor::system();
        let first = engine.known_versions(&system, "shop").await.unwrap();
        let second = engine.known_versions(&system, "shop").await.unwrap();
        assert_eq!(runtime.asked.load(Ordering::SeqCst), 1);
        assert_eq!(first, second);
        assert_eq!(first, vec!["/opt/shop/{version}/run#1".to_string()]);

        // Another artifact is another question: asked at once.
        crate::store::query("UPDATE environments SET artifact_template = ? WHERE name = 'shop'")
            .bind("/srv/shop/{version}/run")
            .execute(engine.pool())
            .await
            .unwrap();
        let changed = engine.known_versions(&system, "shop").await.unwrap();
        assert_eq!(runtime.asked.load(Ordering::SeqCst), 2);
        assert_eq!(changed, vec!["/srv/shop/{version}/run#2".to_string()]);
        engine.known_versions(&system, "shop").await.unwrap();
        assert_eq!(runtime.asked.load(Ordering::SeqCst), 2, "kept again");
    }
}
