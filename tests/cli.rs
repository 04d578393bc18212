//! The built binary: configuration errors exit with status 2 and name the variable; `demo` serves
//! real traffic and shuts down gracefully on SIGTERM, letting in-flight requests on every worker
//! finish.

mod common;

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_graphql-firewall");

fn run_with(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let (code, _, stderr) = run_in(env!("CARGO_MANIFEST_DIR").as_ref(), &["serve"], vars);
    (code, stderr)
}

/// Runs the binary with exactly `vars` in the working directory `dir`: status, stdout, stderr.
fn run_in(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let output = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// An SDL of someone else's server: none of the demo manifest's fields exist in it.
const OTHER_SCHEMA: &str =
    "type Query { products(first: Int): [Product!]! }\ntype Product { sku: ID! }\n";

#[test]
fn serving_your_own_schema_from_the_clone_loads_no_demo_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.graphql");
    std::fs::write(&schema, OTHER_SCHEMA).unwrap();
    // From the repository, where `persisted-queries/` holds the demo's manifest.
    let (code, stdout, stderr) = run_in(
        env!("CARGO_MANIFEST_DIR").as_ref(),
        &["check"],
        &[
            (
                "GRAPHQL_FIREWALL_UPSTREAM_URL",
                "http://127.0.0.1:4000/graphql",
            ),
            ("GRAPHQL_FIREWALL_SCHEMA", schema.to_str().unwrap()),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("persisted documents: 0"), "{stdout}");
}

#[test]
fn a_manifest_that_does_not_fit_the_schema_says_so_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.graphql");
    std::fs::write(&schema, OTHER_SCHEMA).unwrap();
    let (code, _, stderr) = run_in(
        dir.path(),
        &["check"],
        &[
            (
                "GRAPHQL_FIREWALL_UPSTREAM_URL",
                "http://127.0.0.1:4000/graphql",
            ),
            ("GRAPHQL_FIREWALL_SCHEMA", schema.to_str().unwrap()),
            (
                "GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/persisted-queries"),
            ),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the schema does not define") && !stderr.contains("> limit 0"),
        "{stderr}"
    );
}

#[test]
fn demo_serves_its_built_in_manifest_from_any_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    let process = common::Process::start_in(elsewhere.path(), &["demo"], &[]);
    let body = reqwest::blocking::Client::new()
        .post(process.url())
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"documentId":"sha256:{}","variables":{{"first":2}}}}"#,
            DEMO_DOCUMENT_ID
        ))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.starts_with(r#"{"data":{"users":["#), "{body}");
}

/// The id the demo's start-up help and README use as the `documentId` example.
const DEMO_DOCUMENT_ID: &str = "45ad4a28d26cfa9cf2be23a9177fb3e35bd022bbb463071ca26322d959a4369f";

#[test]
fn a_missing_upstream_exits_with_status_2_naming_the_variable() {
    let (code, stderr) = run_with(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("GRAPHQL_FIREWALL_UPSTREAM_URL"), "{stderr}");
}

#[test]
fn a_bad_value_exits_with_status_2_naming_variable_value_and_accepted_forms() {
    let (code, stderr) = run_with(&[
        (
            "GRAPHQL_FIREWALL_UPSTREAM_URL",
            "http://127.0.0.1:9/graphql",
        ),
        ("GRAPHQL_FIREWALL_UPSTREAM_TIMEOUT", "soon"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("GRAPHQL_FIREWALL_UPSTREAM_TIMEOUT"),
        "{stderr}"
    );
    assert!(stderr.contains("\"soon\""), "{stderr}");
    assert!(
        stderr.contains("30s"),
        "accepted forms are listed: {stderr}"
    );
}

#[test]
fn an_unknown_variable_is_reported_at_start_up() {
    let (code, stderr) = run_with(&[
        (
            "GRAPHQL_FIREWALL_UPSTREAM_URL",
            "http://127.0.0.1:9/graphql",
        ),
        ("GRAPHQL_FIREWALL_MAX_BODYBYTES", "10"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("GRAPHQL_FIREWALL_MAX_BODYBYTES"),
        "{stderr}"
    );
}

#[test]
fn demo_serves_queries_passes_its_healthcheck_and_stops_cleanly_on_sigterm() {
    let process = common::Process::start(&["demo"], &[]);
    let body = reqwest::blocking::Client::new()
        .post(process.url())
        .header("content-type", "application/json")
        .body(r#"{"query":"{ user(id: \"u0\") { name email } }"}"#)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        body,
        r#"{"data":{"user":{"name":"Ada","email":"ada@example.com"}}}"#
    );
    let healthcheck = Command::new(BIN)
        .arg("healthcheck")
        .env_clear()
        .env("GRAPHQL_FIREWALL_LISTEN", &process.listen)
        .status()
        .unwrap();
    assert!(
        healthcheck.success(),
        "healthcheck against the running demo"
    );
    process.signal("TERM");
    process.wait_for(|event| event["message"] == "graphql-firewall stopped");
    assert_eq!(process.wait(), Some(0));
}

#[test]
fn sigterm_lets_in_flight_requests_on_every_worker_finish() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime.block_on(common::slow_upstream(std::time::Duration::from_millis(
        1500,
    )));
    let process = common::Process::start(
        &["serve"],
        &[
            (
                "GRAPHQL_FIREWALL_UPSTREAM_URL",
                &format!("http://{upstream}/graphql"),
            ),
            ("GRAPHQL_FIREWALL_WORKERS", "2"),
        ],
    );
    // More requests than workers, each on its own connection: both workers hold some.
    let in_flight: Vec<_> = (0..6)
        .map(|_| {
            let url = process.url();
            std::thread::spawn(move || {
                let response = reqwest::blocking::Client::new()
                    .post(url)
                    .header("content-type", "application/json")
                    .body(r#"{"query":"{ __typename }"}"#)
                    .send()
                    .unwrap();
                (response.status().as_u16(), response.text().unwrap())
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    process.signal("TERM");
    for request in in_flight {
        assert_eq!(request.join().unwrap(), (200, "{\"data\":null}".to_owned()));
    }
    process.wait_for(|event| event["message"] == "graphql-firewall stopped");
    assert_eq!(process.wait(), Some(0));
}

#[test]
fn the_demos_sse_and_websocket_examples_work_and_a_websocket_operation_is_audited() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let process = common::Process::start(&["demo"], &[]);
    let subscription = r#"{"query":"subscription { countdown(from: 3, intervalMs: 1) }"}"#;
    // The SSE example (`curl -N … -H 'accept: text/event-stream'`).
    let events = reqwest::blocking::Client::new()
        .post(process.url())
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(subscription)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        events.contains(r#"data: {"data":{"countdown":0}}"#),
        "{events}"
    );
    // The WebSocket example (websocat with graphql-transport-ws).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = process.url().replacen("http://", "ws://", 1);
    let received = runtime.block_on(async move {
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        for message in [
            r#"{"type":"connection_init"}"#.to_owned(),
            format!(r#"{{"id":"1","type":"subscribe","payload":{subscription}}}"#),
        ] {
            socket.send(Message::text(message)).await.unwrap();
        }
        let mut received = Vec::new();
        while let Some(Ok(Message::Text(text))) = socket.next().await {
            let done = text.contains(r#""type":"complete""#);
            received.push(text.to_string());
            if done {
                break;
            }
        }
        received
    });
    assert_eq!(received.len(), 6, "ack, 4 results, complete: {received:?}");
    assert!(received[4].contains(r#""countdown":0"#), "{received:?}");
    // Log events are flat JSON objects.
    let audited = process.wait_for(|event| {
        event["target"] == "graphql_firewall::audit" && event["transport"] == "ws"
    });
    assert_eq!(audited["operation_type"], "subscription", "{audited}");
    assert_eq!(audited["verdict"], "allowed", "{audited}");
    assert!(audited["cost"].is_number(), "{audited}");
}

#[test]
fn check_offline_needs_no_upstream_and_plain_check_still_does() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_in(dir.path(), &["check", "--offline"], &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("configuration is valid"), "{stdout}");
    let workers = std::thread::available_parallelism().unwrap();
    assert!(stdout.contains(&format!("auto (= {workers})")), "{stdout}");
    let (code, _, stderr) = run_in(dir.path(), &["check"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("GRAPHQL_FIREWALL_UPSTREAM_URL"), "{stderr}");
}

const DEMO_SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/persisted-queries/src");

#[test]
fn analyse_resolves_fragments_across_files_and_lists_the_operations_to_choose_from() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // One file whose fragment lives elsewhere: rejected, with a hint naming the remedy.
    let users = format!("{DEMO_SOURCES}/users.graphql");
    let (code, stdout, stderr) =
        run_in(dir, &["analyse", &users, "--operation", "UserProfile"], &[]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("unknown fragment `UserCard`"), "{stdout}");
    assert!(stderr.contains("pass that file too"), "{stderr}");

    // The directory: the fragment is found; several operations, so the names are listed.
    let (code, stdout, stderr) = run_in(dir, &["analyse", DEMO_SOURCES], &[]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    for name in ["UserProfile", "UserDirectory", "AuthorPosts", "Search"] {
        assert!(stderr.contains(name), "{name} listed: {stderr}");
    }
    assert!(stderr.contains("--operation"), "{stderr}");

    // Several files, one chosen: measured with its fragment, and its cost explained.
    let fragments = std::fs::read_dir(DEMO_SOURCES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a fragments directory");
    let (code, stdout, stderr) = run_in(
        dir,
        &[
            "analyse",
            &users,
            fragments.to_str().unwrap(),
            "--operation",
            "UserProfile",
        ],
        &[("GRAPHQL_FIREWALL_SCHEMA", "schema/demo.graphql")],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("operation:            UserProfile"),
        "{stdout}"
    );
    assert!(stdout.contains("largest cost contributions:"), "{stdout}");
    assert!(stdout.contains("verdict:              allowed"), "{stdout}");

    // One document with several operations and none chosen: the names, not "not found".
    let two = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        two.path(),
        "query First { users { id } } query Second { users { name } }",
    )
    .unwrap();
    let (code, _, stderr) = run_in(dir, &["analyse", two.path().to_str().unwrap()], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("First, Second"), "{stderr}");
}

/// Exit status 2 means "what you gave me is wrong" in every command: a variable, the schema, a
/// manifest directory, a file named on the command line.
#[test]
fn every_command_exits_2_on_a_configuration_error() {
    let elsewhere = tempfile::tempdir().unwrap();
    let upstream = (
        "GRAPHQL_FIREWALL_UPSTREAM_URL",
        "http://127.0.0.1:9/graphql",
    );
    let no_schema = ("GRAPHQL_FIREWALL_SCHEMA", "/nope/schema.graphql");
    let no_dir = ("GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR", "/nope/manifests");
    let bad_value = ("GRAPHQL_FIREWALL_MAX_DEPTH", "ten");
    let commands: &[&[&str]] = &[
        &["serve"],
        &["demo"],
        &["check"],
        &["check", "--offline"],
        &["analyse", DEMO_SOURCES, "--operation", "Search"],
        &[
            "manifest",
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/persisted-queries"),
        ],
    ];
    for command in commands {
        for (problem, named) in [
            (no_schema, "/nope/schema.graphql"),
            (bad_value, "MAX_DEPTH"),
        ] {
            let (code, _, stderr) = run_in(elsewhere.path(), command, &[upstream, problem]);
            assert_eq!(code, Some(2), "{command:?} with {problem:?}: {stderr}");
            assert!(stderr.contains(named), "{command:?}: {stderr}");
        }
    }
    for command in [
        &["serve"][..],
        &["demo"],
        &["check"],
        &["check", "--offline"],
    ] {
        let (code, _, stderr) = run_in(elsewhere.path(), command, &[upstream, no_dir]);
        assert_eq!(code, Some(2), "{command:?}: {stderr}");
        assert!(stderr.contains("/nope/manifests"), "{command:?}: {stderr}");
    }
    for command in [
        &["analyse", "/nope/query.graphql"][..],
        &["manifest", "check", "/nope/manifest.json"],
        &["manifest", "build", "/nope/sources"],
    ] {
        let (code, _, stderr) = run_in(elsewhere.path(), command, &[]);
        assert_eq!(code, Some(2), "{command:?}: {stderr}");
        assert!(stderr.contains("/nope/"), "{command:?}: {stderr}");
    }
}

#[test]
fn json_logs_carry_settings_as_an_object_and_refusals_with_hash_and_measurements() {
    let process = common::Process::start(
        &["demo"],
        &[
            ("GRAPHQL_FIREWALL_MAX_COST", "5"),
            ("GRAPHQL_FIREWALL_MAX_BATCH", "5"),
            ("GRAPHQL_FIREWALL_PERSISTED_LIMIT_VIOLATIONS", "warn"),
        ],
    );
    let client = reqwest::blocking::Client::new();
    let post = |body: String| {
        client
            .post(process.url())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let query = "{ users(first: 10) { id name } }";
    assert_eq!(post(serde_json::json!({ "query": query }).to_string()), 400);
    let refused = process.wait_for(|e| e["message"] == "operation rejected");
    assert_eq!(refused["code"], "COST_LIMIT_EXCEEDED", "{refused}");
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(query));
    assert_eq!(refused["hash"], hash.as_str(), "{refused}");
    assert_eq!(refused["depth"], 2, "{refused}");
    assert_eq!(refused["fields"], 3, "{refused}");
    assert_eq!(refused["limit"], 5, "{refused}");
    assert!(refused["cost"].as_u64().unwrap() > 5, "{refused}");
    assert_eq!(refused["actual"], refused["cost"], "{refused}");

    // Refused during the parse (too deep): the hash and what was measured until then.
    let deep = "{ users { friends { friends { friends { friends { friends { friends { friends { friends { friends { name } } } } } } } } } } }";
    assert_eq!(post(serde_json::json!({ "query": deep }).to_string()), 400);
    let refused = process.wait_for(|e| e["message"] == "operation rejected");
    assert_eq!(refused["code"], "DEPTH_LIMIT_EXCEEDED", "{refused}");
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(deep));
    assert_eq!(refused["hash"], hash.as_str(), "{refused}");
    assert_eq!(refused["limit"], 10, "{refused}");
    assert!(refused["actual"].as_u64().unwrap() > 10, "{refused}");

    let member = serde_json::json!({ "query": "{ __typename }" });
    assert_eq!(post(serde_json::json!(vec![member; 6]).to_string()), 400);
    let refused = process.wait_for(|e| e["message"] == "operation rejected");
    assert_eq!(refused["code"], "BATCH_LIMIT_EXCEEDED", "{refused}");
    assert_eq!(refused["batch"], 6, "{refused}");
    assert_eq!(refused["actual"], 6, "{refused}");
}

#[test]
fn the_start_up_settings_are_a_json_object_and_pretty_logs_have_no_colour_in_a_pipe() {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .arg("demo")
        .env_clear()
        .env("GRAPHQL_FIREWALL_LISTEN", "127.0.0.1:0")
        .env("GRAPHQL_FIREWALL_METRICS_LISTEN", "off")
        .env("GRAPHQL_FIREWALL_MAX_DEPTH", "7")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("graphql-firewall started"), "{line}");
    assert!(!line.contains('\u{1b}'), "ANSI escapes in a pipe: {line:?}");

    let process = common::Process::start(&["demo"], &[("GRAPHQL_FIREWALL_MAX_DEPTH", "7")]);
    let settings = &process.started["settings"];
    assert!(settings.is_object(), "{settings}");
    assert_eq!(settings["MAX_DEPTH"], "7", "{settings}");
    assert_eq!(settings["LOG_FORMAT"], "json", "{settings}");
}

#[test]
fn check_json_lists_every_setting_as_data_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &["check", "--offline", "--json"],
        &[
            (
                "GRAPHQL_FIREWALL_UPSTREAM_URL",
                "http://user:hunter2@127.0.0.1:4000/graphql",
            ),
            ("GRAPHQL_FIREWALL_MODE", "monitor"),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    let settings = report["settings"].as_object().unwrap();
    assert_eq!(settings.len(), graphql_firewall::config::VARIABLES.len());
    assert_eq!(
        settings["GRAPHQL_FIREWALL_MODE"],
        serde_json::json!({ "value": "monitor", "default": false })
    );
    assert_eq!(
        settings["GRAPHQL_FIREWALL_MAX_DEPTH"],
        serde_json::json!({ "value": "10", "default": true })
    );
    assert_eq!(
        settings["GRAPHQL_FIREWALL_SCHEMA"]["value"],
        serde_json::Value::Null
    );
    // `auto` with what it resolved to on this machine.
    assert_eq!(settings["GRAPHQL_FIREWALL_WORKERS"]["value"], "auto");
    assert!(
        settings["GRAPHQL_FIREWALL_WORKERS"]["effective"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("MODE=monitor")),
        "{report}"
    );
    assert_eq!(report["persisted_documents"], 0);
}

#[test]
fn demo_warns_that_typos_trip_the_probe_limit_and_they_do() {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .arg("demo")
        .env_clear()
        .env("GRAPHQL_FIREWALL_LISTEN", "127.0.0.1:0")
        .env("GRAPHQL_FIREWALL_METRICS_LISTEN", "off")
        .env("GRAPHQL_FIREWALL_PROBE_LIMIT", "3")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut endpoint = None;
    let mut note = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listens on ").nth(1) {
            endpoint = Some(rest.trim().to_owned());
        }
        if line.starts_with("Note:") || !note.is_empty() {
            note.push_str(&line);
            if line.contains("experiment freely") {
                break;
            }
        }
    }
    assert!(
        note.contains("more than 3 queries")
            && note.contains("429")
            && note.contains("PROBE_LIMIT=off"),
        "{note}"
    );
    let endpoint = endpoint.expect("the demo prints its endpoint");
    let client = reqwest::blocking::Client::new();
    // The fourth typo trips the limit; the fifth request is refused.
    let statuses: Vec<u16> = (0..5)
        .map(|_| {
            client
                .post(&endpoint)
                .header("content-type", "application/json")
                .body(r#"{"query":"{ users { nam } }"}"#)
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(statuses, [400, 400, 400, 400, 429]);
}

#[test]
fn an_operation_refused_after_inspection_is_logged_with_its_measurements() {
    // Nothing listens on the discard port: the upstream refuses the connection (502).
    let process = common::Process::start(
        &["serve"],
        &[(
            "GRAPHQL_FIREWALL_UPSTREAM_URL",
            "http://127.0.0.1:9/graphql",
        )],
    );
    let query = "{ users(first: 2) { id } }";
    let status = reqwest::blocking::Client::new()
        .post(process.url())
        .header("content-type", "application/json")
        .body(serde_json::json!({ "query": query }).to_string())
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 502);
    let refused = process.wait_for(|e| e["message"] == "operation rejected");
    assert_eq!(refused["code"], "UPSTREAM_UNAVAILABLE", "{refused}");
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(query));
    assert_eq!(refused["hash"], hash.as_str(), "{refused}");
    assert_eq!(refused["depth"], 2, "{refused}");
    assert!(refused["cost"].as_u64().is_some(), "{refused}");
}
