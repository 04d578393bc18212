//! The inspection stage as a request meets it: SHA-256 of the text, the moka analysis cache,
//! operation selection, cost finished with the variables, variable limits and the policy — on a
//! cache hit (the steady state) and on a miss (a new document every time).
//!
//! `cargo bench --bench inspect`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use graphql_firewall::http::Transport;
use graphql_firewall::http::decode::GraphqlRequest;
use graphql_firewall::inspect::{Inspector, PersistedSettings, Settings};
use graphql_firewall::metrics::Metrics;
use graphql_firewall::persisted::{Manifest, Mode, Registry};
use graphql_firewall::{analysis, policy};

const REALISTIC: &str = include_str!("../tests/corpus/valid_github_realistic.graphql");

fn inspector() -> Inspector {
    Inspector::new(
        Settings {
            analysis: analysis::Settings::default(),
            limits: policy::Limits {
                cost: None,
                ..policy::Limits::default()
            },
            modes: policy::Modes::default(),
            cache_bytes: 64 << 20,
            persisted: PersistedSettings {
                mode: Mode::Off,
                require_id: false,
                skip_limits: true,
                trusted_client_skip_limits: false,
                apq_cache_bytes: 1 << 20,
                apq_ttl: Duration::from_secs(60),
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
            .inspect(&hit, Transport::Post, false, false)
            .is_ok()
    );
    c.bench_function("inspect/cache hit 1.8KB", |b| {
        b.iter(|| {
            inspector
                .inspect(black_box(&hit), Transport::Post, false, false)
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
                .inspect(black_box(&miss), Transport::Post, false, false)
                .is_ok()
        })
    });
}

criterion_group!(benches, inspect);
criterion_main!(benches);
