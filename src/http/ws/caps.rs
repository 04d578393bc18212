//! The per-client cap on operations open across all of a client's WebSocket connections
//! (`WS_MAX_SUBSCRIPTIONS_PER_CLIENT`).
//!
//! # Threats
//! A per-connection cap alone lets a client open many connections with many subscriptions each:
//! every subscription holds upstream resources for as long as the client likes. Counting per
//! client (its API key, or its address) bounds what one client can hold, however it spreads it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::ratelimit::ClientKey;

/// A client already has as many operations open as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this client already has {limit} operations open over WebSocket")]
pub struct ClientCapExceeded {
    pub limit: usize,
}

/// Open operations per client, across connections.
#[derive(Debug)]
pub struct ClientOperations {
    limit: Option<usize>,
    open: Mutex<HashMap<ClientKey, usize>>,
}

impl ClientOperations {
    pub fn new(limit: Option<usize>) -> Arc<ClientOperations> {
        Arc::new(ClientOperations {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The share of one connection, released when it is dropped.
    pub fn claim(self: &Arc<Self>, key: ClientKey) -> Claim {
        Claim {
            operations: Arc::clone(self),
            key,
            held: 0,
        }
    }

    /// Operations the client has open now.
    fn open(&self, key: &ClientKey) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(key).copied().unwrap_or(0)
    }

    fn adjust(&self, key: ClientKey, from: usize, to: usize) {
        if from == to {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        *count = count.saturating_sub(from).saturating_add(to);
        if *count == 0 {
            open.remove(&key);
        }
    }
}

/// One connection's operations in the client's count.
#[derive(Debug)]
pub struct Claim {
    operations: Arc<ClientOperations>,
    key: ClientKey,
    held: usize,
}

impl Claim {
    /// The connection now has `open` operations open (the session's count).
    pub fn set(&mut self, open: usize) {
        self.operations.adjust(self.key, self.held, open);
        self.held = open;
    }

    /// After [`Claim::set`] counted a new operation: refused when it takes the client over the cap.
    pub fn check(&self) -> Result<(), ClientCapExceeded> {
        match self.operations.limit {
            Some(limit) if self.operations.open(&self.key) > limit => {
                Err(ClientCapExceeded { limit })
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_every_connection_of_a_client_and_frees_on_drop() {
        let operations = ClientOperations::new(Some(3));
        let key = ClientKey::from_api_key("k");
        let other = ClientKey::from_api_key("other");
        let mut first = operations.claim(key);
        let mut second = operations.claim(key);
        first.set(2);
        second.set(1);
        assert_eq!(second.check(), Ok(()));
        second.set(2);
        assert_eq!(second.check(), Err(ClientCapExceeded { limit: 3 }));
        let mut stranger = operations.claim(other);
        stranger.set(3);
        assert_eq!(stranger.check(), Ok(()));
        drop(first);
        assert_eq!(second.check(), Ok(()));
        drop(second);
        drop(stranger);
        assert!(operations.open.lock().unwrap().is_empty());
    }
}
