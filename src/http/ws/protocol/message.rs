//! The messages of both subprotocols in one vocabulary: strict parsing of what a client or an
//! upstream sends, and encoding for either subprotocol.
//!
//! # Threats
//! Parameter pollution, as on HTTP: a message that names `type`, `id` or `payload` twice (or a
//! subscribe payload that names `query` twice) could be read one way here and another way by the
//! upstream, so duplicates are refused. A subscribe's payload is decoded by the same code as an
//! HTTP request body, so the same request is well-formed on both transports or on neither.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Close, CloseCode, ResultKind, Subprotocol};
use crate::http::decode::{DecodeError, decode_body};
use crate::inspect::GraphqlRequest;

/// The longest operation id accepted (graphql-ws clients send UUIDs, legacy clients counters).
pub const MAX_ID_BYTES: usize = 128;

/// Why a message is not valid in its subprotocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    #[error("the message is {actual} bytes; at most {limit} are accepted")]
    TooLarge { limit: usize, actual: usize },
    #[error("binary frames are not part of the protocol")]
    Binary,
    #[error("the message is not valid JSON")]
    NotJson,
    #[error("the message is not a JSON object")]
    NotObject,
    #[error("`{0}` appears more than once")]
    Duplicate(&'static str),
    #[error("the message has no string `type`")]
    MissingType,
    #[error("the message type is not one this side may send in this subprotocol")]
    UnknownType,
    #[error("the message needs an `id`: a non-empty string of at most {MAX_ID_BYTES} bytes")]
    BadId,
    #[error("`payload` must be {0}")]
    BadPayload(&'static str),
    #[error("the operation is not a GraphQL request: {0}")]
    Request(DecodeError),
}

impl InvalidMessage {
    /// How a client that sent this is closed.
    pub fn close(&self) -> Close {
        match self {
            InvalidMessage::TooLarge { .. } => {
                Close::new(CloseCode::MessageTooBig, "Message too big")
            }
            _ => Close::new(CloseCode::InvalidMessage, "Invalid message received"),
        }
    }
}

/// What a client sends.
#[derive(Debug, Clone)]
pub enum ClientMessage {
    /// `connection_init`, with its optional object payload (often credentials).
    ConnectionInit { payload: Option<Box<RawValue>> },
    /// `ping` (graphql-transport-ws only).
    Ping { payload: Option<Box<RawValue>> },
    /// `pong` (graphql-transport-ws only).
    Pong { payload: Option<Box<RawValue>> },
    /// `subscribe`, or legacy `start`: an operation of any type. `request` is the decoded payload
    /// for inspection; `payload` is the payload as received, what is forwarded when allowed as is.
    Subscribe {
        id: String,
        request: GraphqlRequest,
        payload: Box<RawValue>,
    },
    /// `complete`, or legacy `stop`: the client cancels an operation.
    Complete { id: String },
    /// `connection_terminate` (legacy only).
    ConnectionTerminate,
}

/// What an upstream (or the firewall itself) sends to a client.
#[derive(Debug, Clone)]
pub enum ServerMessage {
    /// `connection_ack`, with its optional object payload.
    ConnectionAck { payload: Option<Box<RawValue>> },
    /// `connection_error` (legacy only): the server refused the initialisation.
    ConnectionError { payload: Option<Box<RawValue>> },
    /// `ka` (legacy only): keep-alive.
    KeepAlive,
    /// `ping` (graphql-transport-ws only).
    Ping { payload: Option<Box<RawValue>> },
    /// `pong` (graphql-transport-ws only).
    Pong { payload: Option<Box<RawValue>> },
    /// `next`, or legacy `data`: one execution result (a JSON object).
    Next { id: String, payload: Box<RawValue> },
    /// `error`: the operation failed before execution; `payload` is always a JSON array of
    /// GraphQL errors (a legacy server's single error object is wrapped in one).
    Error { id: String, payload: Box<RawValue> },
    /// `complete`: the operation is over.
    Complete { id: String },
}

impl ClientMessage {
    /// Parses a client's text frame received on `protocol`.
    pub fn parse(text: &str, protocol: Subprotocol) -> Result<ClientMessage, InvalidMessage> {
        use Subprotocol::{GraphqlTransportWs as Modern, GraphqlWs as Legacy};
        let envelope = Envelope::parse(text)?;
        let kind = envelope.kind()?;
        Ok(match (protocol, kind.as_str()) {
            (_, "connection_init") => ClientMessage::ConnectionInit {
                payload: optional_object(envelope.payload)?,
            },
            (Modern, "ping") => ClientMessage::Ping {
                payload: optional_object(envelope.payload)?,
            },
            (Modern, "pong") => ClientMessage::Pong {
                payload: optional_object(envelope.payload)?,
            },
            (Modern, "subscribe") | (Legacy, "start") => {
                let id = envelope.id()?;
                let payload = envelope
                    .payload
                    .ok_or(InvalidMessage::BadPayload("a GraphQL request object"))?;
                ClientMessage::Subscribe {
                    id,
                    request: decode_request(payload)?,
                    payload: payload.to_owned(),
                }
            }
            (Modern, "complete") | (Legacy, "stop") => {
                ClientMessage::Complete { id: envelope.id()? }
            }
            (Legacy, "connection_terminate") => ClientMessage::ConnectionTerminate,
            _ => return Err(InvalidMessage::UnknownType),
        })
    }

    /// The text frame for `protocol`; `None` when the message has no form in it (`ping` and
    /// `pong` in the legacy protocol, `connection_terminate` in graphql-transport-ws).
    pub fn encode(&self, protocol: Subprotocol) -> Option<String> {
        let legacy = protocol == Subprotocol::GraphqlWs;
        Some(match self {
            ClientMessage::ConnectionInit { payload } => {
                frame("connection_init", None, raw(payload))
            }
            ClientMessage::Ping { payload } if !legacy => frame("ping", None, raw(payload)),
            ClientMessage::Pong { payload } if !legacy => frame("pong", None, raw(payload)),
            ClientMessage::Subscribe { id, payload, .. } => frame(
                if legacy { "start" } else { "subscribe" },
                Some(id),
                Some(payload.get()),
            ),
            ClientMessage::Complete { id } => {
                frame(if legacy { "stop" } else { "complete" }, Some(id), None)
            }
            ClientMessage::ConnectionTerminate if legacy => {
                frame("connection_terminate", None, None)
            }
            ClientMessage::Ping { .. }
            | ClientMessage::Pong { .. }
            | ClientMessage::ConnectionTerminate => return None,
        })
    }
}

impl ServerMessage {
    /// Parses an upstream's text frame received on `protocol`.
    pub fn parse(text: &str, protocol: Subprotocol) -> Result<ServerMessage, InvalidMessage> {
        use Subprotocol::{GraphqlTransportWs as Modern, GraphqlWs as Legacy};
        let envelope = Envelope::parse(text)?;
        let kind = envelope.kind()?;
        Ok(match (protocol, kind.as_str()) {
            (_, "connection_ack") => ServerMessage::ConnectionAck {
                payload: optional_object(envelope.payload)?,
            },
            (Legacy, "connection_error") => ServerMessage::ConnectionError {
                payload: envelope.payload.map(ToOwned::to_owned),
            },
            (Legacy, "ka") => ServerMessage::KeepAlive,
            (Modern, "ping") => ServerMessage::Ping {
                payload: optional_object(envelope.payload)?,
            },
            (Modern, "pong") => ServerMessage::Pong {
                payload: optional_object(envelope.payload)?,
            },
            (Modern, "next") | (Legacy, "data") => ServerMessage::Next {
                id: envelope.id()?,
                payload: match envelope.payload {
                    Some(payload) if starts_with(payload, '{') => payload.to_owned(),
                    _ => return Err(InvalidMessage::BadPayload("an execution result object")),
                },
            },
            (_, "error") => ServerMessage::Error {
                id: envelope.id()?,
                payload: match envelope.payload {
                    Some(errors) if starts_with(errors, '[') => errors.to_owned(),
                    Some(error) if protocol == Legacy && starts_with(error, '{') => {
                        RawValue::from_string(format!("[{}]", error.get()))
                            .map_err(|_| InvalidMessage::NotJson)?
                    }
                    _ => return Err(InvalidMessage::BadPayload("an array of GraphQL errors")),
                },
            },
            (_, "complete") => ServerMessage::Complete { id: envelope.id()? },
            _ => return Err(InvalidMessage::UnknownType),
        })
    }

    /// The text frame for `protocol`; `None` when the message has no form in it (`ka` and
    /// `connection_error` in graphql-transport-ws, `ping` and `pong` in the legacy protocol).
    pub fn encode(&self, protocol: Subprotocol) -> Option<String> {
        let legacy = protocol == Subprotocol::GraphqlWs;
        Some(match self {
            ServerMessage::ConnectionAck { payload } => frame("connection_ack", None, raw(payload)),
            ServerMessage::ConnectionError { payload } if legacy => {
                frame("connection_error", None, raw(payload))
            }
            ServerMessage::KeepAlive if legacy => frame("ka", None, None),
            ServerMessage::Ping { payload } if !legacy => frame("ping", None, raw(payload)),
            ServerMessage::Pong { payload } if !legacy => frame("pong", None, raw(payload)),
            ServerMessage::Next { id, payload } => {
                result_frame(protocol, id, ResultKind::Next, payload.get())
            }
            ServerMessage::Error { id, payload } => {
                result_frame(protocol, id, ResultKind::Error, payload.get())
            }
            ServerMessage::Complete { id } => frame("complete", Some(id), None),
            ServerMessage::ConnectionError { .. }
            | ServerMessage::KeepAlive
            | ServerMessage::Ping { .. }
            | ServerMessage::Pong { .. } => return None,
        })
    }
}

/// A `next`/`data` frame (`payload_json`: an execution result object) or an `error` frame
/// (`payload_json`: an array of GraphQL errors) for `protocol`. The payload is written as given.
pub(super) fn result_frame(
    protocol: Subprotocol,
    id: &str,
    kind: ResultKind,
    payload_json: &str,
) -> String {
    let name = match (kind, protocol) {
        (ResultKind::Next, Subprotocol::GraphqlTransportWs) => "next",
        (ResultKind::Next, Subprotocol::GraphqlWs) => "data",
        (ResultKind::Error, _) => "error",
    };
    frame(name, Some(id), Some(payload_json))
}

/// `{"type":…,"id":…,"payload":…}` with the members that are present; `kind` is one of this
/// module's fixed names, `payload` is JSON text.
pub(super) fn frame(kind: &str, id: Option<&str>, payload: Option<&str>) -> String {
    let mut out = String::with_capacity(
        24 + kind.len() + id.map_or(0, |id| id.len() + 8) + payload.map_or(0, str::len),
    );
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push('"');
    if let Some(id) = id {
        out.push_str(",\"id\":");
        // Display of a JSON string value is its escaped form and cannot fail.
        out.push_str(&serde_json::Value::from(id).to_string());
    }
    if let Some(payload) = payload {
        out.push_str(",\"payload\":");
        out.push_str(payload);
    }
    out.push('}');
    out
}

fn raw(payload: &Option<Box<RawValue>>) -> Option<&str> {
    payload.as_deref().map(RawValue::get)
}

fn starts_with(value: &RawValue, first: char) -> bool {
    value.get().starts_with(first)
}

/// An object payload, or none for an absent or `null` one.
fn optional_object(payload: Option<&RawValue>) -> Result<Option<Box<RawValue>>, InvalidMessage> {
    match payload {
        None => Ok(None),
        Some(value) if value.get() == "null" => Ok(None),
        Some(value) if starts_with(value, '{') => Ok(Some(value.to_owned())),
        Some(_) => Err(InvalidMessage::BadPayload("an object or null")),
    }
}

/// A subscribe payload, decoded as an HTTP request body would be: one request object.
fn decode_request(payload: &RawValue) -> Result<GraphqlRequest, InvalidMessage> {
    if !starts_with(payload, '{') {
        return Err(InvalidMessage::BadPayload("a GraphQL request object"));
    }
    let (mut requests, _) =
        decode_body(payload.get().as_bytes(), Some(1)).map_err(InvalidMessage::Request)?;
    match (requests.pop(), requests.is_empty()) {
        (Some(request), true) => Ok(request),
        _ => Err(InvalidMessage::BadPayload("a GraphQL request object")),
    }
}

// === Strict envelope ===

/// The members of a message object that matter, each at most once, as raw JSON; other members
/// are ignored, as both protocols' reference servers do.
#[derive(Debug, Default)]
struct Envelope<'a> {
    kind: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    payload: Option<&'a RawValue>,
    duplicate: Option<&'static str>,
}

impl<'a> Envelope<'a> {
    fn parse(text: &'a str) -> Result<Envelope<'a>, InvalidMessage> {
        match serde_json::from_str::<Envelope<'a>>(text) {
            Ok(Envelope {
                duplicate: Some(member),
                ..
            }) => Err(InvalidMessage::Duplicate(member)),
            Ok(envelope) => Ok(envelope),
            Err(_) if !text.trim_start().starts_with('{') => {
                match serde_json::from_str::<IgnoredAny>(text) {
                    Ok(_) => Err(InvalidMessage::NotObject),
                    Err(_) => Err(InvalidMessage::NotJson),
                }
            }
            Err(_) => Err(InvalidMessage::NotJson),
        }
    }

    fn kind(&self) -> Result<String, InvalidMessage> {
        self.kind
            .and_then(|kind| serde_json::from_str::<String>(kind.get()).ok())
            .ok_or(InvalidMessage::MissingType)
    }

    fn id(&self) -> Result<String, InvalidMessage> {
        self.id
            .and_then(|id| serde_json::from_str::<String>(id.get()).ok())
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_BYTES)
            .ok_or(InvalidMessage::BadId)
    }
}

impl<'de: 'a, 'a> de::Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GraphQL-over-WebSocket message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'a>, A::Error> {
        let mut envelope = Envelope::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let (name, slot) = match key.as_ref() {
                "type" => ("type", &mut envelope.kind),
                "id" => ("id", &mut envelope.id),
                "payload" => ("payload", &mut envelope.payload),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value: &'de RawValue = map.next_value()?;
            if slot.is_some() {
                // Read on to the end so that the JSON is still checked; report the first one.
                envelope.duplicate.get_or_insert(name);
            } else {
                *slot = Some(value);
            }
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests;
