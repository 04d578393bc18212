//! Analysis benchmarks: async-graphql-parser's `parse_query` alone vs our full `analyse`, on the
//! same documents (shared with the tests), plus the cache-hit path (hash + map lookup), finishing
//! a cost plan, and the actual cost of a ~100 KB response (streamed in 16 KiB chunks, and read
//! whole, next to a serde_json DOM parse of the same bytes for scale).

use std::collections::HashMap;
use std::hint::black_box;

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use graphql_firewall::analysis::{ActualCost, Schema, Settings, analyse};
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
        b.iter(|| operation.map(|o| o.estimate(black_box(variables.as_object())).is_ok()))
    });
    actual_cost(c);
}

/// A demo-backend response of about 100 KB: users with friends and posts.
const RESPONSE_QUERY: &str = "query ($ids: [ID!]!) { usersByIds(ids: $ids) { id name email friends { id name } posts { id title comments { id text } } } }";

fn demo_response() -> (serde_json::Value, Vec<u8>) {
    let ids: Vec<String> = (0..150).map(|i| format!("u{}", i % 20)).collect();
    let variables = serde_json::json!({ "ids": ids });
    let schema = graphql_firewall::demo::schema::build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string());
    let response = runtime.map(|r| {
        r.block_on(
            schema.execute(
                async_graphql::Request::new(RESPONSE_QUERY)
                    .variables(async_graphql::Variables::from_json(variables.clone())),
            ),
        )
    });
    let body = response
        .ok()
        .and_then(|r| serde_json::to_vec(&r).ok())
        .unwrap_or_default();
    (variables, body)
}

fn actual_cost(c: &mut Criterion) {
    let settings = Settings {
        schema: Schema::from_sdl(graphql_firewall::demo::SDL)
            .ok()
            .map(Arc::new),
        ..Settings::default()
    };
    let document = analyse(RESPONSE_QUERY, &settings).ok();
    let Some(operation) = document.as_ref().and_then(|d| d.operation(None).ok()) else {
        return;
    };
    let (variables, body) = demo_response();
    let mut group = c.benchmark_group("actual-cost");
    group.throughput(Throughput::Bytes(body.len() as u64));
    let name = format!("{}KB", body.len() / 1000);
    group.bench_function(BenchmarkId::new("stream", &name), |b| {
        b.iter(|| {
            let mut meter = ActualCost::new(operation, variables.as_object());
            for chunk in black_box(&body).chunks(16 * 1024) {
                meter.push(chunk);
            }
            meter.finish()
        })
    });
    // An answer read whole (up to 64 KiB in the proxy) is measured in one walk of its bytes.
    group.bench_function(BenchmarkId::new("whole", &name), |b| {
        b.iter(|| ActualCost::new(operation, variables.as_object()).measure(black_box(&body)))
    });
    group.bench_function(BenchmarkId::new("serde_json-dom", &name), |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).is_ok())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
