use std::path::PathBuf;

use serde_json::Value;

use super::*;
use crate::persisted::manifest::parse_manifest;

fn sources(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect()
}

/// (name, type, body) of each operation in a built manifest, after checking that the manifest
/// verifies and that each body is exactly one operation plus fragments.
fn operations(files: &[(&str, &str)]) -> Vec<(String, String, String)> {
    let json = build_manifest(&sources(files)).unwrap();
    let entries = parse_manifest(&json, "built.json").unwrap();
    let manifest: Value = serde_json::from_str(&json).unwrap();
    let operations = manifest["operations"].as_array().unwrap();
    assert_eq!(entries.len(), operations.len());
    operations
        .iter()
        .map(|operation| {
            let body = operation["body"].as_str().unwrap().to_owned();
            let document = parse_query(&body).unwrap();
            assert!(matches!(document.operations, DocumentOperations::Multiple(ref ops) if ops.len() == 1));
            (
                operation["name"].as_str().unwrap().to_owned(),
                operation["type"].as_str().unwrap().to_owned(),
                body,
            )
        })
        .collect()
}

fn build_error(files: &[(&str, &str)]) -> String {
    build_manifest(&sources(files)).unwrap_err().to_string()
}

#[test]
fn each_operation_gets_its_text_followed_by_the_fragments_it_uses() {
    let ops = operations(&[
        (
            "a.graphql",
            "query Users { users { ...UserLink } }\n\nfragment UserLink on User { id name }\n",
        ),
        (
            "b.graphql",
            "mutation Delete($id: ID!) { deletePost(id: $id) }",
        ),
    ]);
    assert_eq!(
        ops,
        [
            (
                "Delete".to_owned(),
                "mutation".to_owned(),
                "mutation Delete($id: ID!) { deletePost(id: $id) }".to_owned()
            ),
            (
                "Users".to_owned(),
                "query".to_owned(),
                "query Users { users { ...UserLink } }\n\nfragment UserLink on User { id name }"
                    .to_owned()
            ),
        ]
    );
}

#[test]
fn fragments_are_included_transitively_once_each_in_name_order() {
    let ops = operations(&[
        (
            "ops.graphql",
            "query Q { user(id: 1) { ...C ...A posts { author { ...A } } } }",
        ),
        (
            "fragments.graphql",
            "fragment C on User { ...B }\nfragment A on User { id }\nfragment B on User { ...A name }\nfragment Unused on User { id }",
        ),
    ]);
    assert_eq!(
        ops[0].2,
        "query Q { user(id: 1) { ...C ...A posts { author { ...A } } } }\n\n\
         fragment A on User { id }\n\n\
         fragment B on User { ...A name }\n\n\
         fragment C on User { ...B }"
    );
}

#[test]
fn comments_between_definitions_belong_to_no_definition_but_comments_inside_are_kept() {
    let file = "# File header.\n\n\
                # Documents Q.\n\
                query Q {\n  # inside Q\n  users { ...F }\n} # after Q\n\n\
                # Documents F.\n\
                fragment F on User { id } # after F\n# trailing\n";
    let ops = operations(&[("a.graphql", file)]);
    assert_eq!(
        ops[0].2,
        "query Q {\n  # inside Q\n  users { ...F }\n}\n\nfragment F on User { id }"
    );
}

#[test]
fn strings_holding_comment_and_brace_characters_do_not_end_a_definition() {
    let file = concat!(
        "query A { search(term: \"# } \\\" #\") { __typename } }, # tail\n",
        "query B { search(term: \"\"\"block # } \\\"\"\" # \"\"\") { __typename } }\n",
    );
    let ops = operations(&[("a.graphql", file)]);
    assert_eq!(
        ops[0].2,
        "query A { search(term: \"# } \\\" #\") { __typename } }"
    );
    assert_eq!(
        ops[1].2,
        "query B { search(term: \"\"\"block # } \\\"\"\" # \"\"\") { __typename } }"
    );
}

#[test]
fn multi_byte_characters_and_crlf_line_endings_are_sliced_exactly() {
    let file = "# café ☕\r\nquery A { search(term: \"é☕\") { __typename } } query B { users { id } }\r\n\u{feff}\r\n";
    let ops = operations(&[("a.graphql", file)]);
    assert_eq!(ops[0].2, "query A { search(term: \"é☕\") { __typename } }");
    assert_eq!(ops[1].2, "query B { users { id } }");

    let file = "query C {\r\n  users { id }\r\n}\r\n";
    assert_eq!(
        operations(&[("c.graphql", file)])[0].2,
        "query C {\r\n  users { id }\r\n}"
    );
}

#[test]
fn files_with_only_fragments_or_only_comments_are_fine() {
    let ops = operations(&[
        ("fragments.graphql", "fragment F on User { id }\n# end"),
        ("empty.graphql", ""),
        ("notes.graphql", "# nothing here yet\n"),
        ("ops.graphql", "subscription S { users { ...F } }"),
    ]);
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].1, "subscription");
    assert_eq!(
        ops[0].2,
        "subscription S { users { ...F } }\n\nfragment F on User { id }"
    );
}

#[test]
fn ids_are_the_sha256_of_the_bodies_and_output_is_a_pretty_apollo_manifest() {
    let json = build_manifest(&sources(&[("a.graphql", "query A { users { id } }")])).unwrap();
    let id = hex::encode(hash_document("query A { users { id } }"));
    assert_eq!(
        json,
        format!(
            "{{\n  \"format\": \"apollo-persisted-query-manifest\",\n  \"version\": 1,\n  \"operations\": [\n    {{\n      \"id\": \"{id}\",\n      \"name\": \"A\",\n      \"type\": \"query\",\n      \"body\": \"query A {{ users {{ id }} }}\"\n    }}\n  ]\n}}\n"
        )
    );
}

#[test]
fn output_does_not_depend_on_file_order_or_on_the_run() {
    let files = fixture_sources();
    let first = build_manifest(&files).unwrap();
    assert_eq!(build_manifest(&files).unwrap(), first);
    let mut reversed = files.clone();
    reversed.reverse();
    assert_eq!(build_manifest(&reversed).unwrap(), first);
    let mut rotated = files.clone();
    rotated.rotate_left(2);
    assert_eq!(build_manifest(&rotated).unwrap(), first);
}

#[test]
fn anonymous_operations_are_refused_naming_the_file() {
    let expected =
        "a.graphql: anonymous operation (every operation needs a name to be allowlisted)";
    assert_eq!(build_error(&[("a.graphql", "{ users { id } }")]), expected);
    assert_eq!(
        build_error(&[("a.graphql", "query { users { id } }")]),
        expected
    );
    assert_eq!(
        build_error(&[(
            "a.graphql",
            "query A { users { id } }\nquery { users { id } }"
        )]),
        expected
    );
}

#[test]
fn a_name_defined_twice_is_refused_naming_both_files() {
    assert_eq!(
        build_error(&[
            ("b.graphql", "query A { users { id } }"),
            ("a.graphql", "query A { users { name } }"),
        ]),
        "operation A is defined in a.graphql and in b.graphql"
    );
    assert_eq!(
        build_error(&[(
            "a.graphql",
            "query A { users { id } }\nquery A { users { id } }"
        )]),
        "operation A is defined in a.graphql:1:1 and in a.graphql:2:1"
    );
    assert_eq!(
        build_error(&[
            (
                "a.graphql",
                "query A { users { ...F } }\nfragment F on User { id }"
            ),
            ("b.graphql", "fragment F on User { name }"),
        ]),
        "fragment F is defined in a.graphql and in b.graphql"
    );
    assert_eq!(
        build_error(&[(
            "a.graphql",
            "query A { users { ...F } }\nfragment F on User { id }\nfragment F on User { id }"
        )]),
        "fragment F is defined in a.graphql:2:1 and in a.graphql:3:1"
    );
}

#[test]
fn an_operation_and_a_fragment_may_share_a_name() {
    let ops = operations(&[(
        "a.graphql",
        "query User { users { ...User } }\nfragment User on User { id }",
    )]);
    assert_eq!(
        ops[0].2,
        "query User { users { ...User } }\n\nfragment User on User { id }"
    );
}

#[test]
fn spreads_of_unknown_fragments_are_refused() {
    assert_eq!(
        build_error(&[(
            "a.graphql",
            "query A { users { ... on User { ...Missing } } }"
        )]),
        "a.graphql: operation A spreads unknown fragment Missing"
    );
    assert_eq!(
        build_error(&[(
            "a.graphql",
            "query A { users { id } }\nfragment Unused on User { ...Missing }"
        )]),
        "a.graphql: fragment Unused spreads unknown fragment Missing"
    );
}

#[test]
fn fragment_cycles_are_refused() {
    assert_eq!(
        build_error(&[(
            "a.graphql",
            "query A { users { ...X } }\nfragment X on User { ...Y }\nfragment Y on User { friends { ...Z } }\nfragment Z on User { ...Y }"
        )]),
        "a.graphql: fragment cycle Y -> Z -> Y"
    );
    assert_eq!(
        build_error(&[(
            "a.graphql",
            "query A { users { id } }\nfragment S on User { ...S }"
        )]),
        "a.graphql: fragment cycle S -> S"
    );
}

#[test]
fn syntax_errors_name_the_file_and_position() {
    let message = build_error(&[("dir/a.graphql", "query A {\n  users { id \n}")]);
    assert!(message.starts_with("dir/a.graphql:3:2: "), "{message}");
    let message = build_error(&[("a.graphql", "query A { users { id } } garbage")]);
    assert!(message.starts_with("a.graphql:1:26: "), "{message}");
    let message = build_error(&[("a.graphql", "query A {\r users { id } }")]);
    assert_eq!(
        message,
        "a.graphql: lone carriage-return line endings are not supported"
    );
}

#[test]
fn nesting_beyond_the_parser_limit_is_an_error_not_a_crash() {
    let file = format!("query A {}{}", "{ a ".repeat(200), "}".repeat(200));
    assert_eq!(
        build_error(&[("a.graphql", &file)]),
        "a.graphql: recursion limit exceeded."
    );
}

#[test]
fn sources_without_operations_are_refused() {
    assert_eq!(
        build_error(&[("f.graphql", "fragment F on User { id }")]),
        "no operations found in the sources"
    );
    assert_eq!(build_error(&[]), "no operations found in the sources");
}

#[test]
fn collects_graphql_and_gql_files_recursively_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("b/nested")).unwrap();
    fs::write(root.join("z.graphql"), "query Z { users { id } }").unwrap();
    fs::write(root.join("b/nested/y.gql"), "query Y { users { id } }").unwrap();
    fs::write(root.join("b/x.graphql"), "query X { users { id } }").unwrap();
    fs::write(root.join("b/readme.md"), "not GraphQL").unwrap();
    fs::write(root.join("schema.json"), "{}").unwrap();
    let names: Vec<_> = collect_sources(root)
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["b/nested/y.gql", "b/x.graphql", "z.graphql"]);
    assert!(matches!(
        collect_sources(&root.join("absent")),
        Err(BuildError::Io { .. })
    ));
}

// === The committed demo client ===

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("persisted-queries")
}

fn fixture_sources() -> Vec<(String, String)> {
    collect_sources(&fixture_dir().join("src")).unwrap()
}

#[test]
fn the_demo_client_builds_into_verified_operations() {
    let files = fixture_sources();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let names: Vec<_> = operations(&files)
        .into_iter()
        .map(|(name, kind, _)| format!("{kind} {name}"))
        .collect();
    assert_eq!(
        names,
        [
            "query AuthorPosts",
            "mutation CreatePost",
            "mutation DeletePost",
            "query FriendsOfFriends",
            "query Search",
            "query UserDirectory",
            "query UserProfile",
        ]
    );
}

#[test]
fn the_committed_manifest_is_what_the_default_directory_loads() {
    let entries = crate::persisted::manifest::load_dir(&fixture_dir()).unwrap();
    let names: Vec<_> = entries.iter().filter_map(|e| e.name.as_deref()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
}

/// Set this variable to rewrite the committed manifest instead of comparing with it.
const UPDATE_VARIABLE: &str = "UPDATE_PERSISTED_MANIFEST";

#[test]
fn built_manifest_is_up_to_date() {
    let built = build_manifest(&fixture_sources()).unwrap();
    let path = fixture_dir().join("manifest.json");
    if std::env::var_os(UPDATE_VARIABLE).is_some() {
        fs::write(&path, &built).unwrap();
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == built,
        "persisted-queries/manifest.json is stale; regenerate it with \
         `graphql-firewall manifest build persisted-queries/src --out persisted-queries/manifest.json` \
         or `{UPDATE_VARIABLE}=1 cargo test built_manifest_is_up_to_date`"
    );
}
