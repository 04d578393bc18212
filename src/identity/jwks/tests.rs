use super::*;

/// Key material is only decoded when a token is verified: a 2048-bit-long modulus of zeros is
/// enough to test selection.
fn modulus(chars: usize) -> String {
    "A".repeat(chars)
}

fn configured() -> Vec<Algorithm> {
    vec![
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::HS256,
    ]
}

fn parse(body: &str, origin: Origin) -> (Vec<VerifyKey>, Vec<String>) {
    parse_jwks(body.as_bytes(), &configured(), origin).unwrap()
}

#[test]
fn urls_are_https_loopback_http_or_absolute_files() {
    let good = [
        "https://idp.example.com/.well-known/jwks.json",
        "http://127.0.0.1:8080/jwks",
        "http://[::1]/jwks",
        "http://localhost:9000/keys",
        "file:///etc/firewall/jwks.json",
    ];
    for text in good {
        assert!(text.parse::<JwksUrl>().is_ok(), "{text}");
    }
    let bad = [
        "http://idp.example.com/jwks",
        "http://10.0.0.1/jwks",
        "ftp://idp.example.com/jwks",
        "https://user:pw@idp.example.com/jwks",
        "file:relative.json",
        "jwks.json",
        "",
    ];
    for text in bad {
        let error = text.parse::<JwksUrl>().unwrap_err().to_string();
        assert!(error.contains("expected https://"), "{text}: {error}");
    }
    assert_eq!(
        "file:///etc/jwks.json".parse::<JwksUrl>().unwrap(),
        JwksUrl::File(PathBuf::from("/etc/jwks.json"))
    );
}

#[test]
fn a_url_list_needs_at_least_one_valid_url() {
    let urls = parse_jwks_urls(" https://a.example.com/jwks , file:///etc/jwks.json ").unwrap();
    assert_eq!(urls.len(), 2);
    assert!(parse_jwks_urls(" , ").is_err());
    assert!(parse_jwks_urls("https://a.example.com/jwks,http://b.example.com").is_err());
}

#[test]
fn a_key_may_verify_only_what_its_own_alg_or_type_allows() {
    let n = modulus(MIN_RSA_MODULUS_CHARS);
    let body = format!(
        r#"{{"keys":[
            {{"kty":"RSA","kid":"r1","alg":"RS256","n":"{n}","e":"AQAB"}},
            {{"kty":"RSA","kid":"r2","n":"{n}","e":"AQAB"}}
        ]}}"#
    );
    let (keys, skipped) = parse(&body, Origin::Remote);
    assert!(skipped.is_empty(), "{skipped:?}");
    let [pinned, family] = keys.as_slice() else {
        panic!("{keys:?}")
    };
    assert_eq!(pinned.algorithms, [Algorithm::RS256]);
    // No alg: the RSA family within the configured algorithms, never HS256.
    assert_eq!(family.algorithms, [Algorithm::RS256, Algorithm::PS256]);
}

#[test]
fn unusable_keys_are_skipped_with_a_reason() {
    let n = modulus(MIN_RSA_MODULUS_CHARS);
    let small = modulus(MIN_RSA_MODULUS_CHARS - 2);
    let body = format!(
        r#"{{"keys":[
            {{"kty":"RSA","kid":"enc","use":"enc","n":"{n}","e":"AQAB"}},
            {{"kty":"RSA","kid":"ops","key_ops":["encrypt"],"n":"{n}","e":"AQAB"}},
            {{"kty":"RSA","kid":"small","n":"{small}","e":"AQAB"}},
            {{"kty":"RSA","kid":"rs512","alg":"RS512","n":"{n}","e":"AQAB"}},
            {{"kty":"RSA","kid":"mismatch","alg":"ES256","n":"{n}","e":"AQAB"}},
            {{"kty":"oct","kid":"secret","k":"c2VjcmV0"}},
            {{"kty":"EC","kid":"p521","crv":"P-521","x":"AA","y":"AA"}},
            {{"kty":"XYZ","kid":"odd"}},
            {{"kty":"RSA","kid":"broken","use":5}}
        ]}}"#
    );
    let (keys, skipped) = parse(&body, Origin::Remote);
    assert!(keys.is_empty(), "{keys:?}");
    let expected = [
        "kid enc): not a signature key",
        "kid ops): not a verification key",
        "kid small): RSA key shorter than 2048 bits",
        "kid rs512): none of AUTH_JWT_ALGORITHMS fits",
        "kid mismatch): its alg does not fit its key type",
        "kid secret): symmetric (oct) keys are accepted only from file://",
        "kid p521): unsupported elliptic curve",
        "kid odd): unsupported key type",
        "kid broken): not a valid JWK",
    ];
    assert_eq!(skipped.len(), expected.len(), "{skipped:?}");
    for (reason, needle) in skipped.iter().zip(expected) {
        assert!(reason.contains(needle), "{reason} / {needle}");
    }
}

#[test]
fn symmetric_keys_are_taken_from_files_only_for_hmac() {
    let (keys, skipped) = parse(
        r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}]}"#,
        Origin::File,
    );
    assert!(skipped.is_empty(), "{skipped:?}");
    let [key] = keys.as_slice() else {
        panic!("{keys:?}")
    };
    assert_eq!(key.algorithms, [Algorithm::HS256]);
}

#[test]
fn a_document_that_is_not_a_key_set_is_an_error() {
    for body in ["", "[]", r#"{"key":[]}"#, "{\"keys\":{}}"] {
        assert!(
            parse_jwks(body.as_bytes(), &configured(), Origin::File).is_err(),
            "{body}"
        );
    }
}

#[test]
fn candidates_are_found_by_kid_and_filtered_by_algorithm() {
    let n = modulus(MIN_RSA_MODULUS_CHARS);
    let body = format!(
        r#"{{"keys":[
            {{"kty":"RSA","kid":"a","alg":"RS256","n":"{n}","e":"AQAB"}},
            {{"kty":"RSA","kid":"b","alg":"PS256","n":"{n}","e":"AQAB"}}
        ]}}"#
    );
    let (keys, _) = parse(&body, Origin::Remote);
    let set = KeySet::new(keys.into_iter().map(Arc::new).collect(), 1);
    let found = set.candidates(Some("a"), Algorithm::RS256).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kid(), Some("a"));
    assert_eq!(
        set.candidates(Some("a"), Algorithm::HS256).unwrap_err(),
        NoKey::AlgorithmNotAllowed
    );
    assert_eq!(
        set.candidates(Some("../../etc/passwd"), Algorithm::RS256)
            .unwrap_err(),
        NoKey::UnknownKid
    );
    let without_kid = set.candidates(None, Algorithm::PS256).unwrap();
    assert_eq!(without_kid.len(), 1);
    assert_eq!(without_kid[0].kid(), Some("b"));
}
