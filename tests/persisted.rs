//! Persisted queries end to end: the allowlist over every request form, APQ as Apollo clients
//! speak it, audit mode, manifest validation at start-up, hot reload and trusted clients.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{first_code, start, status_and_json};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MANIFEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/persisted-queries/manifest.json"
);

/// (id, body) of a manifest operation.
fn operation(name: &str) -> (String, String) {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(MANIFEST).unwrap()).unwrap();
    let entry = manifest["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["name"] == name)
        .unwrap_or_else(|| panic!("{name} in the manifest"));
    (
        entry["id"].as_str().unwrap().to_owned(),
        entry["body"].as_str().unwrap().to_owned(),
    )
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

const ALLOWLIST: [(&str, &str); 2] = [
    ("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "allowlist"),
    (
        "GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR",
        concat!(env!("CARGO_MANIFEST_DIR"), "/persisted-queries"),
    ),
];

fn apq_extension(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn get(harness: &common::Harness, params: &[(&str, &str)]) -> reqwest::Response {
    harness
        .client
        .get(&harness.url)
        .header("graphql-preflight", "1")
        .query(params)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn allowlisted_operations_pass_in_every_form() {
    let harness = start(&ALLOWLIST).await;
    let (id, body) = operation("UserDirectory");
    let variables = json!({ "first": 2 });
    let forms = [
        json!({ "extensions": apq_extension(&id), "variables": variables }),
        json!({ "documentId": format!("sha256:{id}"), "variables": variables }),
        json!({ "documentId": id, "variables": variables }),
        json!({ "query": body, "variables": variables }),
        json!({ "query": body, "extensions": apq_extension(&id), "variables": variables }),
    ];
    for form in forms {
        let (status, json) = status_and_json(harness.post_json(&form.to_string()).await).await;
        assert_eq!(status, 200, "{form}: {json}");
        assert_eq!(json["data"]["users"][1]["name"], "Grace", "{form}");
    }
    // What the upstream received: the full text, no persisted-query members.
    let (_, sent) = harness.backend().observed.last_request().unwrap();
    let sent: Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(sent["query"], body.as_str());
    assert!(
        sent.get("extensions")
            .is_none_or(|e| e.get("persistedQuery").is_none()),
        "{sent}"
    );

    let extensions = apq_extension(&id).to_string();
    for params in [
        vec![
            ("extensions", extensions.as_str()),
            ("variables", r#"{"first":2}"#),
        ],
        vec![("documentId", id.as_str()), ("variables", r#"{"first":2}"#)],
        vec![("query", body.as_str()), ("variables", r#"{"first":2}"#)],
    ] {
        let (status, json) = status_and_json(get(&harness, &params).await).await;
        assert_eq!(status, 200, "{params:?}: {json}");
        assert_eq!(json["data"]["users"][1]["name"], "Grace");
    }
    let (query, _) = harness.backend().observed.last_request().unwrap();
    let query = query.unwrap();
    assert!(
        query.contains("query=") && !query.contains("documentId"),
        "{query}"
    );
    assert_eq!(harness.upstream_requests(), 8);
}

#[tokio::test]
async fn everything_else_is_refused_before_the_upstream_in_allowlist_mode() {
    let harness = start(&ALLOWLIST).await;
    let (_, body) = operation("UserDirectory");
    let modified = body.replacen("users", "users ", 1);
    let unknown = sha256("{ users { email } }");
    let bodies = [
        json!({ "query": modified }),
        json!({ "query": "{ users { email } }" }),
        json!({ "extensions": apq_extension(&unknown) }),
        json!({ "documentId": unknown }),
        json!({ "documentId": "3be4abb81fa595e25eb725b2c6a87508" }),
    ];
    for body in bodies {
        let (status, json) = status_and_json(harness.post_json(&body.to_string()).await).await;
        assert_eq!(
            (status, first_code(&json)),
            (403, "PERSISTED_QUERY_REQUIRED"),
            "{body}"
        );
    }
    for params in [
        vec![("query", "{ users { email } }")],
        vec![("documentId", unknown.as_str())],
        vec![("query", modified.as_str())],
    ] {
        let (status, json) = status_and_json(get(&harness, &params).await).await;
        assert_eq!(
            (status, first_code(&json)),
            (403, "PERSISTED_QUERY_REQUIRED"),
            "{params:?}"
        );
    }
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn require_id_refuses_manifest_text_sent_inline() {
    let mut vars = ALLOWLIST.to_vec();
    vars.push(("GRAPHQL_FIREWALL_PERSISTED_REQUIRE_ID", "on"));
    let harness = start(&vars).await;
    let (id, body) = operation("UserDirectory");
    let (status, _) = status_and_json(
        harness
            .post_json(&json!({ "query": body }).to_string())
            .await,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = status_and_json(
        harness
            .post_json(&json!({ "documentId": id }).to_string())
            .await,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn request_level_protections_still_apply_to_allowlisted_operations() {
    let harness = start(&ALLOWLIST).await;
    let (id, _) = operation("DeletePost");
    let (status, json) = status_and_json(
        get(
            &harness,
            &[("documentId", id.as_str()), ("variables", r#"{"id":"p1"}"#)],
        )
        .await,
    )
    .await;
    assert_eq!((status, first_code(&json)), (405, "METHOD_NOT_ALLOWED"));

    let (id, _) = operation("UserDirectory");
    let text_plain = harness
        .client
        .post(&harness.url)
        .header("content-type", "text/plain")
        .body(json!({ "documentId": id }).to_string())
        .send()
        .await
        .unwrap();
    let (status, json) = status_and_json(text_plain).await;
    assert_eq!((status, first_code(&json)), (400, "CSRF_BLOCKED"));

    let batch: Vec<Value> = (0..1000).map(|_| json!({ "documentId": id })).collect();
    let (status, json) =
        status_and_json(harness.post_json(&Value::Array(batch).to_string()).await).await;
    assert_eq!((status, first_code(&json)), (400, "BATCH_LIMIT_EXCEEDED"));
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn manifest_documents_skip_document_limits_unless_configured() {
    // AuthorPosts has depth 5 and aliases none: a depth limit of 3 would refuse it as free text.
    let mut vars = ALLOWLIST.to_vec();
    vars.push(("GRAPHQL_FIREWALL_MAX_DEPTH", "3"));
    let harness = start(&vars).await;
    let (id, _) = operation("AuthorPosts");
    let request = json!({ "documentId": id, "variables": { "authorId": "u1" } }).to_string();
    let (status, json) = status_and_json(harness.post_json(&request).await).await;
    assert_eq!(status, 200, "{json}");

    vars.push(("GRAPHQL_FIREWALL_PERSISTED_SKIP_LIMITS", "off"));
    let strict = start(&vars).await;
    let (status, json) = status_and_json(strict.post_json(&request).await).await;
    assert_eq!((status, first_code(&json)), (400, "DEPTH_LIMIT_EXCEEDED"));
}

#[tokio::test]
async fn apq_round_trip_as_an_apollo_client_does_it() {
    let harness = start(&[("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "apq")]).await;
    let query = "query Two { users(first: 2) { name } }";
    let hash = sha256(query);
    let hash_only = json!({ "extensions": apq_extension(&hash) }).to_string();
    let (status, json) = status_and_json(harness.post_json(&hash_only).await).await;
    assert_eq!(status, 200);
    assert_eq!(json["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(first_code(&json), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(harness.upstream_requests(), 0);

    let register = json!({ "query": query, "extensions": apq_extension(&hash) }).to_string();
    let (status, json) = status_and_json(harness.post_json(&register).await).await;
    assert_eq!(
        (status, &json["data"]["users"][0]["name"]),
        (200, &json!("Ada"))
    );

    let (status, json) = status_and_json(harness.post_json(&hash_only).await).await;
    assert_eq!(
        (status, &json["data"]["users"][1]["name"]),
        (200, &json!("Grace"))
    );
    let (_, sent) = harness.backend().observed.last_request().unwrap();
    let sent: Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(
        sent["query"], query,
        "the upstream gets the text, not the hash"
    );
    assert!(sent.get("extensions").is_none(), "{sent}");

    let get_hash_only = apq_extension(&hash).to_string();
    let (status, _) =
        status_and_json(get(&harness, &[("extensions", get_hash_only.as_str())]).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_hash_mismatch_is_refused_and_nothing_is_cached() {
    let harness = start(&[("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "apq")]).await;
    let reviewed = "{ users(first: 1) { name } }";
    let hash = sha256(reviewed);
    // Poisoning attempt: register the reviewed hash with another text.
    let poison =
        json!({ "query": "{ users(first: 1) { email } }", "extensions": apq_extension(&hash) })
            .to_string();
    let (status, json) = status_and_json(harness.post_json(&poison).await).await;
    assert_eq!(
        (status, first_code(&json)),
        (400, "PERSISTED_QUERY_HASH_MISMATCH")
    );
    let hash_only = json!({ "extensions": apq_extension(&hash) }).to_string();
    let (_, json) = status_and_json(harness.post_json(&hash_only).await).await;
    assert_eq!(
        first_code(&json),
        "PERSISTED_QUERY_NOT_FOUND",
        "the poisoned text was not cached"
    );
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn the_apq_cache_is_bounded() {
    let harness = start(&[
        ("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "apq"),
        ("GRAPHQL_FIREWALL_APQ_CACHE_BYTES", "1KiB"),
    ])
    .await;
    let queries: Vec<String> = (0..40)
        .map(|i| format!("query Q{i} {{ users(first: 1) {{ name }} }}"))
        .collect();
    for query in &queries {
        let register =
            json!({ "query": query, "extensions": apq_extension(&sha256(query)) }).to_string();
        assert_eq!(harness.post_json(&register).await.status(), 200);
    }
    let mut still_cached = 0;
    for query in &queries {
        let hash_only = json!({ "extensions": apq_extension(&sha256(query)) }).to_string();
        let (_, json) = status_and_json(harness.post_json(&hash_only).await).await;
        if json.get("data").is_some() {
            still_cached += 1;
        }
    }
    assert!(
        still_cached < 40,
        "1 KiB cannot hold 40 documents of ~80 bytes: {still_cached} cached"
    );
}

#[tokio::test]
async fn trusted_clients_bypass_the_allowlist_and_the_introspection_block() {
    let key_hash = sha256("internal-tooling-key");
    let mut vars = ALLOWLIST.to_vec();
    vars.push(("GRAPHQL_FIREWALL_TRUSTED_CLIENT_HEADER", "x-firewall-key"));
    vars.push(("GRAPHQL_FIREWALL_TRUSTED_CLIENT_KEY_HASHES", &key_hash));
    let harness = start(&vars).await;
    let introspection = json!({ "query": INTROSPECTION_QUERY }).to_string();
    let send = |key: &'static str| {
        harness
            .client
            .post(&harness.url)
            .header("content-type", "application/json")
            .header("x-firewall-key", key)
            .body(introspection.clone())
            .send()
    };
    let (status, json) = status_and_json(send("internal-tooling-key").await.unwrap()).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["data"]["__schema"]["queryType"]["name"], "Query");
    let (status, json) = status_and_json(send("internal-tooling-kez").await.unwrap()).await;
    assert_eq!(
        (status, first_code(&json)),
        (403, "PERSISTED_QUERY_REQUIRED")
    );
}

#[tokio::test]
async fn audit_mode_forwards_and_logs_unknown_documents() {
    let backend = common::demo_backend().await;
    let process = common::Process::start(
        &["serve"],
        &[
            ("GRAPHQL_FIREWALL_UPSTREAM_URL", backend.url().as_str()),
            ("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "audit"),
            (
                "GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/persisted-queries"),
            ),
        ],
    );
    let response = reqwest::Client::new()
        .post(process.url())
        .header("content-type", "application/json")
        .body(r#"{"query":"query Unreviewed { users(first: 1) { email } }","operationName":"Unreviewed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "audit mode forwards");
    let logged = process.wait_for(|event| {
        event["message"] == "document not in the manifest (audit mode: forwarded)"
    });
    assert_eq!(logged["operation"], "Unreviewed");
    assert_eq!(
        logged["hash"],
        sha256("query Unreviewed { users(first: 1) { email } }")
    );
    assert_eq!(backend.observed.requests(), 1);
}

fn write_manifest(dir: &Path, bodies: &[&str]) {
    let operations: Vec<Value> = bodies
        .iter()
        .map(|body| json!({ "id": sha256(body), "body": body, "name": null, "type": "query" }))
        .collect();
    let manifest = json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": operations });
    // Write then rename: the watcher must never read a half-written file.
    let temporary = dir.join("manifest.json.tmp");
    std::fs::write(&temporary, manifest.to_string()).unwrap();
    std::fs::rename(temporary, dir.join("manifest.json")).unwrap();
}

#[tokio::test]
async fn manifests_reload_when_they_change_and_a_broken_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let old = "{ users(first: 1) { id } }";
    let new = "{ users(first: 1) { name } }";
    write_manifest(dir.path(), &[old]);
    let dir_text = dir.path().to_str().unwrap().to_owned();
    let harness = start(&[
        ("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "allowlist"),
        ("GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR", &dir_text),
        ("GRAPHQL_FIREWALL_PERSISTED_RELOAD_INTERVAL", "50ms"),
    ])
    .await;
    let status_of = |query: &'static str| {
        let harness = &harness;
        async move {
            harness
                .post_json(&json!({ "query": query }).to_string())
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(status_of(old).await, 200);
    assert_eq!(status_of(new).await, 403);

    write_manifest(dir.path(), &[new]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(new).await != 200 {
        assert!(
            Instant::now() < deadline,
            "the new manifest was never loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status_of(old).await,
        403,
        "the removed operation is refused"
    );

    std::fs::write(dir.path().join("broken.json"), "{ not json").unwrap();
    // Several reload intervals pass; the previous set stays in force.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_of(new).await, 200);
    assert_eq!(status_of(old).await, 403);
}

/// A Kubernetes ConfigMap volume: the visible `manifest.json` is a symlink to
/// `..data/manifest.json`, and `..data` a symlink to a timestamped directory. An update writes a
/// new timestamped directory and atomically renames a new `..data` link over the old one: the
/// path the firewall lists never changes. Here the new file also keeps the old one's size and
/// modification time, so only its content tells the change.
#[tokio::test]
async fn a_configmap_update_swapping_the_data_symlink_is_reloaded() {
    use std::os::unix::fs::symlink;
    let volume = tempfile::tempdir().unwrap();
    let root = volume.path();
    let old = "{ users(first: 1) { id } }";
    let new = "{ users(first: 2) { id } }";
    std::fs::create_dir(root.join("..2026_12_01_10_00_00.1")).unwrap();
    write_manifest(&root.join("..2026_12_01_10_00_00.1"), &[old]);
    symlink("..2026_12_01_10_00_00.1", root.join("..data")).unwrap();
    symlink("..data/manifest.json", root.join("manifest.json")).unwrap();
    let dir_text = root.to_str().unwrap().to_owned();
    let harness = start(&[
        ("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "allowlist"),
        ("GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR", &dir_text),
        ("GRAPHQL_FIREWALL_PERSISTED_RELOAD_INTERVAL", "50ms"),
    ])
    .await;
    let status_of = |query: &'static str| {
        let harness = &harness;
        async move {
            harness
                .post_json(&json!({ "query": query }).to_string())
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(status_of(old).await, 200);
    assert_eq!(status_of(new).await, 403);
    // Let a few reload intervals see the first set.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let first = root.join("..2026_12_01_10_00_00.1/manifest.json");
    let second_dir = root.join("..2026_12_01_10_05_00.2");
    std::fs::create_dir(&second_dir).unwrap();
    write_manifest(&second_dir, &[new]);
    let second = second_dir.join("manifest.json");
    assert_eq!(
        std::fs::metadata(&first).unwrap().len(),
        std::fs::metadata(&second).unwrap().len()
    );
    let modified = std::fs::metadata(&first).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&second)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    symlink("..2026_12_01_10_05_00.2", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(root.join("..2026_12_01_10_00_00.1")).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(new).await != 200 {
        assert!(
            Instant::now() < deadline,
            "the ConfigMap update was never loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status_of(old).await, 403, "the old document is gone");
}

async fn build_error(manifest: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clients.json"), manifest).unwrap();
    let mut map = std::collections::HashMap::new();
    map.insert(
        "GRAPHQL_FIREWALL_UPSTREAM_URL",
        "http://127.0.0.1:9/graphql",
    );
    let dir_text = dir.path().to_str().unwrap().to_owned();
    map.insert("GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR", &dir_text);
    map.insert("GRAPHQL_FIREWALL_MAX_DEPTH", "3");
    let config = graphql_firewall::config::Config::from_source(
        &map,
        graphql_firewall::config::Profile::Serve,
    )
    .unwrap();
    graphql_firewall::build(&config)
        .expect_err("start-up fails")
        .to_string()
}

#[tokio::test]
async fn bad_manifests_fail_start_up_naming_the_entry() {
    let good = "query Good { users { id } }";
    let wrong_id = json!({ sha256("something else"): good }).to_string();
    assert!(
        build_error(&wrong_id).await.contains("clients.json"),
        "id mismatch"
    );

    let duplicate = format!(
        r#"{{"format":"apollo-persisted-query-manifest","version":1,"operations":[{{"id":"{id}","body":"{good}","name":"Good","type":"query"}},{{"id":"{id}","body":"query Other {{ users {{ name }} }}","name":"Other","type":"query"}}]}}"#,
        id = sha256(good)
    );
    let message = build_error(&duplicate).await;
    assert!(
        message.contains("clients.json") && message.contains(&sha256(good)[..16]),
        "{message}"
    );

    let unparsable = "query Broken { users { id }";
    let message = build_error(&json!({ sha256(unparsable): unparsable }).to_string()).await;
    assert!(
        message.contains("does not parse") && message.contains("clients.json"),
        "{message}"
    );

    let deep = "query Deep { users { friends { friends { friends { id } } } } }";
    let message = build_error(&json!({ sha256(deep): deep }).to_string()).await;
    assert!(
        message.contains("Deep") && message.contains("depth 5 > limit 3"),
        "{message}"
    );
}

#[test]
fn manifest_build_is_deterministic_and_passes_manifest_check() {
    let binary = env!("CARGO_BIN_EXE_graphql-firewall");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/persisted-queries/src");
    let build = || {
        let output = std::process::Command::new(binary)
            .args(["manifest", "build", source])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };
    let first = build();
    assert_eq!(first, build());
    assert_eq!(
        first,
        std::fs::read(MANIFEST).unwrap(),
        "the committed manifest is up to date"
    );
    let check = std::process::Command::new(binary)
        .args(["manifest", "check", MANIFEST])
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains("AuthorPosts") && stdout.contains("7 document(s) verified"),
        "{stdout}"
    );
    let strict = std::process::Command::new(binary)
        .args(["manifest", "check", MANIFEST])
        .env_clear()
        .env("GRAPHQL_FIREWALL_MAX_DEPTH", "2")
        .output()
        .unwrap();
    assert!(
        !strict.status.success(),
        "a depth-5 operation breaks a depth limit of 2"
    );
    assert!(String::from_utf8_lossy(&strict.stderr).contains("AuthorPosts"));
}

/// graphql-js's `getIntrospectionQuery()` (what GraphiQL and schema registries send).
const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}
"#;

#[tokio::test]
async fn sighup_reloads_the_manifests() {
    let backend = common::demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let old = "{ users(first: 1) { id } }";
    let new = "{ users(first: 1) { email } }";
    write_manifest(dir.path(), &[old]);
    let process = common::Process::start(
        &["serve"],
        &[
            ("GRAPHQL_FIREWALL_UPSTREAM_URL", backend.url().as_str()),
            ("GRAPHQL_FIREWALL_PERSISTED_QUERIES", "allowlist"),
            (
                "GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR",
                dir.path().to_str().unwrap(),
            ),
            ("GRAPHQL_FIREWALL_PERSISTED_RELOAD_INTERVAL", "off"),
        ],
    );
    let client = reqwest::Client::new();
    let status_of = |query: &'static str| {
        let request = client
            .post(process.url())
            .header("content-type", "application/json")
            .body(json!({ "query": query }).to_string());
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status_of(old).await, 200);
    assert_eq!(status_of(new).await, 403);
    write_manifest(dir.path(), &[new]);
    process.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(new).await != 200 {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the manifest"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status_of(old).await, 403);
}
