//! The proxy foundation end to end: pass-through fidelity, header hygiene, GraphQL-over-HTTP
//! decoding, the CSRF guard, body limits and upstream failures, over real sockets.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{first_code, start, start_with_upstream, status_and_json};
use futures_util::stream;

const QUERY: &str = r#"{"query":"{ users(first: 3) { id name posts(first: 2) { title comments { text author { name } } } } }"}"#;

#[tokio::test]
async fn query_passes_through_byte_for_byte() {
    let harness = start(&[]).await;
    let through = harness.post_json(QUERY).await;
    let direct = harness
        .client
        .post(harness.backend().url())
        .header("content-type", "application/json")
        .body(QUERY)
        .send()
        .await
        .unwrap();
    assert_eq!(through.status(), direct.status());
    assert_eq!(
        through.headers()["content-type"],
        direct.headers()["content-type"]
    );
    let through = through.bytes().await.unwrap();
    assert_eq!(through, direct.bytes().await.unwrap());
    assert!(through.starts_with(br#"{"data":{"users":[{"id":"u0","name":"Ada""#));
}

#[tokio::test]
async fn mutations_pass_through() {
    let harness = start(&[]).await;
    let create = r#"{"query":"mutation { createPost(authorId: \"u1\", title: \"Hello\", body: \"World\") { title author { name } } }"}"#;
    let (status, body) = status_and_json(harness.post_json(create).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["createPost"]["title"], "Hello");
    assert_eq!(body["data"]["createPost"]["author"]["name"], "Grace");

    let delete = r#"{"query":"mutation { deletePost(id: \"p999\") }"}"#;
    let through = harness.post_json(delete).await.bytes().await.unwrap();
    let direct = harness
        .client
        .post(harness.backend().url())
        .header("content-type", "application/json")
        .body(delete)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(through, direct);
}

#[tokio::test]
async fn end_to_end_headers_are_forwarded_and_hop_by_hop_ones_stripped() {
    let harness = start(&[]).await;
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer secret-token")
        .header("cookie", "session=abc")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .header("x-tenant", "acme")
        .header("connection", "keep-alive, x-hop-secret")
        .header("x-hop-secret", "must-not-pass")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-forwarded-for", "6.6.6.6")
        .body(QUERY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen = harness.backend().observed.last_headers().unwrap();
    assert_eq!(seen["authorization"], "Bearer secret-token");
    assert_eq!(seen["cookie"], "session=abc");
    assert_eq!(seen["x-tenant"], "acme");
    assert!(seen.contains_key("traceparent"));
    assert!(!seen.contains_key("x-hop-secret"));
    assert!(!seen.contains_key("proxy-authorization"));
    assert_eq!(
        seen["x-forwarded-for"], "127.0.0.1",
        "a client's own X-Forwarded-For is not trusted"
    );
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-request-id"].to_str().unwrap(), request_id);
    assert_eq!(
        request_id.len(),
        36,
        "a fresh UUID when the client sent none"
    );
}

#[tokio::test]
async fn a_valid_client_request_id_is_kept() {
    let harness = start(&[]).await;
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/json")
        .header("x-request-id", "trace-42.a")
        .body(QUERY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42.a");
    assert_eq!(
        harness.backend().observed.last_headers().unwrap()["x-request-id"],
        "trace-42.a"
    );
}

#[tokio::test]
async fn get_queries_work_with_a_preflight_header() {
    let harness = start(&[]).await;
    let params = [
        ("query", "query One($id: ID!) { user(id: $id) { name } }"),
        ("variables", r#"{"id":"u2"}"#),
    ];
    let through = harness
        .client
        .get(&harness.url)
        .query(&params)
        .header("graphql-preflight", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(through.status(), 200);
    let through = through.text().await.unwrap();
    assert_eq!(through, r#"{"data":{"user":{"name":"Alan"}}}"#);
    let direct = harness
        .client
        .get(harness.backend().url())
        .query(&params)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(through, direct);
}

#[tokio::test]
async fn get_without_a_preflight_header_is_refused_as_csrf() {
    let harness = start(&[]).await;
    let response = harness
        .client
        .get(&harness.url)
        .query(&[("query", "{ users { id } }")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 400);
    assert_eq!(first_code(&body), "CSRF_BLOCKED");
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn batches_are_forwarded_and_answered_as_arrays() {
    let harness = start(&[]).await;
    let batch =
        r#"[{"query":"{ user(id: \"u0\") { name } }"},{"query":"{ user(id: \"u1\") { name } }"}]"#;
    let (status, body) = status_and_json(harness.post_json(batch).await).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["data"]["user"]["name"], "Ada");
    assert_eq!(body[1]["data"]["user"]["name"], "Grace");
    assert_eq!(
        harness.upstream_requests(),
        1,
        "one HTTP request upstream for the batch"
    );
}

#[tokio::test]
async fn oversized_batches_are_refused() {
    let harness = start(&[("GRAPHQL_FIREWALL_MAX_BATCH", "2")]).await;
    let one = r#"{"query":"{ users { id } }"}"#;
    let (status, body) =
        status_and_json(harness.post_json(&format!("[{one},{one},{one}]")).await).await;
    assert_eq!(status, 400);
    assert_eq!(first_code(&body), "BATCH_LIMIT_EXCEEDED");
    assert_eq!(body["errors"][0]["extensions"]["limit"], 2);
    assert_eq!(body["errors"][0]["extensions"]["actual"], 3);
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn text_plain_posts_are_refused_unless_preflighted() {
    let harness = start(&[]).await;
    let refused = harness
        .client
        .post(&harness.url)
        .header("content-type", "text/plain")
        .body(QUERY)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(refused).await;
    assert_eq!(status, 400);
    assert_eq!(first_code(&body), "CSRF_BLOCKED");
    assert_eq!(harness.upstream_requests(), 0);

    let accepted = harness
        .client
        .post(&harness.url)
        .header("content-type", "text/plain")
        .header("apollo-require-preflight", "true")
        .body(QUERY)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(accepted).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["users"][0]["name"], "Ada");
    assert_eq!(harness.upstream_requests(), 1);
}

#[tokio::test]
async fn form_posts_are_refused_even_with_a_preflight_header() {
    let harness = start(&[]).await;
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("graphql-preflight", "1")
        .body("query=%7Busers%7Bid%7D%7D")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 415);
    assert_eq!(first_code(&body), "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn malformed_requests_are_invalid_and_never_reach_the_upstream() {
    let harness = start(&[]).await;
    for body in [
        "",
        "{not json",
        r#"{"query": 42}"#,
        r#"{"query":"{ users { id } }","variables":"{}"}"#,
        r#"{"query":"{ users { id } }","operationName":7}"#,
        r#"{"variables":{}}"#,
        r#"{"query":"{a}","query":"{b}"}"#,
        "[]",
        "17",
    ] {
        let (status, json) = status_and_json(harness.post_json(body).await).await;
        assert_eq!(status, 400, "body {body:?}");
        assert_eq!(first_code(&json), "INVALID_REQUEST", "body {body:?}");
    }
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn graphql_response_json_is_honoured_for_rejections() {
    let harness = start(&[]).await;
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/json")
        .header(
            "accept",
            "application/graphql-response+json, application/json;q=0.9",
        )
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/graphql-response+json")
    );
}

#[tokio::test]
async fn unsupported_methods_get_405_with_allow() {
    let harness = start(&[]).await;
    let response = harness
        .client
        .put(&harness.url)
        .body(QUERY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST, OPTIONS");
    let (_, body) = status_and_json(response).await;
    assert_eq!(first_code(&body), "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn unsupported_content_types_get_415() {
    let harness = start(&[]).await;
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/xml")
        .body("<query/>")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 415);
    assert_eq!(first_code(&body), "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn a_declared_two_mebibyte_body_is_refused_with_413() {
    let harness = start(&[]).await;
    let big = format!(
        r#"{{"query":"{{ users {{ id }} }}","padding":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    let (status, body) = status_and_json(harness.post_json(&big).await).await;
    assert_eq!(status, 413);
    assert_eq!(first_code(&body), "PAYLOAD_TOO_LARGE");
    assert_eq!(body["errors"][0]["extensions"]["limit"], 1 << 20);
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn a_chunked_body_is_cut_off_at_the_limit() {
    let harness = start(&[]).await;
    // 2 MiB in 64 KiB chunks without Content-Length: the firewall stops reading past 1 MiB.
    let chunks = (0..32).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024]));
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 413);
    assert_eq!(first_code(&body), "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn compressed_bodies_are_accepted_and_a_zip_bomb_is_refused() {
    let harness = start(&[]).await;
    let gzip = |data: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    };
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(QUERY.as_bytes()))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["users"][0]["name"], "Ada");

    let mut brotli_body = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut brotli_body, 4096, 5, 22);
        writer.write_all(QUERY.as_bytes()).unwrap();
    }
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body(brotli_body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // 10 MB of whitespace inside the JSON compresses to ~10 KB.
    let mut bomb = br#"{"query":"{ users { id } }","x":""#.to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 10_000_000));
    bomb.extend(br#""}"#);
    let bomb = gzip(&bomb);
    assert!(bomb.len() < 64 * 1024);
    let response = harness
        .client
        .post(&harness.url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 413);
    assert_eq!(first_code(&body), "PAYLOAD_TOO_LARGE");
    assert_eq!(harness.upstream_requests(), 2);
}

#[tokio::test]
async fn an_unreachable_upstream_gives_502_and_the_firewall_keeps_serving() {
    let dead = common::closed_port().await;
    let harness = start_with_upstream(&format!("http://{dead}/graphql"), &[]).await;
    for _ in 0..2 {
        let (status, body) = status_and_json(harness.post_json(QUERY).await).await;
        assert_eq!(status, 502);
        assert_eq!(first_code(&body), "UPSTREAM_UNAVAILABLE");
    }
    let health = harness
        .client
        .get(format!("{}/healthz", harness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_slow_upstream_gives_504_and_the_firewall_keeps_serving() {
    let slow = common::slow_upstream(Duration::from_secs(5)).await;
    let harness = start_with_upstream(
        &format!("http://{slow}/graphql"),
        &[("GRAPHQL_FIREWALL_UPSTREAM_TIMEOUT", "300ms")],
    )
    .await;
    let (status, body) = status_and_json(harness.post_json(QUERY).await).await;
    assert_eq!(status, 504);
    assert_eq!(first_code(&body), "UPSTREAM_TIMEOUT");
    let health = harness
        .client
        .get(format!("{}/healthz", harness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (status, _) = status_and_json(harness.post_json(QUERY).await).await;
    assert_eq!(status, 504);
}

#[tokio::test]
async fn readiness_follows_the_upstream() {
    let harness = start(&[]).await;
    let ready = harness
        .client
        .get(format!("{}/readyz", harness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let dead = common::closed_port().await;
    let harness = start_with_upstream(&format!("http://{dead}/graphql"), &[]).await;
    let health = harness
        .client
        .get(format!("{}/healthz", harness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = harness
        .client
        .get(format!("{}/readyz", harness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn a_flood_of_readiness_checks_probes_the_upstream_at_most_once_a_second() {
    let harness = start(&[]).await;
    let before = harness.upstream_requests();
    let started = std::time::Instant::now();
    let checks = (0..200).map(|_| {
        let request = harness
            .client
            .get(format!("{}/readyz", harness.base))
            .send();
        async move { request.await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(checks).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let probes = harness.upstream_requests() - before;
    let allowed = started.elapsed().as_secs() + 1;
    assert!(
        probes <= allowed,
        "{probes} upstream probes for 200 readiness checks in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unknown_paths_are_graphql_shaped_404s() {
    let harness = start(&[]).await;
    let response = harness
        .client
        .get(format!("{}/admin", harness.base))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 404);
    assert_eq!(first_code(&body), "NOT_FOUND");
}

/// An upstream that answers one request per connection and closes it shortly after without having
/// announced it (no `Connection: close`), as a server whose keep-alive timeout expired does;
/// returns its address and how many connections it accepted.
async fn upstream_closing_after_each_answer() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !complete_request(&request) {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = r#"{"data":{"ok":true}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                // Closed a moment later, while the firewall holds it as idle; dropping the stream
                // closes it.
                tokio::time::sleep(Duration::from_millis(30)).await;
            });
        }
    });
    (addr, accepted)
}

/// The head and, by its `content-length`, the whole body have arrived.
fn complete_request(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    bytes.len() >= end + 4 + length
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_reused() {
    let (addr, accepted) = upstream_closing_after_each_answer().await;
    let harness = start_with_upstream(&format!("http://{addr}/graphql"), &[]).await;
    for round in 1..=3 {
        let response = harness.post_json(r#"{"query":"{ ok }"}"#).await;
        assert_eq!(response.status(), 200, "request {round}");
        assert_eq!(response.text().await.unwrap(), r#"{"data":{"ok":true}}"#);
        // Give the close time to reach the idle connection, as a keep-alive timeout would.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
}
