//! The cost of knowing who is calling: a JWT verified cold (signature + claims) with RS256 and
//! ES256, the same token answered from the verified-token cache, and an API-key lookup in a
//! 10,000-key table. Keys are generated here; the JWKS is read from a `file://` source.
//!
//! `cargo bench --bench identity`
//!
//! Measured on the 2-core development machine while other builds ran (load average 4–7):
//! RS256 cold ~156 µs, ES256 cold ~594 µs (pure-Rust `rust_crypto` backend), cached ~1.7 µs
//! (SHA-256 of a 979-byte token + cache hit), API key ~0.31 µs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use graphql_firewall::identity::api_keys::KeyTable;
use graphql_firewall::identity::jwks::{Jwks, JwksSettings};
use graphql_firewall::identity::jwt::{
    Accepted, DEFAULT_ALGORITHMS, JwtSettings, JwtVerifier, parse_algorithms,
};
use graphql_firewall::identity::tiers::Tiers;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::json;
use sha2::{Digest, Sha256};

struct SigningKey {
    kid: &'static str,
    alg: Algorithm,
    encoding: EncodingKey,
}

impl SigningKey {
    fn jwk(&self) -> serde_json::Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).expect("a JWK");
        jwk.common.key_id = Some(self.kid.to_owned());
        serde_json::to_value(jwk).expect("JSON")
    }

    /// A token shaped like an identity provider's: ~20 claims, ~800 bytes with RS256.
    fn token(&self) -> String {
        let now = get_current_timestamp();
        let claims = json!({
            "iss": "https://idp.example.com/", "aud": "graphql-api", "sub": "user-0123456789",
            "exp": now + 3600, "iat": now, "nbf": now, "jti": "6f1c8a8e-2d0e-4b8e-9d7a-3a2f1b0c9d8e",
            "scope": "orders:read orders:write profile email", "plan": "pro",
            "azp": "web-client", "sid": "b1d5c6e0-7f3a-4c2b-8e9d-0a1b2c3d4e5f",
            "email": "someone@example.com", "email_verified": true, "name": "Some One",
            "locale": "en", "auth_time": now, "amr": ["pwd", "mfa"], "acr": "1",
        });
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.to_owned());
        encode(&header, &claims, &self.encoding).expect("a token")
    }
}

fn keys() -> (SigningKey, SigningKey) {
    use p256::elliptic_curve::Generate;
    use p256::pkcs8::EncodePrivateKey;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let rsa = rsa::PrivateKey::new(&mut UnwrapErr(SysRng), 2048).expect("an RSA key");
    let ec = p256::SecretKey::generate_from_rng(&mut UnwrapErr(SysRng));
    (
        SigningKey {
            kid: "rsa",
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(rsa.to_pkcs1_der().expect("DER").as_bytes()),
        },
        SigningKey {
            kid: "ec",
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(ec.to_pkcs8_der().expect("DER").as_bytes()),
        },
    )
}

fn verifier(
    runtime: &tokio::runtime::Runtime,
    jwks_path: &Path,
    cache_entries: u64,
) -> JwtVerifier {
    let algorithms = parse_algorithms(DEFAULT_ALGORITHMS).expect("algorithms");
    let jwks = runtime
        .block_on(Jwks::start(JwksSettings {
            urls: vec![
                format!("file://{}", jwks_path.display())
                    .parse()
                    .expect("URL"),
            ],
            algorithms: algorithms.clone(),
            refresh: Duration::from_secs(3600),
            unknown_kid_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
        }))
        .expect("the JWKS loads");
    let tiers: Tiers = "free:rate=10/s;pro:rate=100/s".parse().expect("tiers");
    JwtVerifier::new(
        JwtSettings {
            issuers: Accepted::OneOf(vec!["https://idp.example.com/".to_owned()]),
            audiences: Accepted::OneOf(vec!["graphql-api".to_owned()]),
            leeway: Duration::from_secs(30),
            client_claim: None,
            tier_claim: Some("plan".to_owned()),
            cache_entries,
        },
        &algorithms,
        Arc::new(jwks),
        Arc::new(tiers),
    )
}

fn identity(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (rsa, ec) = keys();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let jwks_path = dir.path().join("jwks.json");
    let body = json!({ "keys": [rsa.jwk(), ec.jwk()] }).to_string();
    std::fs::write(&jwks_path, body).expect("the JWKS is written");

    let cold = verifier(&runtime, &jwks_path, 0);
    let cached = verifier(&runtime, &jwks_path, 10_000);
    let rs256 = rsa.token();
    let es256 = ec.token();
    println!(
        "token sizes: RS256 {} bytes, ES256 {} bytes",
        rs256.len(),
        es256.len()
    );
    cached.verify_now(&rs256).expect("the RS256 token verifies");
    cached.verify_now(&es256).expect("the ES256 token verifies");

    c.bench_function("jwt RS256 verify, cold (signature + claims)", |b| {
        b.iter(|| cold.verify_now(black_box(&rs256)).expect("verifies"))
    });
    c.bench_function("jwt ES256 verify, cold (signature + claims)", |b| {
        b.iter(|| cold.verify_now(black_box(&es256)).expect("verifies"))
    });
    c.bench_function("jwt RS256 verify, cached (SHA-256 + cache hit)", |b| {
        b.iter(|| cached.verify_now(black_box(&rs256)).expect("verifies"))
    });

    let lines: String = (0..10_000)
        .map(|i| {
            let digest = hex::encode(Sha256::digest(format!("key-{i:05}-0123456789abcdef")));
            format!("{digest} client-{i} pro scope:a,scope:b\n")
        })
        .collect();
    let table = KeyTable::parse(
        &lines,
        &"pro:rate=100/s".parse().expect("tiers"),
        Path::new("bench"),
    )
    .expect("the keys parse");
    c.bench_function("api key verify, 10k keys", |b| {
        b.iter(|| {
            table
                .verify(black_box("key-04711-0123456789abcdef"))
                .expect("known")
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = identity
}
criterion_main!(benches);
