//! The guard at the door: the method, the content type and the CSRF rule, checked before the
//! body is read.
//!
//! # Threats
//! A page on another origin can make the victim's browser send a "simple" request — GET, or a POST
//! whose content type is `text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data` —
//! with the victim's cookies, and no preflight asks the API first. Such a request is only let through
//! when it carries a header that a browser would only send after a preflight the server allowed
//! (Apollo Router and Apollo Server use the same rule; see the Fetch standard's "CORS-safelisted
//! request-header" and "CORS-safelisted content type").

use axum::http::{HeaderMap, HeaderName, Method, header};

use crate::inspect::Transport;

/// Why a request is refused at the door.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("only GET and POST are supported")]
    Method,
    /// A request a browser could have sent cross-site without a preflight.
    #[error("{}", csrf_message(*.get, .required))]
    Csrf { get: bool, required: String },
    #[error("POST requests must have Content-Type: application/json (UTF-8)")]
    ContentType,
}

fn csrf_message(get: bool, required: &str) -> String {
    if get {
        format!(
            "a GET request must carry one of these headers (a browser sends them only after a CORS preflight): {required}"
        )
    } else {
        format!(
            "this request has a content type a browser may send cross-site; send Content-Type: application/json or one of these headers: {required}"
        )
    }
}

/// The guard's settings.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Any one of these (non-empty) proves a preflight; `None`: the CSRF guard is off.
    pub csrf_required_headers: Option<Vec<HeaderName>>,
}

impl Guard {
    /// The transport of an acceptable request (`OPTIONS` is not a GraphQL request: `None`).
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<Transport, GuardError> {
        let transport = match *method {
            // GraphQL over SSE: a stream of results is what a subscription reads.
            Method::GET if accepts(headers, "text/event-stream") => Transport::GetEventStream,
            Method::GET => Transport::Get,
            Method::POST => Transport::Post,
            _ => return Err(GuardError::Method),
        };
        if let Some(required) = &self.csrf_required_headers
            && !is_preflighted(headers, required)
        {
            let names: Vec<&str> = required.iter().map(HeaderName::as_str).collect();
            return Err(GuardError::Csrf {
                get: transport != Transport::Post,
                required: names.join(", "),
            });
        }
        if transport == Transport::Post && !is_json_post(headers) {
            return Err(GuardError::ContentType);
        }
        Ok(transport)
    }
}

/// The client's `Accept` lists `media` (case-insensitively) with a non-zero quality.
pub fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|listed| {
            let refused = listed.split(';').skip(1).any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            media_type(listed).eq_ignore_ascii_case(media) && !refused
        })
}

/// The media type of a `Content-Type`-like value, without its parameters (`text/plain` of
/// `TEXT/PLAIN; charset=utf-8`), as written: compare it case-insensitively.
pub fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or_default().trim()
}

/// True when the request cannot have been sent by a browser without a CORS preflight.
pub fn is_preflighted(headers: &HeaderMap, required_headers: &[HeaderName]) -> bool {
    !has_simple_content_type(headers)
        || required_headers.iter().any(|name| {
            headers
                .get(name)
                .is_some_and(|value| !value.as_bytes().trim_ascii().is_empty())
        })
}

/// A content type a browser may send without preflight, or none at all.
fn has_simple_content_type(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        return true;
    };
    // Several Content-Type headers: which one wins differs between parsers. Better safe than sorry.
    if values.next().is_some() {
        return true;
    }
    let Ok(value) = value.to_str() else {
        return true;
    };
    let essence = media_type(value);
    essence.is_empty()
        || [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ]
        .iter()
        .any(|simple| essence.eq_ignore_ascii_case(simple))
}

/// POST bodies must be JSON; `text/plain` or no type is read as JSON only once the CSRF guard
/// has established the request was preflighted (non-browser clients such as curl send those).
fn is_json_post(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let charset_ok = content_type.split(';').skip(1).all(|param| {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        !name.trim().eq_ignore_ascii_case("charset")
            || value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    });
    let essence = media_type(content_type);
    let json_like = ["application/json", "text/plain", ""]
        .iter()
        .any(|accepted| essence.eq_ignore_ascii_case(accepted));
    json_like && charset_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn required() -> Vec<HeaderName> {
        vec![
            HeaderName::from_static("apollo-require-preflight"),
            HeaderName::from_static("graphql-preflight"),
        ]
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn json_requests_are_preflighted() {
        assert!(is_preflighted(
            &headers(&[("content-type", "application/json")]),
            &required()
        ));
        assert!(is_preflighted(
            &headers(&[("content-type", "application/json; charset=utf-8")]),
            &required()
        ));
    }

    #[test]
    fn simple_content_types_without_a_required_header_are_not() {
        for content_type in [
            "text/plain",
            "TEXT/PLAIN;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ] {
            let map = headers(&[("content-type", content_type)]);
            assert!(!is_preflighted(&map, &required()), "{content_type}");
        }
        assert!(
            !is_preflighted(&HeaderMap::new(), &required()),
            "no content type"
        );
    }

    #[test]
    fn a_required_header_makes_any_request_preflighted() {
        let map = headers(&[("content-type", "text/plain"), ("graphql-preflight", "1")]);
        assert!(is_preflighted(&map, &required()));
        let get = headers(&[("apollo-require-preflight", "true")]);
        assert!(is_preflighted(&get, &required()));
    }

    #[test]
    fn an_empty_required_header_does_not_count() {
        let map = headers(&[("content-type", "text/plain"), ("graphql-preflight", " ")]);
        assert!(!is_preflighted(&map, &required()));
    }

    #[test]
    fn duplicate_content_types_are_treated_as_simple() {
        let map = headers(&[
            ("content-type", "application/json"),
            ("content-type", "text/plain"),
        ]);
        assert!(!is_preflighted(&map, &required()));
    }

    #[test]
    fn the_guard_names_the_transport_and_refuses_other_methods_and_types() {
        let guard = Guard {
            csrf_required_headers: Some(required()),
        };
        let json = headers(&[("content-type", "application/json")]);
        assert_eq!(guard.check(&Method::POST, &json), Ok(Transport::Post));
        assert_eq!(guard.check(&Method::PUT, &json), Err(GuardError::Method));
        let xml = headers(&[
            ("content-type", "application/xml"),
            ("graphql-preflight", "1"),
        ]);
        assert_eq!(
            guard.check(&Method::POST, &xml),
            Err(GuardError::ContentType)
        );
        let latin1 = headers(&[("content-type", "application/json; charset=latin1")]);
        assert_eq!(
            guard.check(&Method::POST, &latin1),
            Err(GuardError::ContentType)
        );
        let preflighted_get = headers(&[("graphql-preflight", "1")]);
        assert_eq!(
            guard.check(&Method::GET, &preflighted_get),
            Ok(Transport::Get)
        );
    }

    #[test]
    fn a_get_asking_for_an_event_stream_is_its_own_transport() {
        let guard = Guard {
            csrf_required_headers: None,
        };
        let sse = headers(&[("accept", "application/json, Text/Event-Stream")]);
        assert_eq!(
            guard.check(&Method::GET, &sse),
            Ok(Transport::GetEventStream)
        );
        let refused = headers(&[("accept", "text/event-stream;q=0")]);
        assert_eq!(guard.check(&Method::GET, &refused), Ok(Transport::Get));
        let post = headers(&[
            ("accept", "text/event-stream"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(guard.check(&Method::POST, &post), Ok(Transport::Post));
    }

    #[test]
    fn a_get_without_a_preflight_header_is_told_which_headers_to_send() {
        let guard = Guard {
            csrf_required_headers: Some(required()),
        };
        let error = guard.check(&Method::GET, &HeaderMap::new()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("GET") && message.contains("graphql-preflight"),
            "{message}"
        );
        assert!(!message.contains("content type"), "{message}");
        let off = Guard {
            csrf_required_headers: None,
        };
        assert_eq!(
            off.check(&Method::GET, &HeaderMap::new()),
            Ok(Transport::Get)
        );
    }
}
