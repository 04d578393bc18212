//! The demo backend's streaming transports, spoken to directly (no firewall): WebSocket on both
//! subprotocols, Server-Sent Events, `multipart/mixed`; and what it records in `Observed`.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use graphql_firewall::demo::DemoBackend;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(backend: &DemoBackend) -> String {
    format!("ws://{}{}", backend.addr, graphql_firewall::demo::PATH)
}

async fn connect(backend: &DemoBackend, subprotocol: &str) -> Socket {
    let mut request = ws_url(backend).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", subprotocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        subprotocol,
        "the server agrees on the subprotocol"
    );
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next text message as JSON (panics after 10 s or on anything else).
async fn receive(socket: &mut Socket) -> Value {
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a message within 10 s")
        .expect("the socket is open")
        .unwrap();
    match frame {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn initialise(socket: &mut Socket) {
    send(socket, json!({"type": "connection_init"})).await;
    assert_eq!(receive(socket).await, json!({"type": "connection_ack"}));
}

#[tokio::test]
async fn countdown_streams_every_number_then_completes_over_graphql_transport_ws() {
    let backend = common::demo_backend().await;
    let mut socket = connect(&backend, "graphql-transport-ws").await;
    initialise(&mut socket).await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe",
               "payload": {"query": "subscription { countdown(from: 3, intervalMs: 0) }"}}),
    )
    .await;
    for n in (0..=3).rev() {
        assert_eq!(
            receive(&mut socket).await,
            json!({"type": "next", "id": "1", "payload": {"data": {"countdown": n}}})
        );
    }
    assert_eq!(
        receive(&mut socket).await,
        json!({"type": "complete", "id": "1"})
    );
    assert_eq!(backend.observed.ws_connections(), 1);
    assert_eq!(backend.observed.ws_messages(), 2);
    assert_eq!(backend.observed.ws_subscribes(), 1);
    assert!(
        backend
            .observed
            .last_ws_message()
            .unwrap()
            .contains("countdown")
    );
}

#[tokio::test]
async fn post_added_delivers_created_posts_over_legacy_graphql_ws() {
    let backend = common::demo_backend().await;
    let mut socket = connect(&backend, "graphql-ws").await;
    initialise(&mut socket).await;
    send(
        &mut socket,
        json!({"id": "a", "type": "start",
               "payload": {"query": "subscription { postAdded { title author { name } } }"}}),
    )
    .await;
    // The subscription starts listening only once the backend has processed `start`, which sends
    // nothing back; create posts until one arrives.
    let client = common::client();
    let data = loop {
        let created = client
            .post(backend.url())
            .header("content-type", "application/json")
            .body(json!({"query": "mutation { createPost(authorId: \"u1\", title: \"Live\", body: \"b\") { id } }"}).to_string())
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success());
        if let Ok(message) =
            tokio::time::timeout(Duration::from_millis(200), receive(&mut socket)).await
        {
            break message;
        }
    };
    assert_eq!(
        data,
        json!({"type": "data", "id": "a",
               "payload": {"data": {"postAdded": {"title": "Live", "author": {"name": "Grace"}}}}})
    );
    send(&mut socket, json!({"id": "a", "type": "stop"})).await;
    assert_eq!(
        receive(&mut socket).await,
        json!({"type": "complete", "id": "a"})
    );
    assert_eq!(backend.observed.ws_subscribes(), 1);
}

#[tokio::test]
async fn an_upgrade_naming_no_graphql_subprotocol_is_refused() {
    let backend = common::demo_backend().await;
    let mut request = ws_url(&backend).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "chat".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 400)
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
    assert_eq!(backend.observed.ws_connections(), 0);
}

#[tokio::test]
async fn sse_streams_next_events_then_complete_on_post() {
    let backend = common::demo_backend().await;
    let response = common::client()
        .post(backend.url())
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .body(json!({"query": "subscription { countdown(from: 1, intervalMs: 0) }"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(
        response.text().await.unwrap(),
        "event: next\ndata: {\"data\":{\"countdown\":1}}\n\n\
         event: next\ndata: {\"data\":{\"countdown\":0}}\n\n\
         event: complete\ndata:\n\n"
    );
}

#[tokio::test]
async fn sse_on_get_reports_validation_errors_as_a_next_event() {
    let backend = common::demo_backend().await;
    let mut url = backend.url();
    url.query_pairs_mut()
        .append_pair("query", "subscription { countdown }");
    let response = common::client()
        .get(url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let (next, complete) = text.split_once("\n\n").unwrap();
    let result: Value =
        serde_json::from_str(next.strip_prefix("event: next\ndata: ").unwrap()).unwrap();
    assert!(
        result["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("from"),
        "{result}"
    );
    assert_eq!(complete, "event: complete\ndata:\n\n");
}

#[tokio::test]
async fn multipart_streams_one_part_per_result() {
    let backend = common::demo_backend().await;
    let response = common::client()
        .post(backend.url())
        .header(
            "accept",
            "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\", application/json",
        )
        .header("content-type", "application/json")
        .body(json!({"query": "subscription { countdown(from: 1, intervalMs: 0) }"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        graphql_firewall::demo::stream::MULTIPART_CONTENT_TYPE
    );
    assert_eq!(
        response.text().await.unwrap(),
        "--graphql\r\nContent-Type: application/json\r\n\r\n{\"data\":{\"countdown\":1}}\r\n\
         --graphql\r\nContent-Type: application/json\r\n\r\n{\"data\":{\"countdown\":0}}\r\n\
         --graphql--\r\n"
    );
}

#[tokio::test]
async fn countdown_refuses_a_start_outside_its_bounds() {
    let backend = common::demo_backend().await;
    let response = common::client()
        .post(backend.url())
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .body(json!({"query": "subscription { countdown(from: 101) }"}).to_string())
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(text.contains("`from` must be between 0 and 100"), "{text}");
}

#[tokio::test]
async fn defer_is_not_supported_by_the_demo_backend() {
    // async-graphql 7.2 has no @defer/@stream: its validation refuses the directive, so there is
    // no incremental delivery for the firewall to relay from this backend.
    let backend = common::demo_backend().await;
    let response = common::client()
        .post(backend.url())
        .header(
            "accept",
            "multipart/mixed;deferSpec=20220824, application/json",
        )
        .header("content-type", "application/json")
        .body(json!({"query": "{ users(first: 1) { id ... @defer { name } } }"}).to_string())
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown directive \"defer\""),
        "{body}"
    );
}
