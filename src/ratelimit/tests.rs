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
    let alice = ClientKey::from_api_key("alice");
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

    let bob = ClientKey::from_api_key("bob");
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
    let heavy = ClientKey::from_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let light = ClientKey::from_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
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
    let key = ClientKey::from_api_key("k");
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
    let key = ClientKey::from_api_key("settling");
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
