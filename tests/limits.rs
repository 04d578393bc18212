//! Document analysis and limits end to end: refused operations never reach the upstream, monitor
//! mode forwards, cost reads variables, transports restrict operation types.

mod common;

use common::{first_code, start, status_and_json};
use serde_json::json;

fn body(query: &str) -> String {
    json!({ "query": query }).to_string()
}

fn schema_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/schema/demo.graphql").to_owned()
}

#[tokio::test]
async fn an_ordinary_query_is_forwarded() {
    let harness = start(&[]).await;
    let (status, json) = status_and_json(
        harness
            .post_json(&body(
                "query Feed { users(first: 2) { name posts(first: 1) { title } } }",
            ))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json["data"]["users"][0]["name"], "Ada");
    assert_eq!(harness.upstream_requests(), 1);
}

#[tokio::test]
async fn each_limit_refuses_with_its_code_and_the_upstream_sees_nothing() {
    let harness = start(&[]).await;
    let deep = format!(
        "{{ {}id{} }}",
        "user(id: \"u1\") { friends { ".repeat(6),
        " } }".repeat(6)
    );
    let aliases: String = (0..16)
        .map(|i| format!("a{i}: user(id: \"u1\") {{ id }} "))
        .collect();
    let roots = "users(first: 1) { id } ".repeat(21);
    let directives = format!("{{ users {{ id {} }} }}", "@include(if: true) ".repeat(51));
    let cases = [
        (deep, "DEPTH_LIMIT_EXCEEDED", 400),
        (format!("{{ {aliases} }}"), "ALIAS_LIMIT_EXCEEDED", 400),
        (format!("{{ {roots} }}"), "ROOT_FIELD_LIMIT_EXCEEDED", 400),
        (directives, "DIRECTIVE_LIMIT_EXCEEDED", 400),
        (
            "{ users(first: 100) { friends(first: 100) { id } } }".to_owned(),
            "COST_LIMIT_EXCEEDED",
            400,
        ),
        (
            "{ __schema { types { name } } }".to_owned(),
            "INTROSPECTION_DISABLED",
            403,
        ),
        (
            "{ users { ...F } } fragment F on User { friends { ...F } }".to_owned(),
            "FRAGMENT_CYCLE",
            400,
        ),
        ("{ users { id }".to_owned(), "GRAPHQL_PARSE_FAILED", 400),
    ];
    for (query, code, expected_status) in cases {
        let (status, json) = status_and_json(harness.post_json(&body(&query)).await).await;
        assert_eq!(
            (status, first_code(&json)),
            (expected_status, code),
            "query {query}"
        );
    }
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn rejections_carry_limit_and_actual_unless_hidden() {
    let harness = start(&[("GRAPHQL_FIREWALL_MAX_ALIASES", "1")]).await;
    let (_, json) = status_and_json(
        harness
            .post_json(&body("{ a: users { id } b: users { id } }"))
            .await,
    )
    .await;
    assert_eq!(json["errors"][0]["extensions"]["limit"], 1);
    assert_eq!(json["errors"][0]["extensions"]["actual"], 2);

    let hidden = start(&[
        ("GRAPHQL_FIREWALL_MAX_ALIASES", "1"),
        ("GRAPHQL_FIREWALL_EXPOSE_LIMITS", "off"),
    ])
    .await;
    let (_, json) = status_and_json(
        hidden
            .post_json(&body("{ a: users { id } b: users { id } }"))
            .await,
    )
    .await;
    assert_eq!(first_code(&json), "ALIAS_LIMIT_EXCEEDED");
    assert!(
        json["errors"][0]["extensions"].get("limit").is_none(),
        "{json}"
    );
}

#[tokio::test]
async fn the_reject_status_can_be_422() {
    let harness = start(&[
        ("GRAPHQL_FIREWALL_REJECT_STATUS", "422"),
        ("GRAPHQL_FIREWALL_MAX_ALIASES", "1"),
    ])
    .await;
    let (status, _) = status_and_json(
        harness
            .post_json(&body("{ a: users { id } b: users { id } }"))
            .await,
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn monitor_mode_forwards_what_enforce_mode_refuses() {
    let harness = start(&[("GRAPHQL_FIREWALL_MODE", "monitor")]).await;
    let (status, json) = status_and_json(
        harness
            .post_json(&body("{ __schema { queryType { name } } }"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json["data"]["__schema"]["queryType"]["name"], "Query");
    assert_eq!(harness.upstream_requests(), 1);
}

#[tokio::test]
async fn a_single_rule_can_run_in_monitor_mode() {
    let harness = start(&[("GRAPHQL_FIREWALL_RULE_MODES", "cost:monitor")]).await;
    let expensive = body("{ users(first: 100) { friends(first: 100) { id } } }");
    let (status, _) = status_and_json(harness.post_json(&expensive).await).await;
    assert_eq!(status, 200, "cost is monitored");
    let (status, json) = status_and_json(
        harness
            .post_json(&body("{ __type(name: \"User\") { name } }"))
            .await,
    )
    .await;
    assert_eq!(
        (status, first_code(&json)),
        (403, "INTROSPECTION_DISABLED"),
        "the rest is enforced"
    );
    assert_eq!(harness.upstream_requests(), 1);
}

#[tokio::test]
async fn cost_reads_slicing_arguments_from_variables() {
    let schema = schema_path();
    let harness = start(&[
        ("GRAPHQL_FIREWALL_SCHEMA", &schema),
        ("GRAPHQL_FIREWALL_MAX_COST", "100"),
    ])
    .await;
    let query = "query Users($n: Int!) { users(first: $n) { friends(first: $n) { id } } }";
    let cheap = json!({ "query": query, "variables": { "n": 3 } }).to_string();
    let (status, _) = status_and_json(harness.post_json(&cheap).await).await;
    assert_eq!(status, 200);
    let expensive = json!({ "query": query, "variables": { "n": 50 } }).to_string();
    let (status, json) = status_and_json(harness.post_json(&expensive).await).await;
    assert_eq!((status, first_code(&json)), (400, "COST_LIMIT_EXCEEDED"));
    assert_eq!(json["errors"][0]["extensions"]["actual"], 50 + 50 * 50);
    assert_eq!(harness.upstream_requests(), 1);
}

#[tokio::test]
async fn mutations_over_get_are_405_with_allow_post() {
    let harness = start(&[]).await;
    let response = harness
        .client
        .get(&harness.url)
        .header("graphql-preflight", "1")
        .query(&[("query", "mutation { deletePost(id: \"p1\") }")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let (_, json) = status_and_json(response).await;
    assert_eq!(first_code(&json), "METHOD_NOT_ALLOWED");
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn a_batch_is_refused_whole_with_one_error_per_offending_member() {
    let harness = start(&[]).await;
    let batch = json!([
        { "query": "{ users { id } }" },
        { "query": "{ __schema { types { name } } }" },
        { "query": "{ users { id } }" },
        { "query": "{ users { id }" },
    ])
    .to_string();
    let (status, json) = status_and_json(harness.post_json(&batch).await).await;
    assert_eq!(status, 403, "the first error decides the status");
    let errors = json["errors"].as_array().unwrap();
    let summary: Vec<(&str, u64)> = errors
        .iter()
        .map(|e| {
            (
                e["extensions"]["code"].as_str().unwrap(),
                e["extensions"]["batchIndex"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![("INTROSPECTION_DISABLED", 1), ("GRAPHQL_PARSE_FAILED", 3)]
    );
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn unknown_operation_names_are_refused() {
    let harness = start(&[]).await;
    let request = json!({ "query": "query A { users { id } } query B { users { name } }", "operationName": "C" });
    let (status, json) = status_and_json(harness.post_json(&request.to_string()).await).await;
    assert_eq!((status, first_code(&json)), (400, "OPERATION_NOT_FOUND"));
    let request = json!({ "query": "query A { users { id } } query B { users { name } }" });
    let (_, json) = status_and_json(harness.post_json(&request.to_string()).await).await;
    assert_eq!(first_code(&json), "OPERATION_NOT_FOUND");
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn variables_are_limited() {
    let harness = start(&[("GRAPHQL_FIREWALL_MAX_VARIABLE_LIST", "10")]).await;
    let ids: Vec<String> = (0..11).map(|i| format!("u{i}")).collect();
    let request =
        json!({ "query": "query($ids: [ID!]) { users { id } }", "variables": { "ids": ids } });
    let (status, json) = status_and_json(harness.post_json(&request.to_string()).await).await;
    assert_eq!(
        (status, first_code(&json)),
        (400, "VARIABLES_LIMIT_EXCEEDED")
    );
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn schema_probing_gets_one_generic_error() {
    let schema = schema_path();
    let harness = start(&[("GRAPHQL_FIREWALL_SCHEMA", &schema)]).await;
    let guesses: String = (0..64).map(|i| format!("guess{i} ")).collect();
    let query = format!("{{ users(first: 1) {{ id {guesses} }} }}");
    let (status, json) = status_and_json(harness.post_json(&body(&query)).await).await;
    assert_eq!(
        (status, first_code(&json)),
        (400, "GRAPHQL_VALIDATION_FAILED")
    );
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(
        !json.to_string().contains("guess"),
        "no name is echoed: {json}"
    );
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn overlong_operation_names_are_refused() {
    let harness = start(&[]).await;
    let name = "A".repeat(513);
    let request =
        json!({ "query": format!("query {name} {{ users {{ id }} }}"), "operationName": name });
    let (status, json) = status_and_json(harness.post_json(&request.to_string()).await).await;
    assert_eq!((status, first_code(&json)), (400, "INVALID_REQUEST"));
    assert!(json.to_string().len() < 400, "the name is not echoed");
}
