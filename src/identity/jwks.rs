//! The keys that sign accepted tokens: JSON Web Key Sets from `AUTH_JWKS_URLS` (`https://`, or
//! `file://`), fetched at start-up, every `AUTH_JWKS_REFRESH`, and when a token names an unknown
//! `kid` — at most once per `AUTH_JWKS_UNKNOWN_KID_INTERVAL`.
//!
//! # Threats
//! - **The token must not choose how it is verified.** Each key's algorithms come from the key
//!   itself (its `alg`, else its `kty`/`crv`), intersected with `AUTH_JWT_ALGORITHMS`; a token
//!   whose header names another algorithm is refused before any cryptography. So an RSA public key
//!   can never serve as an HMAC secret (CVE-2016-10555), and `none` does not exist here.
//! - **Keys come from the operator, not from the token**: `jwk`, `jku`, `x5u` and `x5c` headers
//!   are never read (CVE-2018-0114), and `kid` is only ever a lookup in this set (never a path or a
//!   query).
//! - **A flood of invented `kid`s must not make the firewall hammer the identity provider**:
//!   unknown-`kid` refreshes are single-flight and at most one per interval.
//! - **Plain HTTP would let anyone on the path swap the keys**: `http://` is accepted only for a
//!   loopback host (a sidecar); symmetric (`oct`) keys only from `file://`; RSA keys shorter than
//!   2048 bits are skipped.
//! - A failed fetch keeps that source's previous keys; a fetched set replaces them, so a key the
//!   provider removed stops verifying tokens at the next refresh (cached verifications included:
//!   each change bumps [`KeySet::generation`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use sha2::{Digest, Sha256};

/// Largest JWKS document read from one source.
pub const MAX_JWKS_BYTES: usize = 1 << 20;
/// Most keys taken from one source.
const MAX_KEYS_PER_SOURCE: usize = 256;
/// Base64url characters of a 2048-bit modulus (256 bytes).
const MIN_RSA_MODULUS_CHARS: usize = 342;

/// Where a key set is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksUrl {
    /// `https://…`, or `http://` on a loopback host.
    Remote(Uri),
    /// `file:///absolute/path`, read through the path each time (symlink swaps are seen).
    File(PathBuf),
}

impl std::fmt::Display for JwksUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksUrl::Remote(uri) => write!(f, "{uri}"),
            JwksUrl::File(path) => write!(f, "file://{}", path.display()),
        }
    }
}

/// Why a JWKS URL is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid JWKS URL {0:?}: expected https://…, http:// only on a loopback host (127.0.0.1, [::1], localhost), or file:///absolute/path"
)]
pub struct JwksUrlError(String);

impl FromStr for JwksUrl {
    type Err = JwksUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || JwksUrlError(text.to_owned());
        let url = url::Url::parse(text.trim()).map_err(|_| invalid())?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(invalid());
        }
        match url.scheme() {
            // `file:relative.json` would silently become `/relative.json`.
            "file"
                if text
                    .trim()
                    .get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case("file:///")) =>
            {
                url.to_file_path().map(JwksUrl::File).map_err(|_| invalid())
            }
            "https" => Ok(JwksUrl::Remote(
                url.as_str().parse().map_err(|_| invalid())?,
            )),
            "http" if is_loopback(&url) => Ok(JwksUrl::Remote(
                url.as_str().parse().map_err(|_| invalid())?,
            )),
            _ => Err(invalid()),
        }
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `AUTH_JWKS_URLS`: a comma-separated list of at least one URL.
pub fn parse_jwks_urls(text: &str) -> Result<Vec<JwksUrl>, JwksUrlError> {
    let urls = text
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<JwksUrl>, _>>()?;
    if urls.is_empty() {
        return Err(JwksUrlError(text.to_owned()));
    }
    Ok(urls)
}

/// What the key sets need from the configuration.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    pub urls: Vec<JwksUrl>,
    /// `AUTH_JWT_ALGORITHMS`: the algorithms any key may be used with.
    pub algorithms: Vec<Algorithm>,
    /// `AUTH_JWKS_REFRESH`.
    pub refresh: Duration,
    /// `AUTH_JWKS_UNKNOWN_KID_INTERVAL`: least time between two refreshes caused by unknown `kid`s.
    pub unknown_kid_interval: Duration,
    /// Connect + response deadline of one fetch.
    pub fetch_timeout: Duration,
}

/// One key a token may be verified with.
pub struct VerifyKey {
    kid: Option<String>,
    /// What this key may verify: from the key, within the configured algorithms; never empty.
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl VerifyKey {
    pub fn allows(&self, algorithm: Algorithm) -> bool {
        self.algorithms.contains(&algorithm)
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// Why no key fits a token's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoKey {
    /// The `kid` is not in the set (a refresh may bring it).
    UnknownKid,
    /// Keys exist, but none may verify the header's algorithm.
    AlgorithmNotAllowed,
}

/// Most keys tried for one token without `kid` (bounds the work a forged token can cause).
pub const MAX_CANDIDATES: usize = 4;

/// The keys in force, from every source.
#[derive(Debug, Default)]
pub struct KeySet {
    by_kid: HashMap<String, Vec<Arc<VerifyKey>>>,
    all: Vec<Arc<VerifyKey>>,
    generation: u64,
}

impl KeySet {
    fn new(keys: Vec<Arc<VerifyKey>>, generation: u64) -> KeySet {
        let mut by_kid: HashMap<String, Vec<Arc<VerifyKey>>> = HashMap::new();
        for key in &keys {
            if let Some(kid) = &key.kid {
                by_kid.entry(kid.clone()).or_default().push(Arc::clone(key));
            }
        }
        KeySet {
            by_kid,
            all: keys,
            generation,
        }
    }

    /// Changes whenever the keys change; a verification made under another generation is stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The keys that may verify a token with this header: those with its `kid`, or, for a token
    /// without `kid`, any key; in both cases only keys that allow `alg`, at most
    /// [`MAX_CANDIDATES`].
    pub fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Result<Vec<&VerifyKey>, NoKey> {
        let pool: &[Arc<VerifyKey>] = match kid {
            Some(kid) => self.by_kid.get(kid).ok_or(NoKey::UnknownKid)?,
            // No key at all (a source not loaded yet) is worth a refresh too.
            None if self.all.is_empty() => return Err(NoKey::UnknownKid),
            None => &self.all,
        };
        let fitting: Vec<&VerifyKey> = pool
            .iter()
            .map(|key| &**key)
            .filter(|key| key.allows(alg))
            .take(MAX_CANDIDATES)
            .collect();
        if fitting.is_empty() {
            return Err(NoKey::AlgorithmNotAllowed);
        }
        Ok(fitting)
    }
}

/// Where a set came from decides whether symmetric keys may be in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Remote,
    File,
}

/// Parses a JWKS document: the usable keys, and why each other key was skipped.
fn parse_jwks(
    body: &[u8],
    configured: &[Algorithm],
    origin: Origin,
) -> Result<(Vec<VerifyKey>, Vec<String>), String> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet = serde_json::from_slice(body)
        .map_err(|error| format!("not a JSON Web Key Set ({{\"keys\":[…]}}): {error}"))?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (index, value) in raw.keys.into_iter().enumerate() {
        if keys.len() == MAX_KEYS_PER_SOURCE {
            skipped.push(format!("keys past the first {MAX_KEYS_PER_SOURCE} ignored"));
            break;
        }
        let kid = value
            .get("kid")
            .and_then(|kid| kid.as_str())
            .map(str::to_owned);
        let parsed = serde_json::from_value::<Jwk>(value)
            .map_err(|_| "not a valid JWK")
            .and_then(|jwk| usable(&jwk, configured, origin));
        match parsed {
            Ok(key) => keys.push(key),
            Err(reason) => skipped.push(format!(
                "key {index} (kid {}): {reason}",
                kid.as_deref().unwrap_or("none")
            )),
        }
    }
    Ok((keys, skipped))
}

/// The key, with the algorithms it may verify, or why it cannot be used.
fn usable(jwk: &Jwk, configured: &[Algorithm], origin: Origin) -> Result<VerifyKey, &'static str> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err("not a signature key (use)");
    }
    if let Some(operations) = &jwk.common.key_operations
        && !operations.contains(&KeyOperations::Verify)
    {
        return Err("not a verification key (key_ops)");
    }
    let fits_key: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            if rsa.n.trim_end_matches('=').len() < MIN_RSA_MODULUS_CHARS {
                return Err("RSA key shorter than 2048 bits");
            }
            AlgorithmFamily::Rsa.algorithms()
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return Err("unsupported elliptic curve"),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            _ => return Err("unsupported curve"),
        },
        AlgorithmParameters::OctetKey(_) if origin == Origin::Remote => {
            return Err("symmetric (oct) keys are accepted only from file://");
        }
        AlgorithmParameters::OctetKey(_) => AlgorithmFamily::Hmac.algorithms(),
        _ => return Err("unsupported key type"),
    };
    let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
        Some(named) => {
            let named = Algorithm::try_from(named).map_err(|_| "unsupported alg")?;
            if !fits_key.contains(&named) {
                return Err("its alg does not fit its key type");
            }
            vec![named]
        }
        None => fits_key.to_vec(),
    }
    .into_iter()
    .filter(|algorithm| configured.contains(algorithm))
    .collect();
    if algorithms.is_empty() {
        return Err("none of AUTH_JWT_ALGORITHMS fits this key");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "invalid key material")?;
    Ok(VerifyKey {
        kid: jwk.common.key_id.clone(),
        algorithms,
        key,
    })
}

/// Why one source could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Io(String),
    #[error("answered HTTP {0} (200 expected)")]
    Status(u16),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Invalid(String),
}

/// A source that failed, for the log (and, at start-up, for the exit message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JWKS {url}: {source}")]
pub struct JwksError {
    pub url: String,
    pub source: FetchError,
}

/// Per-source state behind the key set.
#[derive(Debug, Default)]
struct SourceState {
    /// SHA-256 of the body the keys came from (`None`: never loaded).
    body_hash: Option<[u8; 32]>,
    keys: Vec<Arc<VerifyKey>>,
}

#[derive(Debug)]
struct Sources {
    states: Vec<SourceState>,
    generation: u64,
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The key sets in force and the means to refresh them.
pub struct Jwks {
    settings: JwksSettings,
    client: HttpsClient,
    current: ArcSwap<KeySet>,
    /// Held for the whole of a refresh: refreshes never overlap, and waiting for it is waiting
    /// for the refresh in flight.
    sources: tokio::sync::Mutex<Sources>,
    last_unknown_kid_refresh: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("urls", &self.settings.urls)
            .field("keys", &self.current.load().len())
            .finish_non_exhaustive()
    }
}

impl Jwks {
    /// Loads every source once. An unreadable `file://` source is a configuration error; an
    /// unreachable remote one is logged and retried (tokens it signs are refused until then).
    pub async fn start(settings: JwksSettings) -> Result<Jwks, JwksError> {
        let jwks = Jwks::new(settings)?;
        jwks.refresh().await;
        Ok(jwks)
    }

    /// Reads the `file://` sources now, without a runtime (start-up, `check`); remote sources are
    /// fetched by the first [`Jwks::refresh`] — the refresher's first run, or the first token
    /// whose `kid` is unknown. An unreadable or invalid file is a configuration error.
    pub fn new(settings: JwksSettings) -> Result<Jwks, JwksError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(settings.fetch_timeout));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let mut sources = Sources {
            states: settings
                .urls
                .iter()
                .map(|_| SourceState::default())
                .collect(),
            generation: 0,
        };
        let files = settings
            .urls
            .iter()
            .map(|url| match url {
                JwksUrl::File(path) => Some(read_file(path)),
                JwksUrl::Remote(_) => None,
            })
            .collect();
        let current = ArcSwap::from_pointee(KeySet::default());
        let failures = apply(&settings, &mut sources, &current, files);
        if let Some(failure) = failures.into_iter().next() {
            return Err(failure);
        }
        Ok(Jwks {
            settings,
            client,
            current,
            sources: tokio::sync::Mutex::new(sources),
            last_unknown_kid_refresh: Mutex::new(None),
        })
    }

    /// The keys in force now (a cheap guard, not a reference count: hold it only briefly).
    pub fn keys(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.current.load()
    }

    /// Fetches every source now; returns the sources that failed (each is also logged, and keeps
    /// its previous keys).
    pub async fn refresh(&self) -> Vec<JwksError> {
        let mut sources = self.sources.lock().await;
        let fetched =
            futures_util::future::join_all(self.settings.urls.iter().map(|url| self.fetch(url)))
                .await;
        apply(
            &self.settings,
            &mut sources,
            &self.current,
            fetched.into_iter().map(Some).collect(),
        )
    }

    /// Called when a token names a `kid` the set does not hold: refreshes unless one such refresh
    /// ran less than `AUTH_JWKS_UNKNOWN_KID_INTERVAL` ago; in that case waits only for a refresh
    /// already in flight. Returns whether this call refreshed. Either way the caller looks again.
    pub async fn refresh_for_unknown_kid(&self) -> bool {
        let allowed = {
            let mut last = self
                .last_unknown_kid_refresh
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            match *last {
                Some(at) if now.duration_since(at) < self.settings.unknown_kid_interval => false,
                _ => {
                    *last = Some(now);
                    true
                }
            }
        };
        if allowed {
            self.refresh().await;
        } else {
            drop(self.sources.lock().await);
        }
        allowed
    }

    /// Refreshes now (the remote sources [`Jwks::new`] did not fetch), then every
    /// `AUTH_JWKS_REFRESH`, for as long as the key sets are in use.
    pub fn spawn_refresher(jwks: &Arc<Jwks>) -> tokio::task::JoinHandle<()> {
        let period = jwks.settings.refresh;
        let jwks = Arc::downgrade(jwks);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(jwks) = jwks.upgrade() else {
                    return;
                };
                jwks.refresh().await;
            }
        })
    }

    async fn fetch(&self, url: &JwksUrl) -> Result<Vec<u8>, FetchError> {
        match url {
            JwksUrl::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_file(&path))
                    .await
                    .map_err(|error| FetchError::Io(error.to_string()))?
            }
            JwksUrl::Remote(uri) => {
                let timeout = self.settings.fetch_timeout;
                tokio::time::timeout(timeout, self.get(uri))
                    .await
                    .map_err(|_| FetchError::Timeout(timeout))?
            }
        }
    }

    async fn get(&self, uri: &Uri) -> Result<Vec<u8>, FetchError> {
        let request = Request::get(uri.clone())
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .header(header::USER_AGENT, "graphql-firewall")
            .body(Empty::<Bytes>::new())
            .map_err(|error| FetchError::Io(error.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| FetchError::Io(error.to_string()))?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge
                } else {
                    FetchError::Io(error.to_string())
                }
            })?;
        Ok(body.to_bytes().to_vec())
    }
}

/// Takes in what each source gave (`None`: not fetched this time): changed bodies replace their
/// source's keys, failures keep them and are returned (and logged); any change publishes a new
/// key set under a new generation.
fn apply(
    settings: &JwksSettings,
    sources: &mut Sources,
    current: &ArcSwap<KeySet>,
    fetched: Vec<Option<Result<Vec<u8>, FetchError>>>,
) -> Vec<JwksError> {
    let mut failures = Vec::new();
    let mut changed = false;
    for ((url, state), body) in settings
        .urls
        .iter()
        .zip(sources.states.iter_mut())
        .zip(fetched)
    {
        let Some(body) = body else {
            continue;
        };
        let origin = match url {
            JwksUrl::Remote(_) => Origin::Remote,
            JwksUrl::File(_) => Origin::File,
        };
        let parsed = body.and_then(|body| {
            let hash: [u8; 32] = Sha256::digest(&body).into();
            if state.body_hash == Some(hash) {
                return Ok(None);
            }
            parse_jwks(&body, &settings.algorithms, origin)
                .map(|parsed| Some((hash, parsed)))
                .map_err(FetchError::Invalid)
        });
        match parsed {
            Ok(None) => {}
            Ok(Some((hash, (keys, skipped)))) => {
                for reason in &skipped {
                    tracing::warn!(
                        target: "graphql_firewall::identity",
                        jwks = %url, %reason, "JWKS key skipped"
                    );
                }
                tracing::info!(
                    target: "graphql_firewall::identity",
                    jwks = %url, keys = keys.len(), skipped = skipped.len(), "JWKS loaded"
                );
                state.body_hash = Some(hash);
                state.keys = keys.into_iter().map(Arc::new).collect();
                changed = true;
            }
            Err(source) => {
                let error = JwksError {
                    url: url.to_string(),
                    source,
                };
                tracing::error!(
                    target: "graphql_firewall::identity",
                    %error, "JWKS not refreshed: the previous keys of this source stay in force"
                );
                failures.push(error);
            }
        }
    }
    if changed {
        sources.generation += 1;
        let keys = sources
            .states
            .iter()
            .flat_map(|state| state.keys.iter().cloned())
            .collect();
        current.store(Arc::new(KeySet::new(keys, sources.generation)));
    }
    failures
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, FetchError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|error| FetchError::Io(error.to_string()))?;
    let mut body = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|error| FetchError::Io(error.to_string()))?;
    if body.len() > MAX_JWKS_BYTES {
        return Err(FetchError::TooLarge);
    }
    Ok(body)
}

#[cfg(test)]
mod tests;
