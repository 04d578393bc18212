//! The inspection stage as a request meets it: SHA-256 of the text, the moka analysis cache,
//! operation selection, cost finished with the variables, variable limits and the policy — on a
//! cache hit (the steady state) and on a miss (a new document every time).
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

criterion_group!(benches, inspect);
criterion_main!(benches);
