use std::net::{Ipv4Addr, Ipv6Addr};

use governor::clock::FakeRelativeClock;

use super::*;

/// A quota written as in the configuration (`3/s`, `1000/min`): the tests read like the README.
fn rate(text: &str) -> governor::Quota {
    let rate = crate::rules::parse_rate(text)
        .expect("valid rate")
        .expect("not off");
    quota(&rate)
}

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));

fn verified(name: &str) -> BucketKey {
    BucketKey::verified(ClientKey::from_api_key(name), HOME)
}

fn limiter(
    requests: Option<&str>,
    cost: Option<&str>,
    cap: usize,
) -> (Limiter<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let limiter = Limiter::with_clock(requests.map(rate), cost.map(rate), cap, clock.clone());
    (limiter, clock)
}

#[test]
fn the_request_over_the_budget_is_limited_until_retry_after_passes() {
    let (limiter, clock) = limiter(Some("3/s"), None, 100);
    let alice = verified("alice");
    for expected_remaining in [2, 1, 0] {
        match limiter.check_request(&alice) {
            Decision::Allowed(quota) => {
                assert_eq!(quota.limit, 3);
                assert_eq!(quota.remaining, expected_remaining);
            }
            other => panic!("expected allowed, got {other:?}"),
        }
    }
    let Decision::Limited {
        retry_after,
        quota,
        over_by,
    } = limiter.check_request(&alice)
    else {
        panic!("fourth request in the second must be limited");
    };
    assert_eq!(over_by, 1);
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_millis(334));
    assert_eq!(quota.remaining, 0);
    assert!(quota.reset >= retry_after);

    let bob = verified("bob");
    assert!(matches!(limiter.check_request(&bob), Decision::Allowed(_)));

    clock.advance(retry_after);
    assert!(matches!(
        limiter.check_request(&alice),
        Decision::Allowed(_)
    ));
    assert!(matches!(
        limiter.check_request(&alice),
        Decision::Limited { .. }
    ));
}

#[test]
fn two_expensive_operations_exhaust_the_cost_budget_while_another_clients_cheap_ones_pass() {
    let (limiter, clock) = limiter(None, Some("1000/min"), 100);
    let heavy = BucketKey::anonymous(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let light = BucketKey::anonymous(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    assert!(matches!(limiter.check_cost(&heavy, 600), Decision::Allowed(q) if q.remaining == 400));
    let Decision::Limited {
        retry_after,
        over_by,
        ..
    } = limiter.check_cost(&heavy, 600)
    else {
        panic!("second expensive operation must be limited");
    };
    // 200 more points are needed at 1000 per minute: 12 seconds.
    assert_eq!(retry_after, Duration::from_secs(12));
    assert_eq!(over_by, 200);
    for _ in 0..50 {
        assert!(matches!(
            limiter.check_cost(&light, 10),
            Decision::Allowed(_)
        ));
    }
    clock.advance(retry_after);
    assert!(matches!(
        limiter.check_cost(&heavy, 600),
        Decision::Allowed(_)
    ));
}

#[test]
fn cost_edge_cases_are_answered_without_panicking() {
    let (limiter, _clock) = limiter(Some("10/s"), Some("100/s"), 100);
    let key = verified("k");
    assert!(matches!(
        limiter.check_cost(&key, 0),
        Decision::Allowed(Quota {
            limit: 100,
            remaining: 100,
            ..
        })
    ));
    let Decision::Limited {
        retry_after, quota, ..
    } = limiter.check_cost(&key, u64::MAX)
    else {
        panic!("more than the bucket can never pass");
    };
    assert_eq!(retry_after, Duration::from_secs(1));
    assert_eq!(quota.limit, 100);
    let (unlimited, _clock) = limiter_without_budgets();
    assert_eq!(unlimited.check_request(&key), Decision::Unlimited);
    assert_eq!(unlimited.check_cost(&key, 5), Decision::Unlimited);
}

fn limiter_without_budgets() -> (Limiter<FakeRelativeClock>, FakeRelativeClock) {
    limiter(None, None, 1)
}

#[test]
fn ipv6_rotation_inside_a_64_is_one_client() {
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0));
    let first = ClientKey::from_ip(IpAddr::V6(Ipv6Addr::from(base + 1)));
    for host in [2_u128, 0xffff, u128::from(u64::MAX)] {
        assert_eq!(
            ClientKey::from_ip(IpAddr::V6(Ipv6Addr::from(base + host))),
            first
        );
    }
    let next_net = ClientKey::from_ip(IpAddr::V6(Ipv6Addr::from(base + (1 << 64))));
    assert_ne!(next_net, first);
    let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
    assert_eq!(
        ClientKey::from_ip(mapped),
        ClientKey::from_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
    );
    assert_ne!(
        ClientKey::from_api_key("192.0.2.1"),
        ClientKey::from_ip(mapped)
    );
    assert_eq!(first.short_hex().len(), 12);
}

#[test]
fn a_cost_settled_after_the_answer_gives_back_or_charges_the_difference() {
    let (limiter, _clock) = limiter(None, Some("100/min"), 100);
    let key = verified("settling");
    assert!(matches!(limiter.check_cost(&key, 80), Decision::Allowed(q) if q.remaining == 20));
    // The answer cost 30, not 80: 50 points come back.
    limiter.settle_cost(&key, 80, 30);
    assert!(matches!(limiter.check_cost(&key, 60), Decision::Allowed(q) if q.remaining == 10));
    // The next answer cost 40 more than estimated: the client owes them.
    limiter.settle_cost(&key, 5, 45);
    assert!(matches!(
        limiter.check_cost(&key, 5),
        Decision::Limited { .. }
    ));
}

/// The key flood of issue 15 at the limiter: a table full of invented keys from one address. Fresh
/// clients from other addresses overflow into buckets their addresses pick, which the flood did
/// not drain (with the slot picked by the key's bytes, it drained them all).
#[test]
fn a_flood_of_invented_keys_from_one_address_drains_one_overflow_bucket() {
    let (limiter, _clock) = limiter(Some("1/min"), None, 20);
    let attacker = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 66));
    let mut passed = 0;
    for i in 0..10_000 {
        let key = BucketKey::verified(ClientKey::from_api_key(&format!("flood-{i}")), attacker);
        if matches!(limiter.check_request(&key), Decision::Allowed(_)) {
            passed += 1;
        }
    }
    assert_eq!(passed, 21, "20 tracked keys, then one shared bucket");
    let attacker_slot = BucketKey::anonymous(attacker).overflow_slot;
    let mut fresh = 0;
    for host in 1..=254_u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, host));
        if BucketKey::anonymous(ip).overflow_slot == attacker_slot {
            continue;
        }
        let key = BucketKey::verified(ClientKey::from_api_key(&format!("fresh-{host}")), ip);
        if fresh < 8 {
            assert!(
                matches!(limiter.check_request(&key), Decision::Allowed(_)),
                "fresh client at {ip}"
            );
            fresh += 1;
        }
    }
    assert_eq!(fresh, 8);
}

/// Anonymous traffic from many addresses (IPv6 /64 rotation, a botnet) fills the anonymous table
/// and its overflow; a verified client arriving afterwards still gets a bucket of its own.
#[test]
fn anonymous_traffic_cannot_take_a_verified_clients_place() {
    let (limiter, _clock) = limiter(Some("1/min"), None, 50);
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
    for net in 0..5_000_u128 {
        let ip = IpAddr::V6(Ipv6Addr::from(base + (net << 64)));
        let _ = limiter.check_request(&BucketKey::anonymous(ip));
    }
    // Every anonymous overflow bucket the flood hit is empty; the verified newcomer's class is not.
    let newcomer = BucketKey::verified(
        ClientKey::from_subject("jwt", "alice"),
        IpAddr::V6(Ipv6Addr::from(base + 7)),
    );
    assert_eq!(newcomer.class, Class::Verified);
    assert!(matches!(
        limiter.check_request(&newcomer),
        Decision::Allowed(_)
    ));
    // ... and it is tracked on its own: a second verified client is not sharing its bucket.
    let other = verified("bob");
    assert!(matches!(
        limiter.check_request(&other),
        Decision::Allowed(_)
    ));
    assert_eq!(limiter.tracked_keys(), 52);
}

#[test]
fn a_verified_client_keeps_its_bucket_when_its_address_changes() {
    let (limiter, _clock) = limiter(Some("1/min"), None, 10);
    let here = BucketKey::verified(ClientKey::from_subject("jwt", "carol"), HOME);
    let there = BucketKey::verified(
        ClientKey::from_subject("jwt", "carol"),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
    );
    assert!(matches!(limiter.check_request(&here), Decision::Allowed(_)));
    assert!(matches!(
        limiter.check_request(&there),
        Decision::Limited { .. }
    ));
    assert_ne!(
        ClientKey::from_subject("jwt", "carol"),
        ClientKey::from_api_key("carol"),
        "a token's subject is not the API key of that name"
    );
}
