//! The edge holds: connection-level limits over real sockets (slow heads, slow bodies, idle and
//! silent connections, connection caps), load shedding, the request-method and URL rules, and a
//! graceful drain of the built binary.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Process, first_code, slow_upstream, start, start_with_upstream, status_and_json};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Waits (at most `within`) for the peer to close: `true` when it did.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An error page before the close still means the connection ended.
            Ok(Ok(_)) => continue,
        }
    }
}

fn address(harness: &common::Harness) -> SocketAddr {
    harness
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("the firewall's address")
}

/// A connection from `local` (a loopback address of ours) to the firewall.
async fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

const QUERY: &str = r#"{"query":"{ users(first: 1) { id } }"}"#;

fn post(body: &str) -> String {
    format!(
        "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one HTTP/1.1 answer with a `content-length` from a keep-alive connection.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "closed before the answer was complete");
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn a_head_that_trickles_in_is_cut_off_at_the_header_deadline() {
    let harness = start(&[("GRAPHQL_FIREWALL_HEADER_READ_TIMEOUT", "1s")]).await;
    let mut slow = TcpStream::connect(address(&harness)).await.unwrap();
    slow.write_all(b"GET /graphql HTTP/1.1\r\n").await.unwrap();
    // A byte now and then does not keep it open: the deadline is for the whole head.
    for byte in b"x-slow: 1" {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if slow.write_all(&[*byte]).await.is_err() {
            break;
        }
    }
    assert!(closed_within(&mut slow, Duration::from_secs(10)).await);
    let mut silent = TcpStream::connect(address(&harness)).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(10)).await,
        "a connection that never sends is closed too"
    );
    assert_eq!(harness.post_json(QUERY).await.status(), 200);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408() {
    let harness = start(&[("GRAPHQL_FIREWALL_BODY_READ_TIMEOUT", "1s")]).await;
    let mut stream = TcpStream::connect(address(&harness)).await.unwrap();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"query\"")
        .await
        .unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_but_a_slow_upstream_is_not_idleness() {
    let upstream = slow_upstream(Duration::from_millis(2_500)).await;
    let harness = start_with_upstream(
        &format!("http://{upstream}/graphql"),
        &[("GRAPHQL_FIREWALL_IDLE_TIMEOUT", "1s")],
    )
    .await;
    let mut stream = TcpStream::connect(address(&harness)).await.unwrap();
    stream.write_all(post(QUERY).as_bytes()).await.unwrap();
    // The upstream takes longer than the idle timeout: a request in flight keeps the connection.
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let harness = start(&[("GRAPHQL_FIREWALL_MAX_CONNECTIONS_PER_IP", "2")]).await;
    let firewall = address(&harness);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from("127.0.0.2", firewall).await;
        stream.write_all(post(QUERY).as_bytes()).await.unwrap();
        assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let mut third = connect_from("127.0.0.2", firewall).await;
    assert!(
        closed_within(&mut third, Duration::from_secs(5)).await,
        "the third connection of 127.0.0.2 is closed at once"
    );
    let mut other = connect_from("127.0.0.1", firewall).await;
    other.write_all(post(QUERY).as_bytes()).await.unwrap();
    assert!(read_answer(&mut other).await.starts_with("HTTP/1.1 200"));
    drop(held);
    // Released connections free the address's share again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from("127.0.0.2", firewall).await;
    again.write_all(post(QUERY).as_bytes()).await.unwrap();
    assert!(read_answer(&mut again).await.starts_with("HTTP/1.1 200"));
    let metrics = common::scrape(&harness).await;
    assert_eq!(
        metrics[r#"graphql_firewall_connections_refused_total{outcome="max_connections_per_ip"}"#],
        1.0
    );
}

#[tokio::test]
async fn the_process_cap_closes_new_connections_at_once() {
    let harness = start(&[
        ("GRAPHQL_FIREWALL_MAX_CONNECTIONS", "2"),
        ("GRAPHQL_FIREWALL_MAX_CONNECTIONS_PER_IP", "off"),
    ])
    .await;
    let firewall = address(&harness);
    let mut first = TcpStream::connect(firewall).await.unwrap();
    let mut second = TcpStream::connect(firewall).await.unwrap();
    for stream in [&mut first, &mut second] {
        stream.write_all(post(QUERY).as_bytes()).await.unwrap();
        assert!(read_answer(stream).await.starts_with("HTTP/1.1 200"));
    }
    let mut third = TcpStream::connect(firewall).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn over_the_upstream_concurrency_a_request_is_shed_with_503() {
    let upstream = slow_upstream(Duration::from_millis(1_500)).await;
    let harness = start_with_upstream(
        &format!("http://{upstream}/graphql"),
        &[
            ("GRAPHQL_FIREWALL_MAX_CONCURRENT_UPSTREAM", "1"),
            ("GRAPHQL_FIREWALL_QUEUE_TIMEOUT", "100ms"),
        ],
    )
    .await;
    let first = harness.post_json_with(&[], QUERY);
    let first = tokio::spawn(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = harness.post_json(QUERY).await;
    assert_eq!(second.status(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    let (_, body) = status_and_json(second).await;
    assert_eq!(first_code(&body), "OVERLOADED");
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_not_spoken_on_the_traffic_port() {
    let harness = start(&[]).await;
    let mut stream = TcpStream::connect(address(&harness)).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    // An HTTP/2 server would answer with a SETTINGS frame (type 4 in the fourth byte).
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn options_requests_spend_the_request_budget_and_lose_their_query_string() {
    let harness = start(&[("GRAPHQL_FIREWALL_RATE_LIMIT", "2/min")]).await;
    for _ in 0..2 {
        let response = harness
            .client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}?query=%7Ba%7D", harness.url),
            )
            .send()
            .await
            .unwrap();
        assert_ne!(response.status(), 429);
        let (query_string, _) = harness.backend().observed.last_request().unwrap();
        assert_eq!(query_string, None, "the URL query is not forwarded");
    }
    assert_eq!(harness.post_json(QUERY).await.status(), 429);
}

#[tokio::test]
async fn a_post_url_never_carries_graphql_past_the_firewall() {
    let harness = start(&[]).await;
    let hidden = harness
        .client
        .post(format!(
            "{}?query=%7B__schema%7Btypes%7Bname%7D%7D%7D",
            harness.url
        ))
        .header("content-type", "application/json")
        .body(QUERY)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(hidden).await;
    assert_eq!(status, 400);
    assert_eq!(first_code(&body), "INVALID_REQUEST");
    assert_eq!(harness.upstream_requests(), 0);
    let other = harness
        .client
        .post(format!("{}?tenant=blue", harness.url))
        .header("content-type", "application/json")
        .body(QUERY)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    let (query_string, _) = harness.backend().observed.last_request().unwrap();
    assert_eq!(query_string, None, "a POST's URL query is not forwarded");
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime.block_on(slow_upstream(Duration::from_millis(1_500)));
    let process = Process::start(
        &["serve"],
        &[
            (
                "GRAPHQL_FIREWALL_UPSTREAM_URL",
                &format!("http://{upstream}/graphql"),
            ),
            ("GRAPHQL_FIREWALL_SHUTDOWN_TIMEOUT", "10s"),
        ],
    );
    let url = process.url();
    let in_flight = runtime.spawn(async move {
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(QUERY)
            .send()
            .await
    });
    std::thread::sleep(Duration::from_millis(400));
    process.signal("TERM");
    let answer = runtime.block_on(in_flight).unwrap().unwrap();
    assert_eq!(answer.status(), 200, "the request in flight was answered");
    let text = runtime.block_on(answer.text()).expect("a complete answer");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(body, serde_json::json!({"data": null}));
    let listen = process.listen.clone();
    assert_eq!(process.wait(), Some(0));
    assert!(
        std::net::TcpStream::connect(listen).is_err(),
        "nothing listens after the drain"
    );
}
