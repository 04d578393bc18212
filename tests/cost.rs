//! Cost you can trust, end to end: the red team's three findings, refused through the firewall in
//! front of the demo backend (which never sees them), and the actual cost of real answers set
//! against the estimate.

mod common;

use common::{first_code, scrape, start, status_and_json};
use serde_json::json;

fn schema() -> String {
    format!("{}/schema/demo.graphql", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn finding_1_a_variable_spelled_1e3_is_costed_as_1000_and_refused() {
    let harness = start(&[("GRAPHQL_FIREWALL_SCHEMA", &schema())]).await;
    let query = "query Q($n: Int = 1) { users(first: $n) { id friends(first: $n) { id friends(first: $n) { id friends(first: $n) { id friends(first: $n) { id } } } } } }";
    for spelling in ["1e3", "1000.0", "1000.00000000000001", "1000"] {
        let body = format!(
            r#"{{"query":{},"variables":{{"n":{spelling}}}}}"#,
            json!(query)
        );
        let (status, body) = status_and_json(harness.post_json(&body).await).await;
        assert_eq!(status, 400, "{spelling}: {body}");
        assert_eq!(first_code(&body), "COST_LIMIT_EXCEEDED", "{spelling}");
    }
    // A spelling that is not an Int is not guessed at: the request is invalid.
    for invalid in ["1.5", "\"1000\"", "true", "3000000000"] {
        let body = format!(
            r#"{{"query":{},"variables":{{"n":{invalid}}}}}"#,
            json!(query)
        );
        let (status, body) = status_and_json(harness.post_json(&body).await).await;
        assert_eq!(status, 400, "{invalid}: {body}");
        assert_eq!(first_code(&body), "VARIABLES_INVALID", "{invalid}");
    }
    assert_eq!(harness.upstream_requests(), 0);
    // Absent, the default applies, and the request goes through.
    let fine = json!({ "query": query }).to_string();
    assert_eq!(harness.post_json(&fine).await.status(), 200);
}

#[tokio::test]
async fn finding_2_a_list_argument_sizes_its_field() {
    let harness = start(&[("GRAPHQL_FIREWALL_SCHEMA", &schema())]).await;
    let ids: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
    let body = json!({
        "query": "query ($ids: [ID!]!) { usersByIds(ids: $ids) { id friends(first: 10) { id friends(first: 10) { id } } } }",
        "variables": { "ids": ids },
    });
    let (status, body) = status_and_json(harness.post_json(&body.to_string()).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(first_code(&body), "COST_LIMIT_EXCEEDED");
    assert_eq!(
        body["errors"][0]["extensions"]["actual"],
        1000 * (1 + 10 * 11)
    );
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn finding_3_a_persisted_operation_keeps_its_cost_limit() {
    let feed = "query Feed($n: Int = 10) { users(first: $n) { id friends(first: $n) { id friends(first: $n) { id } } } }";
    let id = hex::encode(graphql_firewall::persisted::hash_document(feed));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("manifest.json"),
        json!({ id.clone(): feed }).to_string(),
    )
    .unwrap();
    let harness = start(&[
        ("GRAPHQL_FIREWALL_SCHEMA", &schema()),
        ("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "allowlist"),
        (
            "GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR",
            dir.path().to_str().unwrap(),
        ),
    ])
    .await;
    let by_id = |n: u32| {
        json!({ "documentId": format!("sha256:{id}"), "variables": { "n": n } }).to_string()
    };
    let (status, body) = status_and_json(harness.post_json(&by_id(1000)).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(first_code(&body), "COST_LIMIT_EXCEEDED");
    assert_eq!(harness.upstream_requests(), 0);
    assert_eq!(harness.post_json(&by_id(3)).await.status(), 200);
}

#[tokio::test]
async fn a_slicing_argument_left_out_where_exactly_one_is_required_is_refused() {
    // `@listSize(requireOneSlicingArgument: true)` on a field without a default for its size.
    let dir = tempfile::tempdir().unwrap();
    let sdl = dir.path().join("schema.graphql");
    std::fs::write(
        &sdl,
        "directive @listSize(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!], requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION\n\
         type Query { users(first: Int, last: Int): [User!]! @listSize(slicingArguments: [\"first\", \"last\"]) }\n\
         type User { id: ID! }",
    )
    .unwrap();
    let harness = start(&[("GRAPHQL_FIREWALL_SCHEMA", sdl.to_str().unwrap())]).await;
    for query in ["{ users { id } }", "{ users(first: 2, last: 2) { id } }"] {
        let (status, body) = status_and_json(
            harness
                .post_json(&json!({ "query": query }).to_string())
                .await,
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(first_code(&body), "COST_INVALID_SLICING");
        assert!(
            !body.to_string().contains("users"),
            "the field is not named: {body}"
        );
    }
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn the_actual_cost_of_answers_is_measured_and_never_above_the_estimate() {
    let harness = start(&[("GRAPHQL_FIREWALL_SCHEMA", &schema())]).await;
    let operations = [
        ("{ users(first: 2) { friends { id } } }", json!({})),
        (
            "{ users(first: 3) { id posts(first: 2) { title comments(first: 1) { text } } } }",
            json!({}),
        ),
        (
            "query ($ids: [ID!]!) { usersByIds(ids: $ids) { name friends(first: 2) { id } } }",
            json!({ "ids": ["u1", "u2", "u3"] }),
        ),
        (
            "query ($n: Int!) { a: users(first: $n) { id } b: users(first: 1) { id } }",
            json!({ "n": 4 }),
        ),
    ];
    for (query, variables) in &operations {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let (status, answer) = status_and_json(harness.post_json(&body).await).await;
        assert_eq!(status, 200, "{query}: {answer}");
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    let metrics = scrape(&harness).await;
    assert_eq!(
        metrics["graphql_firewall_operation_cost_actual_count"],
        operations.len() as f64,
        "every answer was measured"
    );
    assert_eq!(metrics["graphql_firewall_cost_underestimated_total"], 0.0);
}

/// Requests answered before the first 429, out of 10.
async fn admitted_in_a_row(harness: &common::Harness, body: &str) -> usize {
    let mut admitted = 0;
    for _ in 0..10 {
        let response = harness.post_json(body).await;
        if response.status() == 429 {
            break;
        }
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        admitted += 1;
    }
    admitted
}

#[tokio::test]
async fn in_actual_mode_a_cheaper_answer_gives_its_points_back() {
    // Estimated 2 × (1 + 10) = 22; the demo's answer costs 2 + 6 = 8 (its users have three
    // friends, not the ten assumed). With a budget of 50 the estimate is spent twice; settled with
    // the actual cost, 50 − 4 × 8 = 18 is still short of the next estimate only after four.
    let schema = schema();
    let body = json!({ "query": "{ users(first: 2) { friends { id } } }" }).to_string();
    let estimated = start(&[
        ("GRAPHQL_FIREWALL_SCHEMA", &schema),
        ("GRAPHQL_FIREWALL_COST_BUDGET", "50/h"),
    ])
    .await;
    assert_eq!(admitted_in_a_row(&estimated, &body).await, 2);
    let actual = start(&[
        ("GRAPHQL_FIREWALL_SCHEMA", &schema),
        ("GRAPHQL_FIREWALL_COST_BUDGET", "50/h"),
        ("GRAPHQL_FIREWALL_COST_BUDGET_MODE", "actual"),
    ])
    .await;
    assert_eq!(admitted_in_a_row(&actual, &body).await, 4);
}
