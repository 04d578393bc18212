//! CSRF guard: refuse requests a browser could send cross-site without a CORS preflight.
//!
//! # Threats
//! A page on another origin can make the victim's browser send a "simple" request — GET, or a POST
//! whose content type is `text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data` —
//! with the victim's cookies, and no preflight asks the API first. Such a request is only let through
//! when it carries a header that a browser would only send after a preflight the server allowed
//! (Apollo Router and Apollo Server use the same rule; see the Fetch standard's "CORS-safelisted
//! request-header" and "CORS-safelisted content type").

use axum::http::{HeaderMap, header};

/// True when the request cannot have been sent by a browser without a CORS preflight.
pub fn is_preflighted(headers: &HeaderMap, required_headers: &[String]) -> bool {
    !has_simple_content_type(headers)
        || required_headers.iter().any(|name| {
            headers
                .get(name.as_str())
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
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.is_empty()
        || [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ]
        .iter()
        .any(|simple| essence.eq_ignore_ascii_case(simple))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn required() -> Vec<String> {
        vec![
            "apollo-require-preflight".to_owned(),
            "graphql-preflight".to_owned(),
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
}
