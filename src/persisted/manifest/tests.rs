use super::*;

const USER: &str = "query User { user(id: 1) { name } }";
const POSTS: &str = "query Posts { users { posts { title } } }";

fn id(body: &str) -> String {
    hex::encode(hash_document(body))
}

fn apollo(operations: &[(&str, &str, &str)]) -> String {
    let operations: Vec<Value> = operations
        .iter()
        .map(|(id, name, body)| {
            serde_json::json!({"id": id, "name": name, "type": "query", "body": body})
        })
        .collect();
    serde_json::json!({
        "format": APOLLO_FORMAT,
        "version": 1,
        "operations": operations,
    })
    .to_string()
}

fn error(text: &str) -> String {
    parse_manifest(text, "m.json").unwrap_err().to_string()
}

#[test]
fn loads_an_apollo_manifest() {
    let text = apollo(&[(&id(USER), "User", USER), (&id(POSTS), "Posts", POSTS)]);
    let entries = parse_manifest(&text, "m.json").unwrap();
    assert_eq!(
        entries,
        vec![
            Entry {
                hash: hash_document(USER),
                body: USER.to_owned(),
                name: Some("User".to_owned()),
                source: "m.json#operations[0]".to_owned(),
            },
            Entry {
                hash: hash_document(POSTS),
                body: POSTS.to_owned(),
                name: Some("Posts".to_owned()),
                source: "m.json#operations[1]".to_owned(),
            },
        ]
    );
}

#[test]
fn loads_a_plain_map_with_bare_and_prefixed_ids_in_file_order() {
    let text = format!(
        r#"{{"{}": {:?}, "sha256:{}": {:?}}}"#,
        id(USER),
        USER,
        id(POSTS),
        POSTS
    );
    let entries = parse_manifest(&text, "m.json").unwrap();
    let bodies: Vec<_> = entries.iter().map(|e| e.body.as_str()).collect();
    assert_eq!(bodies, [USER, POSTS]);
    assert_eq!(entries[0].source, format!("m.json#{}…", &id(USER)[..16]));
    assert_eq!(entries[1].hash, hash_document(POSTS));
    assert_eq!(entries[1].name, None);
}

#[test]
fn accepts_empty_manifests() {
    assert_eq!(parse_manifest("{}", "m.json").unwrap(), vec![]);
    assert_eq!(parse_manifest(&apollo(&[]), "m.json").unwrap(), vec![]);
}

#[test]
fn rejects_an_id_that_is_not_the_hash_of_its_body_naming_the_entry() {
    let text = apollo(&[(&id(USER), "User", USER), (&id(USER), "Posts", POSTS)]);
    let message = error(&text.replace(&id(USER), &id("something else")));
    assert!(
        message.starts_with("m.json#operations[0] (id "),
        "{message}"
    );
    assert!(
        message.contains(", User): id is not the SHA-256"),
        "{message}"
    );
    assert!(
        message.contains(&format!("(which is {}…)", &id(USER)[..16])),
        "{message}"
    );

    let map = format!(r#"{{"sha256:{}": {:?}}}"#, id(USER), POSTS);
    let message = error(&map);
    let short = &id(USER)[..16];
    assert_eq!(
        message,
        format!(
            "m.json#{short}… (id {short}…): id is not the SHA-256 of the body (which is {}…)",
            &id(POSTS)[..16]
        )
    );
}

#[test]
fn rejects_ids_that_are_not_lower_case_sha256_hex() {
    for bad in [
        id(USER).to_uppercase(),
        format!("sha256:{}", id(USER)),
        id(USER)[..32].to_owned(),
        "3be4abb81fa595e25eb725b2c6a87508".to_owned(),
    ] {
        let message = error(&apollo(&[(&bad, "User", USER)]));
        assert!(
            message.ends_with("id is not a lower-case SHA-256 hex digest"),
            "{message}"
        );
    }
    let message = error(r#"{"sha1:abc": "query A { a }"}"#);
    assert_eq!(
        message,
        "m.json#sha1:abc (id sha1:abc): id is not a lower-case SHA-256 hex digest"
    );
}

#[test]
fn rejects_one_id_for_two_bodies_naming_both_places() {
    let text = apollo(&[(&id(USER), "User", USER), (&id(USER), "Posts", POSTS)]);
    let message = error(&text);
    assert!(
        message.starts_with("m.json#operations[0] (id "),
        "{message}"
    );
    assert!(
        message.contains(", User) and m.json#operations[1] (id "),
        "{message}"
    );
    assert!(
        message.ends_with(", Posts) have the same id with different bodies"),
        "{message}"
    );

    // A JSON object with a repeated key must not silently keep only one of them.
    let map = format!(r#"{{"{0}": {1:?}, "{0}": {2:?}}}"#, id(USER), USER, POSTS);
    assert!(error(&map).ends_with("have the same id with different bodies"));
}

#[test]
fn keeps_a_repeated_document_once() {
    let text = apollo(&[(&id(USER), "User", USER), (&id(USER), "User", USER)]);
    let entries = parse_manifest(&text, "m.json").unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].source, "m.json#operations[0]");
}

#[test]
fn rejects_unknown_formats_and_versions_naming_the_file() {
    let text = apollo(&[]);
    assert_eq!(
        error(&text.replace(APOLLO_FORMAT, "relay")),
        "m.json: unknown manifest format \"relay\" (expected \"apollo-persisted-query-manifest\" or an id → document map)"
    );
    assert_eq!(
        error(&text.replace("\"version\":1", "\"version\":2")),
        "m.json: unsupported manifest version 2 (expected 1)"
    );
    assert_eq!(
        error(&text.replace("\"version\":1", "\"version\":\"1\"")),
        "m.json: unsupported manifest version \"1\" (expected 1)"
    );
    assert_eq!(
        error(&text.replace(",\"version\":1", "")),
        "m.json: unsupported manifest version (none) (expected 1)"
    );
}

#[test]
fn rejects_wrong_json_types_naming_the_file_and_entry() {
    assert!(error("[]").starts_with("m.json: not a JSON object: invalid type: sequence"));
    assert!(error("{").starts_with("m.json: not a JSON object: EOF"));
    assert!(error("").starts_with("m.json: not a JSON object"));
    assert_eq!(
        error(&apollo(&[]).replace("[]", "{}")),
        "m.json: \"operations\" must be an array"
    );
    let text = apollo(&[(&id(USER), "User", USER)]).replace(&format!("{USER:?}"), "42");
    assert!(
        error(&text)
            .starts_with("m.json#operations[0]: invalid type: integer `42`, expected a string"),
        "{}",
        error(&text)
    );
    let text = format!(
        r#"{{"format":{:?},"version":1,"operations":[{{"id":"x"}}]}}"#,
        APOLLO_FORMAT
    );
    assert_eq!(error(&text), "m.json#operations[0]: missing field `body`");
    let map = format!(r#"{{"{}": ["query A {{ a }}"]}}"#, id(USER));
    assert!(error(&map).ends_with(": the document must be a string"));
}

#[test]
fn shortens_hostile_ids_and_names_in_messages() {
    let long_id = "x".repeat(10_000);
    let message = error(&apollo(&[(&long_id, "a\nb", USER)]));
    assert_eq!(
        message,
        "m.json#operations[0] (id xxxxxxxxxxxxxxxx…, a\\nb): id is not a lower-case SHA-256 hex digest"
    );
}

#[test]
fn loads_every_json_file_in_a_directory_in_name_order_and_dedupes_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let b = apollo(&[(&id(POSTS), "Posts", POSTS), (&id(USER), "User", USER)]);
    let a = format!(r#"{{"{}": {:?}}}"#, id(USER), USER);
    fs::write(dir.path().join("b.json"), b).unwrap();
    fs::write(dir.path().join("a.json"), a).unwrap();
    fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    fs::create_dir(dir.path().join("src")).unwrap();
    fs::write(dir.path().join("src").join("broken.json"), "{").unwrap();

    let entries = load_dir(dir.path()).unwrap();
    let sources: Vec<_> = entries.iter().map(|e| e.source.as_str()).collect();
    let a_source = format!(
        "{}#{}…",
        dir.path().join("a.json").display(),
        &id(USER)[..16]
    );
    let b_source = format!("{}#operations[0]", dir.path().join("b.json").display());
    assert_eq!(sources, [a_source.as_str(), b_source.as_str()]);
}

#[test]
fn a_broken_file_fails_the_whole_directory_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("good.json"), apollo(&[])).unwrap();
    fs::write(dir.path().join("bad.json"), "{\"format\": 3}").unwrap();
    let message = load_dir(dir.path()).unwrap_err().to_string();
    let file = dir.path().join("bad.json");
    assert!(message.starts_with(&format!("{}: unknown manifest format 3", file.display())));
}

#[test]
fn a_missing_directory_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    assert!(matches!(
        load_dir(&missing),
        Err(ManifestError::DirMissing { dir }) if dir == missing
    ));
    assert!(matches!(
        load_file(&missing.join("m.json")),
        Err(ManifestError::Io { .. })
    ));
}
