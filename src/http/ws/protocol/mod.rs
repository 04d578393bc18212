//! The two GraphQL-over-WebSocket subprotocols and the firewall's session state machine over them;
//! pure: no I/O, no clock (the caller passes `now`), no logging.
//!
//! - `graphql-transport-ws` (the graphql-ws library's protocol): `connection_init`,
//!   `connection_ack`, `ping`, `pong`, `subscribe`, `next`, `error`, `complete`.
//! - `graphql-ws`, the legacy protocol of subscriptions-transport-ws: `connection_init`,
//!   `connection_ack`, `connection_error`, `ka`, `start`, `data`, `error`, `complete`, `stop`,
//!   `connection_terminate`.
//!
//! [`ClientMessage`] and [`ServerMessage`] are one vocabulary for both (legacy `start` is a
//! subscribe, `stop` a complete, `data` a next): each parses with the subprotocol it arrived on and
//! encodes for the subprotocol it leaves on, so a relay can translate between a client and an
//! upstream that speak different ones.
//!
//! # Threats
//! A WebSocket is a second door into the API: an operation sent in a `subscribe` message must meet
//! every rule a POST meets (a gateway whose WebSocket path skipped the HTTP path's limits,
//! introspection and suggestion rules is a known failure). So the [`Session`] never forwards a
//! subscribe it has not been told to allow after inspection, and it enforces the protocol itself
//! rather than trusting the upstream to: messages are size-capped and parsed strictly (duplicate
//! members, wrong types and unknown types close the connection), the number of operations per
//! connection is capped, a client that never initialises is timed out, and operation ids are
//! renamed on the way to the upstream so that a client's ids can neither collide there nor reach
//! it at arbitrary length. Upstream messages are checked too: an answer for an id the client no
//! longer has is dropped, and a malformed one closes the connection.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod message;
mod session;

pub use message::{ClientMessage, InvalidMessage, MAX_ID_BYTES, ServerMessage};
pub use session::{Action, Refusal, Session, Settings};

/// A GraphQL-over-WebSocket subprotocol, as named in `Sec-WebSocket-Protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subprotocol {
    /// `graphql-transport-ws`: the graphql-ws library's protocol.
    GraphqlTransportWs,
    /// `graphql-ws`: the legacy protocol of Apollo's subscriptions-transport-ws (despite the name,
    /// not the graphql-ws library's).
    GraphqlWs,
}

impl Subprotocol {
    /// Both, in the order the firewall prefers them.
    pub const ALL: [Subprotocol; 2] = [Subprotocol::GraphqlTransportWs, Subprotocol::GraphqlWs];

    /// The name in `Sec-WebSocket-Protocol`.
    pub const fn name(self) -> &'static str {
        match self {
            Subprotocol::GraphqlTransportWs => "graphql-transport-ws",
            Subprotocol::GraphqlWs => "graphql-ws",
        }
    }

    /// The subprotocol with exactly this name (subprotocol tokens are case-sensitive).
    pub fn from_name(name: &str) -> Option<Subprotocol> {
        Subprotocol::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Chooses from the client's `Sec-WebSocket-Protocol` header values (each a comma-separated
    /// list): `graphql-transport-ws` when offered, else `graphql-ws`, else `None` (refuse the
    /// upgrade: the firewall cannot enforce a protocol it does not know).
    pub fn negotiate<'a>(header_values: impl IntoIterator<Item = &'a str>) -> Option<Subprotocol> {
        let offered: Vec<Subprotocol> = header_values
            .into_iter()
            .flat_map(|value| value.split(','))
            .filter_map(|token| Subprotocol::from_name(token.trim()))
            .collect();
        Subprotocol::ALL
            .into_iter()
            .find(|preferred| offered.contains(preferred))
    }
}

/// Which kind of result goes to a client for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultKind {
    /// `next` (legacy `data`): one execution result.
    Next,
    /// `error`: the operation failed before execution; nothing follows for its id.
    Error,
}

/// Why the firewall closes a client connection: a WebSocket close code of RFC 6455 or of the
/// graphql-ws protocol, which the legacy protocol's clients understand as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the client asked (`connection_terminate`) or the upstream closed normally.
    Normal,
    /// 1001: the connection was idle, or a client did not answer keep-alive pings.
    GoingAway,
    /// 1009: a message over the size limit.
    MessageTooBig,
    /// 1014: the upstream failed, closed abnormally or broke the protocol.
    BadGateway,
    /// 4400: a message that is not valid in the negotiated subprotocol.
    InvalidMessage,
    /// 4401: an operation before the connection was acknowledged.
    Unauthorized,
    /// 4403: the upstream refused the connection's initialisation.
    Forbidden,
    /// 4408: no `connection_init` within the initialisation timeout.
    InitTimeout,
    /// 4409: an operation id that is already in use on this connection.
    DuplicateId,
    /// 4429: a second `connection_init`.
    TooManyInits,
}

impl CloseCode {
    /// The numeric close code.
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::MessageTooBig => 1009,
            CloseCode::BadGateway => 1014,
            CloseCode::InvalidMessage => 4400,
            CloseCode::Unauthorized => 4401,
            CloseCode::Forbidden => 4403,
            CloseCode::InitTimeout => 4408,
            CloseCode::DuplicateId => 4409,
            CloseCode::TooManyInits => 4429,
        }
    }
}

/// A close the client must get: the code and a short fixed reason (never an echo of client or
/// upstream data; a close reason is limited to 123 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub code: CloseCode,
    pub reason: &'static str,
}

impl Close {
    pub(crate) const fn new(code: CloseCode, reason: &'static str) -> Close {
        Close { code, reason }
    }
}
