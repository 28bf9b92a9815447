//! `switchyard-demo` entry point: parse configuration, apply the start-up
//! knobs, serve until SIGTERM/SIGINT.
//!
//! Exit codes: 0 after a graceful shutdown, 1 when the port cannot be bound or
//! the build is told to crash, 2 for invalid configuration.

use clap::Parser;
use demo::{app, Config, DemoState};
use std::io::ErrorKind;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "switchyard-demo",
    about = "A tiny HTTP service for blue-green tests"
)]
struct Cli {
    /// Version this build reports; semver build metadata (e.g. `+unhealthy`)
    /// selects failure knobs.
    #[arg(long = "app-version", env = "APP_VERSION")]
    app_version: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env(cli.app_version, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("switchyard-demo: {err}");
            return ExitCode::from(2);
        }
    };
    let version = config.version.clone();

    if config.knobs.exit_at_start {
        eprintln!("switchyard-demo {version}: exiting at start (crash knob set)");
        return ExitCode::from(1);
    }
    if !config.knobs.startup_delay.is_zero() {
        eprintln!(
            "switchyard-demo {version}: waiting {} ms before listening",
            config.knobs.startup_delay.as_millis()
        );
        tokio::time::sleep(config.knobs.startup_delay).await;
    }

    let listener = match tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await {
        Ok(listener) => listener,
        Err(err) if err.kind() == ErrorKind::AddrInUse => {
            eprintln!(
                "switchyard-demo: port {} on {} is already in use",
                config.port, config.host
            );
            return ExitCode::from(1);
        }
        Err(err) => {
            eprintln!(
                "switchyard-demo: cannot listen on {}:{}: {err}",
                config.host, config.port
            );
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!("switchyard-demo {version} listening on {addr}"),
        Err(err) => eprintln!("switchyard-demo {version} listening (address unknown: {err})"),
    }

    let state = DemoState::with_config(version.clone(), config.knobs, config.shown);
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    match served {
        Ok(()) => {
            eprintln!("switchyard-demo {version}: shut down");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("switchyard-demo {version}: server error: {err}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on SIGTERM (how runtimes stop a slot) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("switchyard-demo: cannot listen for SIGTERM: {err}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
