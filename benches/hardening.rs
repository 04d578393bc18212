//! Cost of the response sanitiser and of the rate-limit check on the request path.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use graphql_firewall::ratelimit::{ClientKey, Limiter};
use graphql_firewall::sanitise::{Outcome, Settings, sanitise};

/// A `data` member of about `bytes` bytes: a list of users, as a list query returns it.
fn data_of(bytes: usize) -> String {
    let mut users = Vec::new();
    let mut len = 0;
    let mut i = 0;
    while len < bytes {
        let user = format!(
            r#"{{"id":"{i}","name":"User number {i}","email":"user{i}@example.com","score":{}.5,"tags":["a","b"],"bio":"Lorem ipsum dolor sit amet, \"quoted\" text"}}"#,
            i * 7
        );
        len += user.len() + 1;
        users.push(user);
        i += 1;
    }
    format!(r#"{{"users":[{}]}}"#, users.join(","))
}

fn bench_sanitise(c: &mut Criterion) {
    let settings = Settings::default();
    let clean = format!(r#"{{"data":{}}}"#, data_of(50 * 1024));
    assert_eq!(
        sanitise(clean.as_bytes(), &settings, "r"),
        Outcome::Unchanged
    );

    let errors: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"message":"Cannot query field \"nmae{i}\" on type \"User\". Did you mean \"name\", \"names\", or \"nameLong\"?","locations":[{{"line":{i},"column":3}}],"extensions":{{"code":"GRAPHQL_VALIDATION_FAILED"}}}}"#
            )
        })
        .collect();
    let with_errors = format!(
        r#"{{"data":{},"errors":[{}]}}"#,
        data_of(50 * 1024 - 20 * 200),
        errors.join(",")
    );
    assert!(matches!(
        sanitise(with_errors.as_bytes(), &settings, "r"),
        Outcome::Rewritten(_)
    ));

    let mut group = c.benchmark_group("sanitise_50KiB");
    group.bench_function("no_errors", |b| {
        b.iter(|| sanitise(black_box(clean.as_bytes()), &settings, "r"))
    });
    group.bench_function("20_errors_with_suggestions", |b| {
        b.iter(|| sanitise(black_box(with_errors.as_bytes()), &settings, "r"))
    });
    group.finish();
}

fn bench_limiter(c: &mut Criterion) {
    let per_nanosecond = governor::Quota::with_period(std::time::Duration::from_nanos(1))
        .expect("a non-zero period")
        .allow_burst(std::num::NonZeroU32::new(1_000_000_000).expect("non-zero"));
    let limiter = Limiter::new(Some(per_nanosecond), None, 100_000);
    let one = ClientKey::from_api_key("one");
    let keys: Vec<ClientKey> = (0..10_000)
        .map(|i| ClientKey::from_api_key(&format!("key-{i}")))
        .collect();
    let mut group = c.benchmark_group("limiter_check_request");
    group.bench_function("single_key", |b| {
        b.iter(|| limiter.check_request(black_box(&one)))
    });
    let mut next = 0;
    group.bench_function("rotating_10k_keys", |b| {
        b.iter(|| {
            next = (next + 1) % keys.len();
            limiter.check_request(black_box(&keys[next]))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_sanitise, bench_limiter);
criterion_main!(benches);
