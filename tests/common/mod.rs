//! Test harness: the real firewall (`build`, served on an ephemeral port) in front of the real
//! demo backend (on another ephemeral port), spoken to over real HTTP.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use graphql_firewall::config::{Config, Profile, UPSTREAM_URL};
use graphql_firewall::demo::{self, DemoBackend};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The repository's directory of the demo client's operations and manifest.
pub const DEMO_MANIFEST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/persisted-queries");

/// A firewall and, usually, the demo backend behind it.
pub struct Harness {
    /// The firewall's GraphQL endpoint.
    pub url: String,
    /// `http://addr` of the firewall, for other paths.
    pub base: String,
    /// The admin listener's `/metrics`.
    pub metrics_url: String,
    pub backend: Option<DemoBackend>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Harness {
    /// The demo backend (panics if this harness has a custom upstream).
    pub fn backend(&self) -> &DemoBackend {
        self.backend
            .as_ref()
            .expect("harness started with the demo backend")
    }

    /// Requests that reached the demo backend so far.
    pub fn upstream_requests(&self) -> u64 {
        self.backend().observed.requests()
    }

    /// The metrics listener's exposition, as text.
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get(&self.metrics_url).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// POSTs a JSON body with `Content-Type: application/json`.
    pub async fn post_json(&self, body: &str) -> reqwest::Response {
        self.post_json_with(&[], body)
            .await
            .expect("firewall answers")
    }

    /// POSTs a JSON body with extra headers (an API key, a forwarded address…).
    pub fn post_json_with(
        &self,
        headers: &[(&str, &str)],
        body: &str,
    ) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + use<> {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(body.to_owned()).send()
    }
}

/// The demo backend on an ephemeral loopback port.
pub async fn demo_backend() -> DemoBackend {
    demo::spawn(TcpListener::bind("127.0.0.1:0").await.unwrap()).unwrap()
}

/// Starts the demo backend and the firewall in front of it, with extra variables.
pub async fn start(vars: &[(&str, &str)]) -> Harness {
    let backend = demo_backend().await;
    let mut harness = start_with_upstream(backend.url().as_str(), vars).await;
    harness.backend = Some(backend);
    harness
}

/// Starts the firewall in front of any upstream URL.
pub async fn start_with_upstream(upstream: &str, vars: &[(&str, &str)]) -> Harness {
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    map.insert(UPSTREAM_URL.to_owned(), upstream.to_owned());
    // The demo client's manifest is loaded unless a test names another directory; tests that
    // tighten limits below what its operations need must not fail start-up because of it (the
    // persisted tests set this themselves).
    map.entry("GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR".to_owned())
        .or_insert_with(|| DEMO_MANIFEST_DIR.to_owned());
    map.entry("GRAPHQL_FIREWALL_PERSISTED_LIMIT_VIOLATIONS".to_owned())
        .or_insert_with(|| "warn".to_owned());
    let config = Config::from_source(&map, Profile::Serve).expect("test configuration is valid");
    let app = graphql_firewall::build(&config).expect("app builds");
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", admin.local_addr().unwrap());
    let admin_service = app
        .admin
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(admin, admin_service).await });
    let app = app.traffic;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(graphql_firewall::serve(
        listener,
        app,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    Harness {
        url: format!("http://{addr}{}", config.server.path),
        base: format!("http://{addr}"),
        metrics_url,
        backend: None,
        client: client(),
        stop: Some(stop),
    }
}

/// A client that never follows redirects or decompresses on its own.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An upstream that accepts connections and answers only after `delay`.
pub async fn slow_upstream(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || async move {
        tokio::time::sleep(delay).await;
        "{\"data\":null}"
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A loopback address on which nothing listens.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// Scrapes `/metrics` into (series with labels → value), e.g. `graphql_firewall_requests_total{transport="http",verdict="allowed",code="none"}`.
pub async fn scrape(harness: &Harness) -> std::collections::BTreeMap<String, f64> {
    let text = harness.metrics_text().await;
    assert!(
        text.ends_with("# EOF\n"),
        "a complete OpenMetrics exposition"
    );
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {line}"));
            (
                series.to_owned(),
                value
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("bad value in {line}")),
            )
        })
        .collect()
}

/// The `extensions.code` of the first error of a GraphQL response body.
pub fn first_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// Reads a response as (status, JSON body).
pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

/// The built binary, started with JSON logs on ephemeral ports, and its log events as they come.
pub struct Process {
    child: std::process::Child,
    events: std::sync::mpsc::Receiver<Value>,
    /// The traffic listener's address, read from the start-up event.
    pub listen: String,
    /// The start-up event.
    pub started: Value,
}

impl Process {
    /// Runs `graphql-firewall <args>` with exactly `vars` (plus ephemeral listeners and JSON logs).
    pub fn start(args: &[&str], vars: &[(&str, &str)]) -> Process {
        Process::start_in(env!("CARGO_MANIFEST_DIR").as_ref(), args, vars)
    }

    /// As [`Process::start`], in the working directory `dir`.
    pub fn start_in(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> Process {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_graphql-firewall"))
            .current_dir(dir)
            .args(args)
            .env_clear()
            .env("GRAPHQL_FIREWALL_LISTEN", "127.0.0.1:0")
            .env("GRAPHQL_FIREWALL_METRICS_LISTEN", "off")
            .env("GRAPHQL_FIREWALL_LOG_FORMAT", "json")
            .envs(vars.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (sender, events) = std::sync::mpsc::channel::<Value>();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
                if sender.send(event).is_err() {
                    return;
                }
            }
        });
        let mut process = Process {
            child,
            events,
            listen: String::new(),
            started: Value::Null,
        };
        process.started = process.wait_for(|event| event["message"] == "graphql-firewall started");
        process.listen = process.started["listen"]
            .as_str()
            .expect("listen address")
            .to_owned();
        process
    }

    /// The process id (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The GraphQL endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.listen)
    }

    /// The next event matching `predicate` (panics after 30 s).
    pub fn wait_for(&self, predicate: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let event = self
                .events
                .recv_timeout(left)
                .expect("the expected log event");
            if predicate(&event) {
                return event;
            }
        }
    }

    /// Sends a signal (`HUP`, `TERM`) to the process.
    pub fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// Waits for the process to exit and returns its status code.
    pub fn wait(mut self) -> Option<i32> {
        self.child.wait().ok().and_then(|status| status.code())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
