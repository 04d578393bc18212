//! GraphQL over WebSocket on the GraphQL path: the relay ([`relay`]) between a client and the
//! upstream, the protocol session that touches no socket ([`protocol`]), the per-message
//! hardening of results ([`payload`]) and the per-client cap ([`caps`]).
//!
//! The relay owns the two sockets, drives a [`protocol::Session`] with what it reads and carries
//! out the [`protocol::Action`]s it gets back; every operation goes through the same inspection,
//! budgets, audit and metrics as a POST ([`crate::inspect::Transport::WebSocket`]).

pub mod caps;
pub mod payload;
pub mod protocol;
pub mod relay;

use std::time::Duration;

/// The WebSocket settings, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The limits of one connection's session.
    pub session: protocol::Settings,
    /// Browser origins that may open a WebSocket.
    pub origins: relay::Origins,
    /// A message the client does not take within this ends the connection (`WS_WRITE_TIMEOUT`).
    pub write_timeout: Duration,
}
