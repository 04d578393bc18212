//! Soak harness: `cargo bench --bench soak`.
//!
//! Runs the firewall (the built release binary, secure defaults) in front of an upstream in this
//! process — the demo backend, plus a route that answers large and endless bodies — for
//! `SOAK_SECONDS` (default 600) at saturation with a mix of benign and hostile traffic:
//! - benign clients: valid operations over keep-alive connections, as fast as they are answered;
//! - hostile documents: a new alias bomb, deep selection or parse error on every request (every
//!   one a cache miss);
//! - slow clients: connections that trickle their request head out a byte at a time;
//! - large answers: requests whose answer is 20 MB, and some whose answer never ends (cut off at
//!   `MAX_RESPONSE_BYTES`, here 32 MiB);
//! - churn: a new connection for every request.
//!
//! Every 10 s it prints the firewall's resident memory (`VmRSS` from `/proc`), the requests
//! answered by class, and the 5xx the firewall produced on its own — `INTERNAL_ERROR` or any 5xx
//! that is not the upstream's — which must stay at zero. At the end: the RSS series' first,
//! largest and last values. `SOAK_CLIENTS` sets the benign clients (default 16).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FIREWALL: &str = env!("CARGO_BIN_EXE_graphql-firewall");

const BENIGN: &str = r#"{"query":"query Feed($first: Int!) { users(first: $first) { id name posts(first: 2) { title } } }","variables":{"first":5}}"#;

#[derive(Default)]
struct Counts {
    by_class: std::sync::Mutex<BTreeMap<String, u64>>,
    firewall_5xx: AtomicU64,
    transport_errors: AtomicU64,
}

impl Counts {
    fn add(&self, class: String) {
        let mut by_class = self.by_class.lock().unwrap_or_else(|e| e.into_inner());
        *by_class.entry(class).or_default() += 1;
    }
}

fn main() {
    let seconds: u64 = env_number("SOAK_SECONDS", 600);
    let clients: usize = env_number("SOAK_CLIENTS", 16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(soak(Duration::from_secs(seconds), clients));
}

async fn soak(duration: Duration, clients: usize) {
    let upstream = upstream().await;
    let mut firewall = Command::new(FIREWALL)
        .arg("serve")
        .env_clear()
        .env(
            "GRAPHQL_FIREWALL_UPSTREAM_URL",
            format!("http://{upstream}/graphql"),
        )
        .env("GRAPHQL_FIREWALL_LISTEN", "127.0.0.1:0")
        .env("GRAPHQL_FIREWALL_METRICS_LISTEN", "off")
        // Warnings, and the start-up line that names the listening address.
        .env("GRAPHQL_FIREWALL_LOG", "warn,graphql_firewall::cli=info")
        .env("GRAPHQL_FIREWALL_LOG_FORMAT", "json")
        .env("GRAPHQL_FIREWALL_MAX_RESPONSE_BYTES", "32MiB")
        .env("GRAPHQL_FIREWALL_HEADER_READ_TIMEOUT", "2s")
        .env(
            "GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR",
            env!("CARGO_MANIFEST_DIR").to_owned() + "/persisted-queries",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the release binary starts");
    let address = listening_address(&mut firewall);
    let pid = firewall.id();
    let url = format!("http://{address}/graphql");
    let counts = Arc::new(Counts::default());
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(benign(url.clone(), counts.clone(), deadline)));
    }
    for kind in 0..4 {
        tasks.push(tokio::spawn(hostile(
            url.clone(),
            counts.clone(),
            deadline,
            kind,
        )));
    }
    for _ in 0..4 {
        tasks.push(tokio::spawn(slow_client(address, counts.clone(), deadline)));
    }
    tasks.push(tokio::spawn(large(url.clone(), counts.clone(), deadline)));
    tasks.push(tokio::spawn(churn(url.clone(), counts.clone(), deadline)));
    let started = Instant::now();
    let mut series = Vec::new();
    println!("seconds  rss_MiB  firewall_5xx  answered");
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rss = resident_mib(pid);
        series.push(rss);
        let answered: u64 = counts
            .by_class
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum();
        println!(
            "{:>7}  {:>7.1}  {:>12}  {answered}",
            started.elapsed().as_secs(),
            rss,
            counts.firewall_5xx.load(Ordering::Relaxed),
        );
    }
    for task in tasks {
        let _ = task.await;
    }
    let by_class = counts
        .by_class
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    println!("\nanswers by class: {by_class:?}");
    println!(
        "transport errors (answers cut off on purpose, slow clients closed): {}",
        counts.transport_errors.load(Ordering::Relaxed)
    );
    println!(
        "firewall 5xx: {}",
        counts.firewall_5xx.load(Ordering::Relaxed)
    );
    if let (Some(first), Some(last)) = (series.first(), series.last()) {
        let peak = series.iter().copied().fold(0.0, f64::max);
        println!("RSS MiB: first {first:.1}, peak {peak:.1}, last {last:.1}");
    }
    let _ = firewall.kill();
}

async fn classify(counts: &Counts, response: reqwest::Result<reqwest::Response>) {
    let response = match response {
        Ok(response) => response,
        Err(_) => {
            counts.transport_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let status = response.status().as_u16();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(_) => {
            counts.transport_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v["errors"][0]["extensions"]["code"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    // The upstream never answers 5xx here: every 5xx is the firewall's own, except a shed
    // request (`OVERLOADED`), which is how it is meant to answer saturation.
    if status >= 500 && code != "OVERLOADED" {
        counts.firewall_5xx.fetch_add(1, Ordering::Relaxed);
    }
    counts.add(format!("{}xx {code}", status / 100));
}

async fn benign(url: String, counts: Arc<Counts>, deadline: Instant) {
    let client = reqwest::Client::new();
    while Instant::now() < deadline {
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(BENIGN)
            .send()
            .await;
        classify(&counts, response).await;
    }
}

async fn hostile(url: String, counts: Arc<Counts>, deadline: Instant, kind: u64) {
    let client = reqwest::Client::new();
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        n += 1;
        let document = match kind {
            0 => format!(
                "{{ {} }}",
                (0..200)
                    .map(|i| format!("a{n}_{i}: __typename"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            1 => format!(
                "{{ u{n}: {}}}",
                "users { friends { ".repeat(30) + &"} }".repeat(30)
            ),
            2 => format!("{{ users(first: {n}) {{ id "),
            _ => format!("query Q{n} {{ __schema {{ types {{ name }} }} }}"),
        };
        let body = serde_json::json!({ "query": document }).to_string();
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        classify(&counts, response).await;
    }
}

async fn slow_client(address: SocketAddr, counts: Arc<Counts>, deadline: Instant) {
    while Instant::now() < deadline {
        let Ok(mut stream) = TcpStream::connect(address).await else {
            continue;
        };
        for byte in b"POST /graphql HTTP/1.1\r\nhost: x\r\n" {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut buffer = [0u8; 256];
        let _ = stream.read(&mut buffer).await;
        counts.transport_errors.fetch_add(1, Ordering::Relaxed);
    }
}

async fn large(url: String, counts: Arc<Counts>, deadline: Instant) {
    let client = reqwest::Client::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let field = if n.is_multiple_of(4) {
            "endless"
        } else {
            "large"
        };
        let body = serde_json::json!({ "query": format!("{{ {field} }}") }).to_string();
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        classify(&counts, response).await;
    }
}

async fn churn(url: String, counts: Arc<Counts>, deadline: Instant) {
    while Instant::now() < deadline {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(BENIGN)
            .send()
            .await;
        classify(&counts, response).await;
    }
}

/// The demo backend, and `{ large }` / `{ endless }` answered here with big JSON bodies.
async fn upstream() -> SocketAddr {
    let demo = graphql_firewall::demo::spawn(TcpListener::bind("127.0.0.1:0").await.expect("bind"))
        .expect("demo backend");
    let demo_url = demo.url().to_string();
    let forward = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: Request| {
        let demo_url = demo_url.clone();
        let forward = forward.clone();
        async move {
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            if text.contains("{ large }") {
                return big_answer(20 << 20);
            }
            if text.contains("{ endless }") {
                return big_answer(u64::MAX);
            }
            match forward
                .post(&demo_url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(answer) => {
                    let status = answer.status();
                    let bytes = answer.bytes().await.unwrap_or_default();
                    let mut response = (status, bytes).into_response();
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    response
                }
                Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    std::mem::forget(demo);
    address
}

fn big_answer(size: u64) -> Response {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let frames = size / chunk.len() as u64;
    let stream = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from_static(br#"{"data":{"blob":""#))
    })
    .chain(futures_util::stream::iter(
        (0..frames).map(move |_| Ok(chunk.clone())),
    ))
    .chain(futures_util::stream::once(async {
        Ok(Bytes::from_static(br#""}}"#))
    }));
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn listening_address(firewall: &mut std::process::Child) -> SocketAddr {
    use std::io::BufRead;
    let stderr = firewall.stderr.take().expect("piped stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let address = loop {
        let line = lines.next().expect("a start-up line").expect("readable");
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && event["message"] == "graphql-firewall started"
        {
            break event["listen"]
                .as_str()
                .expect("listen")
                .parse()
                .expect("address");
        }
    };
    // Keep draining the log so the firewall never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    address
}

fn resident_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmRSS:")
                    .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
