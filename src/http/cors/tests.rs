use super::*;

fn cors(origins: &str, credentials: bool) -> Cors {
    Cors::new(CorsSettings {
        origins: origins.parse().unwrap(),
        credentials,
        allow_headers: parse_header_list(DEFAULT_ALLOW_HEADERS).unwrap(),
        expose_headers: parse_header_list(DEFAULT_EXPOSE_HEADERS).unwrap(),
        max_age: Some(Duration::from_secs(600)),
    })
    .unwrap()
}

fn request(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

fn access_control(headers: &HeaderMap) -> Vec<&str> {
    headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

#[test]
fn the_preflight_matrix_allows_exactly_allowed_origin_method_and_headers() {
    let origins = [
        ("https://app.example.com", true),
        ("https://APP.example.com", true),
        ("https://a.b.shop.example.net", true),
        ("https://evil.example.org", false),
        ("https://shop.example.net", false),
        ("http://app.example.com", false),
        ("null", false),
    ];
    let methods = [
        ("GET", true),
        ("POST", true),
        ("PUT", false),
        ("DELETE", false),
        ("post", false),
    ];
    let requested_headers: [(Option<&str>, bool); 5] = [
        (None, true),
        (Some("content-type"), true),
        (
            Some("Content-Type, Authorization, apollo-require-preflight"),
            true,
        ),
        (Some("content-type, x-evil"), false),
        (Some("cookie"), false),
    ];
    let mut cases = 0;
    for credentials in [false, true] {
        let policy = cors(
            "https://app.example.com, https://*.shop.example.net",
            credentials,
        );
        for (origin, origin_ok) in origins {
            for (method, method_ok) in methods {
                for (headers, headers_ok) in requested_headers {
                    let mut pairs = vec![
                        ("origin", origin),
                        ("access-control-request-method", method),
                    ];
                    if let Some(headers) = headers {
                        pairs.push(("access-control-request-headers", headers));
                    }
                    let request = request(&pairs);
                    assert!(Cors::is_preflight(&Method::OPTIONS, &request));
                    let answer = policy.preflight(&request);
                    let case = format!("{origin} {method} {headers:?} credentials={credentials}");
                    assert_eq!(
                        answer.headers.get(VARY).unwrap(),
                        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
                        "{case}"
                    );
                    if origin_ok && method_ok && headers_ok {
                        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{case}");
                        let h = &answer.headers;
                        assert_eq!(
                            h.get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
                            origin,
                            "{case}"
                        );
                        assert_eq!(h.get(ACCESS_CONTROL_ALLOW_METHODS).unwrap(), "GET, POST");
                        assert!(
                            h.get(ACCESS_CONTROL_ALLOW_HEADERS)
                                .unwrap()
                                .to_str()
                                .unwrap()
                                .contains("authorization")
                        );
                        assert_eq!(h.get(ACCESS_CONTROL_MAX_AGE).unwrap(), "600");
                        assert_eq!(
                            h.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_some(),
                            credentials,
                            "{case}"
                        );
                    } else {
                        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{case}");
                        assert!(access_control(&answer.headers).is_empty(), "{case}");
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 2 * 7 * 5 * 5);
}

#[test]
fn a_wildcard_policy_answers_star_and_never_null() {
    let policy = cors("*", false);
    let answer = policy.preflight(&request(&[
        ("origin", "https://anyone.example"),
        ("access-control-request-method", "POST"),
    ]));
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(
        answer.headers.get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        "*"
    );
    assert!(
        answer
            .headers
            .get(ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none()
    );
    let null = policy.preflight(&request(&[
        ("origin", "null"),
        ("access-control-request-method", "POST"),
    ]));
    assert_eq!(null.status, StatusCode::FORBIDDEN);
}

#[test]
fn only_options_with_origin_and_request_method_is_a_preflight() {
    let full = request(&[
        ("origin", "https://app.example.com"),
        ("access-control-request-method", "POST"),
    ]);
    assert!(Cors::is_preflight(&Method::OPTIONS, &full));
    assert!(!Cors::is_preflight(&Method::POST, &full));
    assert!(!Cors::is_preflight(
        &Method::OPTIONS,
        &request(&[("origin", "https://app.example.com")])
    ));
    assert!(!Cors::is_preflight(
        &Method::OPTIONS,
        &request(&[("access-control-request-method", "POST")])
    ));
}

#[test]
fn two_origin_headers_are_not_an_allowed_origin() {
    let policy = cors("https://app.example.com", false);
    let answer = policy.preflight(&request(&[
        ("origin", "https://app.example.com"),
        ("origin", "https://evil.example.org"),
        ("access-control-request-method", "POST"),
    ]));
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[test]
fn actual_answers_echo_an_allowed_origin_and_always_vary_on_origin() {
    let policy = cors("https://app.example.com", true);
    let mut upstream = request(&[
        ("content-type", "application/json"),
        ("vary", "Accept-Encoding"),
        ("access-control-allow-origin", "*"),
        ("access-control-allow-credentials", "false"),
    ]);
    policy.apply(
        &request(&[("origin", "https://app.example.com")]),
        &mut upstream,
    );
    assert_eq!(
        upstream.get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        "https://app.example.com"
    );
    assert_eq!(
        upstream.get_all(ACCESS_CONTROL_ALLOW_ORIGIN).iter().count(),
        1
    );
    assert_eq!(
        upstream.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).unwrap(),
        "true"
    );
    assert!(
        upstream
            .get(ACCESS_CONTROL_EXPOSE_HEADERS)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("retry-after")
    );
    let vary: Vec<_> = upstream.get_all(VARY).iter().collect();
    assert_eq!(vary, ["Accept-Encoding", "Origin"]);

    let mut denied = request(&[("access-control-allow-origin", "*")]);
    policy.apply(
        &request(&[("origin", "https://evil.example.org")]),
        &mut denied,
    );
    assert!(access_control(&denied).is_empty(), "{denied:?}");
    assert_eq!(denied.get(VARY).unwrap(), "Origin");

    let mut no_origin = HeaderMap::new();
    policy.apply(&HeaderMap::new(), &mut no_origin);
    assert!(access_control(&no_origin).is_empty());
    assert_eq!(no_origin.get(VARY).unwrap(), "Origin");
}

#[test]
fn vary_origin_is_not_added_twice() {
    let policy = cors("https://app.example.com", false);
    for existing in ["origin", "Accept-Encoding, Origin", "*"] {
        let mut response = request(&[("vary", existing)]);
        policy.apply(&HeaderMap::new(), &mut response);
        assert_eq!(response.get_all(VARY).iter().count(), 1, "{existing}");
    }
}

#[test]
fn wildcard_with_credentials_is_a_configuration_error_not_a_panic() {
    let error = Cors::new(CorsSettings {
        origins: AllowedOrigins::Any,
        credentials: true,
        allow_headers: Vec::new(),
        expose_headers: Vec::new(),
        max_age: None,
    })
    .unwrap_err();
    assert_eq!(error, CorsConfigError::WildcardWithCredentials);
    assert!(error.to_string().contains("list the origins instead"));
}

#[test]
fn origin_lists_parse_to_normalised_rules() {
    let parsed: AllowedOrigins =
        " https://App.Example.com:443/ , http://localhost:3000, https://*.example.com:8443"
            .parse()
            .unwrap();
    assert_eq!(
        parsed,
        AllowedOrigins::List(vec![
            OriginRule::Exact("https://app.example.com".to_owned()),
            OriginRule::Exact("http://localhost:3000".to_owned()),
            OriginRule::Subdomains {
                scheme: "https".to_owned(),
                suffix: ".example.com".to_owned(),
                port: Some(8443),
            },
        ])
    );
    assert_eq!("*".parse(), Ok(AllowedOrigins::Any));
}

#[test]
fn bad_origin_entries_are_refused_with_what_is_accepted() {
    let table: &[(&str, &str)] = &[
        ("", "expected scheme://host[:port]"),
        ("app.example.com", "expected scheme://host[:port]"),
        ("ftp://app.example.com", "expected scheme://host[:port]"),
        (
            "https://app.example.com/graphql",
            "expected scheme://host[:port]",
        ),
        (
            "https://user@app.example.com",
            "expected scheme://host[:port]",
        ),
        (
            "https://app.example.com?x=1",
            "expected scheme://host[:port]",
        ),
        ("null", "never allowed"),
        ("*, https://app.example.com", "cannot be combined"),
        ("https://*.com", "followed by at least two labels"),
        ("https://*example.com", "* must be the whole leftmost label"),
        (
            "https://app.*.example.com",
            "* must be the whole leftmost label",
        ),
        (
            "https://*.example.com/path",
            "* must be the whole leftmost label",
        ),
        (
            "https://*.exa mple.com",
            "* must be the whole leftmost label",
        ),
        (
            "https://*.example.com:http",
            "* must be the whole leftmost label",
        ),
    ];
    for (text, needle) in table {
        let error = text.parse::<AllowedOrigins>().unwrap_err().to_string();
        assert!(error.contains(needle), "{text}: {error}");
    }
}

#[test]
fn subdomain_patterns_match_only_whole_labels_under_the_suffix() {
    let rule = match "https://*.example.com".parse::<AllowedOrigins>().unwrap() {
        AllowedOrigins::List(mut rules) => rules.remove(0),
        AllowedOrigins::Any => panic!("not a list"),
    };
    let table = [
        ("https://app.example.com", true),
        ("https://a.b.example.com", true),
        ("https://x-1.example.com", true),
        ("https://example.com", false),
        ("https://.example.com", false),
        ("https://a..example.com", false),
        ("https://evil-example.com", false),
        ("https://evilexample.com", false),
        ("https://app.example.com.evil.net", false),
        ("https://app.example.com:8443", false),
        ("http://app.example.com", false),
        ("https://app_x.example.com", false),
        ("https://app.example.co", false),
    ];
    for (origin, want) in table {
        assert_eq!(rule.matches(origin), want, "{origin}");
    }
}

#[test]
fn header_lists_refuse_invalid_names() {
    assert_eq!(parse_header_list("").unwrap(), Vec::<HeaderName>::new());
    assert_eq!(parse_header_list("X-A, x-b").unwrap().len(), 2);
    assert!(parse_header_list("x a").is_err());
    assert!(parse_header_list("*").is_err());
}
