//! Security headers on every answer: `X-Content-Type-Options`, `Referrer-Policy`,
//! `Content-Security-Policy: frame-ancestors 'none'`, `Strict-Transport-Security` when `HSTS` is
//! set (each only where the upstream did not set its own), `Cache-Control: no-store` on the
//! firewall's own answers, and no `Server` / `X-Powered-By`.
//!
//! # Threats
//! - Fingerprinting: tools such as graphw00f name the GraphQL engine behind an endpoint from its
//!   answers, and `Server: …` / `X-Powered-By: Express` make it easier; they are removed.
//! - A JSON answer sniffed as HTML, framed by another site (clickjacking), leaking the page URL
//!   in `Referer`, or a refusal cached by a shared proxy and served to the next caller: the
//!   headers above rule each out. HSTS is opt-in because it binds the whole host to HTTPS for
//!   its `max-age`, which only the operator can decide.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::str::FromStr;

use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Headers that only say which software answered.
const FINGERPRINTS: [HeaderName; 4] = [
    HeaderName::from_static("server"),
    HeaderName::from_static("x-powered-by"),
    HeaderName::from_static("x-aspnet-version"),
    HeaderName::from_static("x-aspnetmvc-version"),
];

/// Who produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Forwarded from the upstream.
    Upstream,
    /// The firewall's own (a refusal, a preflight, a health answer): never cacheable.
    Firewall,
}

/// `HSTS`: a `Strict-Transport-Security` value, e.g. `max-age=31536000; includeSubDomains`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hsts(HeaderValue);

/// Why `HSTS` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid HSTS {0:?}: expected off, or max-age=<seconds> optionally followed by ; includeSubDomains and ; preload (e.g. max-age=31536000; includeSubDomains)"
)]
pub struct HstsError(String);

/// `HSTS`: `off` (the default) or the header value.
pub fn parse_hsts(text: &str) -> Result<Option<Hsts>, HstsError> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse().map(Some)
}

impl FromStr for Hsts {
    type Err = HstsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || HstsError(text.to_owned());
        let mut directives = text.split(';').map(str::trim);
        let max_age = directives
            .next()
            .and_then(|first| first.split_once('='))
            .filter(|(name, _)| name.trim().eq_ignore_ascii_case("max-age"))
            .and_then(|(_, seconds)| seconds.trim().parse::<u64>().ok())
            .ok_or_else(invalid)?;
        let mut value = format!("max-age={max_age}");
        let (mut subdomains, mut preload) = (false, false);
        for directive in directives.filter(|d| !d.is_empty()) {
            let seen = if directive.eq_ignore_ascii_case("includeSubDomains") {
                std::mem::replace(&mut subdomains, true)
            } else if directive.eq_ignore_ascii_case("preload") {
                std::mem::replace(&mut preload, true)
            } else {
                return Err(invalid());
            };
            if seen {
                return Err(invalid());
            }
        }
        if subdomains {
            value.push_str("; includeSubDomains");
        }
        if preload {
            value.push_str("; preload");
        }
        HeaderValue::from_str(&value)
            .map(Hsts)
            .map_err(|_| invalid())
    }
}

/// The headers every answer gets.
#[derive(Debug, Clone, Default)]
pub struct SecurityHeaders {
    hsts: Option<Hsts>,
}

impl SecurityHeaders {
    pub fn new(hsts: Option<Hsts>) -> SecurityHeaders {
        SecurityHeaders { hsts }
    }

    /// Adds what is missing and removes the fingerprints.
    pub fn apply(&self, headers: &mut HeaderMap, answer: Answer) {
        // A look at the few names present costs less than hashing each fingerprint's.
        if headers.keys().any(|name| FINGERPRINTS.contains(name)) {
            for name in &FINGERPRINTS {
                headers.remove(name);
            }
        }
        set_default(headers, X_CONTENT_TYPE_OPTIONS, "nosniff");
        set_default(headers, REFERRER_POLICY, "no-referrer");
        set_default(headers, CONTENT_SECURITY_POLICY, "frame-ancestors 'none'");
        if let Some(Hsts(value)) = &self.hsts {
            headers
                .entry(STRICT_TRANSPORT_SECURITY)
                .or_insert_with(|| value.clone());
        }
        if answer == Answer::Firewall {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    headers
        .entry(name)
        .or_insert_with(|| HeaderValue::from_static(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn an_upstream_answer_gets_the_missing_headers_and_loses_its_fingerprints() {
        let mut answer = headers(&[
            ("content-type", "application/json"),
            ("server", "nginx/1.25"),
            ("x-powered-by", "Express"),
            ("x-aspnet-version", "4.0"),
            ("cache-control", "max-age=60"),
        ]);
        SecurityHeaders::new(None).apply(&mut answer, Answer::Upstream);
        assert_eq!(answer.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(answer.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(
            answer.get("content-security-policy").unwrap(),
            "frame-ancestors 'none'"
        );
        assert_eq!(answer.get("cache-control").unwrap(), "max-age=60");
        assert!(answer.get("strict-transport-security").is_none());
        for gone in ["server", "x-powered-by", "x-aspnet-version"] {
            assert!(answer.get(gone).is_none(), "{gone}");
        }
        assert_eq!(answer.get("content-type").unwrap(), "application/json");
    }

    #[test]
    fn headers_the_upstream_set_are_kept() {
        let mut answer = headers(&[
            ("referrer-policy", "strict-origin"),
            ("content-security-policy", "default-src 'self'"),
            ("strict-transport-security", "max-age=60"),
        ]);
        let hsts = parse_hsts("max-age=31536000").unwrap();
        SecurityHeaders::new(hsts).apply(&mut answer, Answer::Upstream);
        assert_eq!(answer.get("referrer-policy").unwrap(), "strict-origin");
        assert_eq!(
            answer.get("content-security-policy").unwrap(),
            "default-src 'self'"
        );
        assert_eq!(
            answer.get("strict-transport-security").unwrap(),
            "max-age=60"
        );
        assert_eq!(answer.get_all("referrer-policy").iter().count(), 1);
    }

    #[test]
    fn the_firewalls_own_answers_are_not_cacheable_and_carry_hsts_when_configured() {
        let mut answer = headers(&[("content-type", "application/graphql-response+json")]);
        let hsts = parse_hsts("max-age=31536000; includeSubDomains").unwrap();
        SecurityHeaders::new(hsts).apply(&mut answer, Answer::Firewall);
        assert_eq!(answer.get("cache-control").unwrap(), "no-store");
        assert_eq!(
            answer.get("strict-transport-security").unwrap(),
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(answer.get("x-content-type-options").unwrap(), "nosniff");
    }

    #[test]
    fn hsts_values_are_normalised_or_refused() {
        let table: &[(&str, Option<&str>)] = &[
            ("off", None),
            ("OFF", None),
            ("max-age=0", Some("max-age=0")),
            ("MAX-AGE = 600", Some("max-age=600")),
            (
                "max-age=63072000;includesubdomains; Preload",
                Some("max-age=63072000; includeSubDomains; preload"),
            ),
        ];
        for (text, want) in table {
            let got = parse_hsts(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                got.map(|Hsts(v)| v.to_str().unwrap().to_owned()).as_deref(),
                *want,
                "{text}"
            );
        }
        for bad in [
            "",
            "on",
            "max-age",
            "max-age=-1",
            "max-age=1y",
            "includeSubDomains",
            "max-age=1; preload; preload",
            "max-age=1; always",
        ] {
            let error = parse_hsts(bad).unwrap_err().to_string();
            assert!(
                error.contains("expected off, or max-age=<seconds>"),
                "{bad}: {error}"
            );
        }
    }
}
