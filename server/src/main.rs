//! `switchyard`: the console server and its command-line tools.

use anyhow::Context;
use clap::{Parser, Subcommand};
use engine::Actor;
use server::commands::{self, audit::AuditCommand, env::EnvCommand, token::TokenCommand};
use server::config::{Config, ServeArgs};
use server::console::{offline_engine, offline_engine_with_docker, Console, FirstAdmin};
use server::remote::{self, Output, Remote};
use server::{bootstrap, private_files};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "switchyard", about = "Blue-green deployment console", version)]
struct Cli {
    /// Directory for the database, proxy state, logs and releases.
    #[arg(
        long,
        env = "SWITCHYARD_DATA_DIR",
        default_value = ".switchyard",
        global = true
    )]
    data_dir: PathBuf,
    /// The database, when not the SQLite file in the data directory: a
    /// PostgreSQL URL (`postgres://user:password@host:port/database`, a
    /// database with C collation) that several consoles can share.
    #[arg(
        long,
        env = "SWITCHYARD_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// A console to drive over its REST API (with SWITCHYARD_TOKEN or the
    /// token `switchyard login` saved) instead of this machine's data
    /// directory.
    #[arg(long, env = "SWITCHYARD_SERVER", global = true)]
    server: Option<String>,
    /// How remote commands print their answers.
    #[arg(long, value_enum, default_value = "text", global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the console (and start switchyard-proxy if it is not running).
    Serve(Box<ServeArgs>),
    /// Manage console users.
    #[command(subcommand)]
    User(UserCommand),
    /// Show what a deploy would do (`--dry-run`); deploys themselves run in
    /// the console, where their worker, watch and standby live.
    /// With `--server`, starts it there (`--wait` follows it to the end;
    /// the exit code tells the outcome, see the README).
    Deploy {
        environment: String,
        version: String,
        /// Print the plan and its blockers; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Follow the deploy (and its watch window) until it ends.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds (the deploy goes on).
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
        /// Admins: deploy although a freeze window holds, saying why.
        #[arg(long, value_name = "REASON")]
        override_freeze: Option<String>,
    },
    /// (remote) Environments with their live version and slots.
    Status { environment: Option<String> },
    /// (remote) Switch users back to the warm standby.
    Rollback {
        environment: String,
        #[arg(long)]
        reason: String,
    },
    /// (remote) Releases: request, read, edit, cancel, sign, deploy.
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// (remote) Request a succeeded deployment's version in the
    /// environment downstream of it.
    Promote {
        deployment: i64,
        #[arg(long)]
        to: String,
    },
    /// (remote) Decide a deploy held at preview (its environment holds
    /// deploys after the gates): promote it to users, or abort it.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// (remote) Read a token from standard input, check it with `--server`
    /// and save it (0600) for later commands.
    Login,
    /// Inspect the audit log, its checkpoints and exports.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// An environment's variables and secrets.
    #[command(subcommand)]
    Env(EnvCommand),
    /// Create or change environments from a TOML file: prints what would
    /// change, field by field; writes (all or nothing) only with `--yes`.
    Apply {
        #[arg(short = 'f', long)]
        file: PathBuf,
        #[arg(long)]
        yes: bool,
    },
    /// Write every environment as the file `apply` reads (secrets by name).
    Export {
        /// The file to write (standard output when absent). `--output` is
        /// the remote commands' format, so this is `-o`/`--file`.
        #[arg(short = 'o', long)]
        file: Option<PathBuf>,
    },
    /// The key that encrypts environments' secrets.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// API tokens for pipelines and the remote CLI.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum ReleaseCommand {
    Create {
        environment: String,
        version: String,
        #[arg(long, default_value = "")]
        notes: String,
    },
    Show {
        id: i64,
    },
    /// Change a release's notes or migration SQL (voids its signatures).
    Edit {
        id: i64,
        #[arg(long)]
        notes: Option<String>,
        /// A file holding the new migration SQL.
        #[arg(long)]
        sql_file: Option<PathBuf>,
    },
    /// Cancel a release that has not been deployed.
    Cancel {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Sign one checklist item (its id from `release show`).
    Sign {
        id: i64,
        item: i64,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Deploy an approved release.
    Deploy {
        id: i64,
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
        #[arg(long, value_name = "REASON")]
        override_freeze: Option<String>,
    },
}

#[derive(Subcommand)]
enum HoldCommand {
    /// Switch users to the held release.
    Promote { deployment: i64 },
    /// Stop the held release; users stay where they are.
    Abort {
        deployment: i64,
        #[arg(long)]
        reason: String,
    },
    /// Send a share of new users, and testers, to the held release
    /// (replaces the earlier setting; `--percent 0` alone ends it).
    Canary {
        deployment: i64,
        /// Share of new users, 0-100; each keeps its slot by a cookie.
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
        percent: u8,
        /// Testers' request header, `'Name: value'`.
        #[arg(long, value_parser = header_rule)]
        header: Option<model::NameValue>,
        /// Testers' cookie, `name=value`.
        #[arg(long, value_parser = cookie_rule)]
        cookie: Option<model::NameValue>,
    },
}

/// `--header 'X-Tester: me'`; the console checks the characters.
fn header_rule(s: &str) -> Result<model::NameValue, String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not 'Name: value'"))?;
    Ok(model::NameValue {
        name: name.trim().to_string(),
        value: value.trim().to_string(),
    })
}

/// `--cookie tester=yes`; the console checks the characters.
fn cookie_rule(s: &str) -> Result<model::NameValue, String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not name=value"))?;
    Ok(model::NameValue {
        name: name.trim().to_string(),
        value: value.trim().to_string(),
    })
}

/// The command as the remote CLI runs it, or why it only runs locally.
fn remote_command(command: Command) -> Result<Remote, &'static str> {
    let secs = std::time::Duration::from_secs;
    Ok(match command {
        Command::Login => Remote::Login,
        Command::Status { environment } => Remote::Status { environment },
        Command::Env(EnvCommand::List) => Remote::EnvList,
        Command::Deploy { dry_run: true, .. } => {
            return Err("deploy --dry-run runs on the console's machine")
        }
        Command::Deploy {
            environment,
            version,
            wait,
            timeout,
            override_freeze,
            ..
        } => Remote::Deploy {
            environment,
            version,
            wait,
            timeout: secs(timeout),
            override_freeze,
        },
        Command::Rollback {
            environment,
            reason,
        } => Remote::Rollback {
            environment,
            reason,
        },
        Command::Release(ReleaseCommand::Create {
            environment,
            version,
            notes,
        }) => Remote::ReleaseCreate {
            environment,
            version,
            notes,
        },
        Command::Release(ReleaseCommand::Show { id }) => Remote::ReleaseShow { id },
        Command::Release(ReleaseCommand::Edit {
            id,
            notes,
            sql_file,
        }) => Remote::ReleaseEdit {
            id,
            notes,
            sql_file,
        },
        Command::Release(ReleaseCommand::Cancel { id, reason }) => {
            Remote::ReleaseCancel { id, reason }
        }
        Command::Release(ReleaseCommand::Sign { id, item, note }) => {
            Remote::ReleaseSign { id, item, note }
        }
        Command::Release(ReleaseCommand::Deploy {
            id,
            wait,
            timeout,
            override_freeze,
        }) => Remote::ReleaseDeploy {
            id,
            wait,
            timeout: secs(timeout),
            override_freeze,
        },
        Command::Promote { deployment, to } => Remote::Promote { deployment, to },
        Command::Audit(AuditCommand::Export {
            file,
            format,
            environment,
            actor,
            action,
            since,
            until,
            text,
        }) => {
            let filter = [
                ("environment", environment),
                ("actor", actor),
                ("action", action),
                ("since", since),
                ("until", until),
                ("text", text),
            ];
            let mut query = vec![("format".to_string(), format)];
            query.extend(
                filter
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v?))),
            );
            Remote::AuditExport { query, file }
        }
        Command::Hold(HoldCommand::Promote { deployment }) => Remote::HoldPromote { deployment },
        Command::Hold(HoldCommand::Abort { deployment, reason }) => {
            Remote::HoldAbort { deployment, reason }
        }
        Command::Hold(HoldCommand::Canary {
            deployment,
            percent,
            header,
            cookie,
        }) => Remote::HoldCanary {
            deployment,
            setting: model::CanarySetting {
                percent,
                header,
                cookie,
            },
        },
        _ => return Err("this command runs on the console's machine (without --server)"),
    })
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-encrypt every secret under a fresh key (`secrets.key`).
    RotateKey,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from SWITCHYARD_PASSWORD, or generated and printed once.
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: model::Role,
    },
}

fn parse_role(s: &str) -> Result<model::Role, String> {
    s.parse()
        .map_err(|e| format!("{e}; one of viewer, deployer, approver, admin"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_sessions=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Whatever this process (and the proxy and slots it starts) creates is
    // private to its user: the data directory holds sessions and secrets.
    private_files::restrict_umask();
    if let Command::Audit(AuditCommand::VerifyExport { file, public_key }) = &cli.command {
        return commands::audit::verify_export(file, public_key);
    }
    if let Some(server) = cli.server.as_deref() {
        match remote_command(cli.command) {
            Ok(command) => std::process::exit(remote::run(server, cli.output, command).await),
            Err(why) => anyhow::bail!("{why}"),
        }
    }
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("creating {}", cli.data_dir.display()))?;
    if let Some(url) = cli.database_url {
        server::config::use_database_url(url);
    }
    match cli.command {
        Command::Serve(args) => serve(cli.data_dir, *args).await,
        Command::User(UserCommand::Add { name, role }) => {
            let engine = offline_engine(&cli.data_dir).await?;
            let (password, generated) = match std::env::var("SWITCHYARD_PASSWORD") {
                Ok(p) if !p.is_empty() => (p, false),
                _ => (engine::generate_password(), true),
            };
            let user = engine
                .create_user(&Actor::system(), &name, &password, role)
                .await?;
            println!("created user {} with role {}", user.username, user.role);
            if generated {
                println!("password (shown once): {password}");
            }
            Ok(())
        }
        Command::Deploy {
            environment,
            version,
            dry_run,
            ..
        } => {
            anyhow::ensure!(
                dry_run,
                "deploys run in the console (its dashboard, a release's page, or \
                 `switchyard --server URL deploy ENV VERSION --wait`); \
                 `switchyard deploy --dry-run ENV VERSION` shows the plan"
            );
            let engine = offline_engine_with_docker(&cli.data_dir).await?;
            let plan = engine
                .plan_deploy(&engine::Actor::system(), &environment, &version)
                .await?;
            println!(
                "dry run: deploy {} to {} — {}; nothing was changed",
                plan.version,
                plan.environment,
                if plan.ready {
                    "would start now"
                } else {
                    "blocked"
                }
            );
            for b in &plan.blockers {
                println!("  blocked: {b}");
            }
            for (i, s) in plan.steps.iter().enumerate() {
                println!("  {}. {:<9} {}", i + 1, s.name, s.detail);
            }
            if !plan.ready {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Audit(command) => commands::audit::run(&cli.data_dir, command).await,
        Command::Env(command) => commands::env::run(&cli.data_dir, command).await,
        Command::Apply { file, yes } => commands::declare::apply(&cli.data_dir, &file, yes).await,
        Command::Export { file } => commands::declare::export(&cli.data_dir, file.as_deref()).await,
        Command::Secrets(SecretsCommand::RotateKey) => {
            commands::env::rotate_secrets_key(&cli.data_dir).await
        }
        Command::Token(command) => commands::token::run(&cli.data_dir, command).await,
        Command::Status { .. }
        | Command::Rollback { .. }
        | Command::Release(_)
        | Command::Promote { .. }
        | Command::Hold(_)
        | Command::Login => anyhow::bail!(
            "this command drives a console over its API: give --server URL (or SWITCHYARD_SERVER)"
        ),
    }
}

async fn serve(data_dir: PathBuf, args: ServeArgs) -> anyhow::Result<()> {
    let cfg = args.into_config(&data_dir)?;
    let console = Console::build(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is it in use?)", cfg.listen))?;
    let staging = match cfg.demo {
        true => console
            .engine()
            .environment(&Actor::system(), bootstrap::DEMO_STAGING)
            .await
            .ok()
            .map(|env| env.app_url),
        false => None,
    };
    print_banner(&cfg, console.first_admin(), staging);
    console.serve(listener, shutdown_signal()).await
}

/// Where the console is and how to sign in, on standard output.
fn print_banner(cfg: &Config, first_admin: Option<&FirstAdmin>, staging: Option<String>) {
    println!("Switchyard console: http://{}/", cfg.listen);
    match first_admin {
        Some(FirstAdmin {
            username,
            generated_password: Some(password),
        }) => println!("Sign in as {username} with password {password} (shown once)"),
        Some(FirstAdmin { username, .. }) => {
            println!("Sign in as {username} with SWITCHYARD_ADMIN_PASSWORD")
        }
        None => println!("Sign in with an existing account (switchyard user add NAME --role ROLE)"),
    }
    if cfg.demo {
        println!(
            "Users reach the demo service at http://{}/ (demo versions: {})",
            cfg.app_listen,
            bootstrap::DEMO_VERSIONS.join(", ")
        );
        if let Some(preview) = cfg.proxy_preview {
            println!(
                "Deploys' gates reach the idle slot at http://{preview}/ (the preview address)"
            );
        }
        if let Some(staging) = staging {
            println!(
                "Its staging environment is at {staging}: a version succeeds there before production takes it"
            );
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down the console; slots and switchyard-proxy keep serving");
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    /// Clap checks its own definition here, and every command parses:
    /// two arguments with one id (a global `--output` and export's once)
    /// only panic when a command line is read.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
        for line in [
            "switchyard export",
            "switchyard export -o f.toml",
            "switchyard apply -f f.toml --yes",
            "switchyard --output json --server http://h status",
            "switchyard deploy production v2 --wait --timeout 5 --output json",
            "switchyard deploy production v2 --override-freeze hotfix",
            "switchyard release deploy 3 --wait --override-freeze hotfix",
            "switchyard release sign 1 2 --note ok",
            "switchyard release edit 1 --notes n --sql-file m.sql",
            "switchyard release cancel 1 --reason superseded",
            "switchyard token create ci --owner a --role deployer --env x --env y",
            "switchyard audit verify",
            "switchyard --server http://h audit export -o a.jsonl --environment production",
            "switchyard audit export --format csv --since 2026-12-01 --output json",
            "switchyard env list",
        ] {
            let args = line.split(' ');
            if let Err(e) = super::Cli::try_parse_from(args) {
                panic!("{line}: {e}");
            }
        }
    }
}
