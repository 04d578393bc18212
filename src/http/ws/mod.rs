//! GraphQL over WebSocket: the parts of the firewall's WebSocket relay that touch no socket.
//!
//! [`protocol`] holds both subprotocols' messages and the firewall-side session that enforces the
//! protocol on the client and decides what is forwarded, answered, inspected or closed. The relay
//! that owns the two sockets (client and upstream) drives a [`protocol::Session`] with what it
//! reads and carries out the [`protocol::Action`]s it gets back.

pub mod protocol;
