//! GraphQL-over-HTTP decoding: a POST JSON body (an object, or an array for a batch) or GET query
//! parameters become typed [`GraphqlRequest`]s, with the spec's type rules enforced.
//!
//! # Threats
//! Parameter pollution: when a request names `query` twice (`{"query":"{a}","query":"{b}"}` or
//! `?query=…&query=…`) the firewall and the upstream may each read a different one, and the firewall
//! would approve a document the upstream never runs. Duplicate request members are refused.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::inspect::GraphqlRequest;

/// Why a request is not a well-formed GraphQL-over-HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the request body is empty")]
    Empty,
    #[error("the request body is not valid JSON")]
    NotJson,
    #[error("the request body must be a JSON object, or an array of objects for a batch")]
    NotObject,
    #[error("a batch must contain at least one request")]
    EmptyBatch,
    #[error("a batch may contain at most {limit} requests")]
    BatchTooLarge { limit: usize, actual: usize },
    #[error("`{0}` must be {1}")]
    WrongType(&'static str, &'static str),
    #[error("`{0}` appears more than once")]
    Duplicate(&'static str),
    #[error("`{0}` is not valid JSON")]
    ParameterNotJson(&'static str),
    #[error("a `query` (or a persisted query id) is required")]
    MissingQuery,
    #[error("the query string exceeds {limit} bytes")]
    QueryStringTooLarge { limit: usize },
    /// A POST whose URL carries GraphQL parameters: some servers read them from there, so the
    /// firewall and the upstream could each see another operation.
    #[error("GraphQL parameters belong in the body of a POST, not in its URL (`{0}`)")]
    ParameterInPostUrl(&'static str),
}

/// Decodes a POST body. `max_batch` caps the array length (`None` = unbounded).
pub fn decode_body(
    body: &[u8],
    max_batch: Option<usize>,
) -> Result<(Vec<GraphqlRequest>, bool), DecodeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Err(DecodeError::Empty),
        Some(b'{') => {
            let raw: RawRequest = parse_json(body)?;
            Ok((vec![raw.validate()?], false))
        }
        Some(b'[') => {
            let members: Vec<RawRequest> = parse_json(body)?;
            if members.is_empty() {
                return Err(DecodeError::EmptyBatch);
            }
            if let Some(limit) = max_batch
                && members.len() > limit
            {
                return Err(DecodeError::BatchTooLarge {
                    limit,
                    actual: members.len(),
                });
            }
            let requests = members
                .into_iter()
                .map(RawRequest::validate)
                .collect::<Result<_, _>>()?;
            Ok((requests, true))
        }
        Some(_) => match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => Err(DecodeError::NotObject),
            Err(_) => Err(DecodeError::NotJson),
        },
    }
}

/// Decodes the URL query of a GET request (`query`, `operationName`, `variables`, `extensions`,
/// `documentId`; the JSON ones JSON-encoded; an empty value means absent), at most `limit` bytes.
pub fn decode_query_string(
    query_string: &str,
    limit: usize,
) -> Result<GraphqlRequest, DecodeError> {
    if query_string.len() > limit {
        return Err(DecodeError::QueryStringTooLarge { limit });
    }
    let mut raw = RawRequest::default();
    for (key, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
        let Some(name) = Member::from_key(&key) else {
            continue;
        };
        if raw.seen(name) {
            return Err(DecodeError::Duplicate(name.key()));
        }
        let value = if value.is_empty() {
            Value::Null
        } else {
            match name {
                Member::Variables | Member::Extensions => serde_json::from_str(&value)
                    .map_err(|_| DecodeError::ParameterNotJson(name.key()))?,
                _ => Value::String(value.into_owned()),
            }
        };
        raw.set(name, value);
    }
    raw.validate()
}

/// Refuses a POST's URL query that names a GraphQL parameter (the query string itself is never
/// forwarded on a POST).
pub fn check_post_query_string(query_string: Option<&str>) -> Result<(), DecodeError> {
    let Some(query_string) = query_string else {
        return Ok(());
    };
    url::form_urlencoded::parse(query_string.as_bytes())
        .find_map(|(key, _)| Member::from_key(&key))
        .map_or(Ok(()), |member| {
            Err(DecodeError::ParameterInPostUrl(member.key()))
        })
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(body).map_err(|error| match error.classify() {
        // Our own visitors report duplicates and shapes as `custom` errors carrying the decode error.
        serde_json::error::Category::Data => decode_error_from(&error),
        _ => DecodeError::NotJson,
    })
}

/// The members of a request object the firewall reads; every other key is ignored, as the spec says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Query,
    OperationName,
    Variables,
    Extensions,
    DocumentId,
}

impl Member {
    const ALL: [Member; 5] = [
        Member::Query,
        Member::OperationName,
        Member::Variables,
        Member::Extensions,
        Member::DocumentId,
    ];

    fn from_key(key: &str) -> Option<Member> {
        Member::ALL.into_iter().find(|m| m.key() == key)
    }

    fn key(self) -> &'static str {
        match self {
            Member::Query => "query",
            Member::OperationName => "operationName",
            Member::Variables => "variables",
            Member::Extensions => "extensions",
            Member::DocumentId => "documentId",
        }
    }
}

/// A request object before type checks: each known member once, as raw JSON.
#[derive(Debug, Default)]
struct RawRequest {
    query: Option<Value>,
    operation_name: Option<Value>,
    variables: Option<Value>,
    extensions: Option<Value>,
    document_id: Option<Value>,
}

impl RawRequest {
    fn slot(&mut self, member: Member) -> &mut Option<Value> {
        match member {
            Member::Query => &mut self.query,
            Member::OperationName => &mut self.operation_name,
            Member::Variables => &mut self.variables,
            Member::Extensions => &mut self.extensions,
            Member::DocumentId => &mut self.document_id,
        }
    }

    fn seen(&mut self, member: Member) -> bool {
        self.slot(member).is_some()
    }

    fn set(&mut self, member: Member, value: Value) {
        *self.slot(member) = Some(value);
    }

    fn take(&mut self, member: Member) -> Value {
        self.slot(member).take().unwrap_or(Value::Null)
    }

    fn validate(mut self) -> Result<GraphqlRequest, DecodeError> {
        let request = GraphqlRequest {
            query: string_or_null(self.take(Member::Query), "query")?,
            operation_name: string_or_null(self.take(Member::OperationName), "operationName")?,
            variables: object_or_null(self.take(Member::Variables), "variables")?,
            extensions: object_or_null(self.take(Member::Extensions), "extensions")?,
            document_id: string_or_null(self.take(Member::DocumentId), "documentId")?,
        };
        if request.query.is_none()
            && request.document_id.is_none()
            && request.persisted_query().is_none()
        {
            return Err(DecodeError::MissingQuery);
        }
        Ok(request)
    }
}

fn string_or_null(value: Value, name: &'static str) -> Result<Option<String>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        _ => Err(DecodeError::WrongType(name, "a string or null")),
    }
}

fn object_or_null(
    value: Value,
    name: &'static str,
) -> Result<Option<Map<String, Value>>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        _ => Err(DecodeError::WrongType(name, "an object or null")),
    }
}

// === Strict deserialisation ===
//
// serde_json keeps the last of duplicate keys; the upstream's JSON parser may keep the first. The
// visitors below refuse duplicates and encode our error in serde's custom message, which
// `decode_error_from` maps back.

const DUPLICATE_PREFIX: &str = "gfw-duplicate:";
const SHAPE_MARKER: &str = "gfw-not-object";

fn decode_error_from(error: &serde_json::Error) -> DecodeError {
    let text = error.to_string();
    if let Some(rest) = text.strip_prefix(DUPLICATE_PREFIX) {
        let key = Member::ALL
            .into_iter()
            .find(|m| rest.starts_with(m.key()))
            .map_or("query", Member::key);
        return DecodeError::Duplicate(key);
    }
    if text.starts_with(SHAPE_MARKER) {
        return DecodeError::NotObject;
    }
    DecodeError::NotJson
}

impl<'de> Deserialize<'de> for RawRequest {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RequestVisitor)
    }
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = RawRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GraphQL request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRequest, A::Error> {
        let mut raw = RawRequest::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match Member::from_key(&key) {
                Some(member) => {
                    if raw.seen(member) {
                        return Err(de::Error::custom(format_args!(
                            "{DUPLICATE_PREFIX}{}",
                            member.key()
                        )));
                    }
                    raw.set(member, map.next_value()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<RawRequest, A::Error> {
        Err(de::Error::custom(SHAPE_MARKER))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<RawRequest, E> {
        Err(de::Error::custom(SHAPE_MARKER))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawRequest, E> {
        Err(de::Error::custom(SHAPE_MARKER))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawRequest, E> {
        Err(de::Error::custom(SHAPE_MARKER))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawRequest, E> {
        Err(de::Error::custom(SHAPE_MARKER))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawRequest, E> {
        Err(de::Error::custom(SHAPE_MARKER))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawRequest, E> {
        Err(de::Error::custom(SHAPE_MARKER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;

    fn one(body: &str) -> Result<GraphqlRequest, DecodeError> {
        decode_body(body.as_bytes(), Some(5)).map(|(mut requests, batch)| {
            assert!(!batch);
            requests.remove(0)
        })
    }

    #[test]
    fn object_with_every_member_decodes() {
        let request = one(r#"{"query":"query Q($n:Int){a}","operationName":"Q","variables":{"n":1},"extensions":{"x":true},"unknown":[1]}"#).unwrap();
        assert_eq!(request.query.as_deref(), Some("query Q($n:Int){a}"));
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert_eq!(request.variables.unwrap()["n"], 1);
        assert!(request.extensions.is_some());
    }

    #[test]
    fn null_members_are_absent() {
        let request = one(r#"{"query":"{a}","operationName":null,"variables":null}"#).unwrap();
        assert_eq!(request.operation_name, None);
        assert_eq!(request.variables, None);
    }

    #[test]
    fn wrong_types_are_refused() {
        assert_eq!(
            one(r#"{"query":1}"#),
            Err(DecodeError::WrongType("query", "a string or null"))
        );
        assert_eq!(
            one(r#"{"query":"{a}","variables":"{}"}"#),
            Err(DecodeError::WrongType("variables", "an object or null"))
        );
        assert_eq!(
            one(r#"{"query":"{a}","variables":[7]}"#),
            Err(DecodeError::WrongType("variables", "an object or null"))
        );
        assert_eq!(
            one(r#"{"query":"{a}","operationName":{}}"#),
            Err(DecodeError::WrongType("operationName", "a string or null"))
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert_eq!(one(""), Err(DecodeError::Empty));
        assert_eq!(one("   "), Err(DecodeError::Empty));
        assert_eq!(one("{"), Err(DecodeError::NotJson));
        assert_eq!(
            one("{\"query\":\"{a}\"} trailing"),
            Err(DecodeError::NotJson)
        );
        assert_eq!(one("\"query\""), Err(DecodeError::NotObject));
        assert_eq!(one("nonsense"), Err(DecodeError::NotJson));
        assert_eq!(one("{}"), Err(DecodeError::MissingQuery));
    }

    #[test]
    fn duplicate_members_are_refused() {
        assert_eq!(
            one(r#"{"query":"{safe}","query":"{evil}"}"#),
            Err(DecodeError::Duplicate("query"))
        );
        assert_eq!(
            one(r#"{"query":"{a}","operationName":"A","operationName":"B"}"#),
            Err(DecodeError::Duplicate("operationName"))
        );
    }

    #[test]
    fn batches_decode_and_are_capped() {
        let (requests, batch) =
            decode_body(br#"[{"query":"{a}"},{"query":"{b}"}]"#, Some(2)).unwrap();
        assert!(batch);
        assert_eq!(requests.len(), 2);
        assert_eq!(
            decode_body(
                br#"[{"query":"{a}"},{"query":"{b}"},{"query":"{c}"}]"#,
                Some(2)
            ),
            Err(DecodeError::BatchTooLarge {
                limit: 2,
                actual: 3
            })
        );
        assert_eq!(decode_body(b"[]", Some(2)), Err(DecodeError::EmptyBatch));
        assert_eq!(decode_body(b"[1]", Some(2)), Err(DecodeError::NotObject));
        assert_eq!(
            decode_body(br#"[{"query":"{a}","query":"{b}"}]"#, Some(2)),
            Err(DecodeError::Duplicate("query"))
        );
    }

    #[test]
    fn query_string_decodes_json_parameters() {
        let request = decode_query_string(
            "query=query%20Q(%24n%3AInt)%7Ba%7D&operationName=Q&variables=%7B%22n%22%3A3%7D&extensions=",
            LIMIT,
        )
        .unwrap();
        assert_eq!(request.query.as_deref(), Some("query Q($n:Int){a}"));
        assert_eq!(request.variables.unwrap()["n"], 3);
        assert_eq!(request.extensions, None);
    }

    #[test]
    fn query_string_refuses_pollution_and_bad_json() {
        assert_eq!(
            decode_query_string("query=%7Ba%7D&query=%7Bb%7D", LIMIT),
            Err(DecodeError::Duplicate("query"))
        );
        assert_eq!(
            decode_query_string("query=%7Ba%7D&variables=%7Bnope", LIMIT),
            Err(DecodeError::ParameterNotJson("variables"))
        );
        assert_eq!(
            decode_query_string("query=%7Ba%7D&variables=%5B%5D", LIMIT),
            Err(DecodeError::WrongType("variables", "an object or null"))
        );
        assert_eq!(
            decode_query_string("", LIMIT),
            Err(DecodeError::MissingQuery)
        );
    }

    #[test]
    fn a_persisted_query_id_stands_in_for_the_query() {
        let request =
            one(r#"{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}"#).unwrap();
        assert!(request.persisted_query().is_some());
        let request = one(r#"{"documentId":"sha256:ab"}"#).unwrap();
        assert_eq!(request.document_id.as_deref(), Some("sha256:ab"));
    }

    #[test]
    fn a_query_string_over_the_limit_is_refused_before_it_is_read() {
        let long = format!("query={}", "a".repeat(100));
        assert_eq!(
            decode_query_string(&long, 64),
            Err(DecodeError::QueryStringTooLarge { limit: 64 })
        );
    }
}
