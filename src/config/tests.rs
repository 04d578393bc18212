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
fn no_manifest_is_loaded_unless_a_directory_is_named_and_demo_has_its_own() {
    let upstream = (UPSTREAM_URL, "http://127.0.0.1:4000/graphql");
    assert_eq!(
        load(&[upstream]).unwrap().persisted.manifests,
        ManifestSource::None
    );
    assert_eq!(
        load(&[upstream, (PERSISTED_QUERIES_DIR, "/srv/manifests")])
            .unwrap()
            .persisted
            .manifests,
        ManifestSource::Dir("/srv/manifests".into())
    );
    let demo = Config::from_source(&HashMap::<&str, &str>::new(), Profile::Demo).unwrap();
    assert_eq!(demo.persisted.manifests, ManifestSource::Demo);
}

#[test]
fn client_key_header_and_hashes_are_set_together() {
    let upstream = (UPSTREAM_URL, "http://127.0.0.1:4000/graphql");
    let err = load(&[upstream, (TRUSTED_CLIENT_HEADER, "x-key")]).unwrap_err();
    assert!(err.to_string().contains(TRUSTED_CLIENT_KEY_HASHES), "{err}");
}

#[test]
fn enumerated_values_and_rule_names_are_case_insensitive() {
    let config = load(&[
        (UPSTREAM_URL, "http://127.0.0.1:4000/graphql"),
        (MODE, "Monitor"),
        (RULE_MODES, "Depth:ENFORCE"),
        (PERSISTED_QUERIES, "AUDIT"),
    ])
    .unwrap();
    assert_eq!(config.limits.modes.of(Rule::Cost), Mode::Monitor);
    assert_eq!(config.limits.modes.of(Rule::Depth), Mode::Enforce);
    assert_eq!(config.persisted.mode, PersistedQueries::Audit);
}

#[test]
fn a_rate_accepts_m_for_minutes_and_a_bad_one_is_explained_once() {
    let upstream = (UPSTREAM_URL, "http://127.0.0.1:4000/graphql");
    let config = load(&[upstream, (RATE_LIMIT, "100/m")]).unwrap();
    let rate = config.clients.rate_limit.unwrap();
    assert_eq!(
        (rate.amount.get(), rate.period),
        (100, Duration::from_secs(60))
    );
    let message = load(&[upstream, (RATE_LIMIT, "100/x")])
        .unwrap_err()
        .to_string();
    assert_eq!(message.matches("100/x").count(), 1, "{message}");
    assert!(!message.contains("invalid rate"), "{message}");
    assert!(message.contains("6000/min"), "an example: {message}");
}

#[test]
fn auto_is_case_insensitive_too() {
    let config = load(&[
        (UPSTREAM_URL, "http://127.0.0.1:4000/graphql"),
        (WORKERS, "AUTO"),
        (MAX_CONNECTIONS, "Auto"),
    ])
    .unwrap();
    assert_eq!(config.server.workers, parse::available_cpus());
    assert!(config.server.max_connections >= 64);
}

#[test]
fn websocket_limits_have_secure_defaults_and_origins_must_be_origins() {
    let upstream = (UPSTREAM_URL, "http://127.0.0.1:4000/graphql");
    let ws = load(&[upstream]).unwrap().requests.websocket;
    assert_eq!(ws.max_message_bytes, 256 << 10);
    assert_eq!(ws.max_subscriptions, 20);
    assert_eq!(ws.max_subscriptions_per_client, Some(100));
    assert_eq!(ws.init_timeout, Duration::from_secs(3));
    assert_eq!(ws.keepalive, Some(Duration::from_secs(30)));
    assert_eq!(ws.idle_timeout, Some(Duration::from_secs(300)));
    assert!(ws.allowed_origins.is_empty());
    let ws = load(&[
        upstream,
        (
            WS_ALLOWED_ORIGINS,
            " https://App.example.com/ ,http://localhost:3000",
        ),
        (WS_KEEPALIVE, "off"),
        (WS_MAX_SUBSCRIPTIONS_PER_CLIENT, "off"),
    ])
    .unwrap()
    .requests
    .websocket;
    assert_eq!(
        ws.allowed_origins,
        ["https://app.example.com", "http://localhost:3000"]
    );
    assert_eq!(ws.keepalive, None);
    assert_eq!(ws.max_subscriptions_per_client, None);
    for bad in ["app.example.com", "https://app.example.com/path", ","] {
        let err = load(&[upstream, (WS_ALLOWED_ORIGINS, bad)]).unwrap_err();
        assert!(err.to_string().contains(WS_ALLOWED_ORIGINS), "{bad}: {err}");
    }
    assert!(load(&[upstream, (WS_MAX_SUBSCRIPTIONS, "0")]).is_err());
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
