//! The `graphql-firewall` command: `serve` (default) runs the firewall, `demo` runs it in front of
//! the embedded demo backend. The only place that prints to the terminal and chooses exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use graphql_firewall::config::{self, Config, Env, LogFormat, Profile};
use tokio::net::TcpListener;

// glibc's malloc cost ~10% of the proxy path's CPU in profiles (many small, short-lived
// allocations across threads); mimalloc handles that pattern better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status for a configuration error (EX_USAGE-like; documented in README).
const EXIT_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(version, about = "A security firewall for GraphQL APIs", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the firewall in front of GRAPHQL_FIREWALL_UPSTREAM_URL (the default).
    Serve,
    /// Run the firewall in front of an embedded demo GraphQL backend and print curl examples.
    Demo,
    /// Validate the environment's configuration, load schema and manifests, print the effective
    /// configuration (secrets redacted) and the manifest's operations; exit non-zero on any problem.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let profile = match command {
        Command::Serve => Profile::Serve,
        Command::Demo => Profile::Demo,
        Command::Manifest {
            action: ManifestCommand::Build { dir, out },
        } => return build_manifest(&dir, out.as_deref()),
        Command::Manifest {
            action: ManifestCommand::Check { .. },
        }
        | Command::Analyse { .. }
        | Command::Healthcheck => Profile::Offline,
        Command::Check => Profile::Serve,
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
    match &command {
        Command::Manifest {
            action: ManifestCommand::Check { path },
        } => return check_manifest(&config, path),
        Command::Check => return check(&config),
        Command::Healthcheck => return healthcheck(&config),
        Command::Analyse { file, operation } => {
            return analyse(&config, file, operation.as_deref());
        }
        _ => {}
    }
    // The control plane (signals, the metrics listener, manifest reloads, housekeeping and the
    // demo backend); traffic is served by the workers of `serve_workers`.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("graphql-firewall: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, profile)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("graphql-firewall: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mut config: Config, profile: Profile) -> Result<(), Box<dyn std::error::Error>> {
    if profile == Profile::Demo {
        let backend = graphql_firewall::demo::spawn(TcpListener::bind("127.0.0.1:0").await?)?;
        config.upstream.url = backend.url();
    }
    let app = graphql_firewall::build(&config)?;
    let listener = std::net::TcpListener::bind(config.listen).map_err(|e| {
        format!(
            "cannot listen on {} ({}): {e}",
            config.listen,
            config::LISTEN
        )
    })?;
    let address = listener.local_addr()?;
    let admin_address = match config.metrics_listen {
        None => None,
        Some(admin) => {
            let admin_listener = TcpListener::bind(admin).await.map_err(|e| {
                format!("cannot listen on {admin} ({}): {e}", config::METRICS_LISTEN)
            })?;
            let admin_address = admin_listener.local_addr()?;
            let admin_router = app.admin;
            tokio::spawn(async move {
                if let Err(error) = axum::serve(admin_listener, admin_router).await {
                    tracing::error!(%error, "metrics listener stopped");
                }
            });
            Some(admin_address)
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %address,
        metrics_listen = admin_address.map(|a| a.to_string()),
        manifest_operations = app.manifest_operations,
        settings = ?config::describe(&config),
        "graphql-firewall started"
    );
    for warning in config::insecure_choices(&config) {
        tracing::warn!(%warning, "insecure setting");
    }
    if profile == Profile::Demo {
        print_demo_help(&format!("http://{address}{}", config.path));
    }
    graphql_firewall::serve_workers(
        listener,
        app.traffic,
        config.workers,
        shutdown_signal(),
        config.shutdown_timeout,
    )
    .await?;
    tracing::info!("graphql-firewall stopped");
    Ok(())
}

fn build_manifest(dir: &std::path::Path, out: Option<&std::path::Path>) -> ExitCode {
    use graphql_firewall::persisted::build;
    let manifest = build::collect_sources(dir).and_then(|sources| build::build_manifest(&sources));
    let manifest = match manifest {
        Ok(manifest) => manifest,
        Err(error) => {
            eprintln!("graphql-firewall manifest build: {error}");
            return ExitCode::FAILURE;
        }
    };
    match out {
        None => print!("{manifest}"),
        Some(path) => {
            if let Err(error) = std::fs::write(path, manifest) {
                eprintln!(
                    "graphql-firewall manifest build: {}: {error}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn check_manifest(config: &Config, path: &std::path::Path) -> ExitCode {
    let analysis = match graphql_firewall::analysis_settings(config) {
        Ok(analysis) => analysis,
        Err(error) => {
            eprintln!("graphql-firewall manifest check: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut source = graphql_firewall::manifest_source(config, &analysis);
    source.limit_violations_fatal = false;
    let loaded = match source.load_path(path) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("graphql-firewall manifest check: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{:<28} {:<12} {:<9} {:>5} {:>7} {:>5} {:>10} {:>6} {:>7}",
        "operation", "id", "type", "depth", "aliases", "roots", "directives", "tokens", "cost"
    );
    for trusted in loaded.manifest.sorted() {
        for operation in trusted.document.operations() {
            let metrics = operation.metrics();
            println!(
                "{:<28} {:<12} {:<9} {:>5} {:>7} {:>5} {:>10} {:>6} {:>7}",
                operation.name().unwrap_or("(anonymous)"),
                hex::encode(trusted.hash.get(..6).unwrap_or_default()),
                format!("{:?}", operation.kind()).to_lowercase(),
                metrics.depth,
                metrics.aliases,
                metrics.root_fields,
                metrics.directives,
                trusted.document.tokens(),
                operation.cost(None),
            );
        }
    }
    println!("{} document(s) verified", loaded.manifest.len());
    if loaded.warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        for warning in &loaded.warnings {
            eprintln!("limit broken: {warning}");
        }
        ExitCode::FAILURE
    }
}

fn healthcheck(config: &Config) -> ExitCode {
    let mut address = config.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(3);
    let healthy = url::Url::parse(&format!("http://{address}/healthz"))
        .ok()
        .and_then(|url| {
            graphql_firewall::upstream::Upstream::new(&graphql_firewall::upstream::Settings {
                url,
                timeout,
                connect_timeout: timeout,
            })
            .ok()
        })
        .zip(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok(),
        )
        .is_some_and(|(client, runtime)| {
            runtime.block_on(client.probe(timeout)) == Some(axum::http::StatusCode::OK)
        });
    if healthy {
        ExitCode::SUCCESS
    } else {
        eprintln!("graphql-firewall healthcheck: http://{address}/healthz did not answer 200");
        ExitCode::FAILURE
    }
}

fn check(config: &Config) -> ExitCode {
    // Building the app loads and checks everything the server would: schema, manifests, limits.
    let app = match graphql_firewall::build(config) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("graphql-firewall check: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("configuration is valid\n");
    for (name, value) in config::describe(config) {
        println!("  {name:<26} {value}");
    }
    for warning in config::insecure_choices(config) {
        println!("  warning: {warning}");
    }
    println!("\npersisted documents: {}", app.manifest_operations);
    if app.manifest_operations > 0 {
        return check_manifest(config, &config.persisted.dir);
    }
    ExitCode::SUCCESS
}

fn analyse(config: &Config, file: &std::path::Path, operation: Option<&str>) -> ExitCode {
    use graphql_firewall::{analysis, policy};
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(file)
    };
    let text = match text {
        Ok(text) => text,
        Err(error) => {
            eprintln!("graphql-firewall analyse: {}: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let settings = match graphql_firewall::analysis_settings(config) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("graphql-firewall analyse: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let document = analysis::analyse(&text, &settings);
    let selected = document
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|d| d.operation(operation).map(|op| (d, op)));
    let (document, op) = match selected {
        Ok(selected) => selected,
        Err(error) => {
            println!("verdict:              rejected ({error})");
            return ExitCode::FAILURE;
        }
    };
    let metrics = op.metrics();
    let cost = op.cost(None);
    println!(
        "operation:            {}",
        op.name().unwrap_or("(anonymous)")
    );
    println!(
        "type:                 {}",
        format!("{:?}", op.kind()).to_lowercase()
    );
    println!("tokens:               {}", document.tokens());
    println!("depth:                {}", metrics.depth);
    println!("aliases:              {}", metrics.aliases);
    println!("root fields:          {}", metrics.root_fields);
    println!("directives:           {}", metrics.directives);
    println!("fields:               {}", metrics.fields);
    println!("introspection fields: {}", metrics.introspection_fields);
    println!("unknown schema names: {}", metrics.unknown_schema_names);
    println!("cost:                 {cost} (variables at their defaults)");
    let violations = policy::check(
        &policy::Measured {
            tokens: document.tokens(),
            metrics,
            cost,
            variables: &analysis::VariableMetrics::default(),
        },
        &config.limits,
        &config.modes,
    );
    if violations.is_empty() {
        println!("verdict:              allowed");
        return ExitCode::SUCCESS;
    }
    for violation in &violations {
        println!(
            "violation:            {} {} > limit {} ({:?})",
            violation.rule.as_str(),
            violation.actual,
            violation.limit,
            violation.mode
        );
    }
    let enforced = violations.iter().any(|v| v.mode == policy::Mode::Enforce);
    println!(
        "verdict:              {}",
        if enforced { "rejected" } else { "monitored" }
    );
    if enforced {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log_filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler at start-up");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown requested: finishing in-flight requests");
}

fn print_demo_help(endpoint: &str) {
    println!(
        r#"
graphql-firewall demo: the firewall listens on {endpoint}
in front of an embedded async-graphql backend. Try:

  # a query
  curl -s {endpoint} -H 'content-type: application/json' \
    -d '{{"query":"{{ users(first: 3) {{ id name posts(first: 2) {{ title }} }} }}"}}'

  # a mutation
  curl -s {endpoint} -H 'content-type: application/json' \
    -d '{{"query":"mutation {{ createPost(authorId: \"u1\", title: \"Hi\", body: \"...\") {{ id }} }}"}}'

  # GET needs a preflight-forcing header (CSRF guard)
  curl -s -G {endpoint} -H 'graphql-preflight: 1' --data-urlencode 'query={{ user(id: "u2") {{ name }} }}'

  # a persisted operation by id (from persisted-queries/manifest.json)
  curl -s {endpoint} -H 'content-type: application/json' \
    -d '{{"documentId":"sha256:45ad4a28d26cfa9cf2be23a9177fb3e35bd022bbb463071ca26322d959a4369f","variables":{{"first":2}}}}'

  # refused: introspection is blocked (INTROSPECTION_DISABLED)
  curl -s {endpoint} -H 'content-type: application/json' -d '{{"query":"{{ __schema {{ types {{ name }} }} }}"}}'

  # a browser-style simple request is refused (CSRF_BLOCKED)
  curl -s {endpoint} -H 'content-type: text/plain' -d '{{"query":"{{ users {{ id }} }}"}}'

Stop with Ctrl-C.
"#
    );
}
