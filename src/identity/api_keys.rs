//! API keys (`API_KEYS_FILE`): the SHA-256 of each accepted key with the caller's name, tier and
//! scopes; looked up per request, reloaded when the file changes.
//!
//! # Threats
//! - A leaked configuration must not leak the keys: the file holds only SHA-256 digests (API keys
//!   are high-entropy random strings, so an unsalted fast hash is enough; this is not for
//!   passwords).
//! - Timing must not tell an attacker how close a guess was: the presented key is hashed, the
//!   digest's first 8 bytes select the candidates (an attacker cannot aim at a digest prefix
//!   without a preimage), and every candidate's full digest is compared in constant time.
//! - A broken edit must not lock everyone out: a file that does not parse is reported and the
//!   previous keys stay in force.
//!
//! # File format
//! One key per line, fields separated by spaces or tabs; `#` starts a comment line:
//!
//! ```text
//! # sha256 of the key (64 hex)                                    name         tier  scopes
//! 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 billing-app  pro   orders:read,orders:write
//! 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752 reporting    -
//! ```
//!
//! `name` is the caller's identity (its budget key): 1–128 of `A-Z a-z 0-9 . _ - @ :`. Two lines
//! may share a name (a key and its replacement during a rotation share one budget). `tier` is a
//! tier from `TIERS` or `-` for none; `scopes` (optional) is a comma-separated list. A digest is
//! produced with `printf %s "$KEY" | sha256sum`.
//!
//! # Reloading
//! [`ApiKeys::reload_if_changed`] reads the file through its configured path each time, so a
//! Kubernetes ConfigMap update (an atomic swap of the `..data` symlink) is seen, and compares the
//! content's SHA-256 with the last one loaded: unchanged bytes cost no parse.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::tiers::Tiers;
use super::{AuthMethod, Identity, Scopes, Subject};

/// Longest key accepted from a request; anything longer is not a key this file can hold.
pub const MAX_KEY_LEN: usize = 512;
/// Largest keys file read.
const MAX_FILE_BYTES: u64 = 16 << 20;
const MAX_NAME_LEN: usize = 128;

/// Why a presented key was refused (logged, never told to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("the key is not in the keys file")]
    Unknown,
    #[error("the key header is repeated, empty, too long or not visible ASCII")]
    Malformed,
}

impl ApiKeyError {
    pub fn reason(self) -> &'static str {
        match self {
            ApiKeyError::Unknown => "unknown_api_key",
            ApiKeyError::Malformed => "malformed_api_key",
        }
    }

    pub(super) fn is_malformed(self) -> bool {
        self == ApiKeyError::Malformed
    }
}

/// Why the keys file could not be loaded; names the file and the line.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeysFileError {
    #[error("API_KEYS_FILE {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("API_KEYS_FILE {path}: larger than 16 MiB")]
    TooLarge { path: String },
    #[error(
        "API_KEYS_FILE {path} line {line}: {problem}; expected <sha256 hex> <name> <tier or -> [scope,scope,…]"
    )]
    Line {
        path: String,
        line: usize,
        problem: String,
    },
}

/// The header that carries an API key (`API_KEY_HEADER`, default `x-api-key`).
#[derive(Debug, Clone)]
pub struct ApiKeySource {
    header: HeaderName,
}

impl ApiKeySource {
    pub fn new(header: HeaderName) -> ApiKeySource {
        ApiKeySource { header }
    }

    /// The presented key, if any. A repeated header, or one that is empty, too long or not
    /// visible ASCII, is malformed (two keys on one request are never both tried).
    pub fn extract<'a>(&self, headers: &'a HeaderMap) -> Result<Option<&'a str>, ApiKeyError> {
        let mut values = headers.get_all(&self.header).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(ApiKeyError::Malformed);
        }
        let key = value.to_str().map_err(|_| ApiKeyError::Malformed)?.trim();
        let visible = key.bytes().all(|b| b.is_ascii_graphic());
        if key.is_empty() || key.len() > MAX_KEY_LEN || !visible {
            return Err(ApiKeyError::Malformed);
        }
        Ok(Some(key))
    }
}

/// One accepted key: its digest and the identity it proves.
#[derive(Debug)]
struct Entry {
    digest: [u8; 32],
    identity: Identity,
}

/// A parsed keys file.
#[derive(Debug, Default)]
pub struct KeyTable {
    /// Candidates by the first 8 bytes of their digest.
    by_prefix: HashMap<u64, Vec<Entry>>,
    len: usize,
}

impl KeyTable {
    /// Parses the file format above; `path` only names the file in errors.
    pub fn parse(text: &str, tiers: &Tiers, path: &Path) -> Result<KeyTable, ApiKeysFileError> {
        let mut table = KeyTable::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let problem = |problem: String| ApiKeysFileError::Line {
                path: path.display().to_string(),
                line: index + 1,
                problem,
            };
            let (digest, identity) = parse_line(line, tiers).map_err(problem)?;
            let candidates = table.by_prefix.entry(prefix(&digest)).or_default();
            if candidates.iter().any(|entry| entry.digest == digest) {
                return Err(problem("this digest is listed twice".to_owned()));
            }
            candidates.push(Entry { digest, identity });
            table.len += 1;
        }
        Ok(table)
    }

    /// The identity of the caller presenting `key`.
    pub fn verify(&self, key: &str) -> Result<Identity, ApiKeyError> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let candidates = self
            .by_prefix
            .get(&prefix(&digest))
            .map(Vec::as_slice)
            .unwrap_or_default();
        // Every candidate's full digest is compared, whatever the previous comparisons gave.
        let mut found: Option<&Identity> = None;
        for entry in candidates {
            let equal: bool = entry.digest.ct_eq(&digest).into();
            if equal {
                found = Some(&entry.identity);
            }
        }
        found.cloned().ok_or(ApiKeyError::Unknown)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn prefix(digest: &[u8; 32]) -> u64 {
    let [a, b, c, d, e, f, g, h, ..] = *digest;
    u64::from_be_bytes([a, b, c, d, e, f, g, h])
}

fn parse_line(line: &str, tiers: &Tiers) -> Result<([u8; 32], Identity), String> {
    let mut fields = line.split_ascii_whitespace();
    let (Some(digest), Some(name), Some(tier)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err("too few fields".to_owned());
    };
    let scopes = fields.next();
    if fields.next().is_some() {
        return Err("too many fields (scopes are separated by commas, not spaces)".to_owned());
    }
    let mut bytes = [0u8; 32];
    if digest.len() != 64 || hex::decode_to_slice(digest, &mut bytes).is_err() {
        return Err(
            "the first field must be the SHA-256 of the key in 64 hex digits, never the key itself"
                .to_owned(),
        );
    }
    let name_ok = name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@:".contains(&b));
    if !name_ok {
        return Err(format!(
            "name {name:?}: expected 1 to 128 of A-Z a-z 0-9 . _ - @ :"
        ));
    }
    let tier = match tier {
        "-" => None,
        tier => Some(tiers.name(tier).ok_or_else(|| {
            let known: Vec<&str> = tiers.iter().map(|t| t.name.as_str()).collect();
            format!(
                "tier {tier:?} is not in TIERS (known: {}; or - for none)",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )
        })?),
    };
    let scopes = Scopes::new(scopes.unwrap_or_default().split(','));
    let identity = Identity::verified(AuthMethod::ApiKey, Subject::new(name), tier, scopes);
    Ok((bytes, identity))
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// Same bytes as last time.
    Unchanged,
    /// A new set is in force, with this many keys.
    Replaced { keys: usize },
}

/// The keys file, its current table, and what was last loaded.
#[derive(Debug)]
pub struct ApiKeys {
    path: PathBuf,
    tiers: Arc<Tiers>,
    table: ArcSwap<KeyTable>,
    /// SHA-256 of the bytes behind `table`.
    loaded: Mutex<[u8; 32]>,
}

impl ApiKeys {
    /// Loads the file at start-up: any problem is a configuration error.
    pub fn load(path: PathBuf, tiers: Arc<Tiers>) -> Result<ApiKeys, ApiKeysFileError> {
        let (content_hash, table) = read_table(&path, &tiers)?;
        Ok(ApiKeys {
            path,
            tiers,
            table: ArcSwap::from_pointee(table),
            loaded: Mutex::new(content_hash),
        })
    }

    /// The identity of the caller presenting `key`.
    pub fn verify(&self, key: &str) -> Result<Identity, ApiKeyError> {
        self.table.load().verify(key)
    }

    /// Number of keys in force.
    pub fn len(&self) -> usize {
        self.table.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the file; replaces the keys when its bytes changed and parse. On an error the
    /// previous keys stay in force (the caller logs the error).
    pub fn reload_if_changed(&self) -> Result<Reloaded, ApiKeysFileError> {
        let bytes = read_bounded(&self.path)?;
        let content_hash: [u8; 32] = Sha256::digest(&bytes).into();
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if *loaded == content_hash {
            return Ok(Reloaded::Unchanged);
        }
        let table = KeyTable::parse(&String::from_utf8_lossy(&bytes), &self.tiers, &self.path)?;
        let keys = table.len();
        self.table.store(Arc::new(table));
        *loaded = content_hash;
        Ok(Reloaded::Replaced { keys })
    }

    /// Calls [`ApiKeys::reload_if_changed`] every `interval` for as long as the keys are in use,
    /// logging what happened.
    pub fn spawn_watcher(
        keys: &Arc<ApiKeys>,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let keys = Arc::downgrade(keys);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(keys) = keys.upgrade() else {
                    return;
                };
                match keys.reload_if_changed() {
                    Ok(Reloaded::Unchanged) => {}
                    Ok(Reloaded::Replaced { keys }) => tracing::info!(
                        target: "graphql_firewall::identity",
                        keys,
                        "API keys reloaded"
                    ),
                    Err(error) => tracing::error!(
                        target: "graphql_firewall::identity",
                        %error,
                        "API keys not reloaded: the previous keys stay in force"
                    ),
                }
            }
        })
    }
}

fn read_table(path: &Path, tiers: &Tiers) -> Result<([u8; 32], KeyTable), ApiKeysFileError> {
    let bytes = read_bounded(path)?;
    let content_hash: [u8; 32] = Sha256::digest(&bytes).into();
    let table = KeyTable::parse(&String::from_utf8_lossy(&bytes), tiers, path)?;
    Ok((content_hash, table))
}

/// Reads through `path` as configured (symlinks resolved now, not remembered).
fn read_bounded(path: &Path) -> Result<Vec<u8>, ApiKeysFileError> {
    use std::io::Read;
    let read_error = |source| ApiKeysFileError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ApiKeysFileError::TooLarge {
            path: path.display().to_string(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
