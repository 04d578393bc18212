//! Persisted queries: the SHA-256 identity of documents, the manifests that allowlist them, the
//! `manifest build` tooling that produces those manifests, and the APQ cache.
//!
//! # Threats
//! An allowlist is only as good as the link between an id and its text. If an id could stand for
//! a text other than the one it was computed from, an attacker who can register or ship a
//! document (an APQ registration, a tampered manifest) could make an allowlisted id execute
//! arbitrary text. So every id is checked against SHA-256 of its exact text before anything keeps
//! it: at manifest load time ([`manifest`]) and before an APQ registration is cached ([`apq`]).
//!
//! Identity is SHA-256 of the exact document bytes, as in Apollo's APQ protocol and the
//! GraphQL-over-HTTP trusted documents appendix. Nothing is normalised before hashing, so the text
//! forwarded upstream is byte for byte the text that was reviewed.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use sha2::{Digest, Sha256};

pub mod apq;
pub mod build;
pub mod keys;
pub mod load;
pub mod manifest;
pub mod resolve;
pub mod store;

pub use apq::{ApqStore, HashMismatch};
pub use build::BuildError;
pub use keys::ClientKeys;
pub use manifest::{Entry, ManifestError};
pub use resolve::{Claim, Origin, ResolveError, Resolved, Resolver, claimed_hash};
pub use store::{Manifest, Registry, Reviewed, StoreError};

/// `GRAPHQL_FIREWALL_PERSISTED_QUERIES`: what happens to documents that are not in a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything allowed; hashes are still resolved from a loaded manifest.
    Off,
    /// Automatic Persisted Queries: unknown hashes are answered `PersistedQueryNotFound`, and a
    /// client's hash + text registration is verified and cached.
    Apq,
    /// Everything allowed; documents outside the manifest are logged and counted (the rollout step).
    Audit,
    /// Only manifest documents are forwarded.
    Allowlist,
}

/// SHA-256 of the exact document text.
pub type DocumentHash = [u8; 32];

/// The prefix of a GraphQL-over-HTTP "SHA256 hex document identifier" (`sha256:<hex>`).
const SHA256_PREFIX: &str = "sha256:";

/// Parses a document id as sent by clients: 64 hex digits (either case, as APQ clients send
/// `sha256Hash`), optionally prefixed with `sha256:` (a `documentId` in the trusted documents
/// form). Anything else, including Relay's MD5 ids and other prefixes, is `None`.
///
/// # Examples
/// ```
/// use graphql_firewall::persisted::{hash_document, parse_hash};
///
/// let id = "sha256:71f7dc5758652baac68e4a10c50be732b741c892ade2883a99358f52b555286b";
/// assert_eq!(parse_hash(id), Some(hash_document("query($id:ID!){user(id:$id){name}}")));
/// assert_eq!(parse_hash("3be4abb81fa595e25eb725b2c6a87508"), None); // Relay's MD5
/// ```
pub fn parse_hash(id: &str) -> Option<DocumentHash> {
    let hex_digits = id.strip_prefix(SHA256_PREFIX).unwrap_or(id);
    let mut hash = [0u8; 32];
    // `decode_to_slice` checks both the length (64 digits) and the alphabet.
    hex::decode_to_slice(hex_digits, &mut hash).ok()?;
    Some(hash)
}

/// SHA-256 of the exact document text.
pub fn hash_document(text: &str) -> DocumentHash {
    Sha256::digest(text.as_bytes()).into()
}

/// A short, printable form of an id for error messages: at most 16 characters of it (after any
/// `sha256:` prefix), with control characters escaped, so that a hostile or garbled id cannot
/// flood a log line.
fn id_excerpt(id: &str) -> String {
    const SHOWN: usize = 16;
    let digits = id.strip_prefix(SHA256_PREFIX).unwrap_or(id);
    let mut excerpt: String = digits
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if digits.chars().nth(SHOWN).is_some() {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    // The two examples from the GraphQL-over-HTTP persisted documents appendix.
    const SPACED: &str = "query ($id: ID!) {\n  user(id: $id) {\n    name\n  }\n}";
    const SPACED_ID: &str =
        "sha256:7dba4bd717b41f10434822356a93c32b1fb4907b983e854300ad839f84cdcd6e";
    const COMPACT: &str = "query($id:ID!){user(id:$id){name}}";
    const COMPACT_ID: &str =
        "sha256:71f7dc5758652baac68e4a10c50be732b741c892ade2883a99358f52b555286b";

    #[test]
    fn hashes_documents_as_the_trusted_documents_appendix_does() {
        assert_eq!(parse_hash(SPACED_ID), Some(hash_document(SPACED)));
        assert_eq!(parse_hash(COMPACT_ID), Some(hash_document(COMPACT)));
        // The exact bytes: one more blank is another document.
        assert_ne!(hash_document("{ a }"), hash_document("{ a } "));
    }

    #[test]
    fn parses_bare_prefixed_and_upper_case_hex_ids_alike() {
        let bare = SPACED_ID.trim_start_matches("sha256:");
        let expected = Some(hash_document(SPACED));
        assert_eq!(parse_hash(bare), expected);
        assert_eq!(parse_hash(&bare.to_uppercase()), expected);
        assert_eq!(
            parse_hash(&format!("sha256:{}", bare.to_uppercase())),
            expected
        );
    }

    #[test]
    fn rejects_ids_that_are_not_sha256_hex() {
        let bare = SPACED_ID.trim_start_matches("sha256:");
        for id in [
            "",
            "sha256:",
            &bare[..63],
            &format!("{bare}0"),
            &format!("SHA256:{bare}"),
            &format!("sha1:{bare}"),
            &format!(" {bare}"),
            &format!("{}g", &bare[..63]),
            "3be4abb81fa595e25eb725b2c6a87508",
            "sha256:sha256:7dba4bd717b41f10434822356a93c32b1fb4907b983e854300ad839f84cdcd6e",
        ] {
            assert_eq!(parse_hash(id), None, "id={id:?}");
        }
    }

    #[test]
    fn shortens_ids_in_messages_to_sixteen_characters() {
        assert_eq!(id_excerpt(SPACED_ID), "7dba4bd717b41f10…");
        assert_eq!(id_excerpt("abc"), "abc");
        assert_eq!(id_excerpt("a\nb"), "a\\nb");
    }
}
