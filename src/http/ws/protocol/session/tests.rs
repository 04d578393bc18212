#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const MODERN: Subprotocol = Subprotocol::GraphqlTransportWs;
const LEGACY: Subprotocol = Subprotocol::GraphqlWs;
const SECOND: Duration = Duration::from_secs(1);

fn settings() -> Settings {
    Settings {
        max_message_bytes: 4096,
        max_subscriptions: 2,
        init_timeout: Duration::from_secs(3),
        keepalive: None,
        idle_timeout: None,
    }
}

/// An action with its JSON parsed, so that tests compare meaning rather than spelling.
#[derive(Debug, PartialEq)]
enum Step {
    Client(Value),
    Upstream(Value),
    Inspect(String, Option<String>),
    Refuse(String, Refusal),
    Harden(String, ResultKind, Value),
    Close(u16),
}

fn steps(actions: Vec<Action>) -> Vec<Step> {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    actions
        .into_iter()
        .map(|action| match action {
            Action::Client(text) => Step::Client(parse(&text)),
            Action::Upstream(text) => Step::Upstream(parse(&text)),
            Action::Inspect { id, request } => Step::Inspect(id, request.query),
            Action::Refuse { id, reason } => Step::Refuse(id, reason),
            Action::Harden { id, kind, payload } => Step::Harden(id, kind, parse(payload.get())),
            Action::Close(close) => Step::Close(close.code.code()),
        })
        .collect()
}

/// A session and a clock.
struct Connection {
    session: Session,
    now: Instant,
}

impl Connection {
    fn new(client: Subprotocol, upstream: Subprotocol, settings: Settings) -> Connection {
        let now = Instant::now();
        Connection {
            session: Session::new(client, upstream, settings, now),
            now,
        }
    }

    /// Connected, initialised and acknowledged.
    fn ready(client: Subprotocol, upstream: Subprotocol, settings: Settings) -> Connection {
        let mut connection = Connection::new(client, upstream, settings);
        connection.client(json!({"type": "connection_init"}));
        let ack = connection.upstream(json!({"type": "connection_ack"}));
        assert_eq!(ack[0], Step::Client(json!({"type": "connection_ack"})));
        connection
    }

    fn client(&mut self, message: Value) -> Vec<Step> {
        steps(self.session.on_client_text(&message.to_string(), self.now))
    }

    fn upstream(&mut self, message: Value) -> Vec<Step> {
        steps(
            self.session
                .on_upstream_text(&message.to_string(), self.now),
        )
    }

    fn subscribe(&mut self, id: &str, query: &str) -> Vec<Step> {
        let kind = match self.session.client_protocol() {
            Subprotocol::GraphqlTransportWs => "subscribe",
            Subprotocol::GraphqlWs => "start",
        };
        self.client(json!({"type": kind, "id": id, "payload": {"query": query}}))
    }

    /// Subscribes and allows: the upstream subscribe it produced.
    fn start(&mut self, id: &str, query: &str) -> Value {
        assert_eq!(
            self.subscribe(id, query),
            vec![Step::Inspect(id.to_owned(), Some(query.to_owned()))]
        );
        match steps(self.session.allow(id, None)).pop() {
            Some(Step::Upstream(message)) => message,
            other => panic!("expected an upstream subscribe, got {other:?}"),
        }
    }

    fn advance(&mut self, by: Duration) -> Vec<Step> {
        self.now += by;
        steps(self.session.on_tick(self.now))
    }
}

// === Initialisation ===

#[test]
fn init_goes_upstream_with_its_payload_and_the_ack_comes_back() {
    let mut connection = Connection::new(MODERN, MODERN, settings());
    assert_eq!(
        connection.client(json!({"type": "connection_init", "payload": {"token": "t"}})),
        vec![Step::Upstream(
            json!({"type": "connection_init", "payload": {"token": "t"}})
        )]
    );
    assert_eq!(
        connection.session.init_payload().unwrap().get(),
        r#"{"token":"t"}"#
    );
    assert_eq!(
        connection.upstream(json!({"type": "connection_ack", "payload": {"v": 1}})),
        vec![Step::Client(
            json!({"type": "connection_ack", "payload": {"v": 1}})
        )]
    );
}

#[test]
fn no_init_within_the_timeout_closes_with_4408() {
    let mut connection = Connection::new(MODERN, MODERN, settings());
    assert_eq!(
        connection.session.next_deadline(),
        Some(connection.now + 3 * SECOND)
    );
    assert_eq!(connection.advance(2 * SECOND), vec![]);
    assert_eq!(connection.advance(SECOND), vec![Step::Close(4408)]);
    assert!(connection.session.is_closed());
    assert_eq!(connection.session.next_deadline(), None);
}

#[test]
fn an_upstream_that_does_not_acknowledge_in_time_closes_with_1014() {
    let mut connection = Connection::new(MODERN, MODERN, settings());
    connection.advance(2 * SECOND);
    connection.client(json!({"type": "connection_init"}));
    // The upstream gets its own full timeout from the client's init.
    assert_eq!(connection.advance(2 * SECOND), vec![]);
    assert_eq!(connection.advance(SECOND), vec![Step::Close(1014)]);
}

#[test]
fn a_second_init_closes_with_4429_before_and_after_the_ack() {
    let mut waiting = Connection::new(MODERN, MODERN, settings());
    waiting.client(json!({"type": "connection_init"}));
    assert_eq!(
        waiting.client(json!({"type": "connection_init"})),
        vec![Step::Close(4429)]
    );
    let mut ready = Connection::ready(LEGACY, LEGACY, settings());
    assert_eq!(
        ready.client(json!({"type": "connection_init"})),
        vec![Step::Close(4429)]
    );
}

#[test]
fn a_subscribe_before_the_ack_closes_with_4401() {
    let mut before_init = Connection::new(MODERN, MODERN, settings());
    assert_eq!(
        before_init.subscribe("1", "{ users { id } }"),
        vec![Step::Close(4401)]
    );
    let mut before_ack = Connection::new(MODERN, MODERN, settings());
    before_ack.client(json!({"type": "connection_init"}));
    assert_eq!(
        before_ack.subscribe("1", "{ users { id } }"),
        vec![Step::Close(4401)]
    );
    let mut legacy_before_init = Connection::new(LEGACY, LEGACY, settings());
    assert_eq!(
        legacy_before_init.subscribe("1", "{ users { id } }"),
        vec![Step::Close(4401)]
    );
}

#[test]
fn a_legacy_start_right_after_init_is_inspected_and_forwarded_once_acknowledged() {
    let mut connection = Connection::new(LEGACY, LEGACY, settings());
    connection.client(json!({"type": "connection_init"}));
    assert_eq!(
        connection.subscribe("a", "subscription { postAdded { id } }"),
        vec![Step::Inspect(
            "a".into(),
            Some("subscription { postAdded { id } }".into())
        )]
    );
    assert_eq!(
        connection.subscribe("b", "subscription { countdown(from: 1) }"),
        vec![Step::Inspect(
            "b".into(),
            Some("subscription { countdown(from: 1) }".into())
        )]
    );
    assert_eq!(steps(connection.session.allow("b", None)), vec![]);
    assert_eq!(steps(connection.session.allow("a", None)), vec![]);
    assert_eq!(connection.session.open_operations(), 2);
    assert_eq!(
        connection.upstream(json!({"type": "connection_ack"})),
        vec![
            Step::Client(json!({"type": "connection_ack"})),
            Step::Upstream(json!({"type": "start", "id": "1",
                                  "payload": {"query": "subscription { countdown(from: 1) }"}})),
            Step::Upstream(json!({"type": "start", "id": "2",
                                  "payload": {"query": "subscription { postAdded { id } }"}})),
        ],
        "in the order they were allowed"
    );
}

#[test]
fn a_legacy_start_cancelled_before_the_ack_is_never_forwarded() {
    let mut connection = Connection::new(LEGACY, LEGACY, settings());
    connection.client(json!({"type": "connection_init"}));
    connection.subscribe("a", "{ users { id } }");
    connection.session.allow("a", None);
    assert_eq!(
        connection.client(json!({"type": "stop", "id": "a"})),
        vec![]
    );
    assert_eq!(
        connection.upstream(json!({"type": "connection_ack"})),
        vec![Step::Client(json!({"type": "connection_ack"}))]
    );
    assert_eq!(connection.session.open_operations(), 0);
}

// === Operations ===

#[test]
fn an_allowed_subscribe_goes_upstream_under_a_fresh_id_with_its_payload_as_received() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    let text = r#"{"type":"subscribe","id":"client-id","payload":{"query":"query($n:ID!){user(id:$n){id}}","variables":{"n":1.0e3},"unknown":true}}"#;
    let inspect = steps(connection.session.on_client_text(text, connection.now));
    assert_eq!(
        inspect,
        vec![Step::Inspect(
            "client-id".into(),
            Some("query($n:ID!){user(id:$n){id}}".into())
        )]
    );
    let forwarded = connection.session.allow("client-id", None);
    let [Action::Upstream(forwarded)] = forwarded.as_slice() else {
        panic!("{forwarded:?}");
    };
    assert_eq!(
        forwarded,
        r#"{"type":"subscribe","id":"1","payload":{"query":"query($n:ID!){user(id:$n){id}}","variables":{"n":1.0e3},"unknown":true}}"#
    );
    assert_eq!(connection.session.open_operations(), 1);
}

#[test]
fn a_rewritten_operation_goes_upstream_as_rewritten() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    connection.client(json!({"type": "subscribe", "id": "p",
        "payload": {"documentId": "sha256:abc", "variables": {"first": 2}}}));
    let resolved = GraphqlRequest {
        query: Some("{ users(first: 2) { id } }".into()),
        variables: Some(json!({"first": 2}).as_object().unwrap().clone()),
        ..GraphqlRequest::default()
    };
    assert_eq!(
        steps(connection.session.allow("p", Some(&resolved))),
        vec![Step::Upstream(json!({"type": "subscribe", "id": "1",
            "payload": {"query": "{ users(first: 2) { id } }", "variables": {"first": 2}}}))]
    );
}

#[test]
fn a_refused_operation_gets_an_error_for_its_id_and_the_connection_stays_open() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    connection.subscribe("1", "{ __schema { types { name } } }");
    let errors = r#"[{"message":"introspection is disabled","extensions":{"code":"INTROSPECTION_DISABLED"}}]"#;
    assert_eq!(
        steps(connection.session.refuse("1", errors)),
        vec![Step::Client(json!({"type": "error", "id": "1",
            "payload": [{"message": "introspection is disabled",
                         "extensions": {"code": "INTROSPECTION_DISABLED"}}]}))]
    );
    assert_eq!(connection.session.open_operations(), 0);
    assert!(!connection.session.is_closed());
    // The id is free again, and the connection still works.
    let forwarded = connection.start("1", "{ users { id } }");
    assert_eq!(forwarded["type"], "subscribe");
}

#[test]
fn a_legacy_client_gets_its_refusal_as_an_error_message_too() {
    let mut connection = Connection::ready(LEGACY, LEGACY, settings());
    connection.subscribe("9", "{ __schema { types { name } } }");
    assert_eq!(
        steps(connection.session.refuse("9", r#"[{"message":"no"}]"#)),
        vec![Step::Client(
            json!({"type": "error", "id": "9", "payload": [{"message": "no"}]})
        )]
    );
}

#[test]
fn a_reused_id_closes_with_4409_while_its_operation_is_open_and_not_after() {
    let mut inspecting = Connection::ready(MODERN, MODERN, settings());
    inspecting.subscribe("1", "{ users { id } }");
    assert_eq!(
        inspecting.subscribe("1", "{ users { id } }"),
        vec![Step::Close(4409)]
    );

    let mut active = Connection::ready(MODERN, MODERN, settings());
    active.start("1", "{ users { id } }");
    assert_eq!(
        active.subscribe("1", "{ users { id } }"),
        vec![Step::Close(4409)]
    );

    let mut ended = Connection::ready(MODERN, MODERN, settings());
    ended.start("1", "{ users { id } }");
    assert_eq!(
        ended.upstream(json!({"type": "complete", "id": "1"})),
        vec![Step::Client(json!({"type": "complete", "id": "1"}))]
    );
    assert_eq!(
        ended.start("1", "{ users { id } }")["id"],
        "2",
        "a fresh upstream id for the reused client id"
    );
}

#[test]
fn an_operation_over_the_per_connection_cap_is_refused_and_the_connection_stays_open() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    connection.start("a", "subscription { postAdded { id } }");
    connection.subscribe("b", "subscription { postAdded { id } }");
    assert_eq!(connection.session.open_operations(), 2);
    assert_eq!(
        connection.subscribe("c", "subscription { postAdded { id } }"),
        vec![Step::Refuse(
            "c".into(),
            Refusal::TooManySubscriptions { limit: 2 }
        )]
    );
    assert_eq!(connection.session.open_operations(), 2);
    // A refusal pending holds its id.
    assert_eq!(
        connection.subscribe("c", "{ users { id } }"),
        vec![Step::Close(4409)]
    );
}

#[test]
fn the_session_refusal_is_sent_once_rendered_and_frees_its_id() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    connection.start("a", "{ users { id } }");
    connection.start("b", "{ users { id } }");
    connection.subscribe("c", "{ users { id } }");
    let errors = r#"[{"message":"too many","extensions":{"code":"SUBSCRIPTION_LIMIT_EXCEEDED"}}]"#;
    assert_eq!(
        steps(connection.session.refuse("c", errors)),
        vec![Step::Client(json!({"type": "error", "id": "c",
            "payload": [{"message": "too many", "extensions": {"code": "SUBSCRIPTION_LIMIT_EXCEEDED"}}]}))]
    );
    // Ending one operation makes room.
    connection.client(json!({"type": "complete", "id": "a"}));
    assert_eq!(connection.start("c", "{ users { id } }")["id"], "3");
}

#[test]
fn a_verdict_for_an_operation_the_client_cancelled_does_nothing() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    connection.subscribe("1", "{ users { id } }");
    assert_eq!(
        connection.client(json!({"type": "complete", "id": "1"})),
        vec![]
    );
    assert_eq!(steps(connection.session.allow("1", None)), vec![]);
    assert_eq!(steps(connection.session.refuse("1", "[]")), vec![]);
    assert_eq!(connection.session.open_operations(), 0);
}

#[test]
fn verdicts_for_ids_that_are_not_being_inspected_do_nothing() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    connection.start("1", "{ users { id } }");
    assert_eq!(steps(connection.session.allow("1", None)), vec![]);
    assert_eq!(steps(connection.session.refuse("1", "[]")), vec![]);
    assert_eq!(steps(connection.session.allow("unknown", None)), vec![]);
    assert_eq!(connection.session.open_operations(), 1, "still running");
}

#[test]
fn a_client_complete_cancels_upstream_under_the_upstream_id_and_late_results_are_dropped() {
    let mut connection = Connection::ready(MODERN, LEGACY, settings());
    connection.start("mine", "subscription { postAdded { id } }");
    assert_eq!(
        connection.client(json!({"type": "complete", "id": "mine"})),
        vec![Step::Upstream(json!({"type": "stop", "id": "1"}))]
    );
    assert_eq!(
        connection.upstream(json!({"type": "data", "id": "1", "payload": {"data": {}}})),
        vec![]
    );
    assert_eq!(
        connection.upstream(json!({"type": "complete", "id": "1"})),
        vec![]
    );
    assert_eq!(connection.session.open_operations(), 0);
}

#[test]
fn completing_an_unknown_id_is_allowed() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    assert_eq!(
        connection.client(json!({"type": "complete", "id": "nope"})),
        vec![]
    );
    assert!(!connection.session.is_closed());
}

// === Upstream results ===

#[test]
fn upstream_results_are_handed_over_for_hardening_under_the_client_id() {
    let mut connection = Connection::ready(LEGACY, MODERN, settings());
    connection.start("q", "subscription { countdown(from: 1) }");
    assert_eq!(
        connection
            .upstream(json!({"type": "next", "id": "1", "payload": {"data": {"countdown": 1}}})),
        vec![Step::Harden(
            "q".into(),
            ResultKind::Next,
            json!({"data": {"countdown": 1}})
        )]
    );
    assert_eq!(
        serde_json::from_str::<Value>(&connection.session.result_message(
            "q",
            ResultKind::Next,
            r#"{"data":{"countdown":1}}"#
        ))
        .unwrap(),
        json!({"type": "data", "id": "q", "payload": {"data": {"countdown": 1}}}),
        "a legacy client gets `data`"
    );
    assert_eq!(
        connection.upstream(json!({"type": "complete", "id": "1"})),
        vec![Step::Client(json!({"type": "complete", "id": "q"}))]
    );
    assert_eq!(connection.session.open_operations(), 0);
}

#[test]
fn an_upstream_error_is_handed_over_for_hardening_and_ends_the_operation() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    connection.start("q", "{ users { nam } }");
    assert_eq!(
        connection.upstream(json!({"type": "error", "id": "1",
            "payload": [{"message": "Unknown field \"nam\". Did you mean \"name\"?"}]})),
        vec![Step::Harden(
            "q".into(),
            ResultKind::Error,
            json!([{"message": "Unknown field \"nam\". Did you mean \"name\"?"}])
        )]
    );
    assert_eq!(connection.session.open_operations(), 0);
    assert_eq!(
        connection.upstream(json!({"type": "next", "id": "1", "payload": {}})),
        vec![],
        "nothing follows an error"
    );
}

#[test]
fn results_for_ids_never_forwarded_are_dropped() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    connection.subscribe("1", "{ users { id } }");
    for id in ["1", "0", "2", "x", "01x"] {
        assert_eq!(
            connection.upstream(json!({"type": "next", "id": id, "payload": {}})),
            vec![],
            "{id}"
        );
    }
    assert_eq!(connection.session.open_operations(), 1);
}

#[test]
fn an_upstream_that_breaks_the_protocol_closes_with_1014() {
    let mut before_ack = Connection::new(MODERN, MODERN, settings());
    before_ack.client(json!({"type": "connection_init"}));
    assert_eq!(
        before_ack.upstream(json!({"type": "next", "id": "1", "payload": {}})),
        vec![Step::Close(1014)]
    );
    let mut second_ack = Connection::ready(MODERN, MODERN, settings());
    assert_eq!(
        second_ack.upstream(json!({"type": "connection_ack"})),
        vec![Step::Close(1014)]
    );
    let mut garbage = Connection::ready(MODERN, MODERN, settings());
    assert_eq!(
        steps(garbage.session.on_upstream_text("not json", garbage.now)),
        vec![Step::Close(1014)]
    );
    let mut wrong_vocabulary = Connection::ready(MODERN, MODERN, settings());
    assert_eq!(
        wrong_vocabulary.upstream(json!({"type": "data", "id": "1", "payload": {}})),
        vec![Step::Close(1014)]
    );
}

#[test]
fn an_upstream_refusing_the_init_closes_the_client_with_4403() {
    let mut legacy = Connection::new(LEGACY, LEGACY, settings());
    legacy.client(json!({"type": "connection_init", "payload": {"token": "bad"}}));
    assert_eq!(
        legacy.upstream(json!({"type": "connection_error", "payload": {"message": "bad token at /app/auth.js:12"}})),
        vec![
            Step::Client(json!({"type": "connection_error", "payload": {"message": "Forbidden"}})),
            Step::Close(4403),
        ],
        "the upstream's own words are not relayed"
    );
    let mut modern = Connection::new(MODERN, LEGACY, settings());
    modern.client(json!({"type": "connection_init"}));
    assert_eq!(
        modern.upstream(json!({"type": "connection_error"})),
        vec![Step::Close(4403)]
    );
}

#[test]
fn the_upstream_closing_closes_the_client_with_a_matching_code() {
    for (upstream, client) in [
        (Some(1000), 1000),
        (Some(4403), 4403),
        (Some(4400), 1014),
        (Some(1011), 1014),
        (None, 1014),
    ] {
        let mut connection = Connection::ready(MODERN, MODERN, settings());
        assert_eq!(
            steps(connection.session.on_upstream_closed(upstream)),
            vec![Step::Close(client)],
            "{upstream:?}"
        );
    }
}

// === Keep-alive, ping, idle ===

#[test]
fn a_client_ping_is_answered_by_the_firewall_with_its_payload() {
    let mut connection = Connection::new(MODERN, MODERN, settings());
    assert_eq!(
        connection.client(json!({"type": "ping", "payload": {"t": 1}})),
        vec![Step::Client(json!({"type": "pong", "payload": {"t": 1}}))],
        "even before init"
    );
    assert_eq!(connection.client(json!({"type": "pong"})), vec![]);
}

#[test]
fn an_upstream_ping_is_answered_by_the_firewall_and_its_keep_alives_are_dropped() {
    let mut modern = Connection::ready(MODERN, MODERN, settings());
    assert_eq!(
        modern.upstream(json!({"type": "ping"})),
        vec![Step::Upstream(json!({"type": "pong"}))]
    );
    assert_eq!(modern.upstream(json!({"type": "pong"})), vec![]);
    let mut legacy = Connection::ready(LEGACY, LEGACY, settings());
    assert_eq!(legacy.upstream(json!({"type": "ka"})), vec![]);
}

#[test]
fn keep_alive_pings_a_modern_client_and_closes_it_with_1001_when_it_stays_silent() {
    let mut connection = Connection::ready(
        MODERN,
        MODERN,
        Settings {
            keepalive: Some(10 * SECOND),
            ..settings()
        },
    );
    assert_eq!(connection.advance(9 * SECOND), vec![]);
    assert_eq!(
        connection.advance(SECOND),
        vec![Step::Client(json!({"type": "ping"}))]
    );
    connection.client(json!({"type": "pong"}));
    assert_eq!(
        connection.advance(10 * SECOND),
        vec![Step::Client(json!({"type": "ping"}))],
        "answered: another ping"
    );
    assert_eq!(connection.advance(10 * SECOND), vec![Step::Close(1001)]);
}

#[test]
fn a_websocket_level_pong_counts_as_an_answer() {
    let mut connection = Connection::ready(
        MODERN,
        MODERN,
        Settings {
            keepalive: Some(10 * SECOND),
            ..settings()
        },
    );
    connection.advance(10 * SECOND);
    connection.session.on_client_activity(connection.now);
    assert_eq!(
        connection.advance(10 * SECOND),
        vec![Step::Client(json!({"type": "ping"}))]
    );
}

#[test]
fn keep_alive_sends_ka_to_a_legacy_client_from_the_ack_on_and_never_closes_it() {
    let mut connection = Connection::new(
        LEGACY,
        LEGACY,
        Settings {
            keepalive: Some(10 * SECOND),
            ..settings()
        },
    );
    connection.client(json!({"type": "connection_init"}));
    assert_eq!(
        connection.upstream(json!({"type": "connection_ack"})),
        vec![
            Step::Client(json!({"type": "connection_ack"})),
            Step::Client(json!({"type": "ka"})),
        ]
    );
    for _ in 0..3 {
        assert_eq!(
            connection.advance(10 * SECOND),
            vec![Step::Client(json!({"type": "ka"}))]
        );
    }
}

#[test]
fn an_idle_connection_closes_with_1001_but_not_while_an_operation_is_open() {
    let idle = Settings {
        idle_timeout: Some(30 * SECOND),
        ..settings()
    };
    let mut connection = Connection::ready(MODERN, MODERN, idle.clone());
    assert_eq!(connection.advance(29 * SECOND), vec![]);
    assert_eq!(connection.advance(SECOND), vec![Step::Close(1001)]);

    let mut busy = Connection::ready(MODERN, MODERN, idle);
    busy.start("1", "subscription { postAdded { id } }");
    assert_eq!(busy.session.next_deadline(), None);
    assert_eq!(busy.advance(60 * SECOND), vec![]);
    busy.upstream(json!({"type": "complete", "id": "1"}));
    assert_eq!(busy.session.next_deadline(), Some(busy.now + 30 * SECOND));
}

// === Frames, termination ===

#[test]
fn an_oversize_frame_closes_with_1009_and_a_binary_one_with_4400() {
    let small = Settings {
        max_message_bytes: 64,
        ..settings()
    };
    let mut text = Connection::new(MODERN, MODERN, small.clone());
    let oversize = json!({"type": "connection_init", "payload": {"pad": "x".repeat(64)}});
    assert_eq!(text.client(oversize), vec![Step::Close(1009)]);
    let mut binary = Connection::new(MODERN, MODERN, small.clone());
    assert_eq!(
        steps(binary.session.on_client_binary(&[0; 65], binary.now)),
        vec![Step::Close(1009)]
    );
    let mut binary = Connection::new(MODERN, MODERN, small);
    assert_eq!(
        steps(
            binary
                .session
                .on_client_binary(b"{\"type\":\"ping\"}", binary.now)
        ),
        vec![Step::Close(4400)]
    );
}

#[test]
fn an_invalid_client_message_closes_with_4400() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    assert_eq!(
        connection.client(json!({"type": "start", "id": "1", "payload": {"query": "{a}"}})),
        vec![Step::Close(4400)]
    );
}

#[test]
fn connection_terminate_closes_a_legacy_connection_normally() {
    let mut connection = Connection::ready(LEGACY, LEGACY, settings());
    assert_eq!(
        connection.client(json!({"type": "connection_terminate"})),
        vec![Step::Close(1000)]
    );
}

#[test]
fn a_closed_session_does_nothing_more() {
    let mut connection = Connection::ready(MODERN, MODERN, settings());
    connection.start("1", "{ users { id } }");
    connection.client(json!({"type": "connection_init"}));
    assert!(connection.session.is_closed());
    assert_eq!(connection.session.open_operations(), 0);
    assert_eq!(connection.client(json!({"type": "ping"})), vec![]);
    assert_eq!(
        connection.upstream(json!({"type": "next", "id": "1", "payload": {}})),
        vec![]
    );
    assert_eq!(steps(connection.session.on_upstream_closed(None)), vec![]);
    assert_eq!(
        steps(connection.session.on_client_binary(b"x", connection.now)),
        vec![]
    );
    assert_eq!(connection.advance(3600 * SECOND), vec![]);
}

#[test]
fn negotiation_prefers_graphql_transport_ws_and_refuses_unknown_subprotocols() {
    assert_eq!(
        Subprotocol::negotiate(["graphql-ws, graphql-transport-ws"]),
        Some(MODERN)
    );
    assert_eq!(Subprotocol::negotiate(["chat", "graphql-ws"]), Some(LEGACY));
    assert_eq!(Subprotocol::negotiate(["GRAPHQL-WS", "chat"]), None);
    assert_eq!(Subprotocol::negotiate([]), None);
}

// === Properties ===

/// Client frames that look like protocol messages, with ids from a small set so that they collide.
fn plausible_client_frame() -> impl Strategy<Value = String> {
    let id = prop::sample::select(vec!["1", "2", "3", "x"]);
    let kind = prop::sample::select(vec![
        "connection_init",
        "ping",
        "pong",
        "subscribe",
        "start",
        "complete",
        "stop",
        "connection_terminate",
    ]);
    (kind, id, any::<bool>()).prop_map(|(kind, id, with_payload)| {
        let payload = with_payload.then(|| json!({"query": "subscription { postAdded { id } }"}));
        json!({"type": kind, "id": id, "payload": payload}).to_string()
    })
}

fn plausible_upstream_frame() -> impl Strategy<Value = String> {
    let id = prop::sample::select(vec!["1", "2", "3", "4"]);
    let kind = prop::sample::select(vec![
        "connection_ack",
        "ping",
        "pong",
        "next",
        "data",
        "error",
        "complete",
        "ka",
        "connection_error",
    ]);
    (kind, id).prop_map(|(kind, id)| {
        let payload = match kind {
            "error" => json!([{"message": "x"}]),
            "next" | "data" => json!({"data": {}}),
            _ => Value::Null,
        };
        json!({"type": kind, "id": id, "payload": payload}).to_string()
    })
}

#[derive(Debug, Clone)]
enum Event {
    Client(String),
    ClientBytes(Vec<u8>),
    Upstream(String),
    Allow(String),
    Refuse(String),
    Tick(u64),
    UpstreamClosed(Option<u16>),
}

fn event() -> impl Strategy<Value = Event> {
    let id = prop::sample::select(vec!["1", "2", "3", "x"]).prop_map(str::to_owned);
    prop_oneof![
        4 => plausible_client_frame().prop_map(Event::Client),
        1 => ".{0,80}".prop_map(Event::Client),
        1 => prop::collection::vec(any::<u8>(), 0..80).prop_map(Event::ClientBytes),
        3 => plausible_upstream_frame().prop_map(Event::Upstream),
        2 => id.clone().prop_map(Event::Allow),
        1 => id.prop_map(Event::Refuse),
        1 => (0u64..20_000).prop_map(Event::Tick),
        1 => prop::option::of(any::<u16>()).prop_map(Event::UpstreamClosed),
    ]
}

proptest! {
    #[test]
    fn random_bytes_from_the_client_never_panic_and_close_the_connection(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        legacy in any::<bool>(),
    ) {
        let protocol = if legacy { LEGACY } else { MODERN };
        let now = Instant::now();
        let mut as_text = Session::new(protocol, protocol, settings(), now);
        let text = String::from_utf8_lossy(&bytes);
        let actions = as_text.on_client_text(&text, now);
        // Random text is almost never a valid message; when it is, it is handled like one.
        if let [Action::Close(close)] = actions.as_slice() {
            prop_assert!(close.code == CloseCode::InvalidMessage || close.code == CloseCode::Unauthorized);
        }
        let mut as_binary = Session::new(protocol, protocol, settings(), now);
        let actions = as_binary.on_client_binary(&bytes, now);
        prop_assert!(matches!(actions.as_slice(), [Action::Close(close)] if close.code == CloseCode::InvalidMessage));
    }

    #[test]
    fn random_bytes_from_the_upstream_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut connection = Connection::ready(MODERN, MODERN, settings());
        connection.start("1", "{ users { id } }");
        let actions = connection.session.on_upstream_text(&String::from_utf8_lossy(&bytes), connection.now);
        prop_assert!(actions.len() <= 1);
    }

    #[test]
    fn every_frame_over_the_size_cap_is_refused_with_1009(
        extra in 1usize..4096,
        binary in any::<bool>(),
        acknowledged in any::<bool>(),
    ) {
        let limit = 256;
        let settings = Settings { max_message_bytes: limit, ..settings() };
        let mut connection = if acknowledged {
            Connection::ready(MODERN, MODERN, settings)
        } else {
            Connection::new(MODERN, MODERN, settings)
        };
        // A valid message, padded past the cap: its size alone refuses it.
        let pad = "x".repeat(limit + extra);
        let frame = json!({"type": "ping", "payload": {"pad": pad}}).to_string();
        let actions = if binary {
            connection.session.on_client_binary(frame.as_bytes(), connection.now)
        } else {
            connection.session.on_client_text(&frame, connection.now)
        };
        prop_assert!(matches!(actions.as_slice(), [Action::Close(close)] if close.code == CloseCode::MessageTooBig));
    }

    #[test]
    fn any_sequence_of_events_keeps_the_session_within_its_limits(
        events in prop::collection::vec(event(), 0..60),
        client_legacy in any::<bool>(),
        upstream_legacy in any::<bool>(),
    ) {
        let client = if client_legacy { LEGACY } else { MODERN };
        let upstream = if upstream_legacy { LEGACY } else { MODERN };
        let mut now = Instant::now();
        let settings = Settings { keepalive: Some(5 * SECOND), idle_timeout: Some(8 * SECOND), ..settings() };
        let mut session = Session::new(client, upstream, settings, now);
        for event in events {
            let actions = match event {
                Event::Client(text) => session.on_client_text(&text, now),
                Event::ClientBytes(bytes) => session.on_client_binary(&bytes, now),
                Event::Upstream(text) => session.on_upstream_text(&text, now),
                Event::Allow(id) => session.allow(&id, None),
                Event::Refuse(id) => session.refuse(&id, "[]"),
                Event::Tick(millis) => {
                    now += Duration::from_millis(millis);
                    session.on_tick(now)
                }
                Event::UpstreamClosed(code) => session.on_upstream_closed(code),
            };
            prop_assert!(session.open_operations() <= 2);
            let closes = actions.iter().filter(|a| matches!(a, Action::Close(_))).count();
            prop_assert!(closes <= 1);
            if closes == 1 {
                prop_assert!(matches!(actions.last(), Some(Action::Close(_))), "a close comes last");
                prop_assert!(session.is_closed());
            }
            if session.is_closed() {
                prop_assert_eq!(session.open_operations(), 0);
                prop_assert_eq!(session.next_deadline(), None);
            }
            for action in &actions {
                if let Action::Client(text) | Action::Upstream(text) = action {
                    prop_assert!(serde_json::from_str::<Value>(text).is_ok(), "{}", text);
                }
            }
        }
    }
}
