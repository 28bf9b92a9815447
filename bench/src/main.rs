//! `switchyard-bench`: Switchyard's benchmarks, figures to read rather than
//! tests (these shared 2-core machines make timed tests flaky). Each command
//! prints its figures; docs/ARCHITECTURE.md and the README say which issue's
//! targets they measure. Kept out of the console binary: a console does not
//! ship a load generator.

mod appends;
mod audit;
mod deploy;
mod haproxy;
mod instructions;
mod login;
mod nginx;
mod proxy;
mod pull;
mod rig;
mod sites;
mod throughput;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "switchyard-bench",
    about = "Switchyard's benchmarks (figures to read, not tests)",
    version
)]
struct Cli {
    /// Directory for the benchmarks' own databases, proxies and logs.
    #[arg(long, default_value = ".switchyard", global = true)]
    data_dir: PathBuf,
    /// A PostgreSQL server (URL of a role that may create databases, e.g.
    /// scripts/postgres.sh's `.postgres.url`) for `audit`, `appends` and
    /// `deploy` to run on beside SQLite, each in a database of its own.
    /// Better given in the environment: it holds a password.
    #[arg(
        long,
        env = "SWITCHYARD_BENCH_POSTGRES",
        global = true,
        hide_env_values = true
    )]
    postgres: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Time the audit page's queries over a generated log (in its own database
    /// under DATA_DIR/bench, never the console's).
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        #[arg(long, default_value_t = 21)]
        runs: usize,
    },
    /// Audit appends per second as consoles make them (one writing
    /// transaction each): one console on SQLite, then 1 and `--replicas`
    /// consoles sharing one PostgreSQL database (needs `--postgres`); each
    /// chain verified after.
    Appends {
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 3)]
        replicas: usize,
    },
    /// Deploy overhead (whole deploy minus the service's own start-up) and
    /// rollback time, for the process runtime and Docker when it answers.
    Deploy {
        #[arg(long, default_value_t = 11)]
        runs: usize,
        /// The environment's health-check interval during the deploys.
        #[arg(long, default_value_t = 250)]
        health_interval_ms: u64,
        /// Directory holding switchyard-proxy and switchyard-demo.
        #[arg(long)]
        bin_dir: Option<PathBuf>,
    },
    /// A Docker deploy that pulls its image from the registry
    /// (`scripts/registry.sh`) beside one of an image on the machine.
    Pull {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Size of each image's own layer.
        #[arg(long, default_value_t = 16)]
        layer_mb: usize,
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Where scripts/registry.sh keeps the registry's address and login.
        #[arg(
            long,
            env = "SWITCHYARD_REGISTRY_DIR",
            default_value = "/tmp/switchyard-registry"
        )]
        registry_dir: PathBuf,
    },
    /// Sign-in throttling: wrong passwords judged against one account with and
    /// without the throttle (same run), then one address across usernames.
    Login {
        /// Seconds each attack runs.
        #[arg(long, default_value_t = 60)]
        secs: u64,
        #[arg(long, default_value_t = 8)]
        attackers: usize,
    },
    /// The data plane: failed requests across switches under load, switch →
    /// first new-slot answer, then throughput, p50/p99 and CPU time per
    /// request with wrk in alternating rounds (direct, switchyard-proxy, an
    /// optional earlier build, nginx, HAProxy), proxy memory.
    Proxy {
        #[arg(long, default_value_t = 100)]
        switches: usize,
        /// Paced load during the switches, requests per second.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        wrk_secs: u64,
        #[arg(long, default_value_t = 50)]
        wrk_connections: u32,
        /// wrk rounds per contender, alternating the order.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Another switchyard-proxy binary (an earlier build) measured beside this one.
        #[arg(long)]
        baseline_proxy: Option<PathBuf>,
        /// Directory holding switchyard-proxy and switchyard-demo.
        #[arg(long)]
        bin_dir: Option<PathBuf>,
    },
    /// User-space instructions per request of switchyard-proxy (and an
    /// optional earlier build) under valgrind's callgrind: the same count
    /// for the same build whatever else the machine does, for telling two
    /// builds apart where CPU time cannot. The kernel's share is not counted.
    Instructions {
        #[arg(long, default_value_t = 8)]
        wrk_secs: u64,
        #[arg(long, default_value_t = 10)]
        wrk_connections: u32,
        /// Another switchyard-proxy binary (an earlier build) counted after this one.
        #[arg(long)]
        baseline_proxy: Option<PathBuf>,
        /// Directory holding switchyard-proxy and switchyard-demo.
        #[arg(long)]
        bin_dir: Option<PathBuf>,
    },
}

/// switchyard-proxy and switchyard-demo are built beside this binary.
fn beside_this_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Audit { entries, runs } => {
            audit::audit(
                &cli.data_dir.join("bench"),
                entries,
                runs.max(1),
                cli.postgres.as_deref(),
            )
            .await
        }
        Command::Appends { secs, replicas } => {
            let opts = appends::Options {
                secs: Duration::from_secs(secs.max(1)),
                replicas: replicas.max(1),
                postgres: cli.postgres,
            };
            appends::appends(&cli.data_dir.join("bench-appends"), opts).await
        }
        Command::Login { secs, attackers } => {
            login::login(&cli.data_dir, secs.max(1), attackers.max(1)).await
        }
        Command::Deploy {
            runs,
            health_interval_ms,
            bin_dir,
        } => {
            let opts = deploy::Options {
                runs: runs.max(1),
                health_interval: Duration::from_millis(health_interval_ms.max(1)),
                bin_dir: bin_dir.unwrap_or_else(beside_this_binary),
                postgres: cli.postgres,
            };
            deploy::deploy(&cli.data_dir, opts).await
        }
        Command::Pull {
            runs,
            layer_mb,
            bin_dir,
            registry_dir,
        } => {
            let opts = pull::Options {
                runs: runs.max(1),
                layer_mb: layer_mb.max(1),
                bin_dir: bin_dir.unwrap_or_else(beside_this_binary),
                registry_dir,
            };
            pull::pull(&cli.data_dir, opts).await
        }
        Command::Proxy {
            switches,
            rate,
            wrk_secs,
            wrk_connections,
            rounds,
            baseline_proxy,
            bin_dir,
        } => {
            let opts = proxy::Options {
                bin_dir: bin_dir.unwrap_or_else(beside_this_binary),
                switches: switches.max(1),
                rate: rate.max(1),
                wrk_secs: wrk_secs.max(1),
                wrk_connections: wrk_connections.max(1),
                rounds: rounds.max(1),
                baseline: baseline_proxy,
            };
            proxy::proxy(&cli.data_dir, opts).await
        }
        Command::Instructions {
            wrk_secs,
            wrk_connections,
            baseline_proxy,
            bin_dir,
        } => {
            let opts = instructions::Options {
                bin_dir: bin_dir.unwrap_or_else(beside_this_binary),
                baseline: baseline_proxy,
                secs: wrk_secs.max(1),
                connections: wrk_connections.max(1),
            };
            instructions::instructions(&cli.data_dir, opts).await
        }
    }
}
