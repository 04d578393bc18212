//! Redis key names: one place that decides them, so that every replica computes the same ones.

use std::hash::{Hash, Hasher};

use crate::persisted::DocumentHash;
use crate::ratelimit::ClientKey;

use super::Budget;

/// The key names under one `REDIS_KEY_PREFIX`.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// `<prefix>budget:{<client>}:<budget>`: the bucket's theoretical arrival time.
    pub(super) fn budget(&self, client: &ClientKey, budget: Budget) -> String {
        format!(
            "{}budget:{{{}}}:{}",
            self.prefix,
            client_hex(client),
            budget.as_str()
        )
    }

    /// `<prefix>cooldown:{<client>}`: alive while the client cools down after probing. Same hash
    /// tag as the client's buckets, so the script may touch both on Redis Cluster.
    pub(super) fn cooldown(&self, client: &ClientKey) -> String {
        format!("{}cooldown:{{{}}}", self.prefix, client_hex(client))
    }

    /// `<prefix>apq:<sha256 hex>`: a registered document.
    pub(super) fn apq(&self, hash: &DocumentHash) -> String {
        format!("{}apq:{}", self.prefix, hex::encode(hash))
    }
}

/// The 16 bytes of a client key as 32 hex digits.
///
/// `ClientKey` keeps its bytes private and the in-process limiter never needed them; its derived
/// `Hash` feeds exactly those bytes to the hasher (after a length prefix), so a hasher that
/// records what it is fed recovers them without changing `ratelimit`. A unit test pins the
/// result to the key's definition (SHA-256 of the domain and identity), so a change in how the
/// standard library hashes arrays cannot silently change every replica's key names.
// TODO(#16): replace with a `ClientKey::as_bytes` accessor when admission is wired.
pub(super) fn client_hex(client: &ClientKey) -> String {
    let mut recorder = Recorder::default();
    client.hash(&mut recorder);
    let bytes = recorder.bytes.as_slice();
    let key = bytes.get(bytes.len().saturating_sub(16)..).unwrap_or(bytes);
    hex::encode(key)
}

/// A `Hasher` that keeps every byte written to it.
#[derive(Default)]
struct Recorder {
    bytes: Vec<u8>,
}

impl Hasher for Recorder {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn a_client_key_is_named_by_its_sixteen_digest_bytes() {
        let expected = Sha256::new()
            .chain_update(b"api-key")
            .chain_update([0])
            .chain_update(b"alice")
            .finalize();
        assert_eq!(
            client_hex(&ClientKey::from_api_key("alice")),
            hex::encode(&expected[..16])
        );
        let ip = ClientKey::from_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(client_hex(&ip).len(), 32);
        assert_ne!(
            client_hex(&ip),
            client_hex(&ClientKey::from_api_key("alice"))
        );
    }

    #[test]
    fn all_keys_of_a_client_share_one_cluster_hash_tag() {
        let keys = Keys::new("gqlfw:");
        let alice = ClientKey::from_api_key("alice");
        let tag = format!("{{{}}}", client_hex(&alice));
        for key in [
            keys.budget(&alice, Budget::Requests),
            keys.budget(&alice, Budget::Cost),
            keys.budget(&alice, Budget::Probes),
            keys.cooldown(&alice),
        ] {
            assert!(key.starts_with("gqlfw:"), "{key}");
            assert_eq!(key.matches('{').count(), 1, "{key}");
            assert!(key.contains(&tag), "{key}");
        }
        assert_eq!(
            keys.budget(&alice, Budget::Cost),
            format!("gqlfw:budget:{tag}:cost")
        );
        assert_eq!(
            keys.apq(&[0xab; 32]),
            format!("gqlfw:apq:{}", "ab".repeat(32))
        );
    }
}
