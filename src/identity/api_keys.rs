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
mod tests {
    use super::*;
    use http::HeaderValue;

    fn digest(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    fn tiers() -> Tiers {
        "free:rate=10/s;pro:rate=100/s".parse().unwrap()
    }

    fn table(text: &str) -> Result<KeyTable, ApiKeysFileError> {
        KeyTable::parse(text, &tiers(), Path::new("keys.txt"))
    }

    #[test]
    fn a_listed_key_proves_its_name_tier_and_scopes() {
        let text = format!(
            "# comment\n\n{}  billing-app  pro  orders:read,orders:write\n{}\treporting\t-\n",
            digest("k-billing"),
            digest("k-reporting"),
        );
        let table = table(&text).unwrap();
        assert_eq!(table.len(), 2);
        let billing = table.verify("k-billing").unwrap();
        assert_eq!(billing.method, AuthMethod::ApiKey);
        assert_eq!(billing.subject.unwrap().as_str(), "billing-app");
        assert_eq!(billing.tier.unwrap().as_str(), "pro");
        assert!(billing.scopes.contains("orders:write"));
        let reporting = table.verify("k-reporting").unwrap();
        assert_eq!(reporting.tier, None);
        assert!(reporting.scopes.is_empty());
    }

    #[test]
    fn an_unknown_or_near_miss_key_is_refused() {
        let table = table(&format!("{} app -", digest("secret-key"))).unwrap();
        assert_eq!(table.verify("secret-kez"), Err(ApiKeyError::Unknown));
        assert_eq!(table.verify("secret-key "), Err(ApiKeyError::Unknown));
        assert_eq!(table.verify(""), Err(ApiKeyError::Unknown));
        // The digest itself is not a key.
        assert_eq!(
            table.verify(&digest("secret-key")),
            Err(ApiKeyError::Unknown)
        );
    }

    #[test]
    fn upper_case_digests_are_accepted() {
        let table = table(&format!("{} app -", digest("k").to_uppercase())).unwrap();
        assert!(table.verify("k").is_ok());
    }

    #[test]
    fn two_keys_may_share_a_name_during_a_rotation() {
        let text = format!("{} app pro\n{} app pro\n", digest("old"), digest("new"));
        let table = table(&text).unwrap();
        assert_eq!(
            table.verify("old").unwrap().subject,
            table.verify("new").unwrap().subject
        );
    }

    #[test]
    fn bad_lines_are_refused_naming_the_line_and_what_is_accepted() {
        let d = digest("k");
        let table_rows: &[(String, &str)] = &[
            ("k app -".to_owned(), "64 hex digits, never the key itself"),
            (format!("{} app -", &d[..63]), "64 hex digits"),
            (format!("{}x app -", &d[..63]), "64 hex digits"),
            (format!("{d} app"), "too few fields"),
            (format!("{d} app - read write"), "too many fields"),
            (
                format!("{d} app gold"),
                "tier \"gold\" is not in TIERS (known: free, pro",
            ),
            (format!("{d} app/x -"), "name \"app/x\""),
            (format!("{d} app -\n{d} other -"), "listed twice"),
        ];
        for (text, needle) in table_rows {
            let error = table(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
            assert!(error.contains("keys.txt line "), "{error}");
        }
        let error = table(&format!("# c\n{d} app -\n{d} b -")).unwrap_err();
        assert!(error.to_string().contains("line 3"), "{error}");
    }

    #[test]
    fn the_key_header_is_read_once_and_must_be_visible_ascii() {
        let source = ApiKeySource::new(HeaderName::from_static("x-api-key"));
        let mut headers = HeaderMap::new();
        assert_eq!(source.extract(&headers), Ok(None));
        headers.insert("x-api-key", HeaderValue::from_static(" abc "));
        assert_eq!(source.extract(&headers), Ok(Some("abc")));
        headers.append("x-api-key", HeaderValue::from_static("def"));
        assert_eq!(source.extract(&headers), Err(ApiKeyError::Malformed));
        for bad in ["", "a b", &"k".repeat(MAX_KEY_LEN + 1)] {
            headers.insert("x-api-key", HeaderValue::from_str(bad).unwrap());
            assert_eq!(
                source.extract(&headers),
                Err(ApiKeyError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_previous_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.txt");
        std::fs::write(&path, format!("{} app -\n", digest("one"))).unwrap();
        let keys = ApiKeys::load(path.clone(), Arc::new(tiers())).unwrap();
        assert!(keys.verify("one").is_ok());
        assert_eq!(keys.reload_if_changed().unwrap(), Reloaded::Unchanged);

        std::fs::write(&path, format!("{} app -\n", digest("two"))).unwrap();
        assert_eq!(
            keys.reload_if_changed().unwrap(),
            Reloaded::Replaced { keys: 1 }
        );
        assert_eq!(keys.verify("one"), Err(ApiKeyError::Unknown));
        assert!(keys.verify("two").is_ok());

        std::fs::write(&path, "not a digest\n").unwrap();
        assert!(keys.reload_if_changed().is_err());
        assert!(
            keys.verify("two").is_ok(),
            "the previous keys stay in force"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_configmap_style_symlink_swap_is_seen() {
        // Kubernetes: keys.txt -> ..data/keys.txt, ..data -> ..v1; an update creates ..v2 and
        // renames a new ..data symlink over the old one.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (version, key) in [("..v1", "one"), ("..v2", "two")] {
            std::fs::create_dir(root.join(version)).unwrap();
            std::fs::write(
                root.join(version).join("keys.txt"),
                format!("{} app -\n", digest(key)),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink("..v1", root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/keys.txt", root.join("keys.txt")).unwrap();
        let keys = ApiKeys::load(root.join("keys.txt"), Arc::new(tiers())).unwrap();
        assert!(keys.verify("one").is_ok());

        std::os::unix::fs::symlink("..v2", root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        assert_eq!(
            keys.reload_if_changed().unwrap(),
            Reloaded::Replaced { keys: 1 }
        );
        assert!(keys.verify("two").is_ok());
        assert_eq!(keys.verify("one"), Err(ApiKeyError::Unknown));
    }

    #[test]
    fn a_missing_file_is_a_start_up_error_naming_it() {
        let error = ApiKeys::load(PathBuf::from("/nonexistent/keys.txt"), Arc::new(tiers()))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("API_KEYS_FILE /nonexistent/keys.txt"),
            "{error}"
        );
    }
}
