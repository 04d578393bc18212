//! What the server hands to whatever takes a connection over after an HTTP upgrade: the
//! connection's place in the connection limits and the shutdown drain, and the server's stop
//! signal.
//!
//! # Threats
//! After an upgrade hyper hands the socket over and the HTTP connection ends. If the place it held
//! in `MAX_CONNECTIONS` and `MAX_CONNECTIONS_PER_IP` were released then, one address could open any
//! number of WebSockets. The server puts a [`ConnectionSlot`] in every request's extensions; the
//! WebSocket relay takes the place and holds it until the WebSocket ends. Left in the slot, it is
//! released when the HTTP connection ends. Holding it also keeps a stopping server's drain waiting
//! (up to its grace period), so a WebSocket told to stop can send its close frame.

use std::any::Any;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// Something whose drop gives a connection's place back.
pub type Place = Box<dyn Any + Send + Sync>;

/// Holds a connection's [`Place`] until someone takes it.
#[derive(Clone)]
pub struct ConnectionSlot {
    place: Arc<Mutex<Option<Place>>>,
    stopping: watch::Receiver<bool>,
}

impl std::fmt::Debug for ConnectionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionSlot")
    }
}

impl ConnectionSlot {
    /// `stopping` turns `true` when the server stops.
    pub fn new(place: Place, stopping: watch::Receiver<bool>) -> ConnectionSlot {
        ConnectionSlot {
            place: Arc::new(Mutex::new(Some(place))),
            stopping,
        }
    }

    /// The place, for the one who keeps the connection open after its HTTP connection ended.
    pub fn take(&self) -> Option<Place> {
        self.place
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Turns `true` when the server stops: an upgraded connection should then close.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.clone()
    }
}
