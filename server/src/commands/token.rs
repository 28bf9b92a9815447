//! `switchyard token create|list|revoke`: API tokens from the console's
//! machine, acting as the system (like `user add`). The secret is printed
//! once; lists show the prefix only.

use crate::console::offline_engine;
use clap::Subcommand;
use engine::Actor;
use model::{NewToken, Role, TokenKind, TokenView};
use std::path::Path;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token for OWNER and print it once.
    Create {
        /// A name to tell it apart (`ci-deploy`).
        name: String,
        /// The user it acts for; its role stays within theirs.
        #[arg(long)]
        owner: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// `service` (for a pipeline) or `personal`.
        #[arg(long, default_value = "service", value_parser = parse_kind)]
        kind: TokenKind,
        /// Limit it to this environment (repeat for several); all when absent.
        #[arg(long = "env")]
        environments: Vec<String>,
        /// Days until it stops working.
        #[arg(long, default_value_t = 90)]
        expires_days: u32,
    },
    /// Every token: prefix, owner, role, scope, expiry, last use.
    List,
    /// Revoke a token by its id (from `list`): it stops at once.
    Revoke { id: i64 },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e| format!("{e}; one of viewer, deployer, approver, admin"))
}

fn parse_kind(s: &str) -> Result<TokenKind, String> {
    s.parse()
        .map_err(|e| format!("{e}; one of personal, service"))
}

fn line(t: &TokenView) -> String {
    let dash = || "-".to_string();
    format!(
        "{:>4}  {:<20} {}  {:<8} owner={} role={} envs={} expires={} last_used={}{}",
        t.id,
        t.name,
        t.prefix,
        t.kind,
        t.owner,
        t.role,
        t.environments
            .as_ref()
            .map_or_else(|| "all".to_string(), |e| e.join(",")),
        t.expires_at.clone().unwrap_or_else(dash),
        t.last_used_at.clone().unwrap_or_else(dash),
        if t.revoked_at.is_some() {
            "  REVOKED"
        } else {
            ""
        },
    )
}

pub async fn run(data_dir: &Path, command: TokenCommand) -> anyhow::Result<()> {
    let engine = offline_engine(data_dir).await?;
    let system = Actor::system();
    match command {
        TokenCommand::Create {
            name,
            owner,
            role,
            kind,
            environments,
            expires_days,
        } => {
            let new = NewToken {
                name,
                kind,
                role,
                environments: (!environments.is_empty()).then_some(environments),
                expires_in_days: expires_days,
            };
            let issued = engine.create_token(&system, Some(&owner), &new).await?;
            println!("{}", line(&issued.token));
            println!(
                "token (shown once; store it as a CI secret): {}",
                issued.secret
            );
        }
        TokenCommand::List => {
            for t in engine.tokens(&system).await? {
                println!("{}", line(&t));
            }
        }
        TokenCommand::Revoke { id } => {
            let t = engine.revoke_token(&system, id).await?;
            println!("revoked: {}", line(&t));
        }
    }
    Ok(())
}
