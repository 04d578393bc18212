//! Trusted clients: requests carrying a configured secret may bypass the persisted-query allowlist
//! and the introspection block (internal tooling, schema registries).
//!
//! # Threats
//! The secret is a bearer credential for the schema: only its SHA-256 is configured (a leaked
//! configuration does not leak the key), and the presented key's hash is compared with every
//! configured hash in constant time, so response timing tells an attacker nothing about how many
//! leading bytes of a guess were right.

use axum::http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header and the accepted key hashes.
#[derive(Debug, Clone)]
pub struct TrustedClients {
    header: HeaderName,
    key_hashes: Vec<[u8; 32]>,
}

impl TrustedClients {
    pub fn new(header: HeaderName, key_hashes: Vec<[u8; 32]>) -> TrustedClients {
        TrustedClients { header, key_hashes }
    }

    /// True when the request presents an accepted key.
    pub fn is_trusted(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers.get(&self.header) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every configured hash is compared, whatever the outcome of the previous ones.
        self.key_hashes
            .iter()
            .fold(subtle::Choice::from(0), |found, accepted| {
                found | accepted.ct_eq(&digest)
            })
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn clients() -> TrustedClients {
        let hash: [u8; 32] = Sha256::digest(b"s3cret-key").into();
        TrustedClients::new(
            HeaderName::from_static("x-firewall-key"),
            vec![[7; 32], hash],
        )
    }

    fn with_key(key: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-firewall-key", HeaderValue::from_static(key));
        headers
    }

    #[test]
    fn the_right_key_is_trusted() {
        assert!(clients().is_trusted(&with_key("s3cret-key")));
    }

    #[test]
    fn a_wrong_or_missing_key_is_not() {
        assert!(!clients().is_trusted(&with_key("s3cret-kez")));
        assert!(!clients().is_trusted(&with_key("")));
        assert!(!clients().is_trusted(&HeaderMap::new()));
    }
}
