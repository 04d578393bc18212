//! Shared state on a real Redis: the GCRA script against the in-process limiter, the
//! "refused until t" cache, APQ and probe cool-downs across two replicas, and Redis stopped, slow,
//! and back. Each test starts its own `redis-server` (see `redis_server`); without one installed
//! the tests print a skip notice, and with `CI=true` they fail instead.

mod redis_server;

use std::time::{Duration, Instant};

use graphql_firewall::persisted::hash_document;
use graphql_firewall::ratelimit::{BucketKey, ClientKey, Decision, Limiter, quota};
use graphql_firewall::rules::{Rate, parse_rate};
use graphql_firewall::state::{
    ApqError, Budget, BudgetRules, ProbeOutcome, ProbeRule, RedisSettings, RedisState,
    RequestCheck, StateError,
};
use redis_server::RedisServer;

fn rate(text: &str) -> Rate {
    parse_rate(text)
        .expect("valid rate")
        .expect("a rate, not off")
}

fn settings(server: &RedisServer) -> RedisSettings {
    RedisSettings {
        key_prefix: "test:".to_owned(),
        ..RedisSettings::new(server.url())
    }
}

async fn replica(server: &RedisServer, rules: BudgetRules) -> RedisState {
    RedisState::connect(&settings(server), rules, Duration::from_secs(5))
        .await
        .expect("connected to the test redis-server")
}

fn round_trips(state: &RedisState) -> u64 {
    state.stats().round_trips
}

/// Polls `call` until it succeeds, for at most `within` (Redis coming back, a pause ending).
async fn eventually<T, F, Fut>(within: Duration, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StateError>>,
{
    let deadline = Instant::now() + within;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("still failing after {within:?}: {err}"),
        }
    }
}

// === The GCRA script against governor ===

/// One step of a differential sequence: `None` is a request check (`check_request` on both
/// sides), `Some(n)` a cost check of `n` points.
type Step = Option<u64>;

/// Runs `steps` for one fresh client on both limiters, back to back, and compares each pair.
///
/// Both implement the same GCRA, but each reads its own clock (Redis `TIME`, governor's monotonic
/// clock), so their answers are the same function of "time since the bucket was last anchored"
/// measured from slightly different instants. The anchor is the call that found the bucket full;
/// the two calls of a pair happen within the pair's duration, so the two elapsed times differ by
/// at most the anchor pair's duration plus the current pair's. Durations may therefore differ by
/// twice the longest pair so far, plus 1 ms for the script's whole microseconds and the two clock
/// sources. The discrete answers (allowed or not, limit, remaining) must be equal: the sequences
/// sample times far from the instants where a point refills (see the callers).
async fn compare(
    redis: &RedisState,
    local: &Limiter,
    client: &ClientKey,
    steps: &[Step],
    sleep_before: &[(usize, Duration)],
) {
    // The in-process limiter keys a bucket by class and address too; the client is the same.
    let bucket = BucketKey::verified(*client, std::net::Ipv4Addr::LOCALHOST.into());
    let mut longest_pair = Duration::ZERO;
    for (index, step) in steps.iter().enumerate() {
        if let Some((_, pause)) = sleep_before.iter().find(|(at, _)| *at == index) {
            tokio::time::sleep(*pause).await;
        }
        let started = Instant::now();
        let (on_redis, in_process) = match step {
            None => {
                let on_redis = match redis.check_request(client).await.expect("redis answers") {
                    RequestCheck::Budget(decision) => decision,
                    other => panic!("no probe defence configured, got {other:?}"),
                };
                (on_redis, local.check_request(&bucket))
            }
            Some(points) => (
                redis
                    .check_cost(client, *points)
                    .await
                    .expect("redis answers"),
                local.check_cost(&bucket, *points),
            ),
        };
        longest_pair = longest_pair.max(started.elapsed());
        let slack = longest_pair * 2 + Duration::from_millis(1);
        assert_same(
            on_redis,
            in_process,
            slack,
            &format!("step {index} ({step:?})"),
        );
    }
}

fn assert_same(on_redis: Decision, in_process: Decision, slack: Duration, step: &str) {
    let close = |a: Duration, b: Duration| a.abs_diff(b) <= slack;
    match (on_redis, in_process) {
        (Decision::Allowed(r), Decision::Allowed(l)) => {
            assert_eq!((r.limit, r.remaining), (l.limit, l.remaining), "{step}");
            assert!(close(r.reset, l.reset), "{step}: reset {r:?} vs {l:?}");
        }
        (
            Decision::Limited {
                retry_after: r_retry,
                quota: r,
                over_by: r_over,
            },
            Decision::Limited {
                retry_after: l_retry,
                quota: l,
                over_by: l_over,
            },
        ) => {
            assert_eq!((r.limit, r.remaining), (l.limit, l.remaining), "{step}");
            assert!(
                r_over.abs_diff(l_over) <= 1,
                "{step}: over by {r_over} vs {l_over}"
            );
            assert!(
                close(r_retry, l_retry),
                "{step}: retry-after {r_retry:?} vs {l_retry:?} (slack {slack:?})"
            );
            assert!(close(r.reset, l.reset), "{step}: reset {r:?} vs {l:?}");
        }
        (r, l) => panic!("{step}: redis {r:?} but in process {l:?}"),
    }
}

/// A small deterministic generator (xorshift), so a failing sequence can be replayed.
struct Sequence(u64);

impl Sequence {
    fn next_points(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        match self.0 % 10 {
            // Mostly a few points, sometimes none, sometimes more than the bucket (20) holds.
            0 => 0,
            1 => 20 + self.0 % 6,
            _ => 1 + self.0 % 8,
        }
    }
}

#[tokio::test]
async fn gcra_on_redis_answers_like_the_in_process_limiter_for_bursts_and_n_points() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // One point per 10 s: the sequences run in far less than an interval, so no point refills
    // between steps and every discrete answer is decided by the arithmetic alone.
    let budget = rate("6/min:burst=20");
    let rules = BudgetRules {
        requests: Some(budget),
        cost: Some(budget),
        probes: None,
    };
    let redis = replica(&server, rules).await;
    let local = Limiter::new(Some(quota(&budget)), Some(quota(&budget)), 1_000);

    let fixed: [&[Step]; 3] = [
        // Burst, then refused; zero points and more than the bucket never touch it.
        &[
            Some(1),
            Some(5),
            Some(0),
            Some(20),
            Some(25),
            Some(14),
            Some(1),
            Some(0),
        ],
        // The request budget: 20 requests, then refused.
        &[None; 22],
        // Exactly the bucket at once, then anything is refused.
        &[Some(20), Some(1), None, Some(21)],
    ];
    for (index, steps) in fixed.iter().enumerate() {
        let client = ClientKey::from_api_key(&format!("fixed-{index}"));
        compare(&redis, &local, &client, steps, &[]).await;
    }
    let mut sequence = Sequence(0x9e37_79b9_7f4a_7c15);
    for index in 0..12 {
        let client = ClientKey::from_api_key(&format!("random-{index}"));
        let steps: Vec<Step> = (0..10).map(|_| Some(sequence.next_points())).collect();
        compare(&redis, &local, &client, &steps, &[]).await;
    }
}

#[tokio::test]
async fn gcra_on_redis_refills_like_the_in_process_limiter() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // One point per 400 ms, bucket of 3. The sleep of 600 ms puts the later steps half-way
    // between two refills, 200 ms from either: the discrete answers cannot depend on scheduling
    // noise smaller than that.
    let budget = rate("150/min:burst=3");
    let rules = BudgetRules {
        requests: Some(budget),
        cost: Some(budget),
        probes: None,
    };
    let redis = replica(&server, rules).await;
    let local = Limiter::new(Some(quota(&budget)), Some(quota(&budget)), 1_000);
    let half_way = [(4, Duration::from_millis(600))];

    // Requests: 3 pass, the 4th waits about 400 ms; 1.5 points later one passes (remaining 0)
    // and the next waits about 200 ms.
    let requests = [None, None, None, None, None, None];
    compare(
        &redis,
        &local,
        &ClientKey::from_api_key("requests"),
        &requests,
        &half_way,
    )
    .await;
    // Cost: 2 of 3, then 2 more wait a point; more than the bucket waits a full refill; zero is
    // free. After 1.5 points, 2 fit (remaining 0) and 1 more waits about 200 ms.
    let cost = [Some(2), Some(2), Some(4), Some(0), Some(2), Some(1)];
    compare(
        &redis,
        &local,
        &ClientKey::from_api_key("cost"),
        &cost,
        &half_way,
    )
    .await;
}

// === Round trips ===

#[tokio::test]
async fn a_client_already_refused_costs_no_round_trip_until_its_retry_after() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let rules = BudgetRules {
        requests: Some(rate("1/h")),
        cost: Some(rate("100/h")),
        probes: None,
    };
    let redis = replica(&server, rules).await;
    let alice = ClientKey::from_api_key("alice");

    let before = round_trips(&redis);
    assert!(matches!(
        redis.check_request(&alice).await.unwrap(),
        RequestCheck::Budget(Decision::Allowed(_))
    ));
    assert_eq!(round_trips(&redis), before + 1, "one round trip per check");
    let RequestCheck::Budget(Decision::Limited {
        retry_after: first, ..
    }) = redis.check_request(&alice).await.unwrap()
    else {
        panic!("the second request in the hour is refused");
    };
    assert_eq!(round_trips(&redis), before + 2);

    let mut previous = first;
    for _ in 0..100 {
        let RequestCheck::Budget(Decision::Limited {
            retry_after, quota, ..
        }) = redis.check_request(&alice).await.unwrap()
        else {
            panic!("still refused");
        };
        assert!(retry_after <= previous, "retry-after counts down");
        assert_eq!((quota.limit, quota.remaining), (1, 0));
        previous = retry_after;
    }
    assert_eq!(round_trips(&redis), before + 2, "refusals answered locally");
    assert!(redis.stats().answered_locally >= 100);

    // Cost: refused for 60 points, so 60 or more are refused locally; fewer may fit: asked.
    assert!(
        matches!(redis.check_cost(&alice, 50).await.unwrap(), Decision::Allowed(q) if q.remaining == 50)
    );
    assert!(matches!(
        redis.check_cost(&alice, 60).await.unwrap(),
        Decision::Limited { .. }
    ));
    let asked = round_trips(&redis);
    assert!(matches!(
        redis.check_cost(&alice, 70).await.unwrap(),
        Decision::Limited { .. }
    ));
    assert_eq!(
        round_trips(&redis),
        asked,
        "more points than refused: local"
    );
    assert!(
        matches!(redis.check_cost(&alice, 10).await.unwrap(), Decision::Allowed(q) if q.remaining == 40)
    );
    assert_eq!(round_trips(&redis), asked + 1, "fewer points: asked Redis");
    // Zero points and more than the bucket never need Redis.
    assert!(
        matches!(redis.check_cost(&alice, 0).await.unwrap(), Decision::Allowed(q) if q.remaining == 100)
    );
    assert!(
        matches!(redis.check_cost(&alice, 101).await.unwrap(), Decision::Limited { retry_after, .. } if retry_after == Duration::from_secs(3600))
    );
    assert_eq!(round_trips(&redis), asked + 1);

    // Another client is not affected.
    assert!(matches!(
        redis
            .check_request(&ClientKey::from_api_key("bob"))
            .await
            .unwrap(),
        RequestCheck::Budget(Decision::Allowed(_))
    ));
}

#[tokio::test]
async fn a_lost_script_cache_is_repaired_with_one_extra_round_trip() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let rules = BudgetRules {
        requests: Some(rate("100/s")),
        ..BudgetRules::default()
    };
    let redis = replica(&server, rules).await;
    let alice = ClientKey::from_api_key("alice");
    redis.check_request(&alice).await.unwrap();

    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut server.admin())
        .unwrap();
    let before = round_trips(&redis);
    assert!(matches!(
        redis.check_request(&alice).await.unwrap(),
        RequestCheck::Budget(Decision::Allowed(q)) if q.remaining == 98
    ));
    assert_eq!(
        round_trips(&redis),
        before + 2,
        "EVALSHA refused, then EVAL"
    );
    redis.check_request(&alice).await.unwrap();
    assert_eq!(
        round_trips(&redis),
        before + 3,
        "cached again: EVALSHA only"
    );
}

// === Two replicas ===

#[tokio::test]
async fn two_replicas_share_one_budget() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let rules = BudgetRules {
        requests: Some(rate("4/h")),
        ..BudgetRules::default()
    };
    let a = replica(&server, rules).await;
    let b = replica(&server, rules).await;
    let alice = ClientKey::from_api_key("alice");
    let mut allowed = 0;
    for turn in 0..10 {
        let replica = if turn % 2 == 0 { &a } else { &b };
        if let RequestCheck::Budget(Decision::Allowed(_)) =
            replica.check_request(&alice).await.unwrap()
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 4, "one budget of 4, not 4 per replica");

    // Another deployment (another prefix) on the same Redis has its own budgets.
    let other = RedisState::connect(
        &RedisSettings {
            key_prefix: "other:".to_owned(),
            ..RedisSettings::new(server.url())
        },
        rules,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(matches!(
        other.check_request(&alice).await.unwrap(),
        RequestCheck::Budget(Decision::Allowed(_))
    ));
}

#[tokio::test]
async fn an_apq_registration_made_on_one_replica_is_found_on_another() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = replica(&server, BudgetRules::default()).await;
    let b = replica(&server, BudgetRules::default()).await;
    let text = "query Me { me { id } }";
    let hash = hash_document(text);
    assert_eq!(b.apq_get(&hash).await.unwrap(), None);
    assert_eq!(a.apq_register(hash, text).await.unwrap().as_ref(), text);
    assert_eq!(b.apq_get(&hash).await.unwrap().as_deref(), Some(text));

    // Stored with the APQ TTL.
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(format!("test:apq:{}", hex::encode(hash)))
        .query(&mut server.admin())
        .unwrap();
    assert!(ttl_ms > 0 && ttl_ms <= 24 * 3600 * 1000, "ttl {ttl_ms} ms");

    // Someone else's text under a popular hash is refused, and nothing is stored.
    let popular = hash_document("query Feed { feed { id } }");
    let attack = "query Feed { users(first: 100000) { email } }";
    assert!(matches!(
        a.apq_register(popular, attack).await,
        Err(ApqError::HashMismatch)
    ));
    assert_eq!(b.apq_get(&popular).await.unwrap(), None);

    // A text planted on Redis by anything else under that hash is not served either.
    let _: () = redis::cmd("SET")
        .arg(format!("test:apq:{}", hex::encode(popular)))
        .arg(attack)
        .query(&mut server.admin())
        .unwrap();
    assert_eq!(b.apq_get(&popular).await.unwrap(), None);
}

#[tokio::test]
async fn a_probe_cool_down_started_on_one_replica_refuses_on_every_replica() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let probes = ProbeRule {
        limit: rate("2/min"),
        cooldown: Duration::from_secs(60),
    };
    let with_budget = BudgetRules {
        requests: Some(rate("100/min")),
        cost: None,
        probes: Some(probes),
    };
    let only_probes = BudgetRules {
        probes: Some(probes),
        ..BudgetRules::default()
    };
    let a = replica(&server, with_budget).await;
    let b = replica(&server, with_budget).await;
    let c = replica(&server, only_probes).await;
    let prober = ClientKey::from_api_key("prober");

    assert_eq!(
        a.record_probe(&prober).await.unwrap(),
        ProbeOutcome::Counted
    );
    assert_eq!(
        b.record_probe(&prober).await.unwrap(),
        ProbeOutcome::Counted
    );
    assert!(matches!(
        b.check_request(&prober).await.unwrap(),
        RequestCheck::Budget(Decision::Allowed(_))
    ));
    assert_eq!(
        a.record_probe(&prober).await.unwrap(),
        ProbeOutcome::CoolDownStarted {
            cooldown: Duration::from_secs(60)
        }
    );

    // Counting again reaches Redis (which keeps the cool-down) and starts it again, as in process.
    let before = round_trips(&a);
    assert!(matches!(
        a.record_probe(&prober).await.unwrap(),
        ProbeOutcome::CoolDownStarted { .. }
    ));
    assert_eq!(round_trips(&a), before + 1);

    // The replica that started it answers from memory; the others learn it in their one round
    // trip (budget and cool-down are read together), then answer from memory too.
    for replica in [&a, &b, &c] {
        let before = round_trips(replica);
        for _ in 0..3 {
            let RequestCheck::CoolingDown { retry_after } =
                replica.check_request(&prober).await.unwrap()
            else {
                panic!("the prober is cooling down on every replica");
            };
            assert!(
                retry_after <= Duration::from_secs(60) && retry_after > Duration::from_secs(50)
            );
        }
        assert!(round_trips(replica) - before <= 1);
    }
    assert!(matches!(
        b.check_request(&ClientKey::from_api_key("innocent"))
            .await
            .unwrap(),
        RequestCheck::Budget(Decision::Allowed(_))
    ));
    let nothing = replica(&server, BudgetRules::default()).await;
    assert_eq!(
        nothing.record_probe(&prober).await.unwrap(),
        ProbeOutcome::NotConfigured
    );
}

// === Redis failing ===

#[tokio::test]
async fn redis_stopped_mid_run_gives_a_typed_error_and_is_used_again_when_it_returns() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let rules = BudgetRules {
        requests: Some(rate("100/s")),
        ..BudgetRules::default()
    };
    let redis = replica(&server, rules).await;
    let alice = ClientKey::from_api_key("alice");
    redis.check_request(&alice).await.unwrap();

    server.stop();
    for _ in 0..5 {
        let started = Instant::now();
        let failed = redis.check_request(&alice).await;
        assert!(
            matches!(failed, Err(StateError::Timeout(_) | StateError::Redis(_))),
            "{failed:?}"
        );
        // Bounded by REDIS_TIMEOUT (50 ms), not by reconnection backoff or TCP timeouts; the
        // bound here is loose on purpose: it only tells "bounded" from "hangs".
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    let text = "query Me { me { id } }";
    assert!(matches!(
        redis.apq_get(&hash_document(text)).await,
        Err(StateError::Timeout(_) | StateError::Redis(_))
    ));
    assert!(matches!(
        redis.apq_register(hash_document(text), text).await,
        Err(ApqError::State(_))
    ));

    // Back, empty (no persistence) and without the script: the connection is made again and
    // the script sent again.
    server.restart();
    let decision = eventually(Duration::from_secs(10), || redis.check_request(&alice)).await;
    assert!(matches!(
        decision,
        RequestCheck::Budget(Decision::Allowed(q)) if q.remaining == 99
    ));
}

#[tokio::test]
async fn a_redis_slower_than_the_timeout_takes_the_timeout_path() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let rules = BudgetRules {
        requests: Some(rate("100/s")),
        ..BudgetRules::default()
    };
    let redis = replica(&server, rules).await;
    let alice = ClientKey::from_api_key("alice");
    redis.check_request(&alice).await.unwrap();

    // Redis holds every client's commands for 2 s.
    let pause = Duration::from_secs(2);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause.as_millis().to_string())
        .query(&mut server.admin())
        .unwrap();
    let started = Instant::now();
    let slow = redis.check_request(&alice).await;
    assert!(
        matches!(slow, Err(StateError::Timeout(t)) if t == Duration::from_millis(50)),
        "{slow:?}"
    );
    assert!(started.elapsed() < pause, "gave up before Redis answered");

    // The same connection serves again once Redis does.
    eventually(Duration::from_secs(10), || redis.check_request(&alice)).await;
}

#[tokio::test]
async fn without_redis_at_start_only_a_required_connection_fails() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    server.stop();
    let rules = BudgetRules {
        requests: Some(rate("100/s")),
        ..BudgetRules::default()
    };
    // REDIS_REQUIRED_TO_START=true: refuses to start.
    assert!(
        RedisState::connect(&settings(&server), rules, Duration::from_millis(500))
            .await
            .is_err()
    );
    // false: starts, fails each call with a typed error, and uses Redis once it is there.
    let redis = RedisState::connect_lazy(&settings(&server), rules).unwrap();
    let alice = ClientKey::from_api_key("alice");
    assert!(redis.check_request(&alice).await.is_err());
    server.restart();
    eventually(Duration::from_secs(10), || redis.check_request(&alice)).await;
    redis
        .verify(Duration::from_secs(5))
        .await
        .expect("PING and the script");
}

// === Memory ===

#[tokio::test]
async fn a_flood_of_distinct_clients_keeps_memory_bounded_here_and_on_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let rules = BudgetRules {
        requests: Some(rate("1/h")),
        ..BudgetRules::default()
    };
    let redis = RedisState::connect(
        &RedisSettings {
            max_refused_clients: 300,
            ..settings(&server)
        },
        rules,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let flood = 2_000;
    for i in 0..flood {
        let client = ClientKey::from_api_key(&format!("flood-{i}"));
        redis.check_request(&client).await.unwrap();
        assert!(matches!(
            redis.check_request(&client).await.unwrap(),
            RequestCheck::Budget(Decision::Limited { .. })
        ));
    }
    let held = redis.refused_clients();
    assert!(held > 0 && held <= 300, "refused cache holds {held}");

    // On Redis every bucket expires by itself: each key has a TTL of at most the refill time.
    let mut admin = server.admin();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("test:budget:*")
        .query(&mut admin)
        .unwrap();
    assert_eq!(keys.len(), flood);
    for key in &keys {
        let ttl_ms: i64 = redis::cmd("PTTL").arg(key).query(&mut admin).unwrap();
        assert!(ttl_ms > 0 && ttl_ms <= 3_600_000, "{key}: ttl {ttl_ms}");
    }
}

#[tokio::test]
async fn an_idle_clients_bucket_disappears_from_redis_once_refilled() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // One point per 10 ms: a bucket of 1 is full again 10 ms after its only use.
    let budget = rate("100/s:burst=1");
    let redis = replica(&server, BudgetRules::default()).await;
    let alice = ClientKey::from_api_key("alice");
    redis.check(&alice, Budget::Cost, &budget, 1).await.unwrap();
    let mut admin = server.admin();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let keys: Vec<String> = redis::cmd("KEYS").arg("test:*").query(&mut admin).unwrap();
        if keys.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still on Redis: {keys:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn settling_charges_and_refunds_the_shared_cost_budget_like_the_in_process_limiter() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // An hour's budget: nothing refills while the test runs.
    let budget = rate("100/h");
    let rules = BudgetRules {
        cost: Some(budget),
        ..BudgetRules::default()
    };
    let a = replica(&server, rules).await;
    let b = replica(&server, rules).await;
    let local = Limiter::new(None, Some(quota(&budget)), 1_000);
    let alice = ClientKey::from_api_key("alice");
    let local_alice = BucketKey::verified(alice, std::net::Ipv4Addr::LOCALHOST.into());
    let remaining = |decision: Decision| match decision {
        Decision::Allowed(quota) => quota.remaining,
        other => panic!("expected allowed, got {other:?}"),
    };

    // Estimated 40, the answer cost 10: 30 points come back.
    assert_eq!(remaining(a.check_cost(&alice, 40).await.unwrap()), 60);
    assert_eq!(remaining(local.check_cost(&local_alice, 40)), 60);
    a.settle_cost(&alice, 40, 10).await.unwrap();
    local.settle_cost(&local_alice, 40, 10);
    // Seen from the other replica: 90 left, so 1 point leaves 89.
    assert_eq!(remaining(b.check_cost(&alice, 1).await.unwrap()), 89);
    assert_eq!(remaining(local.check_cost(&local_alice, 1)), 89);

    // Estimated 9, the answer cost 80: 71 more are charged, which leaves 9.
    assert_eq!(remaining(b.check_cost(&alice, 9).await.unwrap()), 80);
    assert_eq!(remaining(local.check_cost(&local_alice, 9)), 80);
    b.settle_cost(&alice, 9, 80).await.unwrap();
    local.settle_cost(&local_alice, 9, 80);
    assert_eq!(remaining(a.check_cost(&alice, 9).await.unwrap()), 0);
    assert_eq!(remaining(local.check_cost(&local_alice, 9)), 0);
    assert!(matches!(
        a.check_cost(&alice, 1).await.unwrap(),
        Decision::Limited { .. }
    ));

    // A refund to a client whose bucket expired (full) gives nothing beyond full.
    let bob = ClientKey::from_api_key("bob");
    b.settle_cost(&bob, 50, 0).await.unwrap();
    assert_eq!(remaining(a.check_cost(&bob, 1).await.unwrap()), 99);
}

#[tokio::test]
async fn an_answer_of_absurd_actual_cost_is_charged_not_lost() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let rules = BudgetRules {
        cost: Some(rate("100/h")),
        ..BudgetRules::default()
    };
    let redis = replica(&server, rules).await;
    let mallory = ClientKey::from_api_key("mallory");
    assert!(matches!(
        redis.check_cost(&mallory, 1).await.unwrap(),
        Decision::Allowed(_)
    ));
    redis.settle_cost(&mallory, 1, u64::MAX).await.unwrap();
    assert!(matches!(
        redis.check_cost(&mallory, 1).await.unwrap(),
        Decision::Limited { .. }
    ));
}
