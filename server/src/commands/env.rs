//! `switchyard env …`: environments, their variables and secrets from the
//! command line, as the system actor on the console's own data directory
//! (whoever can run this can read the database and the keys anyway).
//! A secret's value is read from standard input, never from an argument:
//! arguments show in `ps` and in shell history.

use crate::console::{offline_engine, offline_engine_with_docker};
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
    /// Create an environment. Other fields as `key=value` (the names of
    /// `switchyard export`'s file, e.g. `pipeline.watch_window_ms=0`).
    Create {
        name: String,
        /// `process` (a command line) or `docker` (an image).
        #[arg(long, default_value = "process")]
        runtime: String,
        /// Command line or image reference holding `{version}`.
        #[arg(long)]
        artifact: String,
        /// Where users reach the service.
        #[arg(long)]
        app_url: String,
        /// switchyard-proxy's admin API (builtin router).
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        admin_url: String,
        /// The file holding the proxy's admin token (default: the data
        /// directory's `proxy.token`).
        #[arg(long)]
        token_file: Option<String>,
        /// `default`, `empty`, or the name of an environment to copy.
        #[arg(long, default_value = "default")]
        checklist: String,
        /// A host name it is served under (repeatable; exact or `*.`
        /// wildcard): a named route on a switchyard-proxy it may share
        /// with other environments that name theirs.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Only paths under this prefix (with `--host`), e.g. `/api`.
        #[arg(long)]
        path_prefix: Option<String>,
        /// Plain-HTTP requests to its host names are redirected to HTTPS.
        #[arg(long)]
        redirect_https: bool,
        settings: Vec<String>,
    },
    /// Change an environment's fields: `key=value` (see `create`); the name
    /// never changes. Prints what changed.
    Edit {
        environment: String,
        #[arg(required = true)]
        settings: Vec<String>,
    },
    /// Archive an environment: it leaves every list, its slots stop (the
    /// idle one first), its history and audit entries stay.
    Archive {
        environment: String,
        /// Needed when the environment still serves users.
        #[arg(long)]
        stop_serving: bool,
    },
}

pub async fn run(data_dir: &Path, command: EnvCommand) -> anyhow::Result<()> {
    let engine = match &command {
        // Archiving stops slots, which may be containers; creating and
        // editing start the environment's proxy when it is the console's.
        EnvCommand::Create { .. } | EnvCommand::Edit { .. } | EnvCommand::Archive { .. } => {
            offline_engine_with_docker(data_dir).await?
        }
        _ => offline_engine(data_dir).await?,
    };
    let system = Actor::system();
    match command {
        EnvCommand::Create {
            name,
            runtime,
            artifact,
            app_url,
            admin_url,
            token_file,
            checklist,
            hosts,
            path_prefix,
            redirect_https,
            settings,
        } => {
            let token_file = token_file.unwrap_or_else(|| {
                let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.into());
                dir.join("proxy.token").display().to_string()
            });
            let mut router = toml::Table::new();
            router.insert("admin_url".into(), admin_url.into());
            router.insert("token_file".into(), token_file.into());
            let mut table = toml::Table::new();
            table.insert("name".into(), name.into());
            table.insert("runtime".into(), runtime.into());
            table.insert("artifact".into(), artifact.into());
            table.insert("app_url".into(), app_url.into());
            table.insert("router".into(), router.into());
            if !hosts.is_empty() {
                table.insert("hosts".into(), hosts.into());
            }
            if let Some(prefix) = path_prefix {
                table.insert("path_prefix".into(), prefix.into());
            }
            if redirect_https {
                table.insert("redirect_https".into(), true.into());
            }
            let value = toml::Value::Table(table);
            let config = edited(value, &settings)?;
            let source = match checklist.as_str() {
                "default" => model::ChecklistSource::Default,
                "empty" => model::ChecklistSource::Empty,
                other => model::ChecklistSource::CopyFrom(other.to_string()),
            };
            let created = engine.create_environment(&system, &config, &source).await?;
            println!(
                "created environment {} (users reach {})",
                created.name, created.app_url
            );
        }
        EnvCommand::Edit {
            environment,
            settings,
        } => {
            let current = engine.environment_config(&system, &environment).await?;
            let config = edited(toml::Value::try_from(&current)?, &settings)?;
            anyhow::ensure!(
                config.name == environment,
                "an environment's name never changes (create a new one and archive {environment})"
            );
            let changes = engine.edit_environment(&system, &config).await?;
            if changes.is_empty() {
                println!("{environment}: nothing changed");
            }
            for c in changes {
                println!(
                    "{environment}: {} {:?} -> {:?}",
                    c.field,
                    c.before.unwrap_or_default(),
                    c.after.unwrap_or_default()
                );
            }
        }
        EnvCommand::Archive {
            environment,
            stop_serving,
        } => {
            engine
                .archive_environment(&system, &environment, stop_serving)
                .await?;
            println!("archived {environment}: its slots are stopped, its history stays");
        }
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

/// `config` with `key=value` settings applied: a dotted key reaches into a
/// section (`pipeline.watch_window_ms=0`, `variables.GREETING=hi`); a value
/// is read as TOML (a number, `true`, `["A", "B"]`) unless the field holds
/// text, where it is taken as written; `hosts` also as a comma-separated
/// list.
fn edited(
    mut config: toml::Value,
    settings: &[String],
) -> anyhow::Result<model::EnvironmentConfig> {
    for s in settings {
        let (key, raw) = s
            .split_once('=')
            .with_context(|| format!("{s:?}: expected key=value"))?;
        let path: Vec<&str> = key.trim().split('.').collect();
        let (last, parents) = path.split_last().context("an empty key")?;
        let mut table = config
            .as_table_mut()
            .context("the configuration is not a table")?;
        for p in parents {
            table = table
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .with_context(|| format!("{key}: {p} is not a section"))?;
        }
        let holds_text = match table.get(*last) {
            Some(existing) => existing.is_str(),
            None => parents.last() == Some(&"variables"),
        };
        let value = if holds_text {
            toml::Value::String(raw.to_string())
        } else if parents.is_empty() && *last == "hosts" && !raw.trim_start().starts_with('[') {
            // `hosts=a.example.com,b.example.com` (empty: none).
            toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(|h| toml::Value::String(h.to_string()))
                    .collect(),
            )
        } else {
            format!("v = {raw}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(raw.to_string()))
        };
        table.insert(last.to_string(), value);
    }
    config
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("{}", e.message().trim()))
}
