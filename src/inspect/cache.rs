//! The analysis cache: documents analysed once, by the SHA-256 of their text.
//!
//! # Threats
//! A flood of requests repeating one hostile document must cost a hash and a lookup, not a parse,
//! so refusals are cached too (a negative cache). The cache is bounded by the analyses' own memory
//! estimate, so a flood of *unique* documents evicts instead of growing.

use std::sync::Arc;

use moka::sync::Cache;

use crate::analysis::{self, AnalysisError, Document};
use crate::persisted::DocumentHash;

/// An analysis, successful or not, shared by every request for the same text.
pub type Analysed = Arc<Result<Document, AnalysisError>>;

/// Whether an analysis was found or computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Miss,
}

impl Lookup {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
        }
    }
}

/// Analyses keyed by document hash, bounded by estimated bytes.
pub struct AnalysisCache {
    cache: Cache<DocumentHash, Analysed>,
}

impl std::fmt::Debug for AnalysisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalysisCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

/// Weight of a refusal: small, fixed (the error holds at most a 64-byte name).
const REFUSAL_BYTES: usize = 128;
/// Weight of the key and the entry's bookkeeping.
const ENTRY_BYTES: usize = 64;

impl AnalysisCache {
    pub fn new(max_bytes: u64) -> AnalysisCache {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_hash: &DocumentHash, value: &Analysed| {
                let bytes = match value.as_ref() {
                    Ok(document) => document.heap_bytes(),
                    Err(_) => REFUSAL_BYTES,
                };
                u32::try_from(bytes.saturating_add(ENTRY_BYTES)).unwrap_or(u32::MAX)
            })
            .build();
        AnalysisCache { cache }
    }

    /// The analysis of `text` (whose SHA-256 is `hash`), computed on a miss.
    pub fn get_or_analyse(
        &self,
        hash: DocumentHash,
        text: &str,
        settings: &analysis::Settings,
    ) -> (Analysed, Lookup) {
        let entry = self
            .cache
            .entry(hash)
            .or_insert_with(|| Arc::new(analysis::analyse(text, settings)));
        let lookup = if entry.is_fresh() {
            Lookup::Miss
        } else {
            Lookup::Hit
        };
        (entry.into_value(), lookup)
    }

    /// (entries, estimated bytes), exact: moka's pending bookkeeping is settled first.
    pub fn size(&self) -> (u64, u64) {
        self.cache.run_pending_tasks();
        (self.cache.entry_count(), self.cache.weighted_size())
    }
}
