//! WebSocket relay figures: `cargo bench --bench ws_relay`.
//!
//! Against the demo backend (in this process) and the firewall (the built binary, `serve` in
//! front of it), over loopback, with `graphql-transport-ws`:
//!
//! 1. **Per-message overhead.** A client subscribes to `countdown(from: 100, intervalMs: 0)` (101
//!    `next` messages, then `complete`), directly and through the firewall, alternating round by
//!    round; the median time per `next` message of each, and the difference: what one relayed
//!    (parsed, renamed, sanitised, re-framed) message costs.
//! 2. **Memory per idle subscribed connection.** The firewall's resident memory (`VmRSS`) before
//!    and after `WS_BENCH_CONNECTIONS` connections that each hold one `postAdded` subscription and
//!    send nothing, divided by their number.
//!
//! Knobs: `WS_BENCH_ROUNDS` (default 20), `WS_BENCH_CONNECTIONS` (default 500).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use futures_util::{SinkExt, StreamExt};
use graphql_firewall::demo;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const FIREWALL: &str = env!("CARGO_BIN_EXE_graphql-firewall");

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Kills the firewall when the bench ends, however it ends.
struct Firewall(Child);

impl Drop for Firewall {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn start_firewall(upstream: &str) -> (Firewall, String) {
    let listen = free_port();
    let child = Command::new(FIREWALL)
        .arg("serve")
        .env_clear()
        .env("GRAPHQL_FIREWALL_UPSTREAM_URL", upstream)
        .env("GRAPHQL_FIREWALL_LISTEN", listen.to_string())
        .env("GRAPHQL_FIREWALL_METRICS_LISTEN", "off")
        .env("GRAPHQL_FIREWALL_LOG", "warn")
        .env("GRAPHQL_FIREWALL_MAX_CONNECTIONS_PER_IP", "off")
        .env("GRAPHQL_FIREWALL_WS_MAX_SUBSCRIPTIONS_PER_CLIENT", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the firewall binary starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(Instant::now() < deadline, "the firewall did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Firewall(child), format!("ws://{listen}/graphql"))
}

async fn connect(url: &str) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    // Small frames both ways: Nagle's algorithm off, as the firewall has it on its own sockets.
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .unwrap();
    socket
        .send(Message::text(r#"{"type":"connection_init"}"#))
        .await
        .unwrap();
    let ack = socket.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
    socket
}

/// Time per `next` message of one countdown of 101 results.
async fn per_message(socket: &mut Socket, id: usize) -> Duration {
    let subscribe = format!(
        r#"{{"id":"{id}","type":"subscribe","payload":{{"query":"subscription {{ countdown(from: 100, intervalMs: 0) }}"}}}}"#
    );
    let started = Instant::now();
    socket.send(Message::text(subscribe)).await.unwrap();
    let mut results = 0u32;
    loop {
        let text = socket.next().await.unwrap().unwrap();
        let text = text.to_text().unwrap();
        if text.contains(r#""type":"complete""#) {
            break;
        }
        assert!(text.contains(r#""type":"next""#), "{text}");
        results += 1;
    }
    assert_eq!(results, 101);
    started.elapsed() / results
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS in /proc")
        * 1024
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // The demo backend with Nagle's algorithm off (`demo::spawn` leaves it on), so that the
        // direct path is not slowed by delayed acknowledgements the relayed one avoids.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_addr = listener.local_addr().unwrap();
        let observed = Arc::new(demo::Observed::default());
        let app = demo::router(observed.clone());
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        let direct_url = format!("ws://{backend_addr}{}", demo::PATH);
        let (firewall, firewall_url) =
            start_firewall(&format!("http://{backend_addr}{}", demo::PATH));

        let rounds = knob("WS_BENCH_ROUNDS", 20);
        let mut direct = connect(&direct_url).await;
        let mut relayed = connect(&firewall_url).await;
        // Warm-up: connections, caches, the analysis of the document.
        per_message(&mut direct, 0).await;
        per_message(&mut relayed, 0).await;
        let (mut direct_samples, mut relayed_samples) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            direct_samples.push(per_message(&mut direct, round).await);
            relayed_samples.push(per_message(&mut relayed, round).await);
        }
        let (direct_us, relayed_us) = (
            median(direct_samples).as_secs_f64() * 1e6,
            median(relayed_samples).as_secs_f64() * 1e6,
        );
        println!(
            "per next message (median of {rounds} countdowns of 101): direct {direct_us:.1} µs, \
             through the firewall {relayed_us:.1} µs, overhead {:.1} µs",
            relayed_us - direct_us
        );

        let connections = knob("WS_BENCH_CONNECTIONS", 500);
        let pid = firewall.0.id();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = resident_bytes(pid);
        let mut idle = Vec::with_capacity(connections);
        for _ in 0..connections {
            let mut socket = connect(&firewall_url).await;
            socket
                .send(Message::text(
                    r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { postAdded { id } }"}}"#,
                ))
                .await
                .unwrap();
            idle.push(socket);
        }
        // Every subscription has reached the backend before memory is read.
        let deadline = Instant::now() + Duration::from_secs(30);
        while observed.ws_subscribes() < (connections + 2 + 2 * rounds) as u64 {
            assert!(Instant::now() < deadline, "subscriptions did not arrive");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = resident_bytes(pid);
        println!(
            "memory per idle subscribed connection: {:.1} KiB ({connections} connections, \
             firewall RSS {:.1} → {:.1} MiB)",
            after.saturating_sub(before) as f64 / connections as f64 / 1024.0,
            before as f64 / (1 << 20) as f64,
            after as f64 / (1 << 20) as f64,
        );
        drop(idle);
        drop(firewall);
    });
}
