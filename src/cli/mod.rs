//! The commands: `serve` (the default) and `demo` run the firewall; `check`, `analyse`, `manifest`
//! and `healthcheck` are the operator's tools. The only code that prints to the terminal and
//! chooses exit codes: 0 success, 1 a failure, 2 a configuration error (a variable, the schema,
//! a manifest), so that a CI gate can tell "your settings are wrong" from "something broke".

mod analyse;
mod check;
mod healthcheck;
mod manifest;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use graphql_firewall::config::{Config, Env, LogFormat, Profile};

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
    /// Validate the environment's configuration, load schema and manifests, print every setting
    /// (secrets redacted) and the manifest's operations; exit non-zero on any problem.
    Check,
    /// Print the metrics and the verdict of one document (FILE, or - for standard input) under the
    /// limits of the current environment.
    Analyse {
        #[arg(default_value = "-")]
        file: PathBuf,
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
        Command::Serve | Command::Check => Profile::Serve,
        Command::Demo { .. } => Profile::Demo,
        Command::Analyse { .. } | Command::Healthcheck | Command::Manifest { .. } => {
            Profile::Offline
        }
    };
    // Load configuration from the environment before anything binds.
    let config = match Config::from_source(&Env, profile) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("graphql-firewall: invalid configuration: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_tracing(&config);
    match command {
        Command::Serve => serve::run(config, profile, false),
        Command::Demo { identity } => serve::run(config, profile, identity),
        Command::Check => check::run(&config),
        Command::Analyse { file, operation } => analyse::run(&config, &file, operation.as_deref()),
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

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.server.log_filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.server.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}
