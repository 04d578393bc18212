//! GraphQL-over-HTTP content negotiation of the firewall's own refusals, end to end:
//! `REJECT_STATUS=auto` answers a legacy `application/json` client's request errors with 200 and
//! the errors, a client of `application/graphql-response+json` with 400; the default stays 400.

mod common;

use common::{first_code, start, status_and_json};

const TOO_DEEP: &str =
    r#"{"query":"{ a { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } } }"}"#;
const UNPARSABLE: &str = r#"{"query":"{ user("}"#;

async fn refuse(harness: &common::Harness, accept: &str, body: &str) -> (u16, String, String) {
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, json) = status_and_json(response).await;
    (status, content_type, first_code(&json).to_owned())
}

#[tokio::test]
async fn auto_answers_each_client_in_its_media_type() {
    let harness = start(&[("GRAPHQL_FIREWALL_REJECT_STATUS", "auto")]).await;
    for (body, code) in [
        (TOO_DEEP, "DEPTH_LIMIT_EXCEEDED"),
        (UNPARSABLE, "GRAPHQL_PARSE_FAILED"),
    ] {
        let (status, content_type, found) = refuse(&harness, "application/json", body).await;
        assert_eq!(
            (status, content_type.as_str(), found.as_str()),
            (200, "application/json", code)
        );
        let (status, content_type, found) = refuse(
            &harness,
            "application/graphql-response+json, application/json;q=0.9",
            body,
        )
        .await;
        assert_eq!((status, found.as_str()), (400, code));
        assert!(content_type.starts_with("application/graphql-response+json"));
    }
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn the_default_refuses_with_400_whatever_the_client_accepts() {
    let harness = start(&[]).await;
    for accept in ["application/json", "application/graphql-response+json"] {
        let (status, _, code) = refuse(&harness, accept, TOO_DEEP).await;
        assert_eq!((status, code.as_str()), (400, "DEPTH_LIMIT_EXCEEDED"));
    }
}
