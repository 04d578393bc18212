//! The browser- and network-facing edge, end to end: CORS preflights answered by the firewall and
//! never forwarded, CORS headers on answers, IP allow and deny lists behind a trusted proxy, the
//! admin listener's allow list, and the security headers on every answer.

mod common;

use common::{first_code, start, start_with_upstream, status_and_json};

const QUERY: &str = r#"{"query":"{ users(first: 1) { id } }"}"#;
const ORIGIN: &str = "https://app.example.com";

fn preflight(
    harness: &common::Harness,
    origin: &str,
    method: &str,
    headers: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = harness
        .client
        .request(reqwest::Method::OPTIONS, &harness.url)
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(headers) = headers {
        request = request.header("access-control-request-headers", headers);
    }
    request
}

#[tokio::test]
async fn preflights_are_answered_by_the_firewall_and_never_forwarded() {
    let harness = start(&[
        (
            "GRAPHQL_FIREWALL_CORS_ALLOW_ORIGINS",
            "https://app.example.com,https://*.shop.example.net",
        ),
        ("GRAPHQL_FIREWALL_CORS_ALLOW_CREDENTIALS", "on"),
        ("GRAPHQL_FIREWALL_CORS_MAX_AGE", "10min"),
    ])
    .await;
    // (origin, method, requested headers) → allowed
    let matrix = [
        (ORIGIN, "POST", Some("content-type, authorization"), true),
        ("https://a.shop.example.net", "GET", None, true),
        (
            "https://evil.example.org",
            "POST",
            Some("content-type"),
            false,
        ),
        ("https://shop.example.net", "POST", None, false),
        ("http://app.example.com", "POST", None, false),
        ("null", "POST", None, false),
        (ORIGIN, "DELETE", None, false),
        (ORIGIN, "POST", Some("content-type, x-evil"), false),
    ];
    for (origin, method, headers, allowed) in matrix {
        let response = preflight(&harness, origin, method, headers)
            .send()
            .await
            .unwrap();
        let what = format!("{origin} {method} {headers:?}");
        let vary = response.headers()["vary"].to_str().unwrap();
        assert!(vary.contains("Origin"), "{what}: {vary}");
        if allowed {
            assert_eq!(response.status(), 204, "{what}");
            assert_eq!(response.headers()["access-control-allow-origin"], origin);
            assert_eq!(
                response.headers()["access-control-allow-credentials"],
                "true"
            );
            assert_eq!(response.headers()["access-control-max-age"], "600");
        } else {
            assert_eq!(response.status(), 403, "{what}");
            assert!(
                !response
                    .headers()
                    .keys()
                    .any(|name| name.as_str().starts_with("access-control-")),
                "{what}: no CORS header for a refused origin"
            );
        }
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    assert_eq!(harness.upstream_requests(), 0, "no preflight was forwarded");
    let metrics = common::scrape(&harness).await;
    assert_eq!(
        metrics[r#"graphql_firewall_cors_preflights_total{outcome="allowed"}"#],
        2.0
    );
    assert_eq!(
        metrics[r#"graphql_firewall_cors_preflights_total{outcome="refused"}"#],
        6.0
    );
    // The actual request: an allowed origin is echoed, another gets nothing but Vary.
    for (origin, echoed) in [(ORIGIN, true), ("https://evil.example.org", false)] {
        let response = harness
            .post_json_with(&[("origin", origin)], QUERY)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["vary"]
                .to_str()
                .unwrap()
                .contains("Origin")
        );
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_some(),
            echoed,
            "{origin}"
        );
    }
}

#[tokio::test]
async fn without_cors_configured_every_preflight_is_refused_and_not_forwarded() {
    let harness = start(&[]).await;
    let response = preflight(&harness, ORIGIN, "POST", None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(harness.upstream_requests(), 0);
}

/// `*` with credentials, or a CORS option without origins: configuration errors, exit 2.
#[test]
fn bad_cors_combinations_stop_the_start() {
    for vars in [
        vec![
            ("GRAPHQL_FIREWALL_CORS_ALLOW_ORIGINS", "*"),
            ("GRAPHQL_FIREWALL_CORS_ALLOW_CREDENTIALS", "on"),
        ],
        vec![("GRAPHQL_FIREWALL_CORS_ALLOW_CREDENTIALS", "on")],
        vec![("GRAPHQL_FIREWALL_CORS_ALLOW_ORIGINS", "https://*.com")],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_graphql-firewall"))
            .arg("check")
            .env_clear()
            .env(
                "GRAPHQL_FIREWALL_UPSTREAM_URL",
                "http://127.0.0.1:4000/graphql",
            )
            .envs(vars.iter().copied())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{vars:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("CORS_ALLOW"), "{vars:?}: {stderr}");
    }
}

/// IP lists judge the client the trusted proxy names, never a header from anyone else.
#[tokio::test]
async fn ip_lists_judge_the_client_behind_the_trusted_proxy() {
    let harness = start(&[
        ("GRAPHQL_FIREWALL_TRUSTED_PROXIES", "127.0.0.1/32"),
        (
            "GRAPHQL_FIREWALL_ALLOW_IPS",
            "198.51.100.0/24,203.0.113.0/24",
        ),
        ("GRAPHQL_FIREWALL_DENY_IPS", "203.0.113.66/32"),
    ])
    .await;
    let send = |client: &str| harness.post_json_with(&[("x-forwarded-for", client)], QUERY);
    assert_eq!(send("198.51.100.7").await.unwrap().status(), 200);
    assert_eq!(send("203.0.113.5").await.unwrap().status(), 200);
    for refused in ["203.0.113.66", "192.0.2.1"] {
        let response = send(refused).await.unwrap();
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "the firewall's own answer"
        );
        let (status, body) = status_and_json(response).await;
        assert_eq!((status, first_code(&body)), (403, "FORBIDDEN"), "{refused}");
    }
    // Straight from the loopback peer without a forwarded address: not in the allow list.
    let (status, _) = status_and_json(harness.post_json(QUERY).await).await;
    assert_eq!(status, 403);
    assert_eq!(harness.upstream_requests(), 2);
    let metrics = common::scrape(&harness).await;
    assert_eq!(
        metrics[r#"graphql_firewall_requests_total{transport="http",verdict="rejected",code="FORBIDDEN"}"#],
        3.0
    );
}

/// Behind no trusted proxy, a client's own X-Forwarded-For does not get it past the deny list.
#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_pass_the_deny_list() {
    let harness = start(&[("GRAPHQL_FIREWALL_DENY_IPS", "127.0.0.1/32")]).await;
    let response = harness
        .post_json_with(&[("x-forwarded-for", "198.51.100.7")], QUERY)
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn the_admin_listener_answers_only_its_allow_list() {
    let open = start(&[]).await;
    let scraped = open.client.get(&open.metrics_url).send().await.unwrap();
    assert_eq!(scraped.status(), 200, "loopback is allowed by default");
    let closed = start(&[("GRAPHQL_FIREWALL_ADMIN_ALLOW_IPS", "10.0.0.0/8")]).await;
    let refused = closed.client.get(&closed.metrics_url).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(!refused.text().await.unwrap().contains("graphql_firewall"));
}

/// An upstream that names itself, as graphw00f looks for.
async fn chatty_upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        (
            [
                ("content-type", "application/json"),
                ("server", "Apollo-Server/4.9"),
                ("x-powered-by", "Express"),
                ("referrer-policy", "same-origin"),
            ],
            r#"{"data":{"users":[{"id":"u1"}]}}"#,
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_no_fingerprint() {
    let upstream = chatty_upstream().await;
    let harness = start_with_upstream(
        &format!("http://{upstream}/graphql"),
        &[(
            "GRAPHQL_FIREWALL_HSTS",
            "max-age=31536000; includeSubDomains",
        )],
    )
    .await;
    let forwarded = harness.post_json(QUERY).await;
    assert_eq!(forwarded.status(), 200);
    let headers = forwarded.headers();
    assert!(headers.get("server").is_none(), "{headers:?}");
    assert!(headers.get("x-powered-by").is_none(), "{headers:?}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["referrer-policy"], "same-origin",
        "the upstream's own is kept"
    );
    assert_eq!(headers["content-security-policy"], "frame-ancestors 'none'");
    assert_eq!(
        headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert!(
        headers.get("cache-control").is_none(),
        "caching is the upstream's call"
    );
    for own in [
        harness.post_json("not json").await,
        harness
            .client
            .get(format!("{}/healthz", harness.base))
            .send()
            .await
            .unwrap(),
        harness
            .client
            .get(format!("{}/nowhere", harness.base))
            .send()
            .await
            .unwrap(),
    ] {
        let headers = own.headers();
        assert_eq!(headers["cache-control"], "no-store", "{headers:?}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["content-security-policy"], "frame-ancestors 'none'");
    }
}
