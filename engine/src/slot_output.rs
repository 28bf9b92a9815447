//! A slot's recent output (what the service printed), as deployers and
//! admins read it on the dashboard: bounded, newest last, and with the
//! environment's secret values masked — a service that prints its own
//! credentials does not show them to everyone who can deploy it.

use crate::actor::Actor;
use crate::engine::Engine;
use crate::environments;
use crate::error::Result;
use crate::rbac::Action;
use crate::slot_env;
use model::{SlotColor, SlotOutputView};

/// The newest 64 KiB: enough to see why a start failed, small enough to
/// poll every few seconds.
const LIMIT_BYTES: usize = 64 * 1024;

/// Replaces every secret's value in `text` by `[secret NAME]`. Values shorter
/// than 4 characters are left alone: masking "1" would make the output
/// unreadable and hide nothing worth hiding.
fn mask(mut text: String, secrets: &[(String, String)]) -> String {
    for (name, value) in secrets {
        if value.len() >= 4 && text.contains(value.as_str()) {
            text = text.replace(value.as_str(), &format!("[secret {name}]"));
        }
    }
    text
}

impl Engine {
    pub async fn slot_output(
        &self,
        actor: &Actor,
        env_name: &str,
        color: SlotColor,
    ) -> Result<SlotOutputView> {
        self.authorize(actor, Action::Deploy, Some(env_name))
            .await?;
        let env = environments::find(self.pool(), env_name).await?;
        let text = self
            .runtime_for(&env)?
            .recent_output(&env.name, color, LIMIT_BYTES)
            .await?;
        let secrets =
            slot_env::secret_values(self.pool(), self.secrets.as_deref(), env.id, &env.name)
                .await?;
        Ok(SlotOutputView {
            color,
            text: mask(text, &secrets),
            limit_bytes: LIMIT_BYTES as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_values_are_masked_by_name() {
        let secrets = vec![
            ("API_SECRET".to_string(), "s3cr3t".to_string()),
            ("PIN".to_string(), "7".to_string()),
        ];
        let text = "token=s3cr3t retries=7\ns3cr3t again\n".to_string();
        assert_eq!(
            super::mask(text, &secrets),
            "token=[secret API_SECRET] retries=7\n[secret API_SECRET] again\n"
        );
    }
}
