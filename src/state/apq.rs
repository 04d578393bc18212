//! APQ registrations on Redis: a document registered through one replica is found by all.
//!
//! # Threats
//! As in process (`persisted::apq`), a text is stored only under its own SHA-256, so nobody can
//! make a well-known hash run their text. The text read back is hashed again: Redis is shared, and
//! whatever else can write to it must not be able to plant a document either.
//! Redis's memory is bounded by the TTL of every registration (and by the request budget, since
//! each registration is a request); size `maxmemory` for it, with an eviction policy that evicts
//! keys with a TTL (`volatile-lru`), as every key written here has one.

use std::sync::Arc;

use crate::persisted::{DocumentHash, hash_document};

use super::StateError;
use super::connection::RedisState;

/// Why a registration was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ApqError {
    /// The text does not hash to the id it came with (the in-process store's `HashMismatch`).
    #[error("provided sha does not match query")]
    HashMismatch,
    /// Redis could not be reached in time.
    #[error(transparent)]
    State(#[from] StateError),
}

impl RedisState {
    /// The text registered under `hash`, if any replica registered it within the APQ TTL. A
    /// stored text that does not hash to `hash` is not served.
    pub async fn apq_get(&self, hash: &DocumentHash) -> Result<Option<Arc<str>>, StateError> {
        let stored: Option<String> = self
            .query(redis::cmd("GET").arg(self.keys.apq(hash)))
            .await?;
        Ok(stored.and_then(|text| {
            if hash_document(&text) == *hash {
                Some(Arc::from(text))
            } else {
                tracing::warn!(
                    target: "graphql_firewall::state",
                    hash = %hex::encode(hash),
                    "an APQ document on Redis does not match its hash: not served"
                );
                None
            }
        }))
    }

    /// Stores `text` under `hash` after checking that `hash` is SHA-256 of `text`, for the APQ
    /// TTL. A registration already stored keeps its original expiry, as in process (`SET NX`).
    pub async fn apq_register(&self, hash: DocumentHash, text: &str) -> Result<Arc<str>, ApqError> {
        if hash_document(text) != hash {
            return Err(ApqError::HashMismatch);
        }
        let ttl_ms = self.apq_ttl.as_millis().max(1);
        let _stored: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(self.keys.apq(&hash))
                    .arg(text)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms.to_string()),
            )
            .await?;
        Ok(Arc::from(text))
    }
}
