//! Persisted-query resolution with a 10,000-operation manifest: the per-request lookup (hash lookup
//! in the registry, operation selection, cost finished with the request's variables — no parsing),
//! plus the start-up time and memory of loading such a manifest (printed once).
//!
//! `cargo bench --bench persisted`

use std::time::Instant;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use graphql_firewall::analysis;
use graphql_firewall::persisted::{Entry, Manifest, Registry, hash_document};

const OPERATIONS: usize = 10_000;

fn entries() -> Vec<Entry> {
    (0..OPERATIONS)
        .map(|i| {
            let body = format!(
                "query Op{i}($first: Int = 10, $id: ID!) {{\n  user(id: $id) {{ id name email\n    posts(first: $first) {{ id title comments(first: 3) {{ text author {{ name }} }} }}\n    friends(first: 5) {{ ...Person{i} }}\n  }}\n}}\n\nfragment Person{i} on User {{ id name }}"
            );
            Entry {
                hash: hash_document(&body),
                body,
                name: Some(format!("Op{i}")),
                source: format!("bench#{i}"),
            }
        })
        .collect()
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn persisted(c: &mut Criterion) {
    let entries = entries();
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.hash).collect();
    let settings = analysis::Settings::default();
    let before = rss_bytes();
    let started = Instant::now();
    let manifest = Manifest::from_entries(entries, |text| analysis::analyse(text, &settings))
        .expect("the generated manifest is valid");
    let load = started.elapsed();
    let after = rss_bytes();
    println!(
        "load {OPERATIONS} operations: {:.1} ms; resident memory +{} bytes (~{} bytes per operation, text included)",
        load.as_secs_f64() * 1000.0,
        after.zip(before).map_or(0, |(a, b)| a.saturating_sub(b)),
        after.zip(before).map_or(0, |(a, b)| a.saturating_sub(b)) / OPERATIONS as u64,
    );
    let registry = Registry::new(manifest);
    let variables = serde_json::json!({ "first": 20, "id": "u1" });
    let variables = variables.as_object();
    let mut next = 0usize;
    c.bench_function("persisted lookup + cost, 10k-operation manifest", |b| {
        b.iter(|| {
            next = (next + 7919) % OPERATIONS;
            let manifest = registry.current();
            let trusted = manifest.get(&hashes[next]).expect("present");
            let operation = trusted.document.operation(None).expect("one operation");
            black_box(operation.estimate(black_box(variables)))
        })
    });
}

criterion_group!(benches, persisted);
criterion_main!(benches);
