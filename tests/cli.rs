//! The built binary: configuration errors exit with status 2 and name the variable; `demo` serves
//! real traffic and shuts down gracefully on SIGTERM, letting in-flight requests on every worker
//! finish.

mod common;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_graphql-firewall");

fn run_with(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_missing_upstream_exits_with_status_2_naming_the_variable() {
    let (code, stderr) = run_with(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("GRAPHQL_FIREWALL_UPSTREAM_URL"), "{stderr}");
}

#[test]
fn a_bad_value_exits_with_status_2_naming_variable_value_and_accepted_forms() {
    let (code, stderr) = run_with(&[
        (
            "GRAPHQL_FIREWALL_UPSTREAM_URL",
            "http://127.0.0.1:9/graphql",
        ),
        ("GRAPHQL_FIREWALL_UPSTREAM_TIMEOUT", "soon"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("GRAPHQL_FIREWALL_UPSTREAM_TIMEOUT"),
        "{stderr}"
    );
    assert!(stderr.contains("\"soon\""), "{stderr}");
    assert!(
        stderr.contains("30s"),
        "accepted forms are listed: {stderr}"
    );
}

#[test]
fn an_unknown_variable_is_reported_at_start_up() {
    let (code, stderr) = run_with(&[
        (
            "GRAPHQL_FIREWALL_UPSTREAM_URL",
            "http://127.0.0.1:9/graphql",
        ),
        ("GRAPHQL_FIREWALL_MAX_BODYBYTES", "10"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("GRAPHQL_FIREWALL_MAX_BODYBYTES"),
        "{stderr}"
    );
}

#[test]
fn demo_serves_queries_passes_its_healthcheck_and_stops_cleanly_on_sigterm() {
    let process = common::Process::start(&["demo"], &[]);
    let body = reqwest::blocking::Client::new()
        .post(process.url())
        .header("content-type", "application/json")
        .body(r#"{"query":"{ user(id: \"u0\") { name email } }"}"#)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        body,
        r#"{"data":{"user":{"name":"Ada","email":"ada@example.com"}}}"#
    );
    let healthcheck = Command::new(BIN)
        .arg("healthcheck")
        .env_clear()
        .env("GRAPHQL_FIREWALL_LISTEN", &process.listen)
        .status()
        .unwrap();
    assert!(
        healthcheck.success(),
        "healthcheck against the running demo"
    );
    process.signal("TERM");
    process.wait_for(|event| event["message"] == "graphql-firewall stopped");
    assert_eq!(process.wait(), Some(0));
}

#[test]
fn sigterm_lets_in_flight_requests_on_every_worker_finish() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime.block_on(common::slow_upstream(std::time::Duration::from_millis(
        1500,
    )));
    let process = common::Process::start(
        &["serve"],
        &[
            (
                "GRAPHQL_FIREWALL_UPSTREAM_URL",
                &format!("http://{upstream}/graphql"),
            ),
            ("GRAPHQL_FIREWALL_WORKERS", "2"),
        ],
    );
    // More requests than workers, each on its own connection: both workers hold some.
    let in_flight: Vec<_> = (0..6)
        .map(|_| {
            let url = process.url();
            std::thread::spawn(move || {
                let response = reqwest::blocking::Client::new()
                    .post(url)
                    .header("content-type", "application/json")
                    .body(r#"{"query":"{ __typename }"}"#)
                    .send()
                    .unwrap();
                (response.status().as_u16(), response.text().unwrap())
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    process.signal("TERM");
    for request in in_flight {
        assert_eq!(request.join().unwrap(), (200, "{\"data\":null}".to_owned()));
    }
    process.wait_for(|event| event["message"] == "graphql-firewall stopped");
    assert_eq!(process.wait(), Some(0));
}

#[test]
fn the_demos_sse_and_websocket_examples_work_and_a_websocket_operation_is_audited() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let process = common::Process::start(&["demo"], &[]);
    let subscription = r#"{"query":"subscription { countdown(from: 3, intervalMs: 1) }"}"#;
    // The SSE example (`curl -N … -H 'accept: text/event-stream'`).
    let events = reqwest::blocking::Client::new()
        .post(process.url())
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(subscription)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        events.contains(r#"data: {"data":{"countdown":0}}"#),
        "{events}"
    );
    // The WebSocket example (websocat with graphql-transport-ws).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = process.url().replacen("http://", "ws://", 1);
    let received = runtime.block_on(async move {
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        for message in [
            r#"{"type":"connection_init"}"#.to_owned(),
            format!(r#"{{"id":"1","type":"subscribe","payload":{subscription}}}"#),
        ] {
            socket.send(Message::text(message)).await.unwrap();
        }
        let mut received = Vec::new();
        while let Some(Ok(Message::Text(text))) = socket.next().await {
            let done = text.contains(r#""type":"complete""#);
            received.push(text.to_string());
            if done {
                break;
            }
        }
        received
    });
    assert_eq!(received.len(), 6, "ack, 4 results, complete: {received:?}");
    assert!(received[4].contains(r#""countdown":0"#), "{received:?}");
    // Log events are flat JSON objects.
    let audited = process.wait_for(|event| {
        event["target"] == "graphql_firewall::audit" && event["transport"] == "ws"
    });
    assert_eq!(audited["operation_type"], "subscription", "{audited}");
    assert_eq!(audited["verdict"], "allowed", "{audited}");
    assert!(audited["cost"].is_number(), "{audited}");
}
