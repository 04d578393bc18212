//! Which document a request names, and whether it may run: the text sent inline, a manifest
//! document named by `documentId` or by APQ hash, or an APQ registration; then the allowlist.
//!
//! # Threats
//! - A hash sent together with a text must be that text's hash: otherwise a client could register
//!   (APQ) or run its own text under the id of a reviewed document.
//! - In allowlist mode every form of a request — `query`, `documentId`, `extensions.persistedQuery`,
//!   over POST or GET — goes through this one lookup, so no spelling reaches the upstream unlisted.
//! - An id the firewall does not know is never forwarded: the upstream might resolve it from a
//!   store of its own that the operator did not review.

use std::sync::Arc;

use serde_json::Value;

use super::{ApqStore, DocumentHash, Manifest, Mode, Reviewed, hash_document, parse_hash};

/// What a request says about its document.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claim<'a> {
    /// The `query` member.
    pub text: Option<&'a str>,
    /// The `documentId` member.
    pub document_id: Option<&'a str>,
    /// `extensions.persistedQuery` (APQ).
    pub persisted_query: Option<&'a Value>,
}

/// Where a document's text came from (the value of the `persisted` metric label and log field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Sent inline and not in the manifest.
    Inline,
    /// A manifest document (by id, or by byte-identical text).
    Manifest,
    /// An APQ registration.
    Apq,
}

impl Origin {
    /// Metric and log label.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Inline => "no",
            Origin::Manifest => "manifest",
            Origin::Apq => "apq",
        }
    }
}

/// The document a request runs.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub hash: DocumentHash,
    pub origin: Origin,
    /// The manifest entry, with its analysis done at load time.
    pub reviewed: Option<Arc<Reviewed>>,
    /// The text to forward when the client sent only an id.
    pub text_for_upstream: Option<Arc<str>>,
    /// In audit mode: the document is not in the manifest (forwarded, logged and counted).
    pub unlisted: bool,
}

/// Why a request's document cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "extensions.persistedQuery must be {{\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}}"
    )]
    MalformedExtension,
    #[error("the persisted query hash does not match the query text")]
    HashMismatch,
    /// An id nobody knows (APQ clients then resend the text).
    #[error("PersistedQueryNotFound")]
    NotFound,
    /// Allowlist mode and the document is not in the manifest.
    #[error("only persisted operations are allowed")]
    Required,
}

/// Resolution settings (`PERSISTED_QUERIES`, `PERSISTED_REQUIRE_ID`) and the APQ registrations.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub mode: Mode,
    /// In allowlist mode, manifest documents must be named by id, not sent as text.
    pub require_id: bool,
    pub apq: ApqStore,
}

impl Resolver {
    /// Resolves `claim` against `manifest`; `keyed` callers (holding a client key) are not held
    /// to the allowlist.
    pub fn resolve(
        &self,
        claim: &Claim<'_>,
        manifest: &Manifest,
        keyed: bool,
    ) -> Result<Resolved, ResolveError> {
        let claimed = claimed_hash(claim)?;
        let (hash, by_id, registered) = match (claim.text, claimed) {
            (Some(text), Some(claimed)) => {
                let hash = hash_document(text);
                if hash != claimed {
                    return Err(ResolveError::HashMismatch);
                }
                // Registration: the hash was just verified against the text, so the store cannot
                // be poisoned with another document.
                if self.mode == Mode::Apq && manifest.get(&hash).is_none() {
                    let _ = self.apq.register(hash, text);
                }
                (hash, true, None)
            }
            (Some(text), None) => (hash_document(text), false, None),
            (None, Some(hash)) => {
                let registered = match manifest.get(&hash) {
                    Some(_) => None,
                    None if self.mode == Mode::Apq => {
                        Some(self.apq.get(&hash).ok_or_else(|| self.unknown_id())?)
                    }
                    None => return Err(self.unknown_id()),
                };
                (hash, true, registered)
            }
            // A `documentId` that is not a SHA-256 id (Relay's MD5, say) cannot be in the manifest.
            (None, None) => return Err(self.unknown_id()),
        };
        let reviewed = manifest.get(&hash).cloned();
        let origin = match (&reviewed, &registered) {
            (Some(_), _) => Origin::Manifest,
            (None, Some(_)) => Origin::Apq,
            (None, None) => Origin::Inline,
        };
        let unlisted = origin != Origin::Manifest;
        if self.mode == Mode::Allowlist && !keyed && (unlisted || (self.require_id && !by_id)) {
            return Err(ResolveError::Required);
        }
        let text_for_upstream = match (&reviewed, claim.text) {
            (_, Some(_)) => None,
            (Some(reviewed), None) => Some(reviewed.body.clone()),
            (None, None) => registered,
        };
        Ok(Resolved {
            hash,
            origin,
            reviewed,
            text_for_upstream,
            unlisted: unlisted && self.mode == Mode::Audit,
        })
    }

    fn unknown_id(&self) -> ResolveError {
        match self.mode {
            Mode::Allowlist => ResolveError::Required,
            // The APQ protocol's answer, word for word: clients resend with the text.
            _ => ResolveError::NotFound,
        }
    }
}

/// The id a request names: `documentId`, else `extensions.persistedQuery.sha256Hash` (version 1).
pub fn claimed_hash(claim: &Claim<'_>) -> Result<Option<DocumentHash>, ResolveError> {
    if let Some(id) = claim.document_id {
        return Ok(parse_hash(id));
    }
    let Some(extension) = claim.persisted_query else {
        return Ok(None);
    };
    if extension.get("version").and_then(Value::as_u64) != Some(1) {
        return Err(ResolveError::MalformedExtension);
    }
    extension
        .get("sha256Hash")
        .and_then(Value::as_str)
        .and_then(parse_hash)
        .map(Some)
        .ok_or(ResolveError::MalformedExtension)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::analysis;
    use crate::persisted::Entry;

    const LISTED: &str = "query Listed { a }";
    const OTHER: &str = "query Other { b }";

    fn manifest() -> Manifest {
        let entry = Entry {
            hash: hash_document(LISTED),
            body: LISTED.to_owned(),
            name: Some("Listed".to_owned()),
            source: "test".to_owned(),
        };
        Manifest::from_entries(vec![entry], |text| {
            analysis::analyse(text, &analysis::Settings::default())
        })
        .unwrap()
    }

    fn resolver(mode: Mode) -> Resolver {
        Resolver {
            mode,
            require_id: false,
            apq: ApqStore::new(1 << 20, Duration::from_secs(60)),
        }
    }

    fn hex(text: &str) -> String {
        ::hex::encode(hash_document(text))
    }

    fn apq(text: &str) -> Value {
        json!({"version": 1, "sha256Hash": hex(text)})
    }

    fn by_text(text: &str) -> Claim<'_> {
        Claim {
            text: Some(text),
            ..Claim::default()
        }
    }

    #[test]
    fn a_manifest_id_resolves_to_its_reviewed_text() {
        let id = format!("sha256:{}", hex(LISTED));
        let claim = Claim {
            document_id: Some(&id),
            ..Claim::default()
        };
        let resolved = resolver(Mode::Off)
            .resolve(&claim, &manifest(), false)
            .unwrap();
        assert_eq!(resolved.origin, Origin::Manifest);
        assert_eq!(resolved.text_for_upstream.as_deref(), Some(LISTED));
        assert!(resolved.reviewed.is_some());
    }

    #[test]
    fn inline_text_identical_to_a_manifest_entry_is_the_reviewed_document() {
        let resolved = resolver(Mode::Allowlist)
            .resolve(&by_text(LISTED), &manifest(), false)
            .unwrap();
        assert_eq!(resolved.origin, Origin::Manifest);
        assert_eq!(
            resolved.text_for_upstream, None,
            "the client's own text is forwarded"
        );
    }

    #[test]
    fn the_allowlist_refuses_every_unlisted_form_unless_the_caller_holds_a_key() {
        let resolver = resolver(Mode::Allowlist);
        let unknown_id = hex(OTHER);
        let extension = apq(OTHER);
        let claims = [
            by_text(OTHER),
            Claim {
                document_id: Some(&unknown_id),
                ..Claim::default()
            },
            Claim {
                persisted_query: Some(&extension),
                ..Claim::default()
            },
            Claim {
                document_id: Some("3be4abb81fa595e25eb725b2c6a87508"),
                ..Claim::default()
            },
        ];
        for claim in &claims {
            assert_eq!(
                resolver.resolve(claim, &manifest(), false).unwrap_err(),
                ResolveError::Required,
                "{claim:?}"
            );
        }
        assert!(resolver.resolve(&by_text(OTHER), &manifest(), true).is_ok());
    }

    #[test]
    fn require_id_refuses_listed_text_sent_inline() {
        let resolver = Resolver {
            require_id: true,
            ..resolver(Mode::Allowlist)
        };
        assert_eq!(
            resolver
                .resolve(&by_text(LISTED), &manifest(), false)
                .unwrap_err(),
            ResolveError::Required
        );
    }

    #[test]
    fn a_hash_that_is_not_the_texts_is_refused_and_not_registered() {
        let resolver = resolver(Mode::Apq);
        let lie = apq(LISTED);
        let claim = Claim {
            text: Some(OTHER),
            persisted_query: Some(&lie),
            ..Claim::default()
        };
        assert_eq!(
            resolver.resolve(&claim, &manifest(), false).unwrap_err(),
            ResolveError::HashMismatch
        );
        assert!(resolver.apq.is_empty());
    }

    #[test]
    fn apq_registers_a_verified_text_then_resolves_the_bare_hash() {
        let resolver = resolver(Mode::Apq);
        let extension = apq(OTHER);
        let bare = Claim {
            persisted_query: Some(&extension),
            ..Claim::default()
        };
        assert_eq!(
            resolver.resolve(&bare, &manifest(), false).unwrap_err(),
            ResolveError::NotFound
        );
        let registration = Claim {
            text: Some(OTHER),
            ..bare
        };
        resolver.resolve(&registration, &manifest(), false).unwrap();
        let resolved = resolver.resolve(&bare, &manifest(), false).unwrap();
        assert_eq!(resolved.origin, Origin::Apq);
        assert_eq!(resolved.text_for_upstream.as_deref(), Some(OTHER));
    }

    #[test]
    fn a_malformed_persisted_query_extension_is_refused() {
        for extension in [
            json!({"version": 2, "sha256Hash": hex(OTHER)}),
            json!({"version": 1, "sha256Hash": "abc"}),
            json!({"version": 1}),
            json!("x"),
        ] {
            let claim = Claim {
                persisted_query: Some(&extension),
                ..Claim::default()
            };
            assert_eq!(
                resolver(Mode::Off)
                    .resolve(&claim, &manifest(), false)
                    .unwrap_err(),
                ResolveError::MalformedExtension,
                "{extension}"
            );
        }
    }

    #[test]
    fn audit_mode_forwards_unlisted_documents_and_says_so() {
        let resolved = resolver(Mode::Audit)
            .resolve(&by_text(OTHER), &manifest(), false)
            .unwrap();
        assert!(resolved.unlisted);
        let listed = resolver(Mode::Audit)
            .resolve(&by_text(LISTED), &manifest(), false)
            .unwrap();
        assert!(!listed.unlisted);
    }
}
