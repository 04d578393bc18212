use std::time::Duration;

use super::parse::*;
use super::*;
use crate::rules::{Introspection, Mode, Rule};

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<&str, &str> = vars.iter().copied().collect();
    Config::from_source(&map, Profile::Serve)
}

#[test]
fn defaults_are_secure_and_documented() {
    let config = load(&[(UPSTREAM_URL, "http://127.0.0.1:4000/graphql")]).unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.requests.max_body_bytes, 1 << 20);
    assert_eq!(config.server.upstream.timeout, Duration::from_secs(30));
    assert_eq!(config.requests.max_batch, Some(5));
    assert!(config.requests.csrf_required_headers.is_some());
    assert_eq!(config.limits.reject_status, RejectStatus::BadRequest);
    assert_eq!(config.limits.limits.introspection, Introspection::Block);
    assert_eq!(config.hardening.mask, MaskErrors::Details);
    assert_eq!(config.limits.limits.depth, Some(10));
    assert_eq!(config.clients.rate_limit, None);
}

#[test]
fn missing_upstream_names_the_variable() {
    let err = load(&[]).unwrap_err();
    assert!(err.to_string().contains(UPSTREAM_URL), "{err}");
}

#[test]
fn demo_profile_does_not_need_an_upstream() {
    let map: HashMap<&str, &str> = HashMap::new();
    assert!(Config::from_source(&map, Profile::Demo).is_ok());
}

#[test]
fn invalid_value_names_variable_value_and_accepted_forms() {
    let err = load(&[
        (UPSTREAM_URL, "http://127.0.0.1:4000/graphql"),
        (MAX_BODY_BYTES, "lots"),
    ])
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(MAX_BODY_BYTES) && text.contains("\"lots\"") && text.contains("MiB"),
        "{text}"
    );
}

#[test]
fn unknown_prefixed_variable_is_reported() {
    // A typo of MAX_DEPTH, built from the prefix so that it appears nowhere as a real name.
    let typo = format!("{PREFIX}MAX_DEPHT");
    let err = load(&[
        (UPSTREAM_URL, "http://127.0.0.1:4000/graphql"),
        (&typo, "3"),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        ConfigError::Unknown {
            names: vec![typo.clone()]
        }
    );
}

#[test]
fn upstream_must_be_http() {
    for bad in ["ftp://x/graphql", "not a url", "http://"] {
        assert!(load(&[(UPSTREAM_URL, bad)]).is_err(), "{bad}");
    }
}

#[test]
fn durations_parse() {
    for (text, expected) in [
        ("500ms", Duration::from_millis(500)),
        ("30s", Duration::from_secs(30)),
        ("30", Duration::from_secs(30)),
        ("2m", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
    ] {
        assert_eq!(parse_duration(text), Ok(expected), "text={text:?}");
    }
    for bad in ["", "0s", "s", "5 parsecs", "-1s", "1.5s"] {
        assert!(parse_duration(bad).is_err(), "text={bad:?}");
    }
}

#[test]
fn sizes_parse() {
    for (text, expected) in [
        ("1048576", 1 << 20),
        ("512KiB", 512 << 10),
        ("1MiB", 1 << 20),
        ("64kb", 64 << 10),
    ] {
        assert_eq!(parse_size(text), Ok(expected), "text={text:?}");
    }
    for bad in ["", "0", "1TiB", "MiB", "99999999999999999999"] {
        assert!(parse_size(bad).is_err(), "text={bad:?}");
    }
}

#[test]
fn limits_accept_off() {
    assert_eq!(parse_limit("off"), Ok(None));
    assert_eq!(parse_limit("7"), Ok(Some(7)));
    assert!(parse_limit("0").is_err());
    assert!(parse_limit("-3").is_err());
}

#[test]
fn limits_and_modes_are_configurable() {
    let config = load(&[
        (UPSTREAM_URL, "http://127.0.0.1:4000/graphql"),
        (MAX_DEPTH, "off"),
        (MAX_COST, "20000"),
        (INTROSPECTION, "allow"),
        (MODE, "monitor"),
        (RULE_MODES, "cost:enforce, depth:monitor"),
    ])
    .unwrap();
    let limits = &config.limits.limits;
    assert_eq!(limits.depth, None);
    assert_eq!(limits.cost, Some(20_000));
    assert_eq!(limits.introspection, Introspection::Allow);
    assert_eq!(config.limits.modes.of(Rule::Cost), Mode::Enforce);
    assert_eq!(config.limits.modes.of(Rule::Aliases), Mode::Monitor);
}

#[test]
fn bad_rule_modes_list_the_rules() {
    let err = load(&[
        (UPSTREAM_URL, "http://127.0.0.1:4000/graphql"),
        (RULE_MODES, "costs:monitor"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("root_fields"), "{err}");
}

#[test]
fn csrf_header_list_is_lower_cased() {
    let config = load(&[
        (UPSTREAM_URL, "http://127.0.0.1:4000/graphql"),
        (
            CSRF_REQUIRED_HEADERS,
            "X-Requested-With, Apollo-Require-Preflight",
        ),
    ])
    .unwrap();
    let headers: Vec<&str> = config
        .requests
        .csrf_required_headers
        .iter()
        .flatten()
        .map(http::HeaderName::as_str)
        .collect();
    assert_eq!(headers, ["x-requested-with", "apollo-require-preflight"]);
}

#[test]
fn schema_off_means_none_even_in_demo() {
    let map: HashMap<&str, &str> = [(SCHEMA, "off")].into_iter().collect();
    assert_eq!(
        Config::from_source(&map, Profile::Demo)
            .unwrap()
            .limits
            .schema,
        None
    );
    let map: HashMap<&str, &str> = HashMap::new();
    assert_eq!(
        Config::from_source(&map, Profile::Demo)
            .unwrap()
            .limits
            .schema,
        Some(SchemaSource::Demo)
    );
}

#[test]
fn workers_default_to_the_available_cpus_and_accept_a_count() {
    let upstream = (UPSTREAM_URL, "http://127.0.0.1:4000/graphql");
    assert_eq!(load(&[upstream]).unwrap().server.workers, available_cpus());
    assert_eq!(
        load(&[upstream, (WORKERS, "auto")]).unwrap().server.workers,
        available_cpus()
    );
    assert_eq!(
        load(&[upstream, (WORKERS, "3")])
            .unwrap()
            .server
            .workers
            .get(),
        3
    );
    for bad in ["0", "-1", "many", "1025"] {
        let err = load(&[upstream, (WORKERS, bad)]).unwrap_err().to_string();
        assert!(
            err.contains(WORKERS) && err.contains("auto or a positive integer"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn every_default_in_the_table_parses() {
    // An empty source takes every default through its variable's own parser.
    let map: HashMap<&str, &str> = HashMap::new();
    let config = Config::from_source(&map, Profile::Offline).unwrap();
    assert_eq!(config.settings.len(), VARIABLES.len());
    assert!(config.settings.iter().all(|s| s.default));
}

#[test]
fn settings_show_what_was_set_and_redact_secrets() {
    let config = load(&[
        (UPSTREAM_URL, "http://user:hunter2@127.0.0.1:4000/graphql"),
        (MAX_DEPTH, "7"),
        (TRUSTED_CLIENT_HEADER, "x-firewall-key"),
        (
            TRUSTED_CLIENT_KEY_HASHES,
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
    ])
    .unwrap();
    let find = |name: &str| config.settings.iter().find(|s| s.name == name).unwrap();
    assert_eq!(find(MAX_DEPTH).value.as_deref(), Some("7"));
    assert!(!find(MAX_DEPTH).default);
    assert_eq!(find(MAX_ALIASES).value.as_deref(), Some("15"));
    assert!(find(MAX_ALIASES).default);
    let upstream = find(UPSTREAM_URL).value.clone().unwrap();
    assert!(
        !upstream.contains("hunter2") && upstream.contains("REDACTED"),
        "{upstream}"
    );
    assert_eq!(
        find(TRUSTED_CLIENT_KEY_HASHES).value.as_deref(),
        Some("1 key hash(es), redacted")
    );
}

#[test]
fn a_named_manifest_directory_is_required_the_default_is_not() {
    let upstream = (UPSTREAM_URL, "http://127.0.0.1:4000/graphql");
    assert!(!load(&[upstream]).unwrap().persisted.dir_required);
    assert!(
        load(&[upstream, (PERSISTED_QUERIES_DIR, "/srv/manifests")])
            .unwrap()
            .persisted
            .dir_required
    );
}

#[test]
fn client_key_header_and_hashes_are_set_together() {
    let upstream = (UPSTREAM_URL, "http://127.0.0.1:4000/graphql");
    let err = load(&[upstream, (TRUSTED_CLIENT_HEADER, "x-key")]).unwrap_err();
    assert!(err.to_string().contains(TRUSTED_CLIENT_KEY_HASHES), "{err}");
}

#[test]
fn identity_and_edge_choices_that_weaken_the_firewall_are_warned_about() {
    let upstream = (UPSTREAM_URL, "http://127.0.0.1:4000/graphql");
    let quiet = load(&[upstream]).unwrap();
    assert!(
        insecure_choices(&quiet).is_empty(),
        "the defaults warn of nothing"
    );
    assert!(
        quiet
            .edge
            .admin_allow_ips
            .contains("127.0.0.1".parse().unwrap())
    );
    assert!(quiet.edge.admin_allow_ips.contains("::1".parse().unwrap()));
    let loud = load(&[
        upstream,
        (AUTH, "optional"),
        (AUTH_JWKS_URLS, "file:///etc/jwks.json"),
        (AUTH_JWT_ISSUERS, "any"),
        (AUTH_JWT_AUDIENCES, "graphql-api"),
        (ADMIN_ALLOW_IPS, "0.0.0.0/0"),
    ])
    .unwrap();
    let warnings = insecure_choices(&loud).join("\n");
    for expected in [
        format!("{AUTH_JWT_ISSUERS}=any"),
        format!("{AUTH}=optional"),
        ADMIN_ALLOW_IPS.to_owned(),
    ] {
        assert!(warnings.contains(&expected), "{expected} in {warnings}");
    }
    assert!(!warnings.contains(AUTH_JWT_AUDIENCES), "{warnings}");
}

#[test]
fn a_token_in_a_cookie_needs_the_csrf_guard() {
    let vars = [
        (UPSTREAM_URL, "http://127.0.0.1:4000/graphql"),
        (AUTH_JWKS_URLS, "file:///etc/jwks.json"),
        (AUTH_JWT_ISSUERS, "https://idp.example.com/"),
        (AUTH_JWT_AUDIENCES, "graphql-api"),
        (AUTH_JWT_COOKIE, "session"),
    ];
    assert!(load(&vars).is_ok());
    let mut without_guard = vars.to_vec();
    without_guard.push((CSRF_PROTECTION, "off"));
    let error = load(&without_guard).unwrap_err().to_string();
    assert!(error.contains(CSRF_PROTECTION), "{error}");
}
