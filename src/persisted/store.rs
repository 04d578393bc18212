//! The allowlist in force: every manifest document with its analysis, computed once at load time,
//! swapped atomically when the manifests are reloaded.
//!
//! # Why
//! Persisted documents are the hot path of a locked-down API: resolving one must be a hash lookup,
//! never a parse. And a reload must never show a request a half-loaded set: the new set is built
//! and checked completely, then published with one atomic pointer swap; a broken new set is
//! refused and the previous one stays in force.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::analysis::{AnalysisError, Document};

use super::{DocumentHash, Entry, ManifestError};

/// A reviewed document: a manifest entry with its analysis.
#[derive(Debug)]
pub struct Reviewed {
    pub hash: DocumentHash,
    pub body: Arc<str>,
    pub name: Option<String>,
    /// Where it was defined (`file#entry`), for messages.
    pub source: String,
    pub document: Document,
}

/// Why a set of manifests cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A manifest body that our parser refuses.
    #[error("{entry}: the document does not parse: {error}")]
    Analysis { entry: String, error: AnalysisError },
    /// Bodies that break the configured limits.
    #[error("manifest operations break the configured limits:\n{0}")]
    Limits(String),
}

/// One loaded set of manifest documents, by hash.
#[derive(Debug, Default)]
pub struct Manifest {
    by_hash: HashMap<DocumentHash, Arc<Reviewed>>,
}

impl Manifest {
    /// Analyses every entry with `analyse` (no request-time limits: those are checked separately).
    pub fn from_entries(
        entries: Vec<Entry>,
        analyse: impl Fn(&str) -> Result<Document, AnalysisError>,
    ) -> Result<Manifest, StoreError> {
        let mut by_hash = HashMap::with_capacity(entries.len());
        for entry in entries {
            let document = analyse(&entry.body).map_err(|error| StoreError::Analysis {
                entry: entry.source.clone(),
                error,
            })?;
            by_hash.insert(
                entry.hash,
                Arc::new(Reviewed {
                    hash: entry.hash,
                    body: Arc::from(entry.body),
                    name: entry.name,
                    source: entry.source,
                    document,
                }),
            );
        }
        Ok(Manifest { by_hash })
    }

    pub fn get(&self, hash: &DocumentHash) -> Option<&Arc<Reviewed>> {
        self.by_hash.get(hash)
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Documents sorted by name then hash (stable output for `manifest check` and logs).
    pub fn sorted(&self) -> Vec<&Arc<Reviewed>> {
        let mut all: Vec<&Arc<Reviewed>> = self.by_hash.values().collect();
        all.sort_by(|a, b| (&a.name, a.hash).cmp(&(&b.name, b.hash)));
        all
    }

    /// How many documents `next` adds and removes relative to `self`.
    pub fn diff(&self, next: &Manifest) -> (usize, usize) {
        let added = next
            .by_hash
            .keys()
            .filter(|h| !self.by_hash.contains_key(*h))
            .count();
        let removed = self
            .by_hash
            .keys()
            .filter(|h| !next.by_hash.contains_key(*h))
            .count();
        (added, removed)
    }
}

/// The manifest in force, replaceable while requests read it.
#[derive(Debug)]
pub struct Registry {
    current: ArcSwap<Manifest>,
}

impl Registry {
    pub fn new(manifest: Manifest) -> Registry {
        Registry {
            current: ArcSwap::from_pointee(manifest),
        }
    }

    /// The set in force now (a request keeps the one it started with).
    pub fn current(&self) -> Arc<Manifest> {
        self.current.load_full()
    }

    /// Publishes `next`; returns (added, removed).
    pub fn replace(&self, next: Manifest) -> (usize, usize) {
        let diff = self.current.load().diff(&next);
        self.current.store(Arc::new(next));
        diff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis;
    use crate::persisted::hash_document;

    fn entry(body: &str) -> Entry {
        Entry {
            hash: hash_document(body),
            body: body.to_owned(),
            name: None,
            source: format!("test#{body}"),
        }
    }

    fn analyse(text: &str) -> Result<Document, AnalysisError> {
        analysis::analyse(text, &analysis::Settings::default())
    }

    #[test]
    fn documents_are_found_by_hash_with_their_analysis() {
        let manifest = Manifest::from_entries(vec![entry("{ a { b } }")], analyse).unwrap();
        let reviewed = manifest.get(&hash_document("{ a { b } }")).unwrap();
        assert_eq!(
            reviewed.document.operation(None).unwrap().metrics().depth,
            2
        );
        assert!(manifest.get(&hash_document("{ a }")).is_none());
    }

    #[test]
    fn a_body_that_does_not_parse_names_its_entry() {
        let error = Manifest::from_entries(vec![entry("{ a ")], analyse).unwrap_err();
        assert!(error.to_string().contains("test#{ a "), "{error}");
    }

    #[test]
    fn replacing_reports_added_and_removed_and_old_readers_keep_their_set() {
        let registry = Registry::new(
            Manifest::from_entries(vec![entry("{ a }"), entry("{ b }")], analyse).unwrap(),
        );
        let before = registry.current();
        let next = Manifest::from_entries(
            vec![entry("{ b }"), entry("{ c }"), entry("{ d }")],
            analyse,
        )
        .unwrap();
        assert_eq!(registry.replace(next), (2, 1));
        assert_eq!(before.len(), 2, "a reader keeps the set it started with");
        assert_eq!(registry.current().len(), 3);
    }
}
