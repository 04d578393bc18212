//! The Automatic Persisted Queries store: documents clients registered by hash, in a cache
//! bounded by total size and by age.
//!
//! # Threats
//! - Cache poisoning: a registration pairs a hash with a text. If the pair were stored unchecked,
//!   anyone could make a well-known hash (one that other clients send hash-only) execute their own
//!   text for everyone. [`ApqStore::register`] stores a text only under its own SHA-256.
//! - Memory exhaustion: registration is open to every client, so the cache is bounded by the
//!   total bytes of its documents, not by a count of entries, and entries expire.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use super::{DocumentHash, hash_document};

/// Bytes charged per entry on top of the document: the 32-byte key. It keeps a flood of tiny
/// documents from being almost free against the byte budget.
const KEY_WEIGHT: u32 = 32;

/// Registered APQ documents, keyed by their SHA-256.
#[derive(Clone)]
pub struct ApqStore {
    cache: Cache<DocumentHash, Arc<str>>,
}

/// A registration whose text does not hash to the id it came with. Nothing was stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("provided sha does not match query")]
pub struct HashMismatch(());

impl ApqStore {
    /// A store holding at most `max_bytes` of documents (each weighs its length plus its 32-byte
    /// key; moka's own bookkeeping is not counted), each kept for at most `ttl` after
    /// registration.
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_hash: &DocumentHash, text: &Arc<str>| {
                u32::try_from(text.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(KEY_WEIGHT)
            })
            .time_to_live(ttl)
            .build();
        Self { cache }
    }

    /// The registered text for `hash`, if it is still cached.
    pub fn get(&self, hash: &DocumentHash) -> Option<Arc<str>> {
        self.cache.get(hash)
    }

    /// Stores `text` under `hash` after checking that `hash` is SHA-256 of `text`. A text already
    /// cached is returned as it is (and keeps its original expiry).
    pub fn register(&self, hash: DocumentHash, text: &str) -> Result<Arc<str>, HashMismatch> {
        if hash_document(text) != hash {
            return Err(HashMismatch(()));
        }
        Ok(self.cache.get_with(hash, || Arc::from(text)))
    }

    /// The number of cached documents, after applying pending evictions and expiries.
    pub fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// Whether no document is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for ApqStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApqStore")
            .field("documents", &self.cache.entry_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_registered_document_is_served_by_its_hash() {
        let store = ApqStore::new(1 << 20, MINUTE);
        let text = "query Me { me { id } }";
        let hash = hash_document(text);
        assert_eq!(store.get(&hash), None);
        assert_eq!(store.register(hash, text).unwrap().as_ref(), text);
        assert_eq!(store.get(&hash).as_deref(), Some(text));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn registering_the_same_document_twice_keeps_one_entry() {
        let store = ApqStore::new(1 << 20, MINUTE);
        let text = "query Me { me { id } }";
        let first = store.register(hash_document(text), text).unwrap();
        let second = store.register(hash_document(text), text).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_text_under_someone_elses_hash_is_refused_and_not_cached() {
        let store = ApqStore::new(1 << 20, MINUTE);
        let popular = hash_document("query Feed { feed { id } }");
        let attack = "query Feed { users(first: 100000) { email } }";
        assert_eq!(store.register(popular, attack), Err(HashMismatch(())));
        assert_eq!(store.get(&popular), None);
        assert!(store.is_empty());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_byte_budget() {
        let max_bytes = 10_000;
        let store = ApqStore::new(max_bytes, MINUTE);
        for i in 0..1_000 {
            let text =
                format!("query Q{i:04} {{ user(id: {i}) {{ name email posts {{ title }} }} }}");
            store.register(hash_document(&text), &text).unwrap();
        }
        let count = store.len();
        assert!(count > 0, "the cache keeps recent documents");
        assert!(count < 1_000, "the cache evicted nothing: {count}");
        assert!(
            store.cache.weighted_size() <= max_bytes,
            "weighted size {} over budget {max_bytes}",
            store.cache.weighted_size()
        );
    }

    #[test]
    fn a_document_larger_than_the_budget_is_not_kept() {
        let store = ApqStore::new(100, MINUTE);
        let text = format!("query Big {{ {} }}", "a ".repeat(200));
        store.register(hash_document(&text), &text).unwrap();
        assert!(store.is_empty());
        assert_eq!(store.get(&hash_document(&text)), None);
    }

    #[test]
    fn registrations_expire_after_the_ttl() {
        let store = ApqStore::new(1 << 20, Duration::from_millis(50));
        let text = "query Me { me { id } }";
        let hash = hash_document(text);
        store.register(hash, text).unwrap();
        assert!(store.get(&hash).is_some());
        // moka's mock clock is private to moka, so this waits for real.
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(store.get(&hash), None);
        assert!(store.is_empty());
    }
}
