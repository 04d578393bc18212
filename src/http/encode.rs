//! What is forwarded when the client's request cannot go as it came: an operation sent as an id
//! gets its text, and persisted-query members the upstream would not understand are removed; a
//! request that needs no change is forwarded byte for byte.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::inspect::{GraphqlRequest, Inspection, OperationReport, Transport};

/// The body and URL query to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub body: Bytes,
    pub query_string: Option<String>,
}

/// What goes upstream for `requests` (decoded from `body`, or from `query_string` on a GET) once
/// inspected; `pass_through` keeps the persisted-query members for an upstream that speaks APQ. A
/// POST's URL query is never forwarded: the firewall did not read it as GraphQL.
pub fn forwarded(
    requests: &[GraphqlRequest],
    batch: bool,
    transport: Transport,
    body: Bytes,
    query_string: Option<&str>,
    inspection: &Inspection,
    pass_through: bool,
) -> Forwarded {
    if !needs_rewrite(requests, inspection, pass_through) {
        return Forwarded {
            body,
            query_string: match transport {
                Transport::Get | Transport::GetEventStream => query_string.map(str::to_owned),
                Transport::Post | Transport::WebSocket => None,
            },
        };
    }
    let rewritten: Vec<GraphqlRequest> = requests
        .iter()
        .zip(&inspection.operations)
        .map(|(request, report)| rewrite(request, report, pass_through))
        .collect();
    match transport {
        Transport::Post | Transport::WebSocket => Forwarded {
            body: Bytes::from(encode_body(&rewritten, batch)),
            query_string: None,
        },
        Transport::Get | Transport::GetEventStream => Forwarded {
            body: Bytes::new(),
            query_string: rewritten.first().map(encode_query_string),
        },
    }
}

/// The one operation of a WebSocket `subscribe` as it must go upstream, or `None` when it goes
/// as the client sent it (the same rule as [`forwarded`]).
pub fn for_upstream(
    request: &GraphqlRequest,
    inspection: &Inspection,
    pass_through: bool,
) -> Option<GraphqlRequest> {
    let requests = std::slice::from_ref(request);
    let report = inspection.operations.first()?;
    needs_rewrite(requests, inspection, pass_through)
        .then(|| rewrite(request, report, pass_through))
}

/// An operation sent as an id gets its text; persisted-query members go unless passed through.
fn needs_rewrite(requests: &[GraphqlRequest], inspection: &Inspection, pass_through: bool) -> bool {
    let resolved = inspection
        .operations
        .iter()
        .any(|op| op.text_for_upstream.is_some());
    let carries_ids = requests.iter().any(GraphqlRequest::names_an_id);
    resolved || (!pass_through && carries_ids)
}

fn rewrite(
    request: &GraphqlRequest,
    report: &OperationReport,
    pass_through: bool,
) -> GraphqlRequest {
    let mut request = request.clone();
    if let Some(text) = &report.text_for_upstream {
        request.query = Some(text.to_string());
    }
    if !pass_through {
        request.document_id = None;
        if let Some(extensions) = &mut request.extensions {
            extensions.remove("persistedQuery");
        }
    }
    request
}

/// The request as a JSON object.
fn to_json(request: &GraphqlRequest) -> Value {
    let mut object = Map::new();
    let members = [
        ("query", request.query.clone().map(Value::String)),
        (
            "operationName",
            request.operation_name.clone().map(Value::String),
        ),
        ("variables", request.variables.clone().map(Value::Object)),
        (
            "extensions",
            request
                .extensions
                .clone()
                .filter(|e| !e.is_empty())
                .map(Value::Object),
        ),
        ("documentId", request.document_id.clone().map(Value::String)),
    ];
    for (key, value) in members {
        if let Some(value) = value {
            object.insert(key.to_owned(), value);
        }
    }
    Value::Object(object)
}

/// Encodes requests as a POST body: one object, or an array for a batch.
pub fn encode_body(requests: &[GraphqlRequest], batch: bool) -> Vec<u8> {
    let value = match (batch, requests) {
        (false, [one]) => to_json(one),
        _ => Value::Array(requests.iter().map(to_json).collect()),
    };
    value.to_string().into_bytes()
}

/// Encodes a request as a GET query string (the JSON members JSON-encoded).
fn encode_query_string(request: &GraphqlRequest) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    if let Value::Object(members) = to_json(request) {
        for (key, value) in members {
            match value {
                Value::String(text) => serializer.append_pair(&key, &text),
                other => serializer.append_pair(&key, &other.to_string()),
            };
        }
    }
    serializer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::decode::{decode_body, decode_query_string};

    #[test]
    fn encoding_round_trips_through_decoding() {
        let request = GraphqlRequest {
            query: Some("query Q($n: Int) { a(n: $n) }".to_owned()),
            operation_name: Some("Q".to_owned()),
            variables: serde_json::json!({"n": 3}).as_object().cloned(),
            extensions: None,
            document_id: None,
        };
        let (decoded, batch) =
            decode_body(&encode_body(std::slice::from_ref(&request), false), None).unwrap();
        assert!(!batch);
        assert_eq!(decoded, vec![request.clone()]);
        let (decoded, batch) =
            decode_body(&encode_body(std::slice::from_ref(&request), true), None).unwrap();
        assert!(batch);
        assert_eq!(decoded, vec![request.clone()]);
        assert_eq!(
            decode_query_string(&encode_query_string(&request), 1 << 20).unwrap(),
            request
        );
    }
}
