//! Operability: Prometheus metrics on the admin listener, the JSON audit log, `check` and
//! `analyse`, the panic guard, and the deployment example.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{scrape, start, start_with_upstream};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_graphql-firewall");

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

#[tokio::test]
async fn metrics_count_allowed_rejected_rate_limited_and_upstream_failures() {
    let harness = start(&[("GRAPHQL_FIREWALL_RATE_LIMIT", "3/min")]).await;
    let ok = r#"{"query":"{ users(first: 1) { id } }"}"#;
    assert_eq!(harness.post_json(ok).await.status(), 200);
    assert_eq!(harness.post_json(ok).await.status(), 200);
    assert_eq!(
        harness
            .post_json(r#"{"query":"{ __schema { types { name } } }"}"#)
            .await
            .status(),
        403
    );
    assert_eq!(harness.post_json(ok).await.status(), 429);
    let metrics = scrape(&harness).await;
    let requests = "graphql_firewall_requests_total";
    assert_eq!(
        metrics[&series(
            requests,
            &[
                ("transport", "http"),
                ("verdict", "allowed"),
                ("code", "none")
            ]
        )],
        2.0
    );
    assert_eq!(
        metrics[&series(
            requests,
            &[
                ("transport", "http"),
                ("verdict", "rejected"),
                ("code", "INTROSPECTION_DISABLED")
            ]
        )],
        1.0
    );
    assert_eq!(
        metrics[&series(
            requests,
            &[
                ("transport", "http"),
                ("verdict", "rejected"),
                ("code", "RATE_LIMITED")
            ]
        )],
        1.0
    );
    assert_eq!(
        metrics[&series(
            "graphql_firewall_rate_limited_total",
            &[("rule", "rate_limit")]
        )],
        1.0
    );
    assert_eq!(
        metrics[&series(
            "graphql_firewall_operations_total",
            &[("operation_type", "query"), ("persisted", "no")]
        )],
        2.0
    );
    assert_eq!(
        metrics[&series(
            "graphql_firewall_analysis_cache_total",
            &[("outcome", "miss")]
        )],
        2.0
    );
    assert_eq!(
        metrics[&series(
            "graphql_firewall_analysis_cache_total",
            &[("outcome", "hit")]
        )],
        1.0
    );
    assert_eq!(metrics["graphql_firewall_overhead_seconds_count"], 2.0);
    assert_eq!(
        metrics["graphql_firewall_request_duration_seconds_count"],
        4.0
    );
    assert_eq!(metrics["graphql_firewall_analysis_cache_entries"], 2.0);
    assert_eq!(metrics["graphql_firewall_manifest_operations"], 7.0);

    let dead = common::closed_port().await;
    let harness = start_with_upstream(&format!("http://{dead}/graphql"), &[]).await;
    assert_eq!(harness.post_json(ok).await.status(), 502);
    let metrics = scrape(&harness).await;
    assert_eq!(
        metrics[&series(
            "graphql_firewall_upstream_errors_total",
            &[("outcome", "unavailable")]
        )],
        1.0
    );
    assert_eq!(
        metrics[&series(
            requests,
            &[
                ("transport", "http"),
                ("verdict", "rejected"),
                ("code", "UPSTREAM_UNAVAILABLE")
            ]
        )],
        1.0
    );
}

#[tokio::test]
async fn metrics_are_not_served_on_the_traffic_port() {
    let harness = start(&[]).await;
    let response = harness
        .client
        .get(format!("{}/metrics", harness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn ten_thousand_operation_names_do_not_create_ten_thousand_series() {
    let harness = start(&[("GRAPHQL_FIREWALL_MAX_BATCH", "100")]).await;
    for chunk in 0..100 {
        let batch: Vec<Value> = (0..100)
            .map(|i| {
                let name = format!("Op{}", chunk * 100 + i);
                json!({ "query": format!("query {name} {{ users(first: 1) {{ id }} }}"), "operationName": name })
            })
            .collect();
        assert_eq!(
            harness
                .post_json(&Value::Array(batch).to_string())
                .await
                .status(),
            200
        );
    }
    let metrics = scrape(&harness).await;
    assert!(metrics.len() < 200, "{} series", metrics.len());
    assert!(
        metrics.keys().all(|k| !k.contains("Op1")),
        "no operation name becomes a label"
    );
    assert_eq!(
        metrics[&series(
            "graphql_firewall_operations_total",
            &[("operation_type", "query"), ("persisted", "no")]
        )],
        10_000.0
    );
}

#[tokio::test]
async fn manifest_operations_are_labelled_by_their_manifest_name() {
    let harness = start(&[("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "allowlist")]).await;
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/persisted-queries/manifest.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let id = manifest["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["name"] == "UserDirectory")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        harness
            .post_json(&json!({ "documentId": id }).to_string())
            .await
            .status(),
        200
    );
    assert_eq!(
        harness
            .post_json(r#"{"query":"{ users { id } }"}"#)
            .await
            .status(),
        403
    );
    let metrics = scrape(&harness).await;
    assert_eq!(
        metrics[&series(
            "graphql_firewall_persisted_operation_requests_total",
            &[("operation", "UserDirectory")]
        )],
        1.0
    );
    assert_eq!(
        metrics[&series(
            "graphql_firewall_persisted_queries_total",
            &[("outcome", "hit")]
        )],
        1.0
    );
}

#[tokio::test]
async fn a_budget_in_monitor_mode_is_counted_and_shown_in_the_verdict() {
    let harness = start(&[
        ("GRAPHQL_FIREWALL_RATE_LIMIT", "1/h"),
        ("GRAPHQL_FIREWALL_COST_BUDGET", "5/h"),
        (
            "GRAPHQL_FIREWALL_RULE_MODES",
            "rate_limit:monitor,cost_budget:monitor",
        ),
    ])
    .await;
    // The first request fits both budgets; the next two are over both, and still forwarded.
    let costs_four = r#"{"query":"{ users(first: 4) { id } }"}"#;
    for _ in 0..3 {
        assert_eq!(harness.post_json(costs_four).await.status(), 200);
    }
    assert_eq!(harness.upstream_requests(), 3);
    let metrics = scrape(&harness).await;
    let requests = "graphql_firewall_requests_total";
    assert_eq!(
        metrics[&series(
            requests,
            &[
                ("transport", "http"),
                ("verdict", "allowed"),
                ("code", "none")
            ]
        )],
        1.0
    );
    assert_eq!(
        metrics[&series(
            requests,
            &[
                ("transport", "http"),
                ("verdict", "monitored"),
                ("code", "none")
            ]
        )],
        2.0
    );
    let monitored = "graphql_firewall_monitored_violations_total";
    assert_eq!(metrics[&series(monitored, &[("rule", "rate_limit")])], 2.0);
    assert_eq!(metrics[&series(monitored, &[("rule", "cost_budget")])], 2.0);
    assert!(
        !metrics.contains_key(&series(
            "graphql_firewall_rate_limited_total",
            &[("rule", "rate_limit")]
        )),
        "nothing was refused"
    );
}

async fn buggy_handler() -> &'static str {
    panic!("a bug")
}

#[tokio::test]
async fn a_panic_answers_500_and_the_server_keeps_serving() {
    let backend = common::demo_backend().await;
    let mut vars = std::collections::HashMap::new();
    vars.insert(
        "GRAPHQL_FIREWALL_UPSTREAM_URL".to_owned(),
        backend.url().to_string(),
    );
    let config = graphql_firewall::config::Config::from_source(
        &vars,
        graphql_firewall::config::Profile::Serve,
    )
    .unwrap();
    // A route that panics stands for a bug anywhere in request handling; it gets the layers every
    // traffic route gets, next to the firewall's own routes.
    let mut app = graphql_firewall::build(&config).unwrap().traffic;
    app.router = graphql_firewall::edge_layers(
        axum::Router::new().route("/test-panic", axum::routing::get(buggy_handler)),
    )
    .merge(app.router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(graphql_firewall::serve(
        listener,
        app,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://{addr}/test-panic"))
        .header("x-request-id", "panic-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-request-id"], "panic-1");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL_ERROR");
    assert!(
        !body.to_string().contains("a bug"),
        "the panic message is not revealed"
    );
    let ok = client
        .post(format!("http://{addr}/graphql"))
        .header("content-type", "application/json")
        .body(r#"{"query":"{ users(first: 1) { id } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// The documented fields of an audit event (README "Audit log").
const AUDIT_FIELDS: [&str; 23] = [
    "timestamp",
    "level",
    "message",
    "request_id",
    "client_key",
    "client_ip",
    "method",
    "batch",
    "batch_index",
    "operation_type",
    "operation_name",
    "hash",
    "persisted",
    "depth",
    "aliases",
    "root_fields",
    "directives",
    "tokens",
    "cost",
    "verdict",
    "status",
    "total_ms",
    "response_bytes",
];

#[tokio::test]
async fn json_audit_events_carry_the_documented_fields_one_per_operation() {
    let backend = common::demo_backend().await;
    let process = common::Process::start(
        &["serve"],
        &[
            ("GRAPHQL_FIREWALL_UPSTREAM_URL", backend.url().as_str()),
            ("GRAPHQL_FIREWALL_CLIENT_KEY_HEADER", "x-api-key"),
            ("GRAPHQL_FIREWALL_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    );
    let batch = r#"[{"query":"query A { users(first: 2) { id } }"},{"query":"query B { user(id: \"u1\") { name } }"}]"#;
    let response = reqwest::Client::new()
        .post(process.url())
        .header("content-type", "application/json")
        .header("x-api-key", "secret-api-key")
        .header("x-request-id", "audit-1")
        .body(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events: Vec<Value> = (0..2)
        .map(|_| process.wait_for(|event| event["target"] == "graphql_firewall::audit"))
        .collect();
    for (index, event) in events.iter().enumerate() {
        for field in AUDIT_FIELDS {
            assert!(event.get(field).is_some(), "{field} missing in {event}");
        }
        assert_eq!(event["request_id"], "audit-1");
        assert_eq!(event["batch_index"], index);
        assert_eq!(event["verdict"], "allowed");
        assert_eq!(event["level"], "INFO");
        assert!(
            !event.to_string().contains("secret-api-key"),
            "the key is only logged hashed"
        );
        assert_eq!(event["client_key"].as_str().unwrap().len(), 12);
    }
    assert_eq!(events[0]["operation_name"], "A");
    assert_eq!(events[1]["operation_name"], "B");
    assert_eq!(events[0]["depth"], 2);
}

fn run(args: &[&str], vars: &[(&str, &str)], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const DEMO_CONFIG: [(&str, &str); 3] = [
    (
        "GRAPHQL_FIREWALL_UPSTREAM_URL",
        "http://user:hunter2@127.0.0.1:4000/graphql",
    ),
    ("GRAPHQL_FIREWALL_SCHEMA", "schema/demo.graphql"),
    (
        "GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR",
        "persisted-queries",
    ),
];

#[test]
fn check_accepts_the_demo_configuration_and_redacts_secrets() {
    let (code, stdout, stderr) = run(&["check"], &DEMO_CONFIG, None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("configuration is valid") && stdout.contains("GRAPHQL_FIREWALL_MAX_DEPTH"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(
        stdout.contains("UserDirectory"),
        "the manifest's operations are listed: {stdout}"
    );
}

#[test]
fn check_fails_on_each_kind_of_broken_input() {
    let (code, _, stderr) = run(
        &["check"],
        &[
            ("GRAPHQL_FIREWALL_UPSTREAM_URL", "http://x/graphql"),
            ("GRAPHQL_FIREWALL_MAX_DEPTH", "ten"),
        ],
        None,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("GRAPHQL_FIREWALL_MAX_DEPTH"));

    let (code, _, stderr) = run(
        &["check"],
        &[
            ("GRAPHQL_FIREWALL_UPSTREAM_URL", "http://x/graphql"),
            ("GRAPHQL_FIREWALL_SCHEMA", "schema/missing.graphql"),
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("GRAPHQL_FIREWALL_SCHEMA") && stderr.contains("missing.graphql"),
        "{stderr}"
    );

    let broken = tempfile::tempdir().unwrap();
    std::fs::write(
        broken.path().join("m.json"),
        r#"{"0000000000000000000000000000000000000000000000000000000000000000":"{ a }"}"#,
    )
    .unwrap();
    let dir = broken.path().to_str().unwrap();
    let (code, _, stderr) = run(
        &["check"],
        &[
            ("GRAPHQL_FIREWALL_UPSTREAM_URL", "http://x/graphql"),
            ("GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR", dir),
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("m.json"), "{stderr}");

    let (code, stdout, stderr) = run(
        &["check"],
        &[
            ("GRAPHQL_FIREWALL_UPSTREAM_URL", "http://x/graphql"),
            (
                "GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR",
                "persisted-queries",
            ),
            ("GRAPHQL_FIREWALL_MAX_COST", "50"),
        ],
        None,
    );
    assert_ne!(code, 0, "manifest operations over a limit: {stdout}");
    assert!(stderr.contains("AuthorPosts"), "{stderr}");
}

#[test]
fn analyse_prints_the_metrics_and_verdict_of_a_document() {
    let document =
        "query Feed { users(first: 5) { name friends(first: 3) { name } } a: __typename }";
    let (code, stdout, stderr) = run(&["analyse", "-"], &[], Some(document));
    assert_eq!(code, 0, "{stdout}{stderr}");
    for line in [
        "operation:            Feed",
        "depth:                3",
        "aliases:              1",
        "root fields:          2",
        "cost:                 20",
        "verdict:              allowed",
    ] {
        assert!(stdout.contains(line), "{line:?} in {stdout}");
    }
    let (code, stdout, _) = run(
        &["analyse", "-"],
        &[("GRAPHQL_FIREWALL_MAX_DEPTH", "1")],
        Some(document),
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("verdict:              rejected"),
        "{stdout}"
    );
}
