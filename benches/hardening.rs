//! Cost of the response sanitiser (whole-body and streaming) and of the rate-limit check on the
//! request path.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use graphql_firewall::ratelimit::{BucketKey, ClientKey, Limiter};
use graphql_firewall::sanitise::stream::{OnOverflow, StreamLimits, StreamSanitiser, Streamed};
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

/// Streams `body` in chunks of `chunk` bytes, as a body wrapper would frame by frame.
fn stream(body: &[u8], chunk: usize, settings: &Arc<Settings>, out: &mut Vec<u8>) -> Streamed {
    let limits = StreamLimits {
        errors_cap: 1 << 20,
        max_depth: 128,
        on_overflow: OnOverflow::Mask,
    };
    let mut sanitiser = StreamSanitiser::new(settings.clone(), Arc::from("r"), limits);
    for piece in body.chunks(chunk) {
        out.clear();
        sanitiser.push(piece, out).expect("valid JSON");
    }
    sanitiser.finish().expect("complete JSON")
}

/// One MiB of `data`, without errors and with 20 errors at the end: streamed in 16 KiB frames
/// (hyper's usual read size) against today's whole-body pass over the same bytes.
fn bench_stream(c: &mut Criterion) {
    let settings = Arc::new(Settings::default());
    let clean = format!(r#"{{"data":{}}}"#, data_of(1 << 20));
    let errors: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"message":"Cannot query field \"nmae{i}\" on type \"User\". Did you mean \"name\"?","locations":[{{"line":{i},"column":3}}],"extensions":{{"code":"GRAPHQL_VALIDATION_FAILED"}}}}"#
            )
        })
        .collect();
    let with_errors = format!(
        r#"{{"data":{},"errors":[{}]}}"#,
        data_of((1 << 20) - 20 * 200),
        errors.join(",")
    );
    let mut out = Vec::with_capacity(64 << 10);
    assert_eq!(
        stream(clean.as_bytes(), 16 << 10, &settings, &mut out),
        Streamed::Unchanged
    );
    assert_eq!(
        stream(with_errors.as_bytes(), 16 << 10, &settings, &mut out),
        Streamed::Rewritten
    );

    let mut group = c.benchmark_group("sanitise_1MiB");
    group.throughput(Throughput::Bytes(clean.len() as u64));
    group.bench_function("whole_no_errors", |b| {
        b.iter(|| sanitise(black_box(clean.as_bytes()), &settings, "r"))
    });
    group.bench_function("stream_no_errors", |b| {
        b.iter(|| stream(black_box(clean.as_bytes()), 16 << 10, &settings, &mut out))
    });
    group.throughput(Throughput::Bytes(with_errors.len() as u64));
    group.bench_function("whole_20_errors_at_end", |b| {
        b.iter(|| sanitise(black_box(with_errors.as_bytes()), &settings, "r"))
    });
    group.bench_function("stream_20_errors_at_end", |b| {
        b.iter(|| {
            stream(
                black_box(with_errors.as_bytes()),
                16 << 10,
                &settings,
                &mut out,
            )
        })
    });
    group.finish();
}

fn bench_limiter(c: &mut Criterion) {
    let per_nanosecond = governor::Quota::with_period(std::time::Duration::from_nanos(1))
        .expect("a non-zero period")
        .allow_burst(std::num::NonZeroU32::new(1_000_000_000).expect("non-zero"));
    let limiter = Limiter::new(Some(per_nanosecond), None, 100_000);
    let home = std::net::Ipv4Addr::new(192, 0, 2, 1).into();
    let one = BucketKey::verified(ClientKey::from_api_key("one"), home);
    let keys: Vec<BucketKey> = (0..10_000)
        .map(|i| BucketKey::verified(ClientKey::from_api_key(&format!("key-{i}")), home))
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

criterion_group!(benches, bench_sanitise, bench_stream, bench_limiter);
criterion_main!(benches);
