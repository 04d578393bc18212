//! Response hardening and per-client budgets end to end, against the demo backend (which really
//! emits suggestions and, for `user(id: "crash")`, internal details).

mod common;

use std::io::Write;
use std::time::Duration;

use common::{first_code, start, start_with_upstream, status_and_json};
use serde_json::{Value, json};

const TYPO: &str = r#"{"query":"{ users(first: 1) { nam } }"}"#;
const CRASH: &str = r#"{"query":"{ user(id: \"crash\") { name } }"}"#;

async fn direct(harness: &common::Harness, body: &str) -> String {
    harness
        .client
        .post(harness.backend().url())
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn field_suggestions_are_stripped_from_upstream_errors() {
    let harness = start(&[]).await;
    let raw = direct(&harness, TYPO).await;
    assert!(
        raw.contains("Did you mean"),
        "the backend really suggests: {raw}"
    );
    let (status, body) = status_and_json(harness.post_json(TYPO).await).await;
    assert_eq!(status, 200);
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("\"nam\""),
        "the validation error itself is kept: {message}"
    );
    assert!(!body.to_string().contains("Did you mean"), "{body}");
    assert!(
        !body.to_string().contains("\"name\""),
        "the suggested field is not leaked: {body}"
    );
}

#[tokio::test]
async fn suggestions_pass_when_the_operator_allows_them() {
    let harness = start(&[
        ("GRAPHQL_FIREWALL_BLOCK_FIELD_SUGGESTIONS", "off"),
        ("GRAPHQL_FIREWALL_MASK_ERRORS", "off"),
    ])
    .await;
    let text = harness.post_json(TYPO).await.text().await.unwrap();
    assert!(text.contains("Did you mean"), "{text}");
}

fn crash_error(body: &Value) -> &Value {
    &body["errors"][0]
}

#[tokio::test]
async fn details_masking_drops_stack_traces_and_exception_details() {
    let harness = start(&[]).await;
    let raw = direct(&harness, CRASH).await;
    assert!(
        raw.contains("stacktrace") && raw.contains("/app/src"),
        "{raw}"
    );
    let (_, body) = status_and_json(harness.post_json(CRASH).await).await;
    let error = crash_error(&body);
    assert_eq!(error["extensions"]["code"], "INTERNAL_SERVER_ERROR");
    assert!(error["extensions"].get("exception").is_none(), "{body}");
    assert!(!body.to_string().contains("/app/src"), "{body}");
    assert!(error["path"].is_array(), "path is kept: {body}");
}

#[tokio::test]
async fn all_masking_replaces_messages_and_names_the_request_id() {
    let harness = start(&[("GRAPHQL_FIREWALL_MASK_ERRORS", "all")]).await;
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/json")
        .header("x-request-id", "req-masked-1")
        .body(CRASH)
        .send()
        .await
        .unwrap();
    let (_, body) = status_and_json(response).await;
    let error = crash_error(&body);
    assert_eq!(
        error["message"],
        "Internal server error (request id: req-masked-1)"
    );
    assert_eq!(
        error["extensions"],
        json!({ "code": "INTERNAL_SERVER_ERROR" })
    );
    assert!(!body.to_string().contains("users-db"), "{body}");
}

#[tokio::test]
async fn masking_off_passes_details_through() {
    let harness = start(&[("GRAPHQL_FIREWALL_MASK_ERRORS", "off")]).await;
    let through = harness.post_json(CRASH).await.text().await.unwrap();
    assert_eq!(through, direct(&harness, CRASH).await);
}

/// An upstream answering every request with a gzip-compressed GraphQL error carrying a suggestion.
async fn gzip_upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        let body = br#"{"errors":[{"message":"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?","locations":[{"line":1,"column":3}]}]}"#;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(body).unwrap();
        (
            [("content-type", "application/json"), ("content-encoding", "gzip")],
            encoder.finish().unwrap(),
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn a_gzip_compressed_upstream_error_is_sanitised_too() {
    let upstream = gzip_upstream().await;
    let harness = start_with_upstream(&format!("http://{upstream}/graphql"), &[]).await;
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/json")
        .header("accept-encoding", "gzip")
        .body(TYPO)
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("content-encoding").is_none(),
        "rewritten bodies are sent as identity"
    );
    let (_, body) = status_and_json(response).await;
    assert_eq!(
        body["errors"][0]["message"],
        r#"Cannot query field "nmae" on type "User"."#
    );
}

#[tokio::test]
async fn probing_clients_cool_down_and_others_do_not() {
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/demo.graphql");
    let harness = start(&[
        ("GRAPHQL_FIREWALL_SCHEMA", schema),
        ("GRAPHQL_FIREWALL_PROBE_LIMIT", "3"),
        ("GRAPHQL_FIREWALL_CLIENT_KEY_HEADER", "x-api-key"),
        ("GRAPHQL_FIREWALL_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let probe = r#"{"query":"{ users(first: 1) { id secretField } }"}"#;
    let send =
        |key: &'static str, body: &'static str| harness.post_json_with(&[("x-api-key", key)], body);
    for _ in 0..3 {
        let (status, body) = status_and_json(send("prober", probe).await.unwrap()).await;
        assert_eq!(
            (status, first_code(&body)),
            (400, "GRAPHQL_VALIDATION_FAILED")
        );
    }
    // The fourth refusal goes over the limit and starts the cool-down...
    let (_, body) = status_and_json(send("prober", probe).await.unwrap()).await;
    assert_eq!(first_code(&body), "GRAPHQL_VALIDATION_FAILED");
    // ...so even a valid operation from the prober is now refused.
    let valid = r#"{"query":"{ users(first: 1) { id } }"}"#;
    let response = send("prober", valid).await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let (_, body) = status_and_json(response).await;
    assert_eq!(first_code(&body), "RATE_LIMITED");
    // Another client is unaffected.
    let (status, _) = status_and_json(send("honest", valid).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(harness.upstream_requests(), 1);
}

#[tokio::test]
async fn the_request_rate_is_limited_per_client_with_headers() {
    let harness = start(&[
        ("GRAPHQL_FIREWALL_RATE_LIMIT", "2/s"),
        ("GRAPHQL_FIREWALL_CLIENT_KEY_HEADER", "x-api-key"),
        ("GRAPHQL_FIREWALL_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let send = |key: &'static str| {
        harness.post_json_with(
            &[("x-api-key", key)],
            r#"{"query":"{ users(first: 1) { id } }"}"#,
        )
    };
    let first = send("a").await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["ratelimit-limit"], "2");
    assert_eq!(first.headers()["ratelimit-remaining"], "1");
    assert_eq!(send("a").await.unwrap().status(), 200);
    let limited = send("a").await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["ratelimit-remaining"], "0");
    let (_, body) = status_and_json(limited).await;
    assert_eq!(first_code(&body), "RATE_LIMITED");
    assert_eq!(
        send("b").await.unwrap().status(),
        200,
        "another client is unaffected"
    );
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        send("a").await.unwrap().status(),
        200,
        "after Retry-After it passes"
    );
}

#[tokio::test]
async fn the_cost_budget_is_spent_by_expensive_operations() {
    let harness = start(&[
        ("GRAPHQL_FIREWALL_COST_BUDGET", "1000/min"),
        ("GRAPHQL_FIREWALL_CLIENT_KEY_HEADER", "x-api-key"),
        ("GRAPHQL_FIREWALL_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let send = |key: &'static str, query: &'static str| {
        harness.post_json_with(
            &[("x-api-key", key)],
            &json!({ "query": query }).to_string(),
        )
    };
    // 20 users × (1 + 20 friends) = 420 points each.
    let expensive = "{ users(first: 20) { friends(first: 20) { id } } }";
    let cheap = "{ users(first: 1) { id } }";
    assert_eq!(send("big", expensive).await.unwrap().status(), 200);
    assert_eq!(send("big", expensive).await.unwrap().status(), 200);
    let refused = send("big", expensive).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    for _ in 0..5 {
        assert_eq!(send("small", cheap).await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let harness = start(&[("GRAPHQL_FIREWALL_RATE_LIMIT", "1/min")]).await;
    let send = |forwarded_for: &'static str| {
        harness.post_json_with(
            &[("x-forwarded-for", forwarded_for)],
            r#"{"query":"{ users(first: 1) { id } }"}"#,
        )
    };
    assert_eq!(send("1.1.1.1").await.unwrap().status(), 200);
    assert_eq!(
        send("2.2.2.2").await.unwrap().status(),
        429,
        "still 127.0.0.1"
    );
}

#[tokio::test]
async fn a_forwarded_for_from_a_trusted_proxy_is_honoured() {
    let harness = start(&[
        ("GRAPHQL_FIREWALL_RATE_LIMIT", "1/min"),
        ("GRAPHQL_FIREWALL_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let send = |forwarded_for: &'static str| {
        harness.post_json_with(
            &[("x-forwarded-for", forwarded_for)],
            r#"{"query":"{ users(first: 1) { id } }"}"#,
        )
    };
    assert_eq!(send("1.1.1.1").await.unwrap().status(), 200);
    assert_eq!(
        send("2.2.2.2").await.unwrap().status(),
        200,
        "a different client"
    );
    assert_eq!(
        harness.backend().observed.last_headers().unwrap()["x-forwarded-for"],
        "2.2.2.2"
    );
    assert_eq!(send("2.2.2.2").await.unwrap().status(), 429);
}
