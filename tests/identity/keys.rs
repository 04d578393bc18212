//! Keys generated in the test, the JWKS that publishes them (over real HTTP, or in a file), and
//! tokens: signed ones and the classic forgeries.

use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://idp.example.com/";
pub const AUDIENCE: &str = "graphql-api";

/// RSA-2048 generation takes about a second in a debug build: one key per test binary.
pub fn rsa_private() -> &'static rsa::PrivateKey {
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::PrivateKey::new(&mut UnwrapErr(SysRng), 2048).unwrap())
}

/// A signing key and the JWK that publishes its public half.
pub struct TestKey {
    pub kid: &'static str,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
}

impl TestKey {
    pub fn rsa(kid: &'static str) -> TestKey {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let der = rsa_private().to_pkcs1_der().unwrap();
        TestKey {
            kid,
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        }
    }

    pub fn ec(kid: &'static str) -> TestKey {
        use p256::elliptic_curve::Generate;
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::generate_from_rng(&mut UnwrapErr(SysRng));
        TestKey {
            kid,
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
        }
    }

    pub fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.to_owned());
        jwk
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.to_owned());
        encode(&header, claims, &self.encoding).unwrap()
    }
}

pub fn jwks_body(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() }).to_string()
}

pub fn now() -> u64 {
    get_current_timestamp()
}

/// Valid claims for `sub`.
pub fn claims(sub: &str) -> Value {
    json!({
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now() + 3600,
        "iat": now(),
    })
}

pub fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Every classic forgery, named, against a firewall trusting `rsa` (kid `rsa-1`).
pub fn forgeries(rsa: &TestKey) -> Vec<(&'static str, String)> {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let attacker = TestKey::ec("attacker");
    let mut forged = Vec::new();
    let header = json!({ "alg": "none", "typ": "JWT", "kid": rsa.kid });
    forged.push((
        "alg none",
        format!("{}.{}.", b64(&header), b64(&claims("eve"))),
    ));
    let pem = rsa_private()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(rsa.kid.to_owned());
    forged.push((
        "HS256 with the RSA public key as secret",
        encode(
            &header,
            &claims("eve"),
            &EncodingKey::from_secret(pem.as_bytes()).unwrap(),
        )
        .unwrap(),
    ));
    for (name, kid) in [
        ("kid with a path", "../../../../dev/null"),
        ("kid with SQL", "' OR '1'='1"),
    ] {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        forged.push((
            name,
            encode(&header, &claims("eve"), &attacker.encoding).unwrap(),
        ));
    }
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("attacker".to_owned());
    header.jwk = Some(attacker.jwk());
    forged.push((
        "embedded jwk header",
        encode(&header, &claims("eve"), &attacker.encoding).unwrap(),
    ));
    let mut expired = claims("eve");
    expired["exp"] = json!(now() - 3600);
    forged.push(("expired", rsa.sign(&expired)));
    let mut early = claims("eve");
    early["nbf"] = json!(now() + 3600);
    forged.push(("not yet valid", rsa.sign(&early)));
    let mut aud = claims("eve");
    aud["aud"] = json!("another-api");
    forged.push(("wrong aud", rsa.sign(&aud)));
    let mut iss = claims("eve");
    iss["iss"] = json!("https://evil.example.com/");
    forged.push(("wrong iss", rsa.sign(&iss)));
    let mut string_exp = claims("eve");
    string_exp["exp"] = json!((now() - 3600).to_string());
    forged.push(("exp as a string", rsa.sign(&string_exp)));
    let mut no_exp = claims("eve");
    no_exp.as_object_mut().unwrap().remove("exp");
    forged.push(("no exp", rsa.sign(&no_exp)));
    let token = rsa.sign(&claims("alice"));
    let (head, _) = token.rsplit_once('.').unwrap();
    let (_, body_part) = head.split_once('.').unwrap();
    let tampered = token.replacen(body_part, &b64(&claims("admin")), 1);
    forged.push(("tampered payload", tampered));
    forged
}

/// A JWKS endpoint over real HTTP, whose body the test can change (rotation, removal).
pub struct JwksServer {
    pub url: String,
    body: Arc<Mutex<String>>,
}

impl JwksServer {
    pub async fn start(body: String) -> JwksServer {
        let body = Arc::new(Mutex::new(body));
        let app = Router::new()
            .route(
                "/.well-known/jwks.json",
                get(|State(body): State<Arc<Mutex<String>>>| async move {
                    body.lock().unwrap().clone()
                }),
            )
            .with_state(body.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        JwksServer {
            url: format!("http://{address}/.well-known/jwks.json"),
            body,
        }
    }

    pub fn publish(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }
}
