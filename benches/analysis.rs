//! Analysis benchmarks: async-graphql-parser's `parse_query` alone vs our full `analyse`, on the
//! same documents (shared with the tests), plus the cache-hit path (hash + map lookup).

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use graphql_firewall::analysis::{Settings, analyse};
use graphql_firewall::persisted::hash_document as document_hash;

const SMALL: &str = "query Hero($episode: Episode = JEDI, $n: Int = 3) { hero(episode: $episode) { name friends(first: $n) { name ... on Droid { primaryFunction } } } }";
const REALISTIC: &str = include_str!("../tests/corpus/valid_github_realistic.graphql");

/// ~40 KB: many distinct operations sharing a fragment, as a client's bundled document would.
fn forty_kb() -> String {
    let mut doc = String::new();
    let mut i = 0;
    while doc.len() < 40_000 {
        doc.push_str(&format!(
            "query Op{i}($n: Int = 5) {{ repository(owner: \"o\", name: \"r{i}\") {{ issues(first: $n) {{ nodes {{ ...Issue title{i}: title labels(first: 3) {{ nodes {{ name color }} }} }} }} }} }}\n"
        ));
        i += 1;
    }
    doc.push_str("fragment Issue on Issue { id number title state author { login } }\n");
    doc
}

/// 1 MB of `a ` in one selection set: stops at the token limit.
fn hostile() -> String {
    format!("{{ {}}}", "a ".repeat(500_000))
}

/// Ordinary input of ~15,000 tokens (just under the default limit) for comparison.
fn fifteen_thousand_tokens() -> String {
    let body: String = (0..1_660)
        .map(|i| format!("f{i}(first: 2) {{ id }} "))
        .collect();
    format!("{{ {body}}}")
}

fn bench(c: &mut Criterion) {
    let settings = Settings::default();
    let forty = forty_kb();
    let hostile = hostile();
    let ordinary = fifteen_thousand_tokens();
    assert!(analyse(&ordinary, &settings).is_ok_and(|d| d.tokens() > 14_000));
    let inputs: [(&str, &str); 4] = [
        ("200B", SMALL),
        ("1.8KB", REALISTIC),
        ("40KB", &forty),
        ("1MB-hostile", &hostile),
    ];
    let mut group = c.benchmark_group("parse");
    for (name, doc) in inputs {
        group.bench_with_input(
            BenchmarkId::new("async-graphql-parser", name),
            doc,
            |b, doc| b.iter(|| async_graphql_parser::parse_query(black_box(doc)).is_ok()),
        );
        group.bench_with_input(BenchmarkId::new("analyse", name), doc, |b, doc| {
            b.iter(|| analyse(black_box(doc), &settings).is_ok())
        });
    }
    group.bench_function(BenchmarkId::new("analyse", "15k-tokens-ordinary"), |b| {
        b.iter(|| analyse(black_box(&ordinary), &settings).is_ok())
    });
    group.finish();

    let document = analyse(REALISTIC, &settings).map_err(|e| e.to_string());
    let mut cache = HashMap::new();
    cache.insert(document_hash(REALISTIC), document);
    c.bench_function("cache-hit/hash+lookup 1.8KB", |b| {
        b.iter(|| {
            cache
                .get(&document_hash(black_box(REALISTIC)))
                .map(Result::is_ok)
        })
    });
    let analysed = analyse(REALISTIC, &settings).ok();
    let operation = analysed.as_ref().and_then(|d| d.operation(None).ok());
    let variables = serde_json::json!({"owner": "o", "name": "n", "issues": 50});
    c.bench_function("cost/finish plan 1.8KB", |b| {
        b.iter(|| operation.map(|o| o.cost(black_box(variables.as_object()))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
