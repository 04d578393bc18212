//! `serve_workers` hands each connection to the worker with the fewest open connections, so a
//! few long-lived keep-alive connections are spread over every worker (and every core).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;

/// Answers which worker thread served the request, and the client address it saw.
async fn who(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> String {
    format!(
        "{} {peer}",
        std::thread::current().name().unwrap_or("unnamed")
    )
}

/// One request on a kept-alive connection; the answer's body.
fn ask(connection: &mut TcpStream) -> String {
    connection
        .write_all(b"GET /who HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = connection.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "the connection closed before the answer was complete"
        );
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            if body.len() >= length {
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                return body[..length].to_owned();
            }
        }
    }
}

fn worker_of(answer: &str) -> &str {
    answer.split(' ').next().unwrap()
}

#[test]
fn long_lived_connections_are_spread_over_the_workers_fewest_open_first() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let app = graphql_firewall::Traffic {
        router: Router::new().route("/who", get(who)),
        limits: graphql_firewall::ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 100,
            max_connections_per_ip: None,
            exempt: graphql_firewall::net::IpNetworks::default(),
        },
        metrics: std::sync::Arc::new(graphql_firewall::metrics::Metrics::new()),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(graphql_firewall::serve_workers(
            listener,
            app,
            NonZeroUsize::new(2).unwrap(),
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ))
    });

    let mut connections: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    let mut workers = Vec::new();
    for connection in &mut connections {
        let answer = ask(connection);
        let (_, peer) = answer.split_once(' ').unwrap();
        assert_eq!(peer, connection.local_addr().unwrap().to_string());
        workers.push(worker_of(&answer).to_owned());
    }
    assert_eq!(
        workers,
        [
            "graphql-firewall-worker-0",
            "graphql-firewall-worker-1",
            "graphql-firewall-worker-0",
            "graphql-firewall-worker-1",
        ]
    );
    // Keep-alive holds: each connection stays with its worker.
    for (connection, worker) in connections.iter_mut().zip(&workers) {
        assert_eq!(worker_of(&ask(connection)), worker);
    }

    // Worker 0's connections close: it has the fewest open, so it gets the next two.
    drop(connections.remove(2));
    drop(connections.remove(0));
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..2 {
        let mut connection = TcpStream::connect(address).unwrap();
        assert_eq!(
            worker_of(&ask(&mut connection)),
            "graphql-firewall-worker-0"
        );
        connections.push(connection);
    }

    stop.send(()).unwrap();
    drop(connections);
    server.join().unwrap().unwrap();
}
