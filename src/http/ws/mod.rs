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
