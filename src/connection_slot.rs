//! A connection's place in the server's connection limits, handed from the server to whatever
//! takes the connection over after an HTTP upgrade.
//!
//! # Threats
//! After an upgrade hyper hands the socket over and the HTTP connection ends. If the place it held
//! in `MAX_CONNECTIONS` and `MAX_CONNECTIONS_PER_IP` were released then, one address could open any
//! number of WebSockets. The server puts a [`ConnectionSlot`] in every request's extensions; the
//! WebSocket relay takes the place and holds it until the WebSocket ends. Left in the slot, it is
//! released when the HTTP connection ends.

use std::any::Any;
use std::sync::{Arc, Mutex, PoisonError};

/// Something whose drop gives a connection's place back.
pub type Place = Box<dyn Any + Send + Sync>;

/// Holds a connection's [`Place`] until someone takes it.
#[derive(Clone, Default)]
pub struct ConnectionSlot(Arc<Mutex<Option<Place>>>);

impl std::fmt::Debug for ConnectionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionSlot")
    }
}

impl ConnectionSlot {
    pub fn new(place: Place) -> ConnectionSlot {
        ConnectionSlot(Arc::new(Mutex::new(Some(place))))
    }

    /// The place, for the one who keeps the connection open after its HTTP connection ended.
    pub fn take(&self) -> Option<Place> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}
