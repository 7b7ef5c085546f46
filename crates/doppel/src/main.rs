//! `doppel`: the one binary. Serves the API, runs the demo, queries and
//! administers a server, imports files and runs the benchmarks.
//!
//! Every subcommand is a thin layer over the library crates; errors are
//! reported once, here, with their context.

mod audit;
mod bench;
mod check;
mod cli;
mod client;
mod compact;
mod config;
mod demo;
mod encryption;
mod import;
mod output;
mod query;
mod serve;
mod token;
mod twin;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Query(args) => query::run(args).await,
        Command::Twin(args) => twin::run(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Compact(args) => compact::run(args).await,
        Command::Check(args) => check::check(args).await,
        Command::Repair(args) => check::repair(args).await,
        Command::Token(args) => token::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Bench(cmd) => bench::run(cmd).await,
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOPPEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
