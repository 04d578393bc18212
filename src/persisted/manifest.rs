//! Loading persisted-query manifests and verifying every entry before it can be allowlisted.
//!
//! Two formats are read:
//! - the Apollo persisted-query manifest,
//!   `{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id","body","name","type"}]}`
//!   (Apollo's generator, Apollo Kotlin and iOS, and our own `manifest build`);
//! - the plain `{"<id>": "<document>"}` map written by Relay and graphql-codegen's client preset,
//!   whose ids may carry the `sha256:` prefix of the GraphQL-over-HTTP trusted documents appendix.
//!
//! # Threats
//! Peers trust manifest ids as written. A manifest whose id does not match its body would let a
//! client that sends the id execute a text nobody reviewed under that id, and would make the
//! "identical text is accepted" rule disagree with the "by id" rule. So every id must be the
//! lower-case hex SHA-256 of its exact body, and one id can never name two bodies; any
//! violation is an error naming the file and the entry, never a silently skipped entry.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::{DocumentHash, SHA256_PREFIX, hash_document, id_excerpt};
use crate::files::Depth;

/// The `format` value of an Apollo persisted-query manifest.
pub(super) const APOLLO_FORMAT: &str = "apollo-persisted-query-manifest";
/// The only Apollo manifest version there is; the router refuses others, and so do we.
pub(super) const APOLLO_VERSION: u64 = 1;

/// One verified manifest entry: `hash` is SHA-256 of `body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub hash: DocumentHash,
    pub body: String,
    /// The operation name the manifest gives (Apollo format only; the plain map has none).
    pub name: Option<String>,
    /// Where the entry came from, for messages: `file.json#operations[3]` or `file.json#<id>`.
    pub source: String,
}

/// Why a manifest could not be loaded. Each message names the file, and where there is one, the
/// entry.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The configured directory does not exist (a clearer message than the I/O error's).
    #[error("manifest directory {} does not exist", .dir.display())]
    DirMissing { dir: PathBuf },
    #[error("cannot read {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{file}: not a JSON object: {message}")]
    Json { file: String, message: String },
    #[error(
        "{file}: unknown manifest format {format} (expected {APOLLO_FORMAT:?} or an id → document map)"
    )]
    UnknownFormat { file: String, format: String },
    #[error("{file}: unsupported manifest version {version} (expected {APOLLO_VERSION})")]
    UnsupportedVersion { file: String, version: String },
    /// A field has the wrong JSON type, or a required one is missing.
    #[error("{location}: {message}")]
    Malformed { location: String, message: String },
    /// The id is not a lower-case SHA-256 hex digest at all (for example Relay's default MD5).
    #[error("{entry}: id is not a lower-case SHA-256 hex digest")]
    InvalidId { entry: String },
    #[error("{entry}: id is not the SHA-256 of the body (which is {actual})")]
    IdMismatch { entry: String, actual: String },
    #[error("{first} and {second} have the same id with different bodies")]
    DuplicateId { first: String, second: String },
}

/// An entry as named in error messages: its place, a short id and the operation name if known,
/// as in `m.json#operations[3] (id 0123456789abcdef…, GetUser)`.
fn describe(source: &str, id: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{source} (id {}, {})", id_excerpt(id), name.escape_debug()),
        None => format!("{source} (id {})", id_excerpt(id)),
    }
}

fn describe_entry(entry: &Entry) -> String {
    describe(
        &entry.source,
        &hex::encode(entry.hash),
        entry.name.as_deref(),
    )
}

/// Loads every `*.json` file directly in `dir` (not recursively, so a `src/` folder of
/// `.graphql` files can sit next to the manifest), in file-name order, and merges them. The same
/// document in several files is kept once.
pub fn load_dir(dir: &Path) -> Result<Vec<Entry>, ManifestError> {
    let files = crate::files::list(dir, &["json"], Depth::Shallow).map_err(|error| {
        if error.path == dir && error.source.kind() == io::ErrorKind::NotFound {
            ManifestError::DirMissing {
                dir: dir.to_owned(),
            }
        } else {
            ManifestError::Io {
                path: error.path,
                source: error.source,
            }
        }
    })?;
    let mut merged = Merged::default();
    for file in files {
        for entry in load_file(&file)? {
            merged.add(entry)?;
        }
    }
    Ok(merged.entries)
}

/// Loads one manifest file of either format.
pub fn load_file(path: &Path) -> Result<Vec<Entry>, ManifestError> {
    let text = fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_manifest(&text, &path.display().to_string())
}

/// Parses and verifies one manifest; `source` names it in entries and errors (usually the path).
pub fn parse_manifest(text: &str, source: &str) -> Result<Vec<Entry>, ManifestError> {
    let object: Object = serde_json::from_str(text).map_err(|e| ManifestError::Json {
        file: source.to_owned(),
        message: e.to_string(),
    })?;
    // `format` cannot be a document id, so its presence tells the two formats apart.
    if object.0.iter().any(|(key, _)| key == "format") {
        parse_apollo(object, source)
    } else {
        parse_map(object, source)
    }
}

// === Apollo format ===

#[derive(Deserialize)]
struct ApolloOperation {
    id: String,
    body: String,
    #[serde(default)]
    name: Option<String>,
}

fn parse_apollo(object: Object, source: &str) -> Result<Vec<Entry>, ManifestError> {
    let mut fields: HashMap<String, Value> = object.0.into_iter().collect();
    // Format and version first, so an unknown format is reported as such rather than as whatever
    // shape error its operations happen to produce.
    match fields.remove("format") {
        Some(Value::String(format)) if format == APOLLO_FORMAT => {}
        other => {
            return Err(ManifestError::UnknownFormat {
                file: source.to_owned(),
                format: other
                    .as_ref()
                    .map_or_else(|| "(none)".to_owned(), excerpt_value),
            });
        }
    }
    match fields.remove("version") {
        Some(Value::Number(version)) if version.as_u64() == Some(APOLLO_VERSION) => {}
        other => {
            return Err(ManifestError::UnsupportedVersion {
                file: source.to_owned(),
                version: other
                    .as_ref()
                    .map_or_else(|| "(none)".to_owned(), excerpt_value),
            });
        }
    }
    let operations = match fields.remove("operations") {
        Some(Value::Array(operations)) => operations,
        _ => {
            return Err(ManifestError::Malformed {
                location: source.to_owned(),
                message: "\"operations\" must be an array".to_owned(),
            });
        }
    };

    let mut merged = Merged::default();
    for (index, operation) in operations.into_iter().enumerate() {
        let location = format!("{source}#operations[{index}]");
        let operation: ApolloOperation =
            serde_json::from_value(operation).map_err(|e| ManifestError::Malformed {
                location: location.clone(),
                message: e.to_string(),
            })?;
        let entry = describe(&location, &operation.id, operation.name.as_deref());
        let hash = lower_hex_hash(&operation.id).ok_or_else(|| ManifestError::InvalidId {
            entry: entry.clone(),
        })?;
        merged.add_verified(
            Entry {
                hash,
                body: operation.body,
                name: operation.name,
                source: location,
            },
            entry,
        )?;
    }
    Ok(merged.entries)
}

// === Plain map format ===

fn parse_map(object: Object, source: &str) -> Result<Vec<Entry>, ManifestError> {
    let mut merged = Merged::default();
    for (id, body) in object.0 {
        let location = format!("{source}#{}", id_excerpt(&id));
        let entry = describe(&location, &id, None);
        let Value::String(body) = body else {
            return Err(ManifestError::Malformed {
                location,
                message: "the document must be a string".to_owned(),
            });
        };
        let digits = id.strip_prefix(SHA256_PREFIX).unwrap_or(&id);
        let hash = lower_hex_hash(digits).ok_or_else(|| ManifestError::InvalidId {
            entry: entry.clone(),
        })?;
        merged.add_verified(
            Entry {
                hash,
                body,
                name: None,
                source: location,
            },
            entry,
        )?;
    }
    Ok(merged.entries)
}

// === Shared checks ===

/// Entries in first-seen order, each id once.
#[derive(Default)]
struct Merged {
    entries: Vec<Entry>,
    by_hash: HashMap<DocumentHash, usize>,
}

impl Merged {
    /// Adds an entry whose hash is already known to match its body (it came from a verified
    /// file); a repeat of the same document is dropped.
    fn add(&mut self, entry: Entry) -> Result<(), ManifestError> {
        if let Some(first) = self
            .by_hash
            .get(&entry.hash)
            .and_then(|&i| self.entries.get(i))
        {
            if first.body == entry.body {
                return Ok(());
            }
            return Err(ManifestError::DuplicateId {
                first: describe_entry(first),
                second: describe_entry(&entry),
            });
        }
        self.by_hash.insert(entry.hash, self.entries.len());
        self.entries.push(entry);
        Ok(())
    }

    /// Verifies the entry's id against its body, then adds it. The duplicate check runs first so
    /// that two entries claiming one id are reported together, naming both places.
    fn add_verified(&mut self, entry: Entry, named: String) -> Result<(), ManifestError> {
        if self.by_hash.contains_key(&entry.hash) {
            return self.add(entry);
        }
        let actual = hash_document(&entry.body);
        if actual != entry.hash {
            return Err(ManifestError::IdMismatch {
                entry: named,
                actual: id_excerpt(&hex::encode(actual)),
            });
        }
        self.add(entry)
    }
}

/// The hash an id names if it is exactly 64 lower-case hex digits. Upper case is refused here
/// (unlike in requests) because manifests are what clients copy ids from, and the formats
/// define the id as lower-case.
fn lower_hex_hash(id: &str) -> Option<DocumentHash> {
    if id.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(id, &mut hash).ok()?;
    Some(hash)
}

/// A short rendering of an unexpected JSON value for messages.
fn excerpt_value(value: &Value) -> String {
    const SHOWN: usize = 40;
    let text = value.to_string();
    let mut excerpt: String = text.chars().take(SHOWN).collect();
    if text.chars().nth(SHOWN).is_some() {
        excerpt.push('…');
    }
    excerpt
}

/// A JSON object with its members in file order, duplicates kept: a `serde_json::Map` would sort
/// the keys and let a repeated key silently replace an earlier entry.
struct Object(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Object(members))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests;
