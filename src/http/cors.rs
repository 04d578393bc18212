//! CORS, decided by the firewall: which browser origins may call the GraphQL endpoint
//! (`CORS_ALLOW_ORIGINS`, `CORS_ALLOW_CREDENTIALS`, `CORS_ALLOW_HEADERS`, `CORS_EXPOSE_HEADERS`,
//! `CORS_MAX_AGE`). Preflights are answered here and never forwarded; every other answer gets its
//! CORS headers from [`Cors::apply`], and the upstream's own `Access-Control-*` headers are dropped.
//!
//! # Threats
//! - A wildcard origin with credentials would let any site read a logged-in user's data; it is a
//!   configuration error ([`CorsConfigError::WildcardWithCredentials`]), never a panic (tower-http's
//!   `CorsLayer` panics on it) and never silently "fixed" by echoing every origin.
//! - Origin patterns are anchored and matched label by label without regular expressions:
//!   `https://*.example.com` matches `https://app.example.com` and `https://a.b.example.com`, never
//!   `https://example.com`, `https://evil-example.com`, `https://example.com.evil.net`, another
//!   scheme or another port. `null` (sandboxed frames, `file:` pages) is never allowed.
//! - A shared cache must not serve one origin's answer to another: `Vary: Origin` is on every
//!   answer once CORS is configured, whether or not the origin matched.
//!
//! # CORS and the CSRF guard
//! They do different jobs and both stay on. CORS tells a browser which origins may *read* answers
//! and send non-simple requests; it cannot stop a "simple" cross-site request (a form POST), which
//! browsers send without asking. The CSRF guard refuses exactly those. Listing the CSRF guard's
//! headers (e.g. `apollo-require-preflight`) in `CORS_ALLOW_HEADERS` lets allowed origins send them.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::str::FromStr;
use std::time::Duration;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// The methods the GraphQL endpoint serves to browsers.
const ALLOWED_METHODS: &str = "GET, POST";
/// `CORS_ALLOW_HEADERS` when unset: the JSON content type, bearer tokens and the CSRF guard's
/// default headers.
pub const DEFAULT_ALLOW_HEADERS: &str = "content-type, authorization, x-apollo-operation-name, apollo-require-preflight, graphql-preflight";
/// `CORS_EXPOSE_HEADERS` when unset: what a browser client needs to back off and report.
pub const DEFAULT_EXPOSE_HEADERS: &str =
    "retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, x-request-id";

/// Why the CORS settings cannot be used; each message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorsConfigError {
    #[error(
        "invalid origin {0:?}: expected scheme://host[:port] with no path (e.g. https://app.example.com), a pattern such as https://*.example.com, or * alone"
    )]
    Origin(String),
    #[error(
        "invalid origin pattern {0:?}: * must be the whole leftmost label, followed by at least two labels (https://*.example.com)"
    )]
    Pattern(String),
    #[error("the origin null is never allowed: any sandboxed frame or file: page sends it")]
    NullOrigin,
    #[error("* allows every origin and cannot be combined with other origins")]
    WildcardMixed,
    #[error(
        "CORS_ALLOW_ORIGINS=* with CORS_ALLOW_CREDENTIALS=on would let any site act as the logged-in user: list the origins instead"
    )]
    WildcardWithCredentials,
    #[error("invalid header list {0:?}: expected comma-separated HTTP header names (no *)")]
    Headers(String),
}

/// `CORS_ALLOW_ORIGINS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: any origin, never with credentials.
    Any,
    /// Exact origins and patterns, at least one.
    List(Vec<OriginRule>),
}

/// One entry of the origin list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRule {
    /// `https://app.example.com`, normalised to lower case without a default port.
    Exact(String),
    /// `https://*.example.com[:8443]`: one or more labels in front of `suffix`.
    Subdomains {
        scheme: String,
        /// Starts with a dot: `.example.com`.
        suffix: String,
        port: Option<u16>,
    },
}

impl FromStr for AllowedOrigins {
    type Err = CorsConfigError;

    /// A comma-separated list; `*` alone for any origin.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let entries: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.contains(&"*") {
            return if entries.len() == 1 {
                Ok(AllowedOrigins::Any)
            } else {
                Err(CorsConfigError::WildcardMixed)
            };
        }
        if entries.is_empty() {
            return Err(CorsConfigError::Origin(text.to_owned()));
        }
        entries
            .into_iter()
            .map(parse_rule)
            .collect::<Result<Vec<_>, _>>()
            .map(AllowedOrigins::List)
    }
}

fn parse_rule(entry: &str) -> Result<OriginRule, CorsConfigError> {
    if entry.eq_ignore_ascii_case("null") {
        return Err(CorsConfigError::NullOrigin);
    }
    let lower = entry.to_ascii_lowercase();
    let (scheme, rest) = lower
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .ok_or_else(|| CorsConfigError::Origin(entry.to_owned()))?;
    if let Some(pattern) = rest.strip_prefix("*.") {
        let pattern_error = || CorsConfigError::Pattern(entry.to_owned());
        let (host, port) = split_port(pattern).ok_or_else(pattern_error)?;
        let labels_ok = host.split('.').all(is_dns_label);
        if !labels_ok || host.split('.').count() < 2 {
            return Err(pattern_error());
        }
        return Ok(OriginRule::Subdomains {
            scheme: scheme.to_owned(),
            suffix: format!(".{host}"),
            port: port.filter(|&p| Some(p) != default_port(scheme)),
        });
    }
    if rest.contains('*') {
        return Err(CorsConfigError::Pattern(entry.to_owned()));
    }
    let url = url::Url::parse(&lower).map_err(|_| CorsConfigError::Origin(entry.to_owned()))?;
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && !rest.trim_end_matches('/').contains('/');
    if !bare || url.host().is_none() {
        return Err(CorsConfigError::Origin(entry.to_owned()));
    }
    Ok(OriginRule::Exact(url.origin().ascii_serialization()))
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `host[:port]` → (host, port); `None` when the port is not a number.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl OriginRule {
    /// `origin` is already lower case.
    fn matches(&self, origin: &str) -> bool {
        match self {
            OriginRule::Exact(exact) => exact == origin,
            OriginRule::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                let Some(rest) = origin
                    .strip_prefix(scheme.as_str())
                    .and_then(|rest| rest.strip_prefix("://"))
                else {
                    return false;
                };
                let Some((host, origin_port)) = split_port(rest) else {
                    return false;
                };
                let Some(labels) = host.strip_suffix(suffix.as_str()) else {
                    return false;
                };
                origin_port == *port && labels.split('.').all(is_dns_label)
            }
        }
    }
}

/// A comma-separated list of header names (`CORS_ALLOW_HEADERS`, `CORS_EXPOSE_HEADERS`); empty is
/// allowed (no header).
pub fn parse_header_list(text: &str) -> Result<Vec<HeaderName>, CorsConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| match name {
            // A valid header-name character, but a wildcard to browsers: never meant here.
            "*" => Err(CorsConfigError::Headers(text.to_owned())),
            _ => HeaderName::from_str(name).map_err(|_| CorsConfigError::Headers(text.to_owned())),
        })
        .collect()
}

/// The CORS settings as configured.
#[derive(Debug, Clone)]
pub struct CorsSettings {
    pub origins: AllowedOrigins,
    /// `CORS_ALLOW_CREDENTIALS` (default off).
    pub credentials: bool,
    pub allow_headers: Vec<HeaderName>,
    pub expose_headers: Vec<HeaderName>,
    /// `CORS_MAX_AGE`: how long a browser may reuse a preflight answer; `None`: its default (5 s).
    pub max_age: Option<Duration>,
}

/// The validated policy, with its header values prepared once.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: AllowedOrigins,
    credentials: bool,
    allow_headers: Vec<HeaderName>,
    allow_headers_value: Option<HeaderValue>,
    expose_headers_value: Option<HeaderValue>,
    max_age_value: Option<HeaderValue>,
}

/// The answer to a preflight; the firewall sends it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// 204 when allowed, 403 when not.
    pub status: StatusCode,
    /// The `Access-Control-*` headers (none when refused) and `Vary`.
    pub headers: HeaderMap,
}

impl Cors {
    pub fn new(settings: CorsSettings) -> Result<Cors, CorsConfigError> {
        if settings.credentials && settings.origins == AllowedOrigins::Any {
            return Err(CorsConfigError::WildcardWithCredentials);
        }
        let join = |names: &[HeaderName]| {
            let joined = names
                .iter()
                .map(HeaderName::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            (!joined.is_empty())
                .then(|| HeaderValue::from_str(&joined))
                .transpose()
                .map_err(|_| CorsConfigError::Headers(joined.clone()))
        };
        Ok(Cors {
            allow_headers_value: join(&settings.allow_headers)?,
            expose_headers_value: join(&settings.expose_headers)?,
            max_age_value: settings.max_age.map(|age| HeaderValue::from(age.as_secs())),
            origins: settings.origins,
            credentials: settings.credentials,
            allow_headers: settings.allow_headers,
        })
    }

    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`. Any other
    /// `OPTIONS` is an ordinary request.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers.contains_key(ORIGIN)
            && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// Answers a preflight: 204 with the policy's headers when the origin, the method and every
    /// requested header are allowed; else 403 with no `Access-Control-*` header at all.
    pub fn preflight(&self, request: &HeaderMap) -> Preflight {
        let mut headers = HeaderMap::new();
        headers.insert(
            VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        let allowed = self
            .allowed_origin(request)
            .filter(|_| self.method_allowed(request) && self.requested_headers_allowed(request));
        let Some(origin) = allowed else {
            return Preflight {
                status: StatusCode::FORBIDDEN,
                headers,
            };
        };
        self.insert_origin(&mut headers, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        if let Some(value) = &self.allow_headers_value {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, value.clone());
        }
        if let Some(value) = &self.max_age_value {
            headers.insert(ACCESS_CONTROL_MAX_AGE, value.clone());
        }
        Preflight {
            status: StatusCode::NO_CONTENT,
            headers,
        }
    }

    /// Sets the CORS headers of any other answer (forwarded or the firewall's own): the upstream's
    /// `Access-Control-*` headers are removed, `Vary: Origin` is added, and an allowed origin gets
    /// `Access-Control-Allow-Origin` (plus credentials and exposed headers as configured).
    pub fn apply(&self, request: &HeaderMap, response: &mut HeaderMap) {
        let upstream_cors: Vec<HeaderName> = response
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in upstream_cors {
            response.remove(name);
        }
        add_vary_origin(response);
        if let Some(origin) = self.allowed_origin(request) {
            self.insert_origin(response, origin);
            if let Some(value) = &self.expose_headers_value {
                response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, value.clone());
            }
        }
    }

    /// The request's `Origin` when exactly one is sent and it is allowed.
    fn allowed_origin<'a>(&self, request: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let mut values = request.get_all(ORIGIN).iter();
        let origin = values.next()?;
        if values.next().is_some() {
            return None;
        }
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        let allowed = match &self.origins {
            AllowedOrigins::Any => text != "null",
            AllowedOrigins::List(rules) => rules.iter().any(|rule| rule.matches(&text)),
        };
        allowed.then_some(origin)
    }

    fn insert_origin(&self, headers: &mut HeaderMap, origin: &HeaderValue) {
        match &self.origins {
            AllowedOrigins::Any => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            }
            AllowedOrigins::List(_) => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            }
        }
        if self.credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    fn method_allowed(&self, request: &HeaderMap) -> bool {
        // Methods are case-sensitive (Fetch); browsers upper-case the standard ones.
        request
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .is_some_and(|method| matches!(method.as_bytes(), b"GET" | b"POST"))
    }

    fn requested_headers_allowed(&self, request: &HeaderMap) -> bool {
        request
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .all(|value| match value.to_str() {
                Ok(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .all(|name| {
                        self.allow_headers
                            .iter()
                            .any(|allowed| allowed.as_str().eq_ignore_ascii_case(name))
                    }),
                Err(_) => false,
            })
    }
}

/// Adds `Origin` to `Vary` unless it is there already (or `Vary: *` makes it moot).
fn add_vary_origin(response: &mut HeaderMap) {
    let present = response.get_all(VARY).iter().any(|value| {
        value.to_str().is_ok_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|name| name == "*" || name.eq_ignore_ascii_case("origin"))
        })
    });
    if !present {
        response.append(VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests;
