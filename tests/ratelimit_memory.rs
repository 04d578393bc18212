//! A flood of distinct client keys must not grow the rate limiter's memory without bound.
//!
//! This is its own test binary so that it can count the heap through its own global allocator: a
//! figure that no other test running alongside can disturb (process RSS could, and did).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use graphql_firewall::ratelimit::{BucketKey, ClientKey, Decision, Limiter};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut peak = before;
    for i in 0..1_000_000_u32 {
        let key = BucketKey::anonymous(IpAddr::V4(Ipv4Addr::from(i)));
        let _ = limiter.check_request(&key);
        if i % 10_000 == 0 {
            peak = peak.max(LIVE_BYTES.load(Ordering::Relaxed));
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
