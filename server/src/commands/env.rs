//! `switchyard env …`: an environment's variables and secrets from the
//! command line, as the system actor on the console's own data directory
//! (whoever can run this can read the database and the keys anyway).
//! A secret's value is read from standard input, never from an argument:
//! arguments show in `ps` and in shell history.

use crate::console::offline_engine;
use anyhow::Context;
use clap::Subcommand;
use engine::Actor;
use std::io::Read;
use std::path::Path;

#[derive(Subcommand)]
pub enum EnvCommand {
    /// List the environments.
    List,
    /// Show an environment: slots, variables (with values) and secrets
    /// (names and when they were set, never values).
    Show { environment: String },
    /// Set plain variables: `NAME=value` (repeatable). Names that say
    /// "credential" (…_PASSWORD, …_TOKEN, …) are refused: use `secret`.
    Set {
        environment: String,
        #[arg(required = true)]
        assignments: Vec<String>,
    },
    /// Set a secret; its value is read from standard input (a trailing
    /// newline is dropped). Encrypted at rest, never shown again.
    Secret { environment: String, name: String },
    /// Remove a variable or a secret.
    Unset { environment: String, name: String },
}

pub async fn run(data_dir: &Path, command: EnvCommand) -> anyhow::Result<()> {
    let engine = offline_engine(data_dir).await?;
    let system = Actor::system();
    match command {
        EnvCommand::List => {
            for name in engine.environment_names(&system).await? {
                println!("{name}");
            }
        }
        EnvCommand::Show { environment } => {
            let env = engine.environment(&system, &environment).await?;
            println!("{}: users reach {}", env.name, env.app_url);
            for s in &env.slots {
                println!(
                    "  slot {:<5} {:<8} {}",
                    s.color.to_string(),
                    s.state.to_string(),
                    s.version.as_deref().unwrap_or("-")
                );
            }
            let vars = engine.slot_env(&system, &environment).await?;
            for v in &vars.variables {
                println!("  variable {}={}", v.name, v.value);
            }
            for s in &vars.secrets {
                println!(
                    "  secret   {} (set, updated at {} by {})",
                    s.name, s.updated_at, s.updated_by
                );
            }
        }
        EnvCommand::Set {
            environment,
            assignments,
        } => {
            // Every assignment is checked before the first is written.
            let mut pairs = Vec::new();
            for a in &assignments {
                let (name, value) = a
                    .split_once('=')
                    .with_context(|| format!("{a:?}: expected NAME=value"))?;
                engine::slot_env_check(name, value)?;
                pairs.push((name, value));
            }
            for (name, value) in pairs {
                engine
                    .set_variable(&system, &environment, name, value)
                    .await?;
                println!("set {name} in {environment}");
            }
        }
        EnvCommand::Secret { environment, name } => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("reading the secret from standard input")?;
            let value = value.strip_suffix('\n').unwrap_or(&value);
            let value = value.strip_suffix('\r').unwrap_or(value);
            engine
                .set_secret(&system, &environment, &name, value)
                .await?;
            println!("secret {name} of {environment} set (encrypted; it will not be shown)");
        }
        EnvCommand::Unset { environment, name } => {
            engine.unset_variable(&system, &environment, &name).await?;
            println!("removed {name} from {environment}");
        }
    }
    Ok(())
}

/// `switchyard secrets rotate-key`.
pub async fn rotate_secrets_key(data_dir: &Path) -> anyhow::Result<()> {
    let engine = offline_engine(data_dir).await?;
    let n = engine.rotate_secrets_key(&Actor::system()).await?;
    println!("secrets key rotated: {n} secrets re-encrypted");
    Ok(())
}
