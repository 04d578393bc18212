#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{Value, json};

use super::*;
use crate::http::ws::protocol::ResultKind;

const MODERN: Subprotocol = Subprotocol::GraphqlTransportWs;
const LEGACY: Subprotocol = Subprotocol::GraphqlWs;

fn client(message: &Value, protocol: Subprotocol) -> Result<ClientMessage, InvalidMessage> {
    ClientMessage::parse(&message.to_string(), protocol)
}

fn server(message: &Value, protocol: Subprotocol) -> Result<ServerMessage, InvalidMessage> {
    ServerMessage::parse(&message.to_string(), protocol)
}

fn json_of(text: Option<String>) -> Value {
    serde_json::from_str(&text.expect("the message has a form in this subprotocol")).unwrap()
}

#[test]
fn every_client_message_of_graphql_transport_ws_parses() {
    assert!(matches!(
        client(&json!({"type": "connection_init", "payload": {"token": "t"}}), MODERN),
        Ok(ClientMessage::ConnectionInit { payload: Some(p) }) if p.get() == r#"{"token":"t"}"#
    ));
    assert!(matches!(
        client(&json!({"type": "ping"}), MODERN),
        Ok(ClientMessage::Ping { payload: None })
    ));
    assert!(matches!(
        client(&json!({"type": "pong", "payload": null}), MODERN),
        Ok(ClientMessage::Pong { payload: None })
    ));
    let subscribe = client(
        &json!({"type": "subscribe", "id": "a1",
                "payload": {"query": "subscription S { countdown(from: 3) }", "operationName": "S",
                            "variables": {"n": 1}, "extensions": {"x": 1}}}),
        MODERN,
    );
    let Ok(ClientMessage::Subscribe {
        id,
        request,
        payload,
    }) = subscribe
    else {
        panic!("{subscribe:?}");
    };
    assert_eq!(id, "a1");
    assert_eq!(
        request.query.as_deref(),
        Some("subscription S { countdown(from: 3) }")
    );
    assert_eq!(request.operation_name.as_deref(), Some("S"));
    assert_eq!(request.variables.unwrap()["n"], 1);
    assert_eq!(
        serde_json::from_str::<Value>(payload.get()).unwrap()["extensions"],
        json!({"x": 1})
    );
    assert!(matches!(
        client(&json!({"type": "complete", "id": "a1"}), MODERN),
        Ok(ClientMessage::Complete { id }) if id == "a1"
    ));
}

#[test]
fn every_client_message_of_the_legacy_protocol_parses() {
    assert!(matches!(
        client(&json!({"type": "connection_init"}), LEGACY),
        Ok(ClientMessage::ConnectionInit { payload: None })
    ));
    assert!(matches!(
        client(&json!({"type": "start", "id": "1", "payload": {"query": "{ users { id } }"}}), LEGACY),
        Ok(ClientMessage::Subscribe { id, .. }) if id == "1"
    ));
    assert!(matches!(
        client(&json!({"type": "stop", "id": "1"}), LEGACY),
        Ok(ClientMessage::Complete { id }) if id == "1"
    ));
    assert!(matches!(
        client(&json!({"type": "connection_terminate"}), LEGACY),
        Ok(ClientMessage::ConnectionTerminate)
    ));
}

#[test]
fn a_type_of_the_other_subprotocol_or_of_the_server_is_unknown() {
    for (message, protocol) in [
        (
            json!({"type": "start", "id": "1", "payload": {"query": "{a}"}}),
            MODERN,
        ),
        (json!({"type": "stop", "id": "1"}), MODERN),
        (json!({"type": "connection_terminate"}), MODERN),
        (
            json!({"type": "subscribe", "id": "1", "payload": {"query": "{a}"}}),
            LEGACY,
        ),
        (json!({"type": "complete", "id": "1"}), LEGACY),
        (json!({"type": "ping"}), LEGACY),
        (json!({"type": "next", "id": "1", "payload": {}}), MODERN),
        (json!({"type": "connection_ack"}), MODERN),
        (
            json!({"type": "Subscribe", "id": "1", "payload": {"query": "{a}"}}),
            MODERN,
        ),
        (json!({"type": ""}), MODERN),
    ] {
        assert_eq!(
            client(&message, protocol).unwrap_err(),
            InvalidMessage::UnknownType,
            "{message} on {}",
            protocol.name()
        );
    }
}

#[test]
fn malformed_envelopes_are_invalid() {
    let cases: [(&str, InvalidMessage); 9] = [
        ("", InvalidMessage::NotJson),
        ("{", InvalidMessage::NotJson),
        ("[1]", InvalidMessage::NotObject),
        ("\"connection_init\"", InvalidMessage::NotObject),
        ("{}", InvalidMessage::MissingType),
        (r#"{"type": 1}"#, InvalidMessage::MissingType),
        (r#"{"type": null}"#, InvalidMessage::MissingType),
        (
            r#"{"type": "ping", "type": "connection_init"}"#,
            InvalidMessage::Duplicate("type"),
        ),
        (
            r#"{"type": "complete", "id": "1", "id": "2"}"#,
            InvalidMessage::Duplicate("id"),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            ClientMessage::parse(text, MODERN).unwrap_err(),
            expected,
            "{text}"
        );
    }
}

#[test]
fn a_duplicate_payload_is_refused_even_when_both_are_valid() {
    let text = r#"{"type":"subscribe","id":"1","payload":{"query":"{a}"},"payload":{"query":"{__schema{types{name}}}"}}"#;
    assert_eq!(
        ClientMessage::parse(text, MODERN).unwrap_err(),
        InvalidMessage::Duplicate("payload")
    );
}

#[test]
fn a_duplicate_query_inside_the_payload_is_refused_as_on_http() {
    let text = r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","query":"{b}"}}"#;
    assert_eq!(
        ClientMessage::parse(text, MODERN).unwrap_err(),
        InvalidMessage::Request(DecodeError::Duplicate("query"))
    );
}

#[test]
fn unknown_members_are_ignored_and_escaped_names_are_read_as_json_says() {
    let text = r#"{"typ\u0065":"complete","id":"x","extra":[1,{"deep":true}]}"#;
    assert!(matches!(
        ClientMessage::parse(text, MODERN),
        Ok(ClientMessage::Complete { id }) if id == "x"
    ));
}

#[test]
fn ids_must_be_non_empty_bounded_strings() {
    let long = "x".repeat(MAX_ID_BYTES + 1);
    for id in [json!(null), json!(1), json!(""), json!(["1"]), json!(long)] {
        assert_eq!(
            client(&json!({"type": "complete", "id": id}), MODERN).unwrap_err(),
            InvalidMessage::BadId,
            "{id}"
        );
    }
    assert_eq!(
        client(&json!({"type": "complete"}), MODERN).unwrap_err(),
        InvalidMessage::BadId
    );
    let longest = "x".repeat(MAX_ID_BYTES);
    assert!(client(&json!({"type": "complete", "id": longest}), MODERN).is_ok());
}

#[test]
fn payloads_have_the_protocol_shapes() {
    for payload in [json!("token"), json!(1), json!([])] {
        assert_eq!(
            client(
                &json!({"type": "connection_init", "payload": payload}),
                MODERN
            )
            .unwrap_err(),
            InvalidMessage::BadPayload("an object or null")
        );
        assert_eq!(
            client(&json!({"type": "ping", "payload": payload}), MODERN).unwrap_err(),
            InvalidMessage::BadPayload("an object or null")
        );
    }
    for payload in [json!(null), json!("{a}"), json!([{"query": "{a}"}])] {
        assert_eq!(
            client(
                &json!({"type": "subscribe", "id": "1", "payload": payload}),
                MODERN
            )
            .unwrap_err(),
            InvalidMessage::BadPayload("a GraphQL request object"),
            "{payload}"
        );
    }
    assert_eq!(
        client(&json!({"type": "subscribe", "id": "1"}), MODERN).unwrap_err(),
        InvalidMessage::BadPayload("a GraphQL request object")
    );
}

#[test]
fn a_subscribe_payload_follows_the_http_request_rules() {
    let payload = |payload: Value| {
        client(
            &json!({"type": "subscribe", "id": "1", "payload": payload}),
            MODERN,
        )
    };
    assert_eq!(
        payload(json!({"query": 1})).unwrap_err(),
        InvalidMessage::Request(DecodeError::WrongType("query", "a string or null"))
    );
    assert_eq!(
        payload(json!({"query": "{a}", "variables": [7]})).unwrap_err(),
        InvalidMessage::Request(DecodeError::WrongType("variables", "an object or null"))
    );
    assert_eq!(
        payload(json!({"operationName": "A"})).unwrap_err(),
        InvalidMessage::Request(DecodeError::MissingQuery)
    );
    // A persisted operation needs no text.
    let persisted =
        payload(json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab"}}}));
    assert!(
        matches!(persisted, Ok(ClientMessage::Subscribe { request, .. }) if request.query.is_none())
    );
    assert!(matches!(
        payload(json!({"documentId": "sha256:ab"})),
        Ok(ClientMessage::Subscribe { request, .. }) if request.document_id.as_deref() == Some("sha256:ab")
    ));
}

#[test]
fn the_forwarded_payload_is_the_one_received_with_its_numbers_intact() {
    let text = r#"{"type":"start","id":"1","payload":{"query":"query($n: ID!){user(id:$n){id}}","variables":{"n":123456789012345678901234567890}}}"#;
    let message = ClientMessage::parse(text, LEGACY).unwrap();
    let forwarded = message.encode(MODERN).unwrap();
    assert!(
        forwarded.contains("123456789012345678901234567890"),
        "{forwarded}"
    );
    assert_eq!(
        json_of(Some(forwarded))["type"],
        "subscribe",
        "legacy start is a subscribe"
    );
}

#[test]
fn client_messages_translate_between_the_subprotocols() {
    let subscribe = client(
        &json!({"type": "subscribe", "id": "7", "payload": {"query": "{a}"}}),
        MODERN,
    )
    .unwrap();
    assert_eq!(
        json_of(subscribe.encode(LEGACY)),
        json!({"type": "start", "id": "7", "payload": {"query": "{a}"}})
    );
    assert_eq!(
        json_of(subscribe.encode(MODERN)),
        json!({"type": "subscribe", "id": "7", "payload": {"query": "{a}"}})
    );
    let complete = ClientMessage::Complete { id: "7".into() };
    assert_eq!(
        json_of(complete.encode(LEGACY)),
        json!({"type": "stop", "id": "7"})
    );
    assert_eq!(
        json_of(complete.encode(MODERN)),
        json!({"type": "complete", "id": "7"})
    );
    let init = client(
        &json!({"type": "connection_init", "payload": {"a": 1}}),
        LEGACY,
    )
    .unwrap();
    assert_eq!(
        json_of(init.encode(MODERN)),
        json!({"type": "connection_init", "payload": {"a": 1}})
    );
    assert!(
        ClientMessage::Ping { payload: None }
            .encode(LEGACY)
            .is_none()
    );
    assert!(
        ClientMessage::Pong { payload: None }
            .encode(LEGACY)
            .is_none()
    );
    assert!(ClientMessage::ConnectionTerminate.encode(MODERN).is_none());
    assert_eq!(
        json_of(ClientMessage::ConnectionTerminate.encode(LEGACY)),
        json!({"type": "connection_terminate"})
    );
}

#[test]
fn every_server_message_of_both_subprotocols_parses() {
    assert!(matches!(
        server(
            &json!({"type": "connection_ack", "payload": {"v": 1}}),
            MODERN
        ),
        Ok(ServerMessage::ConnectionAck { payload: Some(_) })
    ));
    assert!(matches!(
        server(&json!({"type": "connection_ack"}), LEGACY),
        Ok(ServerMessage::ConnectionAck { payload: None })
    ));
    assert!(matches!(
        server(
            &json!({"type": "connection_error", "payload": {"message": "no"}}),
            LEGACY
        ),
        Ok(ServerMessage::ConnectionError { payload: Some(_) })
    ));
    assert!(matches!(
        server(&json!({"type": "ka"}), LEGACY),
        Ok(ServerMessage::KeepAlive)
    ));
    assert!(matches!(
        server(&json!({"type": "ping"}), MODERN),
        Ok(ServerMessage::Ping { payload: None })
    ));
    assert!(matches!(
        server(&json!({"type": "pong"}), MODERN),
        Ok(ServerMessage::Pong { payload: None })
    ));
    assert!(matches!(
        server(&json!({"type": "next", "id": "1", "payload": {"data": {"a": 1}}}), MODERN),
        Ok(ServerMessage::Next { id, .. }) if id == "1"
    ));
    assert!(matches!(
        server(&json!({"type": "data", "id": "1", "payload": {"data": null}}), LEGACY),
        Ok(ServerMessage::Next { id, .. }) if id == "1"
    ));
    assert!(matches!(
        server(
            &json!({"type": "error", "id": "1", "payload": [{"message": "x"}]}),
            MODERN
        ),
        Ok(ServerMessage::Error { .. })
    ));
    assert!(matches!(
        server(&json!({"type": "complete", "id": "1"}), LEGACY),
        Ok(ServerMessage::Complete { id }) if id == "1"
    ));
    for (message, protocol) in [
        (json!({"type": "data", "id": "1", "payload": {}}), MODERN),
        (json!({"type": "next", "id": "1", "payload": {}}), LEGACY),
        (json!({"type": "ka"}), MODERN),
        (json!({"type": "connection_error"}), MODERN),
        (
            json!({"type": "subscribe", "id": "1", "payload": {"query": "{a}"}}),
            MODERN,
        ),
    ] {
        assert_eq!(
            server(&message, protocol).unwrap_err(),
            InvalidMessage::UnknownType,
            "{message}"
        );
    }
}

#[test]
fn server_results_must_have_their_shapes() {
    for payload in [json!(null), json!([]), json!("x")] {
        assert_eq!(
            server(
                &json!({"type": "next", "id": "1", "payload": payload}),
                MODERN
            )
            .unwrap_err(),
            InvalidMessage::BadPayload("an execution result object")
        );
    }
    assert_eq!(
        server(
            &json!({"type": "error", "id": "1", "payload": {"message": "x"}}),
            MODERN
        )
        .unwrap_err(),
        InvalidMessage::BadPayload("an array of GraphQL errors")
    );
    assert_eq!(
        server(&json!({"type": "next", "payload": {}}), MODERN).unwrap_err(),
        InvalidMessage::BadId
    );
}

#[test]
fn a_legacy_error_object_becomes_an_array_of_errors() {
    let Ok(ServerMessage::Error { payload, .. }) = server(
        &json!({"type": "error", "id": "1", "payload": {"message": "x"}}),
        LEGACY,
    ) else {
        panic!("a legacy error parses");
    };
    assert_eq!(
        serde_json::from_str::<Value>(payload.get()).unwrap(),
        json!([{"message": "x"}])
    );
}

#[test]
fn server_messages_translate_between_the_subprotocols() {
    let next = server(
        &json!({"type": "next", "id": "1", "payload": {"data": {"a": 1}}}),
        MODERN,
    )
    .unwrap();
    assert_eq!(
        json_of(next.encode(LEGACY)),
        json!({"type": "data", "id": "1", "payload": {"data": {"a": 1}}})
    );
    assert_eq!(
        json_of(next.encode(MODERN)),
        json!({"type": "next", "id": "1", "payload": {"data": {"a": 1}}})
    );
    assert!(ServerMessage::KeepAlive.encode(MODERN).is_none());
    assert!(
        ServerMessage::ConnectionError { payload: None }
            .encode(MODERN)
            .is_none()
    );
    assert!(
        ServerMessage::Ping { payload: None }
            .encode(LEGACY)
            .is_none()
    );
    assert!(
        ServerMessage::Pong { payload: None }
            .encode(LEGACY)
            .is_none()
    );
    assert_eq!(
        json_of(ServerMessage::KeepAlive.encode(LEGACY)),
        json!({"type": "ka"})
    );
    assert_eq!(
        json_of(ServerMessage::Complete { id: "1".into() }.encode(LEGACY)),
        json!({"type": "complete", "id": "1"})
    );
}

#[test]
fn frames_escape_ids() {
    let text = result_frame(MODERN, "a\"b\\c\n", ResultKind::Next, "{}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"type": "next", "id": "a\"b\\c\n", "payload": {}})
    );
}

#[test]
fn invalid_messages_close_with_4400_and_oversize_ones_with_1009() {
    assert_eq!(InvalidMessage::NotJson.close().code.code(), 4400);
    assert_eq!(InvalidMessage::Binary.close().code.code(), 4400);
    assert_eq!(
        InvalidMessage::TooLarge {
            limit: 1,
            actual: 2
        }
        .close()
        .code
        .code(),
        1009
    );
}
