//! Several firewall replicas on one Redis (`STATE=redis`), end to end: the built binary (three
//! processes) holds one global limit for a client sent round-robin across them; an APQ
//! registration made through one replica is served by another; Redis stopped, slow and back
//! under each `REDIS_FAILURE_MODE`; `/readyz`; `REDIS_REQUIRED_TO_START`.
//!
//! Each test starts its own `redis-server` (see `redis_server`); without one installed the tests
//! print a skip notice, and with `CI=true` they fail instead.

mod common;
mod redis_server;

use std::time::{Duration, Instant};

use common::{Harness, Process, first_code, scrape, status_and_json};
use graphql_firewall::persisted::hash_document;
use redis_server::RedisServer;
use serde_json::json;

const QUERY: &str = r#"{"query":"{ users(first: 1) { id } }"}"#;

/// The variables of a replica sharing `server`.
fn shared(server: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        ("GRAPHQL_FIREWALL_STATE", "redis".to_owned()),
        ("GRAPHQL_FIREWALL_REDIS_URL", server.url()),
    ]
}

fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

async fn replica(server: &RedisServer, extra: &[(&'static str, &str)]) -> Harness {
    let mut vars = shared(server);
    vars.extend(
        extra
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned())),
    );
    common::start(&borrowed(&vars)).await
}

/// Sends `QUERY` round-robin to `urls` from `senders` concurrent loops for `run`; returns the
/// statuses seen and the time from the first request sent to the last answer received.
async fn round_robin(urls: &[String], senders: usize, run: Duration) -> (Vec<u16>, Duration) {
    let client = common::client();
    let started = Instant::now();
    let loops = (0..senders).map(|sender| {
        let client = client.clone();
        let urls = urls.to_vec();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut next = sender;
            while started.elapsed() < run {
                let url = &urls[next % urls.len()];
                next += 1;
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(QUERY)
                    .send()
                    .await
                    .expect("a replica answers");
                statuses.push(response.status().as_u16());
            }
            statuses
        })
    });
    let mut statuses = Vec::new();
    for handle in loops.collect::<Vec<_>>() {
        statuses.extend(handle.await.unwrap());
    }
    (statuses, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_hold_one_global_limit_within_five_percent() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let backend = common::demo_backend().await;
    let upstream = backend.url().to_string();
    // 40 requests a second, a burst of 40: over `run`, one client may send 40 + 40 × run.
    let rate_per_second = 40.0;
    let burst = 40.0;
    let mut vars = shared(&server);
    vars.extend([
        ("GRAPHQL_FIREWALL_UPSTREAM_URL", upstream.clone()),
        ("GRAPHQL_FIREWALL_RATE_LIMIT", "40/s".to_owned()),
        ("GRAPHQL_FIREWALL_WORKERS", "1".to_owned()),
    ]);
    let replicas: Vec<Process> = (0..3)
        .map(|_| Process::start(&["serve"], &borrowed(&vars)))
        .collect();
    let urls: Vec<String> = replicas.iter().map(Process::url).collect();

    let (statuses, elapsed) = round_robin(&urls, 6, Duration::from_secs(4)).await;
    let admitted = statuses.iter().filter(|&&s| s == 200).count() as f64;
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(
        admitted as usize + refused,
        statuses.len(),
        "only 200 and 429: {statuses:?}"
    );
    let allowed = burst + rate_per_second * elapsed.as_secs_f64();
    let error = (admitted - allowed) / allowed;
    eprintln!(
        "3 replicas, one client: {admitted} admitted of {} sent in {elapsed:?}; the limit allows {allowed:.1} ({:+.2}%)",
        statuses.len(),
        error * 100.0
    );
    assert!(
        statuses.len() as f64 > 2.0 * allowed,
        "the client must send well over its limit for the test to mean anything"
    );
    assert!(
        error.abs() <= 0.05,
        "admitted {admitted}, allowed {allowed:.1}: off by {:.2}%",
        error * 100.0
    );

    // The contrast: the same three replicas with their own state give the client three budgets.
    drop(replicas);
    let memory_vars = [
        ("GRAPHQL_FIREWALL_UPSTREAM_URL", upstream.as_str()),
        ("GRAPHQL_FIREWALL_RATE_LIMIT", "40/s"),
        ("GRAPHQL_FIREWALL_WORKERS", "1"),
    ];
    let replicas: Vec<Process> = (0..3)
        .map(|_| Process::start(&["serve"], &memory_vars))
        .collect();
    let urls: Vec<String> = replicas.iter().map(Process::url).collect();
    let (statuses, elapsed) = round_robin(&urls, 6, Duration::from_secs(2)).await;
    let admitted = statuses.iter().filter(|&&s| s == 200).count() as f64;
    let allowed = burst + rate_per_second * elapsed.as_secs_f64();
    assert!(
        admitted > 2.5 * allowed,
        "STATE=memory: each replica has its own budget ({admitted} admitted, one budget allows {allowed:.1})"
    );
}

#[tokio::test]
async fn an_apq_registration_made_through_one_replica_is_served_by_another() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let apq = [("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "apq")];
    let a = replica(&server, &apq).await;
    let b = replica(&server, &apq).await;
    let text = "query Registered { users(first: 2) { id } }";
    let hash = hex::encode(hash_document(text));
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let bare = json!({ "extensions": extensions }).to_string();

    let (status, body) = status_and_json(b.post_json(&bare).await).await;
    assert_eq!(
        (status, first_code(&body)),
        (200, "PERSISTED_QUERY_NOT_FOUND"),
        "{body}"
    );
    let register = json!({ "query": text, "extensions": extensions }).to_string();
    let (status, body) = status_and_json(a.post_json(&register).await).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = status_and_json(b.post_json(&bare).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["users"].as_array().map(Vec::len), Some(2));

    // A text planted on Redis under another document's hash is never served.
    let planted = hex::encode(hash_document("query Other { users(first: 1) { id } }"));
    let _: () = redis::cmd("SET")
        .arg(format!("graphql-firewall:apq:{planted}"))
        .arg("mutation Evil { __typename }")
        .query(&mut server.admin())
        .unwrap();
    let bare =
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": planted } } });
    let (_, body) = status_and_json(b.post_json(&bare.to_string()).await).await;
    assert_eq!(first_code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
}

/// Sends `count` requests and returns their statuses.
async fn statuses(harness: &Harness, count: usize) -> Vec<u16> {
    let mut seen = Vec::with_capacity(count);
    for _ in 0..count {
        seen.push(harness.post_json(QUERY).await.status().as_u16());
    }
    seen
}

/// The sum of `family`'s series that carry `label` (`name="value"`).
async fn sum_of(harness: &Harness, family: &str, label: &str) -> f64 {
    scrape(harness)
        .await
        .iter()
        .filter(|(series, _)| series.starts_with(family) && series.contains(label))
        .map(|(_, value)| value)
        .sum()
}

async fn fallbacks(harness: &Harness, fallback: &str) -> f64 {
    let label = format!("fallback=\"{fallback}\"");
    sum_of(harness, "graphql_firewall_redis_fallbacks_total", &label).await
}

/// Polls `/readyz` until `expected` holds of its answer, which stands for up to a second.
async fn readyz_until(harness: &Harness, expected: impl Fn(u16, &serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = readyz(harness).await;
        if expected(status, &body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still answers {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(harness: &Harness) -> (u16, serde_json::Value) {
    let response = harness
        .client
        .get(format!("{}/readyz", harness.base))
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

/// Three requests a minute, so that a fresh budget and a spent one are easy to tell apart.
const LIMIT: (&str, &str) = ("GRAPHQL_FIREWALL_RATE_LIMIT", "3/min");

#[tokio::test]
async fn failure_mode_local_limits_each_replica_on_its_own_while_redis_is_away() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let harness = replica(&server, &[LIMIT]).await;
    assert_eq!(statuses(&harness, 2).await, [200, 200]);

    server.stop();
    // This replica's own budget: fresh, and limited all the same.
    assert_eq!(statuses(&harness, 4).await, [200, 200, 200, 429]);
    assert!(fallbacks(&harness, "local").await >= 4.0);
    readyz_until(&harness, |status, body| {
        (status, body["redis"].as_str()) == (200, Some("unreachable"))
    })
    .await;

    // Back (empty, as it keeps nothing): the shared budget is used again.
    server.restart();
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let before = fallbacks(&harness, "local").await;
            harness.post_json(QUERY).await;
            if fallbacks(&harness, "local").await == before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(recovered.is_ok(), "Redis is used again once it returns");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("graphql-firewall:budget:*")
        .query(&mut server.admin())
        .unwrap();
    assert_eq!(
        keys.len(),
        1,
        "the client's bucket is on Redis again: {keys:?}"
    );
    readyz_until(&harness, |status, body| {
        (status, body["redis"].as_str()) == (200, Some("ok"))
    })
    .await;
}

#[tokio::test]
async fn a_client_refused_before_redis_went_away_stays_refused_by_the_replicas_that_refused_it() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let mut replicas = Vec::new();
    for mode in ["local", "open", "closed"] {
        replicas.push(
            replica(
                &server,
                &[LIMIT, ("GRAPHQL_FIREWALL_REDIS_FAILURE_MODE", mode)],
            )
            .await,
        );
    }
    // One client, one budget across the three replicas.
    let mut seen = Vec::new();
    for harness in &replicas {
        seen.extend(statuses(harness, 2).await);
    }
    assert_eq!(seen, [200, 200, 200, 429, 429, 429]);
    server.stop();
    // A replica that refused the client remembers "refused until t" and needs no Redis to refuse
    // it again, whatever the failure mode.
    for harness in &replicas[1..] {
        assert_eq!(statuses(harness, 2).await, [429, 429]);
    }
}

#[tokio::test]
async fn failure_mode_open_admits_while_redis_is_away() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let harness = replica(
        &server,
        &[LIMIT, ("GRAPHQL_FIREWALL_REDIS_FAILURE_MODE", "open")],
    )
    .await;
    assert_eq!(statuses(&harness, 2).await, [200, 200]);
    server.stop();
    assert_eq!(statuses(&harness, 6).await, [200; 6]);
    assert!(fallbacks(&harness, "proceed").await >= 6.0);
    server.restart();
    // The shared budget again (fresh after the restart): limited after three.
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let seen = statuses(&harness, 4).await;
            if seen.contains(&429) {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("limited again once Redis returns");
    assert_eq!(seen.last(), Some(&429));
}

#[tokio::test]
async fn failure_mode_closed_answers_503_while_redis_is_away_and_recovers() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let harness = replica(
        &server,
        &[LIMIT, ("GRAPHQL_FIREWALL_REDIS_FAILURE_MODE", "closed")],
    )
    .await;
    assert_eq!(statuses(&harness, 1).await, [200]);
    server.stop();
    let response = harness.post_json(QUERY).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let (_, body) = status_and_json(response).await;
    assert_eq!(first_code(&body), "STATE_UNAVAILABLE");
    readyz_until(&harness, |status, body| {
        (status, body["status"].as_str()) == (503, Some("redis unreachable"))
    })
    .await;
    assert!(fallbacks(&harness, "refuse").await >= 1.0);

    server.restart();
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if harness.post_json(QUERY).await.status() == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(recovered.is_ok(), "served again once Redis returns");
    readyz_until(&harness, |status, _| status == 200).await;
}

#[tokio::test]
async fn a_redis_slower_than_redis_timeout_takes_the_failure_path_without_waiting_for_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let closed = replica(
        &server,
        &[
            LIMIT,
            ("GRAPHQL_FIREWALL_REDIS_FAILURE_MODE", "closed"),
            ("GRAPHQL_FIREWALL_REDIS_TIMEOUT", "100ms"),
        ],
    )
    .await;
    let local = replica(
        &server,
        &[LIMIT, ("GRAPHQL_FIREWALL_REDIS_TIMEOUT", "100ms")],
    )
    .await;
    assert_eq!(statuses(&closed, 1).await, [200]);
    assert_eq!(statuses(&local, 1).await, [200]);

    // Redis holds every client's commands for 3 s.
    let pause = Duration::from_secs(3);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause.as_millis().to_string())
        .query(&mut server.admin())
        .unwrap();
    let started = Instant::now();
    assert_eq!(closed.post_json(QUERY).await.status(), 503);
    assert_eq!(local.post_json(QUERY).await.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "each answer came after REDIS_TIMEOUT, not after the pause ({:?})",
        started.elapsed()
    );
    let errors = sum_of(
        &closed,
        "graphql_firewall_redis_errors_total",
        r#"error="timeout""#,
    )
    .await;
    assert!(errors >= 1.0, "the timeout is counted");
}

#[tokio::test]
async fn a_redis_held_slow_costs_one_timeout_a_second_not_one_per_request() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let harness = replica(
        &server,
        &[
            ("GRAPHQL_FIREWALL_RATE_LIMIT", "1000/s"),
            ("GRAPHQL_FIREWALL_COST_BUDGET", "100000/s"),
            ("GRAPHQL_FIREWALL_REDIS_TIMEOUT", "200ms"),
        ],
    )
    .await;
    assert_eq!(statuses(&harness, 1).await, [200]);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg("5000")
        .query(&mut server.admin())
        .unwrap();
    // 20 requests, two Redis calls each: 8 s if each waited REDIS_TIMEOUT.
    let started = Instant::now();
    assert_eq!(statuses(&harness, 20).await, [200; 20]);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(900),
        "20 requests took {elapsed:?} while Redis was held"
    );
    let timeouts = sum_of(
        &harness,
        "graphql_firewall_redis_errors_total",
        r#"error="timeout""#,
    )
    .await;
    assert_eq!(
        timeouts, 1.0,
        "one call waited; the rest went to the fallback"
    );
    assert!(fallbacks(&harness, "local").await >= 40.0);
}

#[tokio::test]
async fn redis_required_to_start_refuses_to_serve_without_redis() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    server.stop();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_graphql-firewall"))
        .arg("serve")
        .env_clear()
        .env(
            "GRAPHQL_FIREWALL_UPSTREAM_URL",
            "http://127.0.0.1:9/graphql",
        )
        .env("GRAPHQL_FIREWALL_LISTEN", "127.0.0.1:0")
        .env("GRAPHQL_FIREWALL_METRICS_LISTEN", "off")
        .env("GRAPHQL_FIREWALL_STATE", "redis")
        .env("GRAPHQL_FIREWALL_REDIS_URL", &url)
        .env("GRAPHQL_FIREWALL_REDIS_REQUIRED_TO_START", "on")
        .env("GRAPHQL_FIREWALL_READY_TIMEOUT", "500ms")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("REDIS_REQUIRED_TO_START"), "{stderr}");
}

#[tokio::test]
async fn a_replica_restart_loses_no_budget() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let first = replica(&server, &[LIMIT]).await;
    assert_eq!(statuses(&first, 3).await, [200, 200, 200]);
    drop(first);
    // A new process knows nothing locally; the spent budget is on Redis.
    let restarted = replica(&server, &[LIMIT]).await;
    let response = restarted.post_json(QUERY).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
}

#[test]
fn check_verifies_that_redis_answers_and_holds_the_scripts() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let check = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_graphql-firewall"))
            .arg("check")
            .env_clear()
            .env(
                "GRAPHQL_FIREWALL_UPSTREAM_URL",
                "http://127.0.0.1:9/graphql",
            )
            .env("GRAPHQL_FIREWALL_STATE", "redis")
            .env("GRAPHQL_FIREWALL_REDIS_URL", url)
            .env("GRAPHQL_FIREWALL_READY_TIMEOUT", "500ms")
            .output()
            .expect("the binary runs")
    };
    let url = server.url();
    let output = check(&url);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("Redis answers and holds the scripts"),
        "{stdout}"
    );
    let scripts: Vec<bool> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(sha1_hex(include_str!("../src/state/gcra.lua")))
        .query(&mut server.admin())
        .unwrap();
    assert_eq!(scripts, [true], "check loaded the GCRA script");

    server.stop();
    let output = check(&url);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("REDIS_URL"), "{stderr}");
}

fn sha1_hex(text: &str) -> String {
    redis::Script::new(text).get_hash().to_owned()
}

#[tokio::test]
async fn a_tiers_budget_is_one_budget_across_replicas() {
    use sha2::Digest;
    let Some(server) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("api-keys");
    let digest = |key: &str| hex::encode(sha2::Sha256::digest(key.as_bytes()));
    std::fs::write(
        &keys,
        format!(
            "{} pro-app pro\n{} plain-app -\n",
            digest("key-pro-0000001"),
            digest("key-plain-00001")
        ),
    )
    .unwrap();
    let keys_path = keys.display().to_string();
    let vars = [
        ("GRAPHQL_FIREWALL_API_KEYS_FILE", keys_path.as_str()),
        ("GRAPHQL_FIREWALL_RATE_LIMIT", "2/min"),
        ("GRAPHQL_FIREWALL_TIERS", "pro:rate=5/min"),
    ];
    let a = replica(&server, &vars).await;
    let b = replica(&server, &vars).await;
    let mut passed = std::collections::HashMap::new();
    for key in ["key-plain-00001", "key-pro-0000001"] {
        let mut admitted = 0;
        for replica in [&a, &b].into_iter().cycle().take(8) {
            let response = replica
                .post_json_with(&[("x-api-key", key)], QUERY)
                .await
                .unwrap();
            admitted += usize::from(response.status() == 200);
        }
        passed.insert(key, admitted);
    }
    assert_eq!(passed["key-plain-00001"], 2, "the global rate, once");
    assert_eq!(passed["key-pro-0000001"], 5, "the tier's rate, once");
}
