use super::*;
use crate::policy::{Mode, Rule};

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<&str, &str> = vars.iter().copied().collect();
    Config::from_source(&map, Profile::Serve)
}

#[test]
fn defaults_are_secure_and_documented() {
    let config = load(&[(UPSTREAM_URL, "http://127.0.0.1:4000/graphql")]).unwrap();
    assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.max_body_bytes, 1 << 20);
    assert_eq!(config.upstream.timeout, Duration::from_secs(30));
    assert_eq!(config.max_batch, Some(5));
    assert!(config.csrf.enabled);
    assert_eq!(config.reject_status, RejectStatus::BadRequest);
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
    assert_eq!(config.limits.depth, None);
    assert_eq!(config.limits.cost, Some(20_000));
    assert!(!config.limits.block_introspection);
    assert_eq!(config.modes.of(Rule::Cost), Mode::Enforce);
    assert_eq!(config.modes.of(Rule::Aliases), Mode::Monitor);
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
    assert_eq!(
        config.csrf.required_headers,
        vec!["x-requested-with", "apollo-require-preflight"]
    );
}

#[test]
fn schema_off_means_none_even_in_demo() {
    let map: HashMap<&str, &str> = [(SCHEMA, "off")].into_iter().collect();
    assert_eq!(
        Config::from_source(&map, Profile::Demo).unwrap().schema,
        None
    );
    let map: HashMap<&str, &str> = HashMap::new();
    assert_eq!(
        Config::from_source(&map, Profile::Demo).unwrap().schema,
        Some(SchemaSource::Demo)
    );
}

#[test]
fn workers_default_to_the_available_cpus_and_accept_a_count() {
    let upstream = (UPSTREAM_URL, "http://127.0.0.1:4000/graphql");
    assert_eq!(load(&[upstream]).unwrap().workers, available_cpus());
    assert_eq!(
        load(&[upstream, (WORKERS, "auto")]).unwrap().workers,
        available_cpus()
    );
    assert_eq!(load(&[upstream, (WORKERS, "3")]).unwrap().workers.get(), 3);
    for bad in ["0", "-1", "many", "1025"] {
        let err = load(&[upstream, (WORKERS, bad)]).unwrap_err().to_string();
        assert!(
            err.contains(WORKERS) && err.contains("auto or a positive integer"),
            "{bad}: {err}"
        );
    }
}
