//! A flood of distinct client keys must not grow the rate limiter's memory without bound.
//!
//! This is its own test binary so that it can count the heap through its own global allocator: a
//! figure that no other test running alongside can disturb (process RSS could, and did).

mod counting_alloc;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use graphql_firewall::ratelimit::{BucketKey, ClientKey, Decision, Limiter};

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

#[test]
fn a_million_distinct_keys_stay_within_the_cap_and_tracked_clients_keep_their_bucket() {
    const CAP: usize = 10_000;
    let clock = FakeRelativeClock::default();
    let limiter = Limiter::with_clock(
        Some(governor::Quota::per_second(
            std::num::NonZeroU32::new(2).expect("non-zero"),
        )),
        None,
        CAP,
        clock.clone(),
    );
    let home = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let regular = BucketKey::verified(ClientKey::from_api_key("regular"), home);
    assert!(matches!(
        limiter.check_request(&regular),
        Decision::Allowed(_)
    ));
    let before = counting_alloc::live_bytes();
    let mut peak = before;
    for i in 0..1_000_000_u32 {
        let key = BucketKey::anonymous(IpAddr::V4(Ipv4Addr::from(i)));
        let _ = limiter.check_request(&key);
        if i % 10_000 == 0 {
            peak = peak.max(counting_alloc::live_bytes());
        }
    }
    // The anonymous flood fills its own table; the verified client has its place in the other.
    assert!(
        limiter.tracked_keys() <= CAP + 1,
        "tracked {}",
        limiter.tracked_keys()
    );
    // 10,001 tracked keys and 2 × 256 overflow buckets, with their map's slack: a few megabytes at
    // most, where a million tracked keys would take tens of megabytes.
    let grown = peak.saturating_sub(before);
    assert!(grown < 8 << 20, "the limiter grew by {grown} bytes");
    // The flood shares overflow buckets; the client tracked before it still has its own.
    assert!(matches!(limiter.check_request(&regular), Decision::Allowed(q) if q.remaining == 0));
    clock.advance(Duration::from_secs(5));
    limiter.shrink();
    assert_eq!(limiter.tracked_keys(), 0);
    let newcomer = BucketKey::verified(ClientKey::from_api_key("newcomer"), home);
    assert!(matches!(limiter.check_request(&newcomer), Decision::Allowed(q) if q.remaining == 1));
}
