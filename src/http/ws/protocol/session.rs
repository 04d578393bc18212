//! The firewall's side of one GraphQL-over-WebSocket connection: a state machine that consumes
//! what the client and the upstream send (and the passing of time) and returns [`Action`]s.
//!
//! The relay owns the sockets and calls, in one task per connection:
//! - [`Session::on_client_text`] / [`Session::on_client_binary`] for each client data frame, and
//!   [`Session::on_client_activity`] for WebSocket-level ping/pong frames;
//! - [`Session::on_upstream_text`] for each upstream text frame, [`Session::on_upstream_closed`]
//!   when the upstream connection ends;
//! - [`Session::on_tick`] when [`Session::next_deadline`] has passed;
//! - [`Session::allow`] or [`Session::refuse`] with the verdict for each [`Action::Inspect`], and
//!   [`Session::refuse`] with rendered errors for each [`Action::Refuse`];
//!
//! and carries out each returned action in order. After an [`Action::Close`] the session is over:
//! every call returns nothing, and the relay closes both connections.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::message::{frame, result_frame};
use super::{
    ClientMessage, Close, CloseCode, InvalidMessage, ResultKind, ServerMessage, Subprotocol,
};
use crate::http::encode::encode_body;
use crate::inspect::GraphqlRequest;

/// The limits of one connection (from the operator's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// A client frame longer than this closes the connection (1009).
    pub max_message_bytes: usize,
    /// Operations open at once (being inspected or running); one more is refused with an `error`
    /// for its id, and the connection stays open.
    pub max_subscriptions: usize,
    /// The client must send `connection_init` within this time of connecting (else 4408), and the
    /// upstream must acknowledge within this time of the client's init (else 1014).
    pub init_timeout: Duration,
    /// When set, the client gets the protocol's keep-alive this often once acknowledged: `ping`
    /// (graphql-transport-ws; a client that has sent nothing by the next one is closed with 1001)
    /// or `ka` (legacy, which has no answer to wait for).
    pub keepalive: Option<Duration>,
    /// When set, an acknowledged connection with no operation open and no client message for
    /// this long is closed (1001).
    pub idle_timeout: Option<Duration>,
}

/// What the relay must do, in order.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send this text frame to the client.
    Client(String),
    /// Send this text frame to the upstream.
    Upstream(String),
    /// Inspect this operation exactly as an HTTP request (persisted ids, analysis, limits,
    /// introspection, cost and budgets, audit), then call [`Session::allow`] or
    /// [`Session::refuse`] with `id`.
    Inspect { id: String, request: GraphqlRequest },
    /// The session refuses this operation itself: render the GraphQL errors for `reason` and call
    /// [`Session::refuse`] with `id` before handing the session its next message.
    Refuse { id: String, reason: Refusal },
    /// Harden this upstream payload (`Next`: an execution result object; `Error`: an array of
    /// GraphQL errors) as an HTTP response body would be, then send
    /// [`Session::result_message`] of the hardened JSON to the client.
    Harden {
        id: String,
        kind: ResultKind,
        payload: Box<RawValue>,
    },
    /// Close the client connection with this code and reason, and the upstream connection.
    Close(Close),
}

/// Why the session refused an operation on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The connection already has `limit` operations open.
    TooManySubscriptions { limit: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the client's `connection_init` until the deadline.
    AwaitingInit {
        deadline: Instant,
    },
    /// The init went upstream; waiting for its `connection_ack` until the deadline.
    AwaitingAck {
        deadline: Instant,
    },
    /// Acknowledged: operations flow.
    Ready,
    Closed,
}

/// One client operation, by client id.
#[derive(Debug)]
enum Operation {
    /// Waiting for the inspection's verdict; `payload` is forwarded if it is allowed as is.
    Inspecting { payload: Box<RawValue> },
    /// Refused by the session; waiting for the rendered errors.
    Refusing,
    /// Allowed before the upstream acknowledged (a legacy client may start operations right after
    /// its init); forwarded on the ack, in arrival order.
    Queued { payload: String },
    /// Forwarded under this upstream id.
    Active { upstream_id: u64 },
}

/// The firewall's state for one client connection and its upstream connection.
#[derive(Debug)]
pub struct Session {
    client: Subprotocol,
    upstream: Subprotocol,
    settings: Settings,
    phase: Phase,
    operations: HashMap<String, Operation>,
    /// Upstream id → client id, for the operations forwarded.
    upstream_ids: HashMap<u64, String>,
    next_upstream_id: u64,
    /// Client ids of `Queued` operations, in arrival order.
    queued: Vec<String>,
    init_payload: Option<Box<RawValue>>,
    /// The last client message or end of an operation: idleness is counted from here.
    idle_since: Instant,
    /// When the next keep-alive is due (acknowledged connections with keep-alive only).
    keepalive_due: Option<Instant>,
    /// A `ping` went out and the client has sent nothing since.
    awaiting_pong: bool,
}

// === impl Session ===

impl Session {
    /// A session for a client that negotiated `client` and an upstream spoken to in `upstream`,
    /// starting `now` (the client's init timeout runs from here).
    pub fn new(
        client: Subprotocol,
        upstream: Subprotocol,
        settings: Settings,
        now: Instant,
    ) -> Session {
        Session {
            client,
            upstream,
            phase: Phase::AwaitingInit {
                deadline: now + settings.init_timeout,
            },
            settings,
            operations: HashMap::new(),
            upstream_ids: HashMap::new(),
            next_upstream_id: 1,
            queued: Vec::new(),
            init_payload: None,
            idle_since: now,
            keepalive_due: None,
            awaiting_pong: false,
        }
    }

    /// The client's subprotocol.
    pub fn client_protocol(&self) -> Subprotocol {
        self.client
    }

    /// The upstream's subprotocol.
    pub fn upstream_protocol(&self) -> Subprotocol {
        self.upstream
    }

    /// The client's `connection_init` payload (credentials often travel there).
    pub fn init_payload(&self) -> Option<&RawValue> {
        self.init_payload.as_deref()
    }

    /// Operations open on this connection: being inspected, waiting for the ack, or running.
    /// A per-client cap across connections can follow this number after each call.
    pub fn open_operations(&self) -> usize {
        self.operations
            .values()
            .filter(|op| !matches!(op, Operation::Refusing))
            .count()
    }

    /// Whether the session has closed (after an [`Action::Close`]).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// When [`Session::on_tick`] must next be called, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::AwaitingInit { deadline } | Phase::AwaitingAck { deadline } => Some(deadline),
            Phase::Ready => [self.keepalive_due, self.idle_deadline()]
                .into_iter()
                .flatten()
                .min(),
            Phase::Closed => None,
        }
    }

    /// The `next`/`data` or `error` frame for the client, once an [`Action::Harden`] payload has
    /// been hardened (`payload_json` is written as given: an object for `Next`, an array of
    /// GraphQL errors for `Error`).
    pub fn result_message(&self, id: &str, kind: ResultKind, payload_json: &str) -> String {
        result_frame(self.client, id, kind, payload_json)
    }

    /// A text frame from the client.
    pub fn on_client_text(&mut self, text: &str, now: Instant) -> Vec<Action> {
        if self.is_closed() {
            return Vec::new();
        }
        if text.len() > self.settings.max_message_bytes {
            return self.invalid(&InvalidMessage::TooLarge {
                limit: self.settings.max_message_bytes,
                actual: text.len(),
            });
        }
        self.client_active(now);
        match ClientMessage::parse(text, self.client) {
            Ok(message) => self.on_client_message(message, now),
            Err(invalid) => self.invalid(&invalid),
        }
    }

    /// A binary frame from the client: never part of either protocol.
    pub fn on_client_binary(&mut self, bytes: &[u8], _now: Instant) -> Vec<Action> {
        if self.is_closed() {
            return Vec::new();
        }
        let invalid = if bytes.len() > self.settings.max_message_bytes {
            InvalidMessage::TooLarge {
                limit: self.settings.max_message_bytes,
                actual: bytes.len(),
            }
        } else {
            InvalidMessage::Binary
        };
        self.invalid(&invalid)
    }

    /// A WebSocket-level ping or pong frame from the client: it is alive.
    pub fn on_client_activity(&mut self, now: Instant) {
        self.client_active(now);
    }

    /// The verdict "allowed" for an [`Action::Inspect`]: the operation goes upstream, as received
    /// or, when the firewall rewrote it (a persisted id resolved to its document, say), as
    /// `replacement`. Nothing happens when the client has cancelled it meanwhile.
    pub fn allow(&mut self, id: &str, replacement: Option<&GraphqlRequest>) -> Vec<Action> {
        if !matches!(self.operations.get(id), Some(Operation::Inspecting { .. })) {
            // Cancelled by the client, refused by the session, or never inspected.
            return Vec::new();
        }
        let Some(Operation::Inspecting { payload }) = self.operations.remove(id) else {
            return Vec::new();
        };
        let payload = match replacement {
            Some(request) => {
                String::from_utf8_lossy(&encode_body(std::slice::from_ref(request), false))
                    .into_owned()
            }
            None => payload.get().to_owned(),
        };
        if self.phase == Phase::Ready {
            vec![self.forward(id.to_owned(), &payload)]
        } else {
            self.operations
                .insert(id.to_owned(), Operation::Queued { payload });
            self.queued.push(id.to_owned());
            Vec::new()
        }
    }

    /// Ends an operation that was refused, by the inspection or by the session
    /// ([`Action::Refuse`]): the client gets an `error` for `id` with `errors_json`, a JSON array
    /// of GraphQL errors rendered as on HTTP, and the connection stays open. Nothing happens when
    /// the client has cancelled the operation meanwhile.
    pub fn refuse(&mut self, id: &str, errors_json: &str) -> Vec<Action> {
        match self.operations.get(id) {
            Some(Operation::Inspecting { .. } | Operation::Refusing) => {
                self.operations.remove(id);
                vec![Action::Client(result_frame(
                    self.client,
                    id,
                    ResultKind::Error,
                    errors_json,
                ))]
            }
            _ => Vec::new(),
        }
    }

    /// A text frame from the upstream.
    pub fn on_upstream_text(&mut self, text: &str, now: Instant) -> Vec<Action> {
        if self.is_closed() {
            return Vec::new();
        }
        let message = match ServerMessage::parse(text, self.upstream) {
            Ok(message) => message,
            Err(_) => {
                return self.close(Close::new(
                    CloseCode::BadGateway,
                    "Invalid message from the upstream",
                ));
            }
        };
        let acknowledged = self.phase == Phase::Ready;
        match message {
            ServerMessage::ConnectionAck { payload } => match self.phase {
                Phase::AwaitingAck { .. } => self.acknowledged(payload, now),
                _ => self.upstream_violation(),
            },
            ServerMessage::ConnectionError { .. } => {
                let mut actions = Vec::new();
                if self.client == Subprotocol::GraphqlWs {
                    actions.push(Action::Client(frame(
                        "connection_error",
                        None,
                        Some(r#"{"message":"Forbidden"}"#),
                    )));
                }
                actions.extend(self.close(Close::new(CloseCode::Forbidden, "Forbidden")));
                actions
            }
            // The firewall keeps its own clients alive.
            ServerMessage::KeepAlive | ServerMessage::Pong { .. } => Vec::new(),
            ServerMessage::Ping { payload } => ClientMessage::Pong { payload }
                .encode(self.upstream)
                .map(Action::Upstream)
                .into_iter()
                .collect(),
            ServerMessage::Next { .. }
            | ServerMessage::Error { .. }
            | ServerMessage::Complete { .. }
                if !acknowledged =>
            {
                self.upstream_violation()
            }
            ServerMessage::Next { id, payload } => match self.client_id(&id, false) {
                Some(id) => vec![Action::Harden {
                    id,
                    kind: ResultKind::Next,
                    payload,
                }],
                None => Vec::new(),
            },
            ServerMessage::Error { id, payload } => match self.client_id(&id, true) {
                Some(id) => {
                    self.idle_since = now;
                    vec![Action::Harden {
                        id,
                        kind: ResultKind::Error,
                        payload,
                    }]
                }
                None => Vec::new(),
            },
            ServerMessage::Complete { id } => match self.client_id(&id, true) {
                Some(id) => {
                    self.idle_since = now;
                    vec![Action::Client(frame("complete", Some(&id), None))]
                }
                None => Vec::new(),
            },
        }
    }

    /// The upstream connection ended, with its close code if it sent one.
    pub fn on_upstream_closed(&mut self, code: Option<u16>) -> Vec<Action> {
        if self.is_closed() {
            return Vec::new();
        }
        let close = match code {
            Some(1000) => Close::new(CloseCode::Normal, "The upstream closed the connection"),
            // The graphql-ws code for a refused init: a client must not retry blindly.
            Some(4403) => Close::new(CloseCode::Forbidden, "Forbidden"),
            _ => Close::new(CloseCode::BadGateway, "The upstream connection failed"),
        };
        self.close(close)
    }

    /// Time has passed: timeouts and keep-alives due by `now`.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        match self.phase {
            Phase::Closed => Vec::new(),
            Phase::AwaitingInit { deadline } if now >= deadline => self.close(Close::new(
                CloseCode::InitTimeout,
                "Connection initialisation timeout",
            )),
            Phase::AwaitingAck { deadline } if now >= deadline => self.close(Close::new(
                CloseCode::BadGateway,
                "The upstream did not acknowledge the connection",
            )),
            Phase::AwaitingInit { .. } | Phase::AwaitingAck { .. } => Vec::new(),
            Phase::Ready => {
                if self.idle_deadline().is_some_and(|deadline| now >= deadline) {
                    return self.close(Close::new(CloseCode::GoingAway, "Idle timeout"));
                }
                match (self.keepalive_due, self.settings.keepalive) {
                    (Some(due), Some(interval)) if now >= due => {
                        if self.awaiting_pong {
                            return self
                                .close(Close::new(CloseCode::GoingAway, "Keep-alive timeout"));
                        }
                        self.keepalive_due = Some(now + interval);
                        self.keepalive_message()
                    }
                    _ => Vec::new(),
                }
            }
        }
    }

    // === Client messages ===

    fn on_client_message(&mut self, message: ClientMessage, now: Instant) -> Vec<Action> {
        match message {
            ClientMessage::ConnectionInit { payload } => match self.phase {
                Phase::AwaitingInit { .. } => {
                    self.phase = Phase::AwaitingAck {
                        deadline: now + self.settings.init_timeout,
                    };
                    // Both subprotocols spell it the same way.
                    let init = frame(
                        "connection_init",
                        None,
                        payload.as_deref().map(RawValue::get),
                    );
                    self.init_payload = payload;
                    vec![Action::Upstream(init)]
                }
                _ => self.close(Close::new(
                    CloseCode::TooManyInits,
                    "Too many initialisation requests",
                )),
            },
            ClientMessage::Ping { payload } => ServerMessage::Pong { payload }
                .encode(self.client)
                .map(Action::Client)
                .into_iter()
                .collect(),
            ClientMessage::Pong { .. } => Vec::new(),
            ClientMessage::Subscribe {
                id,
                request,
                payload,
            } => self.on_subscribe(id, request, payload),
            ClientMessage::Complete { id } => self.on_complete(&id),
            ClientMessage::ConnectionTerminate => self.close(Close::new(
                CloseCode::Normal,
                "The client terminated the connection",
            )),
        }
    }

    fn on_subscribe(
        &mut self,
        id: String,
        request: GraphqlRequest,
        payload: Box<RawValue>,
    ) -> Vec<Action> {
        let may_start = match self.phase {
            Phase::Ready => true,
            // subscriptions-transport-ws clients send `start` right after `connection_init`,
            // without waiting for the ack; their servers wait for the init to finish.
            Phase::AwaitingAck { .. } => self.client == Subprotocol::GraphqlWs,
            Phase::AwaitingInit { .. } | Phase::Closed => false,
        };
        if !may_start {
            return self.close(Close::new(CloseCode::Unauthorized, "Unauthorized"));
        }
        if self.operations.contains_key(&id) {
            // A fixed reason: the id is the client's and may be long.
            return self.close(Close::new(
                CloseCode::DuplicateId,
                "Subscriber for this id already exists",
            ));
        }
        if self.open_operations() >= self.settings.max_subscriptions {
            self.operations.insert(id.clone(), Operation::Refusing);
            return vec![Action::Refuse {
                id,
                reason: Refusal::TooManySubscriptions {
                    limit: self.settings.max_subscriptions,
                },
            }];
        }
        self.operations
            .insert(id.clone(), Operation::Inspecting { payload });
        vec![Action::Inspect { id, request }]
    }

    fn on_complete(&mut self, id: &str) -> Vec<Action> {
        match self.operations.remove(id) {
            Some(Operation::Active { upstream_id }) => {
                self.upstream_ids.remove(&upstream_id);
                ClientMessage::Complete {
                    id: upstream_id.to_string(),
                }
                .encode(self.upstream)
                .map(Action::Upstream)
                .into_iter()
                .collect()
            }
            Some(Operation::Queued { .. }) => {
                self.queued.retain(|queued| queued != id);
                Vec::new()
            }
            // Cancelled before it went anywhere; its verdict will find nothing. Completing an
            // unknown id is allowed (the operation may have just ended).
            Some(Operation::Inspecting { .. } | Operation::Refusing) | None => Vec::new(),
        }
    }

    // === Upstream messages ===

    fn acknowledged(&mut self, payload: Option<Box<RawValue>>, now: Instant) -> Vec<Action> {
        self.phase = Phase::Ready;
        let mut actions: Vec<Action> = ServerMessage::ConnectionAck { payload }
            .encode(self.client)
            .map(Action::Client)
            .into_iter()
            .collect();
        if let Some(interval) = self.settings.keepalive {
            self.keepalive_due = Some(now + interval);
            // subscriptions-transport-ws servers send the first `ka` with the ack; its clients
            // time the connection out only once they have seen one.
            if self.client == Subprotocol::GraphqlWs {
                actions.extend(self.keepalive_message());
            }
        }
        for id in std::mem::take(&mut self.queued) {
            if let Some(Operation::Queued { payload }) = self.operations.remove(&id) {
                actions.push(self.forward(id, &payload));
            }
        }
        actions
    }

    /// The client id of an upstream id, if the client still has that operation; `ended` frees it.
    fn client_id(&mut self, upstream_id: &str, ended: bool) -> Option<String> {
        let number: u64 = upstream_id.parse().ok()?;
        if ended {
            let id = self.upstream_ids.remove(&number)?;
            self.operations.remove(&id);
            Some(id)
        } else {
            self.upstream_ids.get(&number).cloned()
        }
    }

    fn upstream_violation(&mut self) -> Vec<Action> {
        self.close(Close::new(
            CloseCode::BadGateway,
            "The upstream broke the protocol",
        ))
    }

    // === Helpers ===

    /// Sends an allowed operation upstream under a fresh id.
    fn forward(&mut self, id: String, payload: &str) -> Action {
        let upstream_id = self.next_upstream_id;
        self.next_upstream_id = self.next_upstream_id.wrapping_add(1);
        let kind = match self.upstream {
            Subprotocol::GraphqlTransportWs => "subscribe",
            Subprotocol::GraphqlWs => "start",
        };
        let message = frame(kind, Some(&upstream_id.to_string()), Some(payload));
        self.upstream_ids.insert(upstream_id, id.clone());
        self.operations
            .insert(id, Operation::Active { upstream_id });
        Action::Upstream(message)
    }

    fn keepalive_message(&mut self) -> Vec<Action> {
        let message = match self.client {
            Subprotocol::GraphqlTransportWs => {
                self.awaiting_pong = true;
                ServerMessage::Ping { payload: None }
            }
            Subprotocol::GraphqlWs => ServerMessage::KeepAlive,
        };
        message
            .encode(self.client)
            .map(Action::Client)
            .into_iter()
            .collect()
    }

    fn client_active(&mut self, now: Instant) {
        self.idle_since = now;
        self.awaiting_pong = false;
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let idle = self.settings.idle_timeout?;
        self.operations.is_empty().then(|| self.idle_since + idle)
    }

    fn invalid(&mut self, invalid: &InvalidMessage) -> Vec<Action> {
        self.close(invalid.close())
    }

    fn close(&mut self, close: Close) -> Vec<Action> {
        self.phase = Phase::Closed;
        self.operations.clear();
        self.upstream_ids.clear();
        self.queued.clear();
        vec![Action::Close(close)]
    }
}

#[cfg(test)]
mod tests;
