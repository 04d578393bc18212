//! JWT verification against key sets served over real HTTP (an axum server on 127.0.0.1:0) and
//! from `file://`, with RSA and EC keys generated here; every classic forgery refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use http::HeaderValue;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::*;
use crate::identity::jwks::{JwksSettings, JwksUrl};

// === Keys generated for the tests ===

/// RSA-2048 generation takes about a second in a debug build: one key per test binary.
fn rsa_private() -> &'static rsa::PrivateKey {
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::PrivateKey::new(&mut UnwrapErr(SysRng), 2048).unwrap())
}

/// A signing key and the JWK that publishes its public half.
struct TestKey {
    kid: &'static str,
    alg: Algorithm,
    encoding: EncodingKey,
}

impl TestKey {
    fn rsa(kid: &'static str) -> TestKey {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let der = rsa_private().to_pkcs1_der().unwrap();
        TestKey {
            kid,
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        }
    }

    /// P-256 keys are generated in microseconds: a fresh one per call.
    fn ec(kid: &'static str) -> TestKey {
        use p256::elliptic_curve::Generate;
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::generate_from_rng(&mut UnwrapErr(SysRng));
        TestKey {
            kid,
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
        }
    }

    fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.to_owned());
        serde_json::to_value(jwk).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.to_owned());
        encode(&header, claims, &self.encoding).unwrap()
    }
}

fn jwks_body(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() }).to_string()
}

fn now() -> u64 {
    get_current_timestamp()
}

fn claims() -> Value {
    json!({
        "sub": "alice",
        "iss": "https://idp.example.com/",
        "aud": "graphql-api",
        "exp": now() + 3600,
        "iat": now(),
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

// === A JWKS endpoint over real HTTP ===

#[derive(Clone)]
struct Endpoint {
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

struct JwksServer {
    url: String,
    endpoint: Endpoint,
}

impl JwksServer {
    async fn start(body: String) -> JwksServer {
        let endpoint = Endpoint {
            body: Arc::new(Mutex::new(body)),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route(
                "/.well-known/jwks.json",
                get(|State(endpoint): State<Endpoint>| async move {
                    endpoint.hits.fetch_add(1, Ordering::SeqCst);
                    endpoint.body.lock().unwrap().clone()
                }),
            )
            .with_state(endpoint.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        JwksServer {
            url: format!("http://{address}/.well-known/jwks.json"),
            endpoint,
        }
    }

    fn publish(&self, body: String) {
        *self.endpoint.body.lock().unwrap() = body;
    }

    fn hits(&self) -> usize {
        self.endpoint.hits.load(Ordering::SeqCst)
    }
}

fn algorithms() -> Vec<Algorithm> {
    parse_algorithms(DEFAULT_ALGORITHMS).unwrap()
}

fn jwt_settings() -> JwtSettings {
    JwtSettings {
        issuers: Accepted::OneOf(vec!["https://idp.example.com/".to_owned()]),
        audiences: Accepted::OneOf(vec!["graphql-api".to_owned()]),
        leeway: Duration::from_secs(30),
        client_claim: None,
        tier_claim: Some("plan".to_owned()),
        cache_entries: 1000,
    }
}

async fn verifier_for(url: &str, settings: JwtSettings, algorithms: &[Algorithm]) -> JwtVerifier {
    let jwks = Jwks::start(JwksSettings {
        urls: vec![url.parse::<JwksUrl>().unwrap()],
        algorithms: algorithms.to_vec(),
        refresh: Duration::from_secs(3600),
        unknown_kid_interval: Duration::from_secs(3600),
        fetch_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    let tiers: Tiers = "free:rate=1/s;pro:rate=10/s".parse().unwrap();
    JwtVerifier::new(settings, algorithms, Arc::new(jwks), Arc::new(tiers))
}

/// A verifier whose only key is the RSA key `rsa-1`, served over HTTP.
async fn rsa_setup() -> (JwksServer, TestKey, JwtVerifier) {
    let key = TestKey::rsa("rsa-1");
    let server = JwksServer::start(jwks_body(&[&key])).await;
    let verifier = verifier_for(&server.url, jwt_settings(), &algorithms()).await;
    (server, key, verifier)
}

// === Accepted tokens ===

#[tokio::test]
async fn an_rs256_token_from_an_http_jwks_proves_its_subject_tier_and_scopes() {
    let (_server, key, verifier) = rsa_setup().await;
    let token = key.sign(&with(
        with(claims(), "scope", json!("orders:read orders:write")),
        "plan",
        json!("pro"),
    ));
    let identity = verifier.verify(&token).await.unwrap();
    assert_eq!(identity.method, AuthMethod::Jwt);
    assert_eq!(identity.subject.unwrap().as_str(), "alice");
    assert_eq!(identity.tier.unwrap().as_str(), "pro");
    assert_eq!(
        identity.scopes.iter().collect::<Vec<_>>(),
        ["orders:read", "orders:write"]
    );
}

#[tokio::test]
async fn an_es256_token_from_a_file_jwks_is_accepted() {
    let key = TestKey::ec("ec-1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks_body(&[&key])).unwrap();
    let url = format!("file://{}", path.display());
    let verifier = verifier_for(&url, jwt_settings(), &algorithms()).await;
    let identity = verifier.verify(&key.sign(&claims())).await.unwrap();
    assert_eq!(identity.subject.unwrap().as_str(), "alice");
}

#[tokio::test]
async fn the_subject_comes_from_the_client_claim_and_scp_arrays_are_scopes() {
    let key = TestKey::ec("ec-1");
    let server = JwksServer::start(jwks_body(&[&key])).await;
    let settings = JwtSettings {
        client_claim: Some("client_id".to_owned()),
        ..jwt_settings()
    };
    let verifier = verifier_for(&server.url, settings, &algorithms()).await;
    let token = key.sign(&with(
        with(
            with(claims(), "client_id", json!("billing-app")),
            "scp",
            json!(["a", "b", 7]),
        ),
        "plan",
        json!("platinum"),
    ));
    let identity = verifier.verify(&token).await.unwrap();
    assert_eq!(identity.subject.unwrap().as_str(), "billing-app");
    assert_eq!(identity.scopes.iter().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(identity.tier, None, "a tier not in TIERS is dropped");

    let no_client_id = key.sign(&claims());
    assert_eq!(
        verifier.verify(&no_client_id).await,
        Err(JwtError::NoSubject)
    );
}

#[tokio::test]
async fn a_verified_token_is_remembered_until_it_expires() {
    let (_server, key, verifier) = rsa_setup().await;
    let token = key.sign(&claims());
    assert_eq!(verifier.cached_tokens(), 0);
    let first = verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.cached_tokens(), 1);
    let second = verifier.verify(&token).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(verifier.cached_tokens(), 1);
}

#[tokio::test]
async fn a_cache_of_zero_entries_verifies_every_time() {
    let key = TestKey::ec("ec-1");
    let server = JwksServer::start(jwks_body(&[&key])).await;
    let settings = JwtSettings {
        cache_entries: 0,
        ..jwt_settings()
    };
    let verifier = verifier_for(&server.url, settings, &algorithms()).await;
    let token = key.sign(&claims());
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(verifier.cached_tokens(), 0);
}

// === Forgeries ===

#[tokio::test]
async fn alg_none_is_refused() {
    let (_server, _key, verifier) = rsa_setup().await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({ "alg": alg, "typ": "JWT", "kid": "rsa-1" });
        let token = format!("{}.{}.", b64(&header), b64(&claims()));
        assert_eq!(
            verifier.verify(&token).await,
            Err(JwtError::Malformed),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused_even_when_hs256_is_allowed() {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let public = rsa_private().to_public_key();
    let pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let der = public.to_public_key_der().unwrap();
    let key = TestKey::rsa("rsa-1");
    let server = JwksServer::start(jwks_body(&[&key])).await;
    let mut with_hmac = algorithms();
    with_hmac.push(Algorithm::HS256);
    let verifier = verifier_for(&server.url, jwt_settings(), &with_hmac).await;
    for secret in [pem.as_bytes(), der.as_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".to_owned());
        let token = encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&token).await,
            Err(JwtError::AlgorithmNotAllowed)
        );
        // Without a kid, no key allows HS256 either.
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&token).await,
            Err(JwtError::AlgorithmNotAllowed)
        );
    }
}

#[tokio::test]
async fn a_kid_holding_a_path_or_sql_finds_no_key_and_refreshes_at_most_once() {
    let (server, _key, verifier) = rsa_setup().await;
    let attacker = TestKey::ec("unused");
    let loads = server.hits();
    for kid in [
        "../../../../dev/null",
        "/etc/passwd",
        "' OR '1'='1",
        "x'; DROP TABLE keys; --",
        "file:///etc/passwd",
    ] {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        let token = encode(&header, &claims(), &attacker.encoding).unwrap();
        assert_eq!(
            verifier.verify(&token).await,
            Err(JwtError::UnknownKey),
            "{kid}"
        );
    }
    assert_eq!(
        server.hits(),
        loads + 1,
        "one unknown-kid refresh per interval"
    );
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k".repeat(MAX_KID_LEN + 1));
    let token = encode(&header, &claims(), &attacker.encoding).unwrap();
    assert_eq!(verifier.verify(&token).await, Err(JwtError::Malformed));
}

#[tokio::test]
async fn an_embedded_jwk_header_is_never_trusted() {
    let (_server, _key, verifier) = rsa_setup().await;
    let attacker = TestKey::ec("rsa-1");
    let mut embedded = Jwk::from_encoding_key(&attacker.encoding, Algorithm::ES256).unwrap();
    embedded.common.key_id = Some("rsa-1".to_owned());
    // Claiming the real kid: the real key allows RS256 only.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("rsa-1".to_owned());
    header.jwk = Some(embedded.clone());
    let token = encode(&header, &claims(), &attacker.encoding).unwrap();
    assert_eq!(
        verifier.verify(&token).await,
        Err(JwtError::AlgorithmNotAllowed)
    );
    // Claiming RS256 with the real kid but signed by another RSA-shaped forgery: the signature fails.
    let header =
        json!({ "alg": "RS256", "kid": "rsa-1", "jwk": serde_json::to_value(&embedded).unwrap() });
    let forged = format!(
        "{}.{}.{}",
        b64(&header),
        b64(&claims()),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    );
    assert_eq!(verifier.verify(&forged).await, Err(JwtError::BadSignature));
    // With its own kid only: unknown.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("attacker".to_owned());
    header.jwk = Some(embedded);
    let token = encode(&header, &claims(), &attacker.encoding).unwrap();
    assert_eq!(verifier.verify(&token).await, Err(JwtError::UnknownKey));
}

#[tokio::test]
async fn a_tampered_payload_fails_the_signature() {
    let (_server, key, verifier) = rsa_setup().await;
    let token = key.sign(&claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let admin = b64(&with(claims(), "sub", json!("admin")));
    parts[1] = &admin;
    assert_eq!(
        verifier.verify(&parts.join(".")).await,
        Err(JwtError::BadSignature)
    );
}

#[tokio::test]
async fn time_claims_are_enforced_with_the_leeway() {
    let (_server, key, verifier) = rsa_setup().await;
    let table: &[(Value, Result<(), JwtError>)] = &[
        (
            with(claims(), "exp", json!(now() - 3600)),
            Err(JwtError::Expired),
        ),
        (with(claims(), "exp", json!(now() - 10)), Ok(())),
        (
            with(claims(), "nbf", json!(now() + 3600)),
            Err(JwtError::NotYetValid),
        ),
        (with(claims(), "nbf", json!(now() + 10)), Ok(())),
        (without(claims(), "exp"), Err(JwtError::MissingClaim("exp"))),
        // CVE-2026-25537: a string exp/nbf must not count as absent.
        (
            with(claims(), "exp", json!((now() + 3600).to_string())),
            Err(JwtError::MissingClaim("exp")),
        ),
        (
            with(claims(), "nbf", json!((now() + 3600).to_string())),
            Err(JwtError::InvalidClaim("nbf")),
        ),
    ];
    for (claims, want) in table {
        let got = verifier.verify(&key.sign(claims)).await.map(|_| ());
        assert_eq!(&got, want, "{claims}");
    }
}

#[tokio::test]
async fn issuer_and_audience_must_be_present_and_accepted() {
    let (_server, key, verifier) = rsa_setup().await;
    let table: &[(Value, JwtError)] = &[
        (
            with(claims(), "iss", json!("https://evil.example.com/")),
            JwtError::WrongIssuer,
        ),
        (without(claims(), "iss"), JwtError::MissingClaim("iss")),
        (
            with(claims(), "aud", json!("another-api")),
            JwtError::WrongAudience,
        ),
        (
            with(claims(), "aud", json!(["another-api", "third"])),
            JwtError::WrongAudience,
        ),
        (without(claims(), "aud"), JwtError::MissingClaim("aud")),
        // Not a string or a list of strings: as good as absent.
        (
            with(claims(), "aud", json!(42)),
            JwtError::MissingClaim("aud"),
        ),
        (with(claims(), "sub", json!(42)), JwtError::NoSubject),
        (without(claims(), "sub"), JwtError::NoSubject),
    ];
    for (claims, want) in table {
        assert_eq!(
            verifier.verify(&key.sign(claims)).await,
            Err(*want),
            "{claims}"
        );
    }
    let several = with(claims(), "aud", json!(["another-api", "graphql-api"]));
    assert!(verifier.verify(&key.sign(&several)).await.is_ok());
}

#[tokio::test]
async fn an_es256_key_does_not_verify_a_token_claiming_es384() {
    let key = TestKey::ec("ec-1");
    let server = JwksServer::start(jwks_body(&[&key])).await;
    let verifier = verifier_for(&server.url, jwt_settings(), &algorithms()).await;
    let header = json!({ "alg": "ES384", "kid": "ec-1" });
    let token = format!(
        "{}.{}.{}",
        b64(&header),
        b64(&claims()),
        URL_SAFE_NO_PAD.encode([1u8; 96])
    );
    assert_eq!(
        verifier.verify(&token).await,
        Err(JwtError::AlgorithmNotAllowed)
    );
}

#[tokio::test]
async fn garbage_and_oversized_tokens_are_malformed() {
    let (_server, _key, verifier) = rsa_setup().await;
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "e30.e30.",
        &"a".repeat(MAX_TOKEN_LEN + 1),
    ] {
        assert_eq!(
            verifier.verify(token).await,
            Err(JwtError::Malformed),
            "{token:.20}"
        );
    }
}

// === Key rotation and removal ===

#[tokio::test]
async fn a_key_removed_from_the_jwks_stops_verifying_after_a_refresh_even_when_cached() {
    let (server, key, verifier) = rsa_setup().await;
    let token = key.sign(&claims());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(verifier.cached_tokens(), 1);
    let replacement = TestKey::ec("ec-2");
    server.publish(jwks_body(&[&replacement]));
    assert!(verifier.jwks.refresh().await.is_empty());
    assert_eq!(verifier.verify_now(&token), Err(JwtError::UnknownKey));
    assert!(verifier.verify(&replacement.sign(&claims())).await.is_ok());
}

#[tokio::test]
async fn a_new_kid_is_accepted_after_one_bounded_refresh() {
    let (server, old, verifier) = rsa_setup().await;
    let loads = server.hits();
    let new = TestKey::ec("ec-new");
    server.publish(jwks_body(&[&old, &new]));
    // The unknown kid triggers one refresh, which brings the new key.
    assert!(verifier.verify(&new.sign(&claims())).await.is_ok());
    assert_eq!(server.hits(), loads + 1);
    // Within the interval another unknown kid does not reach the provider.
    let newer = TestKey::ec("ec-newer");
    server.publish(jwks_body(&[&old, &new, &newer]));
    assert_eq!(
        verifier.verify(&newer.sign(&claims())).await,
        Err(JwtError::UnknownKey)
    );
    assert_eq!(server.hits(), loads + 1);
    // The periodic refresh brings it.
    verifier.jwks.refresh().await;
    assert!(verifier.verify(&newer.sign(&claims())).await.is_ok());
    assert!(verifier.verify(&old.sign(&claims())).await.is_ok());
}

#[tokio::test]
async fn a_failing_endpoint_keeps_the_previous_keys() {
    let (server, key, verifier) = rsa_setup().await;
    server.publish("<html>maintenance</html>".to_owned());
    let failures = verifier.jwks.refresh().await;
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].to_string().contains("not a JSON Web Key Set"),
        "{}",
        failures[0]
    );
    assert!(verifier.verify(&key.sign(&claims())).await.is_ok());
}

#[tokio::test]
async fn an_oversized_jwks_is_refused_and_the_previous_keys_stay() {
    let (server, key, verifier) = rsa_setup().await;
    let padding = "x".repeat(crate::identity::jwks::MAX_JWKS_BYTES);
    server.publish(format!(r#"{{"keys":[],"padding":"{padding}"}}"#));
    let failures = verifier.jwks.refresh().await;
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].to_string().contains("larger than"),
        "{}",
        failures[0]
    );
    assert!(verifier.verify(&key.sign(&claims())).await.is_ok());
}

#[tokio::test]
async fn a_missing_jwks_file_is_a_start_up_error() {
    let error = Jwks::start(JwksSettings {
        urls: vec!["file:///nonexistent/jwks.json".parse().unwrap()],
        algorithms: algorithms(),
        refresh: Duration::from_secs(60),
        unknown_kid_interval: Duration::from_secs(30),
        fetch_timeout: Duration::from_secs(1),
    })
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("JWKS file:///nonexistent/jwks.json: "),
        "{error}"
    );
}

// === Where the token is read from ===

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

#[test]
fn the_token_is_read_from_the_bearer_header_or_the_cookie() {
    let source = TokenSource::new("authorization", "Bearer", Some("session")).unwrap();
    type Row = (
        &'static [(&'static str, &'static str)],
        Result<Option<&'static str>, JwtError>,
    );
    let table: &[Row] = &[
        (&[], Ok(None)),
        (&[("authorization", "Bearer a.b.c")], Ok(Some("a.b.c"))),
        (&[("authorization", "bearer   a.b.c ")], Ok(Some("a.b.c"))),
        (&[("authorization", "Basic dXNlcjpwdw==")], Ok(None)),
        (&[("authorization", "Bearer")], Ok(None)),
        (&[("authorization", "Bearer ")], Ok(None)),
        (
            &[("authorization", "Bearer a b")],
            Err(JwtError::BadRequest),
        ),
        (
            &[
                ("authorization", "Bearer a.b.c"),
                ("authorization", "Bearer d.e.f"),
            ],
            Err(JwtError::BadRequest),
        ),
        (
            &[("cookie", "theme=dark; session=x.y.z")],
            Ok(Some("x.y.z")),
        ),
        (&[("cookie", "session=\"x.y.z\"")], Ok(Some("x.y.z"))),
        (
            &[("cookie", "session=x.y.z"), ("cookie", "session=u.v.w")],
            Err(JwtError::BadRequest),
        ),
        (
            &[("cookie", "session=x.y.z; session=u.v.w")],
            Err(JwtError::BadRequest),
        ),
        (
            &[
                ("authorization", "Bearer a.b.c"),
                ("cookie", "session=x.y.z"),
            ],
            Ok(Some("a.b.c")),
        ),
        (
            &[
                ("authorization", "Basic dXNlcjpwdw=="),
                ("cookie", "session=x.y.z"),
            ],
            Ok(Some("x.y.z")),
        ),
    ];
    for (pairs, want) in table {
        assert_eq!(&source.extract(&headers(pairs)), want, "{pairs:?}");
    }
}

#[test]
fn a_custom_header_without_prefix_holds_the_token_alone() {
    let source = TokenSource::new("X-Id-Token", "", None).unwrap();
    assert_eq!(
        source.extract(&headers(&[("x-id-token", "a.b.c")])),
        Ok(Some("a.b.c"))
    );
    assert_eq!(
        source.extract(&headers(&[("cookie", "session=a.b.c")])),
        Ok(None)
    );
}

// === Settings ===

#[test]
fn algorithm_lists_parse_and_none_is_refused() {
    assert_eq!(
        parse_algorithms(" RS256, ES256 ,RS256").unwrap(),
        [Algorithm::RS256, Algorithm::ES256]
    );
    assert_eq!(parse_algorithms(DEFAULT_ALGORITHMS).unwrap().len(), 9);
    assert_eq!(
        parse_algorithms("RS256,none"),
        Err(JwtConfigError::AlgorithmNone)
    );
    for bad in ["", "rs256", "RS1024", "HS256;RS256"] {
        let error = parse_algorithms(bad).unwrap_err().to_string();
        assert!(
            error.contains("expected a comma-separated list of RS256"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn issuers_and_audiences_are_any_or_a_list() {
    assert_eq!("ANY".parse(), Ok(Accepted::Any));
    assert_eq!(
        "a, b".parse(),
        Ok(Accepted::OneOf(vec!["a".to_owned(), "b".to_owned()]))
    );
    assert!(" , ".parse::<Accepted>().is_err());
}

#[test]
fn leeway_accepts_zero_and_short_durations() {
    let table: &[(&str, Option<Duration>)] = &[
        ("0", Some(Duration::ZERO)),
        ("30", Some(Duration::from_secs(30))),
        ("30s", Some(Duration::from_secs(30))),
        ("500ms", Some(Duration::from_millis(500))),
        ("2min", Some(Duration::from_secs(120))),
        ("10min", Some(Duration::from_secs(600))),
        ("11min", None),
        ("1h", None),
        ("-1", None),
        ("s", None),
    ];
    for (text, want) in table {
        assert_eq!(parse_leeway(text).ok(), *want, "{text}");
    }
}

#[test]
fn token_sources_and_claim_names_are_validated() {
    assert!(TokenSource::new("authorization", "Bearer", None).is_ok());
    assert!(matches!(
        TokenSource::new("bad header", "Bearer", None),
        Err(JwtConfigError::Header(_))
    ));
    assert!(matches!(
        TokenSource::new("authorization", "Bea rer", None),
        Err(JwtConfigError::Prefix(_))
    ));
    assert!(matches!(
        TokenSource::new("authorization", "Bearer", Some("a;b")),
        Err(JwtConfigError::Cookie(_))
    ));
    assert_eq!(parse_claim_name(" client_id ").unwrap(), "client_id");
    assert!(parse_claim_name("").is_err());
    assert!(parse_claim_name("a b").is_err());
}
