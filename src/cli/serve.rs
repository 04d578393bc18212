//! `serve` and `demo`: run the firewall until SIGTERM or SIGINT.

use std::process::ExitCode;

use graphql_firewall::config::{self, Config, Profile};
use tokio::net::TcpListener;

pub fn run(config: Config, profile: Profile, demo_identity: bool) -> ExitCode {
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
    match runtime.block_on(serve(config, profile, demo_identity)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Build(error)) => super::config_error("serve", error),
        Err(Failure::Run(error)) => {
            eprintln!("graphql-firewall: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `demo-backend`: the demo GraphQL server alone on `listen`, until SIGTERM or SIGINT.
pub fn demo_backend(listen: std::net::SocketAddr) -> ExitCode {
    let served = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))
        .and_then(|runtime| {
            runtime.block_on(async {
                let listener = TcpListener::bind(listen)
                    .await
                    .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
                let backend = graphql_firewall::demo::spawn(listener)
                    .map_err(|error| format!("demo backend: {error}"))?;
                tracing::info!(url = %backend.url(), "demo backend started");
                shutdown_signal().await;
                Ok::<(), String>(())
            })
        });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("graphql-firewall demo-backend: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Why serving stopped or never started.
enum Failure {
    /// The configuration could not be turned into a firewall (schema, manifests, upstream URL).
    Build(graphql_firewall::BuildError),
    Run(Box<dyn std::error::Error>),
}

impl<E: Into<Box<dyn std::error::Error>>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure::Run(error.into())
    }
}

async fn serve(mut config: Config, profile: Profile, demo_identity: bool) -> Result<(), Failure> {
    if profile == Profile::Demo {
        let backend = graphql_firewall::demo::spawn(TcpListener::bind("127.0.0.1:0").await?)?;
        config.server.upstream.url = backend.url();
    }
    // Kept until the process exits: the demo key set is read from it.
    let _demo_jwks = if demo_identity {
        Some(use_demo_identity(&mut config)?)
    } else {
        None
    };
    let app = graphql_firewall::build(&config).map_err(Failure::Build)?;
    if let (Some(redis), Some(settings)) = (&app.redis, &config.state.redis) {
        match redis.verify(config.server.ready_timeout).await {
            Ok(()) => tracing::info!("shared state: Redis answers and holds the scripts"),
            Err(error) if settings.required_to_start => {
                return Err(format!(
                    "{error} ({}=on: not starting without Redis)",
                    config::REDIS_REQUIRED_TO_START
                )
                .into());
            }
            Err(error) => tracing::warn!(
                %error,
                "shared state: Redis does not answer yet; serving under REDIS_FAILURE_MODE until it does"
            ),
        }
    }
    let server = &config.server;
    let listener = std::net::TcpListener::bind(server.listen).map_err(|e| {
        format!(
            "cannot listen on {} ({}): {e}",
            server.listen,
            config::LISTEN
        )
    })?;
    let address = listener.local_addr()?;
    let admin_address = match server.metrics_listen {
        None => None,
        Some(admin) => {
            let admin_listener = TcpListener::bind(admin).await.map_err(|e| {
                format!("cannot listen on {admin} ({}): {e}", config::METRICS_LISTEN)
            })?;
            let admin_address = admin_listener.local_addr()?;
            let admin_router = app.admin;
            tokio::spawn(async move {
                // The peer's address is what ADMIN_ALLOW_IPS judges.
                let service =
                    admin_router.into_make_service_with_connect_info::<std::net::SocketAddr>();
                if let Err(error) = axum::serve(admin_listener, service).await {
                    tracing::error!(%error, "metrics listener stopped");
                }
            });
            Some(admin_address)
        }
    };
    // The settings the operator changed, as a JSON object (embedded as one in JSON logs).
    let settings: serde_json::Map<String, serde_json::Value> = config
        .settings
        .iter()
        .filter(|setting| !setting.default)
        .map(|setting| {
            let name = setting.name.trim_start_matches(config::PREFIX).to_owned();
            (name, setting.value.clone().unwrap_or_default().into())
        })
        .collect();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %address,
        metrics_listen = admin_address.map(|a| a.to_string()),
        manifest_operations = app.manifest_operations,
        settings = %serde_json::Value::Object(settings),
        "graphql-firewall started"
    );
    for warning in config::insecure_choices(&config) {
        tracing::warn!(%warning, "insecure setting");
    }
    if profile == Profile::Demo {
        print_demo_help(&format!("http://{address}{}", server.path));
        print_probe_note(&config.clients);
        if demo_identity {
            print_demo_identity_help(&format!("http://{address}{}", server.path))?;
        }
    }
    graphql_firewall::serve_workers(
        listener,
        app.traffic,
        server.workers,
        shutdown_signal(),
        server.shutdown_timeout,
    )
    .await?;
    tracing::info!("graphql-firewall stopped");
    Ok(())
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

/// `demo --identity`: tokens signed by the demo key are verified (`AUTH=optional`), the key set
/// read from a file written here. Returns the file's guard.
fn use_demo_identity(config: &mut Config) -> Result<DemoJwks, Failure> {
    use graphql_firewall::demo::identity;
    use graphql_firewall::identity::jwt::{Accepted, TokenSource};
    if config.identity.jwt.is_some() {
        return Err(Failure::Run(
            "demo --identity serves its own key set: unset GRAPHQL_FIREWALL_AUTH_JWKS_URLS".into(),
        ));
    }
    let path = std::env::temp_dir().join(format!(
        "graphql-firewall-demo-jwks-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, identity::jwks()?)?;
    let jwks = DemoJwks(path);
    config.identity.jwt = Some(config::JwtConfig {
        jwks_urls: vec![format!("file://{}", jwks.0.display()).parse()?],
        refresh: std::time::Duration::from_secs(300),
        unknown_kid_interval: std::time::Duration::from_secs(30),
        issuers: Accepted::OneOf(vec![identity::ISSUER.to_owned()]),
        audiences: Accepted::OneOf(vec![identity::AUDIENCE.to_owned()]),
        algorithms: vec![jsonwebtoken::Algorithm::ES256],
        source: TokenSource::default(),
        leeway: std::time::Duration::from_secs(30),
        cache_entries: 10_000,
        verify_rate: graphql_firewall::rules::parse_rate("10/s:burst=50")?,
        client_claim: None,
        tier_claim: None,
    });
    config.identity.mode = graphql_firewall::identity::AuthMode::Optional;
    Ok(jwks)
}

/// The demo key set's file, removed when the demo stops.
struct DemoJwks(std::path::PathBuf);

impl Drop for DemoJwks {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn print_demo_identity_help(endpoint: &str) -> Result<(), Failure> {
    let token = graphql_firewall::demo::identity::token("demo-user", "read:email")?;
    println!(
        r#"
Identity (demo --identity, AUTH=optional): tokens signed by the demo key are verified; callers
without one are anonymous, known by their address. A token for subject demo-user, valid 1 h:

  TOKEN={token}

  curl -s {endpoint} -H 'content-type: application/json' -H "authorization: Bearer $TOKEN"     -d '{{"query":"{{ users(first: 1) {{ id email }} }}"}}'

  # a forged token is refused under AUTH=required, ignored (anonymous) under optional
  curl -s -i {endpoint} -H 'content-type: application/json' -H "authorization: Bearer x$TOKEN"     -d '{{"query":"{{ users(first: 1) {{ id }} }}"}}'
"#
    );
    Ok(())
}

fn print_demo_help(endpoint: &str) {
    let ws_endpoint = endpoint.replacen("http://", "ws://", 1);
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

  # a persisted operation by id (the demo client's manifest is built in)
  curl -s {endpoint} -H 'content-type: application/json' \
    -d '{{"documentId":"sha256:45ad4a28d26cfa9cf2be23a9177fb3e35bd022bbb463071ca26322d959a4369f","variables":{{"first":2}}}}'

  # refused: introspection is blocked (INTROSPECTION_DISABLED)
  curl -s {endpoint} -H 'content-type: application/json' -d '{{"query":"{{ __schema {{ types {{ name }} }} }}"}}'

  # a browser-style simple request is refused (CSRF_BLOCKED)
  curl -s {endpoint} -H 'content-type: text/plain' -d '{{"query":"{{ users {{ id }} }}"}}'

  # a subscription over Server-Sent Events (one event per result, as it happens)
  curl -N {endpoint} -H 'content-type: application/json' -H 'accept: text/event-stream' \
    -d '{{"query":"subscription {{ countdown(from: 3, intervalMs: 500) }}"}}'

  # a subscription over WebSocket (graphql-transport-ws), with websocat
  # (https://github.com/vi/websocat); every subscribe is inspected like a POST
  printf '%s\n' '{{"type":"connection_init"}}' \
    '{{"id":"1","type":"subscribe","payload":{{"query":"subscription {{ countdown(from: 3, intervalMs: 500) }}"}}}}' \
    | websocat -n --protocol graphql-transport-ws {ws_endpoint}

Stop with Ctrl-C.
"#
    );
}

/// Typos while trying the demo are what a schema prober's guesses look like: say so before the
/// user is locked out by `PROBE_LIMIT` and wonders why every query answers 429.
fn print_probe_note(clients: &config::ClientsConfig) {
    match clients.probe_limit {
        Some(limit) => println!(
            "Note: more than {limit} queries a minute naming fields the schema lacks (typos too) \
             look like schema probing:\nthe client is then refused with 429 RATE_LIMITED for {}s. Set \
             {}=off to experiment freely.\n",
            clients.probe_cooldown.as_secs(),
            config::PROBE_LIMIT
        ),
        None => println!(
            "Note: {}=off: schema probing is not throttled.\n",
            config::PROBE_LIMIT
        ),
    }
}
