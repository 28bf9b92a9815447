//! An environment's variables and secrets as admins set them: plain
//! variables (shown, audited with before and after) and secrets (encrypted,
//! write-only: no page, export, audit entry or error ever holds a value).
//! A change applies from the next slot start; running slots keep what they
//! started with.

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::engine::Engine;
use crate::environments::{self, Environment};
use crate::error::{Error, Result};
use crate::rbac::Action;
use crate::slot_env::{self, Setting};
use model::SlotEnvView;

impl Engine {
    /// Variables with values and secrets by name (admins: the values of
    /// variables are configuration, not for every viewer).
    pub async fn slot_env(&self, actor: &Actor, env_name: &str) -> Result<SlotEnvView> {
        let env = self.environment_to_configure(actor, env_name).await?;
        slot_env::view(self.pool(), env.id).await
    }

    /// Sets a plain variable, audited as `environment.variable` with the
    /// value before and after. A name that says "credential" is refused:
    /// such values belong in secrets.
    pub async fn set_variable(
        &self,
        actor: &Actor,
        env_name: &str,
        name: &str,
        value: &str,
    ) -> Result<()> {
        let env = self.environment_to_configure(actor, env_name).await?;
        slot_env::validate_name(name)?;
        slot_env::refuse_secret_like(name)?;
        slot_env::validate_value("value", value)?;
        let before = slot_env::variable(self.pool(), env.id, name).await?;
        let was_secret = slot_env::has_secret(self.pool(), env.id, name).await?;
        let mut ev = actor.event("environment.variable", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.target = Some(name.to_string());
        ev.details = serde_json::json!({
            "before": before,
            "after": value,
            "replaced_secret": was_secret,
        });
        // Audited first: a change that cannot be recorded is not made.
        self.audit(ev).await?;
        slot_env::set(
            self.pool(),
            env.id,
            name,
            Setting::Plain(value),
            &actor.name(),
        )
        .await
    }

    /// Sets a secret: encrypted with the data directory's key before it is
    /// stored, audited as `environment.secret` by name only.
    pub async fn set_secret(
        &self,
        actor: &Actor,
        env_name: &str,
        name: &str,
        value: &str,
    ) -> Result<()> {
        let env = self.environment_to_configure(actor, env_name).await?;
        slot_env::validate_name(name)?;
        slot_env::validate_value("secret", value)?;
        if value.is_empty() {
            return Err(Error::invalid("secret", "a secret cannot be empty"));
        }
        let secrets = self
            .secrets
            .as_deref()
            .ok_or_else(|| Error::Internal("this console holds no secrets key".to_string()))?;
        let sealed = secrets.seal(&env.name, name, value)?;
        let replaced = slot_env::has_secret(self.pool(), env.id, name).await?;
        let was_variable = slot_env::variable(self.pool(), env.id, name)
            .await?
            .is_some();
        let mut ev = actor.event("environment.secret", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.target = Some(name.to_string());
        ev.details = serde_json::json!({
            "replaced": replaced,
            "replaced_variable": was_variable,
        });
        self.audit(ev).await?;
        slot_env::set(
            self.pool(),
            env.id,
            name,
            Setting::Secret(sealed),
            &actor.name(),
        )
        .await
    }

    /// Removes a variable or secret, audited as `environment.unset` (a
    /// variable's old value included, a secret's never).
    pub async fn unset_variable(&self, actor: &Actor, env_name: &str, name: &str) -> Result<()> {
        let env = self.environment_to_configure(actor, env_name).await?;
        let before = slot_env::variable(self.pool(), env.id, name).await?;
        let secret = slot_env::has_secret(self.pool(), env.id, name).await?;
        if before.is_none() && !secret {
            return Err(Error::NotFound(format!(
                "variable or secret {name} of {}",
                env.name
            )));
        }
        let mut ev = actor.event("environment.unset", Outcome::Ok);
        ev.environment = Some(env.name.clone());
        ev.target = Some(name.to_string());
        ev.details = serde_json::json!({ "before": before, "secret": secret });
        self.audit(ev).await?;
        slot_env::unset(self.pool(), env.id, name).await?;
        Ok(())
    }

    /// Re-encrypts every secret under a fresh key and makes it the data
    /// directory's (`switchyard secrets rotate-key`); how many secrets.
    pub async fn rotate_secrets_key(&self, actor: &Actor) -> Result<u64> {
        self.authorize(actor, Action::ManageEnvironments, None)
            .await?;
        let old = self
            .secrets
            .as_deref()
            .ok_or_else(|| Error::Internal("this console holds no secrets key".to_string()))?;
        let new = old.begin_rotation()?;
        let count = slot_env::reencrypt_all(self.pool(), old, &new).await?;
        new.finish_rotation()?;
        let mut ev = actor.event("secrets.rotate_key", Outcome::Ok);
        ev.details = serde_json::json!({ "secrets": count, "key_id": new.key_id() });
        self.audit(ev).await?;
        Ok(count)
    }
}

impl Engine {
    /// `env_name` for an admin changing its configuration: the role is
    /// checked (and a refusal audited) before the environment is looked up.
    async fn environment_to_configure(&self, actor: &Actor, env_name: &str) -> Result<Environment> {
        self.authorize(actor, Action::ManageEnvironments, Some(env_name))
            .await?;
        environments::find(self.pool(), env_name).await
    }
}
