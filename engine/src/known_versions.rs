//! The versions a release form offers: what the environment's runtime
//! could start (release directories, local and registry image tags),
//! newest first. A typed version is still accepted and checked when the
//! release is requested.

use crate::actor::Actor;
use crate::engine::Engine;
use crate::environments;
use crate::error::Result;
use crate::rbac::Action;

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
        // A form's suggestions: without the login (a secret that does not
        // decrypt), the registry's tags are left out, not the page.
        let login = self.registry_login(&env).await.unwrap_or_else(|e| {
            tracing::warn!(env = %env.name, error = %e, "no registry login to list versions with");
            None
        });
        match runtime
            .versions(&env.artifact_template, login.as_ref(), OFFERED)
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
