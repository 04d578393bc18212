//! `ws::protocol::Session` against a real upstream: the demo backend's WebSocket endpoint
//! (async-graphql), driven by a minimal relay written here the way the firewall's will be. The
//! client side is simulated by feeding frames to the session; the upstream side is a real socket.
//! Shows that the session's frames are what async-graphql expects on both subprotocols, that a
//! refused operation never reaches the backend, and that translation between them works.

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use graphql_firewall::demo::DemoBackend;
use graphql_firewall::http::ws::protocol::{Action, Session, Settings, Subprotocol};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The session, its upstream socket, and what the client was sent.
struct Relay {
    session: Session,
    upstream: Socket,
    to_client: VecDeque<Value>,
    closed: Option<u16>,
}

impl Relay {
    async fn open(backend: &DemoBackend, client: Subprotocol, upstream: Subprotocol) -> Relay {
        let mut request = format!("ws://{}{}", backend.addr, graphql_firewall::demo::PATH)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", upstream.name().parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let settings = Settings {
            max_message_bytes: 64 * 1024,
            max_subscriptions: 4,
            init_timeout: Duration::from_secs(5),
            keepalive: None,
            idle_timeout: None,
        };
        Relay {
            session: Session::new(client, upstream, settings, Instant::now()),
            upstream: socket,
            to_client: VecDeque::new(),
            closed: None,
        }
    }

    /// A client frame through the session.
    async fn client(&mut self, message: Value) {
        let actions = self
            .session
            .on_client_text(&message.to_string(), Instant::now());
        self.carry_out(actions).await;
    }

    /// Relays upstream frames until the client has `count` messages waiting.
    async fn until_client_has(&mut self, count: usize) {
        while self.to_client.len() < count && self.closed.is_none() {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.upstream.next())
                .await
                .expect("the upstream answers within 10 s")
                .expect("the upstream is open")
                .unwrap();
            let Message::Text(text) = frame else {
                continue;
            };
            let actions = self.session.on_upstream_text(&text, Instant::now());
            self.carry_out(actions).await;
        }
    }

    async fn next_for_client(&mut self) -> Value {
        self.until_client_has(1).await;
        self.to_client
            .pop_front()
            .expect("a message for the client")
    }

    /// Carries out actions; the stand-in inspection refuses introspection and allows the rest.
    async fn carry_out(&mut self, actions: Vec<Action>) {
        let mut pending: VecDeque<Action> = actions.into();
        while let Some(action) = pending.pop_front() {
            match action {
                Action::Client(text) => self.to_client.push_back(parse(&text)),
                Action::Upstream(text) => self.upstream.send(Message::text(text)).await.unwrap(),
                Action::Inspect { id, request } => {
                    let verdict = if request.query.as_deref().unwrap_or("").contains("__schema") {
                        self.session.refuse(
                            &id,
                            r#"[{"message":"GraphQL introspection is not allowed","extensions":{"code":"INTROSPECTION_DISABLED"}}]"#,
                        )
                    } else {
                        self.session.allow(&id, None)
                    };
                    pending.extend(verdict);
                }
                Action::Refuse { id, .. } => pending.extend(
                    self.session
                        .refuse(&id, r#"[{"message":"too many subscriptions"}]"#),
                ),
                Action::Harden { id, kind, payload } => {
                    let hardened = payload.get();
                    self.to_client
                        .push_back(parse(&self.session.result_message(&id, kind, hardened)));
                }
                Action::Close(close) => self.closed = Some(close.code.code()),
            }
        }
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn a_graphql_transport_ws_client_subscribes_through_the_session_and_a_refused_operation_never_reaches_the_backend()
 {
    let backend = common::demo_backend().await;
    let modern = Subprotocol::GraphqlTransportWs;
    let mut relay = Relay::open(&backend, modern, modern).await;
    relay.client(json!({"type": "connection_init"})).await;
    assert_eq!(
        relay.next_for_client().await,
        json!({"type": "connection_ack"})
    );

    relay
        .client(json!({"type": "subscribe", "id": "intro",
                       "payload": {"query": "subscription { __schema { types { name } } }"}}))
        .await;
    assert_eq!(
        relay.next_for_client().await["payload"][0]["extensions"]["code"],
        "INTROSPECTION_DISABLED"
    );
    assert_eq!(
        backend.observed.ws_subscribes(),
        0,
        "refused before the backend"
    );

    relay
        .client(json!({"type": "subscribe", "id": "client-chosen-id",
                       "payload": {"query": "subscription { countdown(from: 2, intervalMs: 0) }"}}))
        .await;
    for n in [2, 1, 0] {
        assert_eq!(
            relay.next_for_client().await,
            json!({"type": "next", "id": "client-chosen-id", "payload": {"data": {"countdown": n}}})
        );
    }
    assert_eq!(
        relay.next_for_client().await,
        json!({"type": "complete", "id": "client-chosen-id"})
    );
    assert_eq!(backend.observed.ws_subscribes(), 1);
    let forwarded: Value = parse(&backend.observed.last_ws_message().unwrap());
    assert_eq!(
        forwarded["id"], "1",
        "the backend saw the firewall's id, not the client's"
    );
    assert_eq!(relay.closed, None);
}

#[tokio::test]
async fn a_legacy_client_that_starts_before_the_ack_is_served_by_a_legacy_backend() {
    let backend = common::demo_backend().await;
    let legacy = Subprotocol::GraphqlWs;
    let mut relay = Relay::open(&backend, legacy, legacy).await;
    relay.client(json!({"type": "connection_init"})).await;
    relay
        .client(json!({"type": "start", "id": "1",
                       "payload": {"query": "subscription { countdown(from: 0) }"}}))
        .await;
    assert_eq!(
        relay.next_for_client().await,
        json!({"type": "connection_ack"})
    );
    assert_eq!(
        relay.next_for_client().await,
        json!({"type": "data", "id": "1", "payload": {"data": {"countdown": 0}}})
    );
    assert_eq!(
        relay.next_for_client().await,
        json!({"type": "complete", "id": "1"})
    );
}

#[tokio::test]
async fn a_legacy_client_is_served_by_a_graphql_transport_ws_backend_through_translation() {
    let backend = common::demo_backend().await;
    let mut relay = Relay::open(
        &backend,
        Subprotocol::GraphqlWs,
        Subprotocol::GraphqlTransportWs,
    )
    .await;
    relay.client(json!({"type": "connection_init"})).await;
    assert_eq!(
        relay.next_for_client().await,
        json!({"type": "connection_ack"})
    );
    relay
        .client(json!({"type": "start", "id": "7",
                       "payload": {"query": "query { user(id: \"u1\") { name } }"}}))
        .await;
    assert_eq!(
        relay.next_for_client().await,
        json!({"type": "data", "id": "7", "payload": {"data": {"user": {"name": "Grace"}}}})
    );
    assert_eq!(
        relay.next_for_client().await,
        json!({"type": "complete", "id": "7"})
    );
    assert_eq!(
        parse(&backend.observed.last_ws_message().unwrap())["type"],
        "subscribe"
    );
}
