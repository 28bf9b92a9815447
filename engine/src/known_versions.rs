//! The versions a release form offers: what the environment's runtime
//! could start (release directories, local and registry image tags),
//! newest first. A typed version is still accepted and checked when the
//! release is requested.

use crate::actor::Actor;
use crate::engine::Engine;
use crate::environments;
use crate::error::Result;
use crate::rbac::Action;
use model::SlotColor;

/// How many a form offers.
const OFFERED: usize = 20;

impl Engine {
    pub async fn known_versions(&self, actor: &Actor, env_name: &str) -> Result<Vec<String>> {
        self.authorize(actor, Action::ViewEnvironments, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let Ok(runtime) = self.runtime_for(&env) else {
            return Ok(Vec::new());
        };
        // The spec of version "{version}" is the template itself, with the
        // registry login resolved.
        let spec = self.slot_spec(&env, SlotColor::Blue, "{version}").await?;
        match runtime
            .versions(&spec.artifact, spec.registry.as_ref(), OFFERED)
            .await
        {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::warn!(env = %env.name, error = %e, "could not list versions");
                Ok(Vec::new())
            }
        }
    }
}
