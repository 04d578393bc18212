//! The commands: `serve` (the default) and `demo` run the firewall; `check`, `analyse`, `manifest`
//! and `healthcheck` are the operator's tools. The only code that prints to the terminal and
//! chooses exit codes: 0 success, 1 a failure, 2 a configuration error (a variable, the schema,
//! a manifest), so that a CI gate can tell "your settings are wrong" from "something broke".

mod analyse;
mod check;
mod healthcheck;
mod logs;
mod manifest;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use graphql_firewall::config::{Config, Env, Profile};

/// Exit status for a configuration error (EX_USAGE-like; documented in README).
const EXIT_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(version, about = "A security firewall for GraphQL APIs", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the firewall in front of GRAPHQL_FIREWALL_UPSTREAM_URL (the default).
    Serve,
    /// Run the firewall in front of an embedded demo GraphQL backend and print curl examples.
    Demo {
        /// Verify JWTs too (AUTH=optional): serve a demo key set and print a token signed with it.
        #[arg(long)]
        identity: bool,
    },
    /// Serve only the embedded demo GraphQL backend (no firewall), for trying several replicas in
    /// front of one backend (deploy/docker-compose.yml).
    DemoBackend {
        #[arg(long, default_value = "127.0.0.1:4000")]
        listen: std::net::SocketAddr,
    },
    /// Validate the environment's configuration, load schema and manifests, print every setting
    /// (secrets redacted) and the manifest's operations; exit non-zero on any problem.
    Check {
        /// Validate without an upstream: GRAPHQL_FIREWALL_UPSTREAM_URL may be unset (a CI gate).
        #[arg(long)]
        offline: bool,
        /// Print one JSON object (settings, warnings, persisted documents) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the metrics, cost breakdown and verdict of one operation under the limits of the
    /// current environment: from one document (FILE, or - for standard input), or from several
    /// files or a directory of client sources (fragments resolved across them, as `manifest
    /// build` does). Exit 1 when it would be rejected.
    Analyse {
        #[arg(default_value = "-", value_name = "FILE|DIR|-")]
        paths: Vec<PathBuf>,
        /// Operation to select when the document has several.
        #[arg(long)]
        operation: Option<String>,
    },
    /// Exit 0 when the firewall on GRAPHQL_FIREWALL_LISTEN answers /healthz (a container health
    /// check that needs no shell or curl).
    Healthcheck,
    /// Build or check persisted-query manifests.
    Manifest {
        #[command(subcommand)]
        action: ManifestCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ManifestCommand {
    /// Split the .graphql/.gql files under DIR into operations (each with the fragments it uses)
    /// and write an Apollo persisted-query manifest with SHA-256 ids.
    Build {
        dir: PathBuf,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Verify manifests (ids, duplicates, syntax) and print each operation's metrics under the
    /// limits of the current environment; exits 1 if any operation breaks an enforced limit.
    Check { path: PathBuf },
}

/// Runs the command.
pub fn run(cli: Cli) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Serve);
    let profile = match command {
        Command::Serve | Command::Check { offline: false, .. } => Profile::Serve,
        Command::Demo { .. } => Profile::Demo,
        Command::Check { offline: true, .. }
        | Command::Analyse { .. }
        | Command::Healthcheck
        | Command::Manifest { .. }
        | Command::DemoBackend { .. } => Profile::Offline,
    };
    // Load configuration from the environment before anything binds.
    let config = match Config::from_source(&Env, profile) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("graphql-firewall: invalid configuration: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    logs::init(&config);
    match command {
        Command::Serve => serve::run(config, profile, false),
        Command::Demo { identity } => serve::run(config, profile, identity),
        Command::DemoBackend { listen } => serve::demo_backend(listen),
        Command::Check { json, offline } => check::run(&config, json, offline),
        Command::Analyse { paths, operation } => {
            analyse::run(&config, &paths, operation.as_deref())
        }
        Command::Healthcheck => healthcheck::run(&config),
        Command::Manifest {
            action: ManifestCommand::Check { path },
        } => manifest::check(&config, &path),
        Command::Manifest {
            action: ManifestCommand::Build { dir, out },
        } => manifest::build(&dir, out.as_deref()),
    }
}

/// A problem with what the operator configured or provided: printed, exit status 2.
fn config_error(command: &str, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("graphql-firewall {command}: {error}");
    ExitCode::from(EXIT_CONFIG)
}
