//! The inspection stage as a request meets it: SHA-256 of the text, the moka analysis cache,
//! operation selection, cost finished with the variables, variable limits and the policy — on a
//! cache hit (the steady state) and on a miss (a new document every time).
//!
//! The schema access rules (`@authenticated`, `@requiresScopes`, `DENY_FIELDS`) as a request
//! pays them: the same cached operation inspected with and without rules on the fields it selects
//! (through fragments and a union), for a caller that meets them; and the analysis of a new
//! document with the rules' pass.
//!
//! `cargo bench --bench inspect`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use graphql_firewall::config::{Config, Profile};
use graphql_firewall::inspect::{Caller, GraphqlRequest, Inspector, Settings, Transport};
use graphql_firewall::metrics::Metrics;
use graphql_firewall::persisted::{ApqStore, Manifest, Mode, Registry, Resolver};
use graphql_firewall::policy::{LimitProfiles, Relax};

const REALISTIC: &str = include_str!("../tests/corpus/valid_github_realistic.graphql");

/// The shipped defaults, without the cost limit (the realistic query is a big one).
fn inspector() -> Inspector {
    let config = Config::from_source(&HashMap::<&str, &str>::new(), Profile::Offline)
        .expect("the defaults are valid");
    let limits = graphql_firewall::rules::Limits {
        cost: None,
        ..config.limits.limits.clone()
    };
    Inspector::new(
        Settings {
            analysis: graphql_firewall::analysis_settings(&config).expect("no schema to load"),
            profiles: LimitProfiles::new(limits, Relax::TextLimits, Relax::No),
            modes: config.limits.modes.clone(),
            cache_bytes: 64 << 20,
            resolver: Resolver {
                mode: Mode::Off,
                require_id: false,
                apq: ApqStore::new(1 << 20, Duration::from_secs(60)),
            },
        },
        Arc::new(Registry::new(Manifest::default())),
        Arc::new(Metrics::new()),
    )
}

fn request(query: String) -> GraphqlRequest {
    GraphqlRequest {
        query: Some(query),
        variables: serde_json::json!({ "owner": "o", "name": "n", "issues": 50 })
            .as_object()
            .cloned(),
        ..GraphqlRequest::default()
    }
}

fn inspect(c: &mut Criterion) {
    let inspector = inspector();
    let hit = [request(REALISTIC.to_owned())];
    assert!(
        inspector
            .inspect(&hit, Transport::Post, false, Caller::default())
            .is_ok()
    );
    c.bench_function("inspect/cache hit 1.8KB", |b| {
        b.iter(|| {
            inspector
                .inspect(black_box(&hit), Transport::Post, false, Caller::default())
                .is_ok()
        })
    });
    let mut n = 0u64;
    c.bench_function("inspect/cache miss 1.8KB", |b| {
        b.iter(|| {
            n += 1;
            // A comment makes every text, and so every hash, new.
            let miss = [request(format!("# {n}\n{REALISTIC}"))];
            inspector
                .inspect(black_box(&miss), Transport::Post, false, Caller::default())
                .is_ok()
        })
    });
}

/// The demo schema with `User.email` behind `@requiresScopes` and `Post.body` behind
/// `@authenticated` (the schema the access-rule figures are measured with).
fn access_schema(rules: bool) -> graphql_firewall::analysis::Schema {
    let sdl = graphql_firewall::demo::SDL.to_owned();
    let sdl = if rules {
        let annotated = sdl
            .replacen(
                "  email: String!\n",
                "  email: String! @requiresScopes(scopes: [[\"read:email\"], [\"admin\"]])\n",
                1,
            )
            .replacen("  body: String!\n", "  body: String! @authenticated\n", 1);
        format!(
            "directive @authenticated on FIELD_DEFINITION | OBJECT\n\
             directive @requiresScopes(scopes: [[String!]!]!) on FIELD_DEFINITION | OBJECT\n{annotated}"
        )
    } else {
        sdl
    };
    let mut schema = graphql_firewall::analysis::Schema::from_sdl(&sdl).expect("the SDL parses");
    if rules {
        schema
            .deny(&["Comment.author".to_owned()])
            .expect("a coordinate of the schema");
    }
    schema
}

fn access_inspector(rules: bool) -> Inspector {
    let config = Config::from_source(&HashMap::<&str, &str>::new(), Profile::Offline)
        .expect("the defaults are valid");
    let mut analysis = graphql_firewall::analysis_settings(&config).expect("no schema to load");
    analysis.schema = Some(Arc::new(access_schema(rules)));
    Inspector::new(
        Settings {
            analysis,
            profiles: LimitProfiles::new(
                config.limits.limits.clone(),
                Relax::TextLimits,
                Relax::No,
            ),
            modes: config.limits.modes.clone(),
            cache_bytes: 64 << 20,
            resolver: Resolver {
                mode: Mode::Off,
                require_id: false,
                apq: ApqStore::new(1 << 20, Duration::from_secs(60)),
            },
        },
        Arc::new(Registry::new(Manifest::default())),
        Arc::new(Metrics::new()),
    )
}

const GUARDED: &str = "query Guarded { users(first: 5) { id contact: email ...Posts } \
     search(term: \"a\", first: 5) { ... on User { email } ... on Post { title body } } } \
     fragment Posts on User { posts(first: 3) { title body comments(first: 2) { text } } }";

fn access_rules(c: &mut Criterion) {
    use graphql_firewall::identity::{AuthMethod, Identity, Scopes, Subject};
    let caller_identity = Identity::verified(
        AuthMethod::Jwt,
        Subject::new("alice"),
        None,
        Scopes::new(["read:email"]),
    );
    let caller = Caller {
        identity: Some(&caller_identity),
        ..Caller::default()
    };
    let request = [GraphqlRequest {
        query: Some(GUARDED.to_owned()),
        ..GraphqlRequest::default()
    }];
    for (rules, name) in [
        (false, "access/cache hit, no rules"),
        (true, "access/cache hit, 3 restricted fields met"),
    ] {
        let inspector = access_inspector(rules);
        assert!(
            inspector
                .inspect(&request, Transport::Post, false, caller)
                .is_ok(),
            "{name}: the caller meets the rules"
        );
        c.bench_function(name, |b| {
            b.iter(|| {
                inspector
                    .inspect(black_box(&request), Transport::Post, false, caller)
                    .is_ok()
            })
        });
    }
    for (rules, name) in [
        (false, "access/analysis, no rules"),
        (true, "access/analysis, with the rules' pass"),
    ] {
        let settings = graphql_firewall::analysis::Settings {
            schema: Some(Arc::new(access_schema(rules))),
            ..graphql_firewall::analysis::Settings::default()
        };
        c.bench_function(name, |b| {
            b.iter(|| graphql_firewall::analysis::analyse(black_box(GUARDED), &settings).is_ok())
        });
    }
}

criterion_group!(benches, inspect, access_rules);
criterion_main!(benches);
