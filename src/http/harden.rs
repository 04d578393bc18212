//! Response hardening at the HTTP edge: finds the upstream's JSON body (decompressing it when the
//! upstream compressed it), runs [`crate::sanitise`] on it, and sends the rewritten body.
//!
//! # Why here
//! Suggestion stripping that only works on identity-encoded bodies invites the shortcut of
//! dropping `Accept-Encoding` upstream (a peer does exactly that), which costs bandwidth on every
//! response. Instead a compressed body is decoded (bounded by `SANITISE_MAX_BYTES`, so a
//! decompression bomb from a compromised upstream cannot exhaust memory), sanitised, and — only
//! when something changed — sent as identity; an unchanged response keeps its original bytes.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;

use crate::sanitise::{self, Outcome};

use super::body::{BodyError, read_limited};
use super::guard::media_type;

/// Settings of the response hardening stage.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rules: sanitise::Settings,
    pub max_bytes: usize,
}

/// What happened to one response (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hardened {
    /// Nothing to change: the original bytes were sent.
    Unchanged,
    /// Errors were rewritten.
    Rewritten,
    /// Not JSON, or compressed with an encoding we do not decode: passed through.
    NotJson,
    /// Larger than `SANITISE_MAX_BYTES` once decoded: passed through.
    TooLarge,
}

impl Hardened {
    /// Metric and log label.
    pub fn as_str(self) -> &'static str {
        match self {
            Hardened::Unchanged => "unchanged",
            Hardened::Rewritten => "rewritten",
            Hardened::NotJson => "not_json",
            Hardened::TooLarge => "too_large",
        }
    }
}

/// Sanitises `body` in place when it is a GraphQL JSON response; adjusts `headers` to match.
pub async fn harden(
    settings: &Settings,
    headers: &mut HeaderMap,
    body: &mut Bytes,
    request_id: &str,
) -> Hardened {
    if !is_json(headers) {
        return Hardened::NotJson;
    }
    let decoded = if headers.contains_key(header::CONTENT_ENCODING) {
        match read_limited(headers, Body::from(body.clone()), settings.max_bytes).await {
            Ok(decoded) => decoded,
            Err(BodyError::TooLarge { .. }) => return Hardened::TooLarge,
            Err(BodyError::UnsupportedEncoding | BodyError::Unreadable | BodyError::Timeout) => {
                return Hardened::NotJson;
            }
        }
    } else if body.len() > settings.max_bytes {
        return Hardened::TooLarge;
    } else {
        // Identity: the bytes are already there, no need to stream them through a decoder.
        body.clone()
    };
    match sanitise::sanitise(&decoded, &settings.rules, request_id) {
        Outcome::Unchanged => Hardened::Unchanged,
        Outcome::NotJson => Hardened::NotJson,
        Outcome::Rewritten(rewritten) => {
            *body = Bytes::from(rewritten);
            headers.remove(header::CONTENT_ENCODING);
            // A validator of the old representation would now be wrong.
            headers.remove(header::ETAG);
            Hardened::Rewritten
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| media_type(v).to_ascii_lowercase())
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;

    use super::*;

    const SUGGESTION: &str = r#"{"errors":[{"message":"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?"}]}"#;

    fn settings(max_bytes: usize) -> Settings {
        Settings {
            rules: sanitise::Settings::default(),
            max_bytes,
        }
    }

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
        );
        headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
        headers
    }

    #[tokio::test]
    async fn a_suggestion_is_removed_and_the_validator_with_it() {
        let mut headers = json_headers();
        let mut body = Bytes::from_static(SUGGESTION.as_bytes());
        let outcome = harden(&settings(1 << 20), &mut headers, &mut body, "r1").await;
        assert_eq!(outcome, Hardened::Rewritten);
        let text = std::str::from_utf8(&body).unwrap();
        assert!(!text.contains("Did you mean"), "{text}");
        assert!(headers.get(header::ETAG).is_none());
    }

    #[tokio::test]
    async fn a_gzip_body_is_decoded_sanitised_and_sent_as_identity() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(SUGGESTION.as_bytes()).unwrap();
        let mut body = Bytes::from(encoder.finish().unwrap());
        let mut headers = json_headers();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let outcome = harden(&settings(1 << 20), &mut headers, &mut body, "r1").await;
        assert_eq!(outcome, Hardened::Rewritten);
        assert!(headers.get(header::CONTENT_ENCODING).is_none());
        assert!(!std::str::from_utf8(&body).unwrap().contains("Did you mean"));
    }

    #[tokio::test]
    async fn an_answer_without_errors_keeps_its_bytes() {
        let original = Bytes::from_static(br#"{"data":{"a":1}}"#);
        let mut body = original.clone();
        let mut headers = json_headers();
        let outcome = harden(&settings(1 << 20), &mut headers, &mut body, "r1").await;
        assert_eq!(outcome, Hardened::Unchanged);
        assert_eq!(body, original);
        assert!(headers.get(header::ETAG).is_some());
    }

    #[tokio::test]
    async fn other_media_types_and_oversized_bodies_are_reported() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        let mut body = Bytes::from_static(SUGGESTION.as_bytes());
        assert_eq!(
            harden(&settings(1 << 20), &mut headers, &mut body, "r1").await,
            Hardened::NotJson
        );
        let mut headers = json_headers();
        assert_eq!(
            harden(&settings(16), &mut headers, &mut body, "r1").await,
            Hardened::TooLarge
        );
    }
}
