//! The decision without sockets: requests in, an inspection or the reasons for a refusal out.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::persisted::{ApqStore, Entry, Manifest, Mode, hash_document};
use crate::policy::Relax;
use crate::rules::{self, Introspection, Limits, Rule, VariableLimits};

const LISTED: &str = "query Listed { users(first: 2) { id } }";

fn limits() -> Limits {
    Limits {
        tokens: Some(1_000),
        depth: Some(3),
        aliases: Some(2),
        root_fields: Some(5),
        directives: Some(5),
        fields: Some(100),
        cost: Some(50),
        batch_cost: Some(60),
        list_depth: Some(3),
        introspection: Introspection::Block,
        variables: VariableLimits {
            count: Some(5),
            depth: Some(4),
            longest_list: Some(10),
            bytes: Some(1_000),
        },
    }
}

fn modes(default: rules::Mode, overrides: Vec<(Rule, rules::Mode)>) -> rules::Modes {
    rules::Modes { default, overrides }
}

fn inspector_with(mode: Mode, modes: rules::Modes) -> Inspector {
    inspector_listing(
        analysis::Settings::default(),
        (LISTED, "Listed"),
        mode,
        modes,
    )
}

/// An inspector whose manifest lists one document `(text, name)`.
fn inspector_listing(
    analysis: analysis::Settings,
    (text, name): (&str, &str),
    mode: Mode,
    modes: rules::Modes,
) -> Inspector {
    let entry = Entry {
        hash: hash_document(text),
        body: text.to_owned(),
        name: Some(name.to_owned()),
        source: "test".to_owned(),
    };
    let manifest =
        Manifest::from_entries(vec![entry], |text| analysis::analyse(text, &analysis)).unwrap();
    Inspector::new(
        Settings {
            analysis,
            profiles: LimitProfiles::new(limits(), Relax::TextLimits, Relax::No),
            modes,
            cache_bytes: 1 << 20,
            resolver: Resolver {
                mode,
                require_id: false,
                apq: ApqStore::new(1 << 20, Duration::from_secs(60)),
            },
        },
        Arc::new(Registry::new(manifest)),
        Arc::new(Metrics::new()),
    )
}

fn inspector() -> Inspector {
    inspector_with(Mode::Off, modes(rules::Mode::Enforce, Vec::new()))
}

fn query(text: &str) -> GraphqlRequest {
    GraphqlRequest {
        query: Some(text.to_owned()),
        ..GraphqlRequest::default()
    }
}

fn reasons(error: &InspectError) -> Vec<(Option<usize>, Reason)> {
    error
        .errors
        .iter()
        .map(|e| (e.batch_index, e.reason.clone()))
        .collect()
}

#[test]
fn an_operation_within_the_limits_is_measured_and_allowed() {
    let inspection = inspector()
        .inspect(
            &[query("{ users(first: 3) { id } }")],
            Transport::Post,
            false,
            Caller::default(),
        )
        .unwrap();
    let [report] = inspection.operations.as_slice() else {
        panic!("one report: {inspection:?}");
    };
    assert_eq!(report.metrics.depth, 2);
    assert_eq!(report.cost, 3);
    assert_eq!(report.origin, Origin::Inline);
    assert!(inspection.monitored.is_empty());
}

#[test]
fn the_first_enforced_rule_of_each_operation_refuses_the_request() {
    let error = inspector()
        .inspect(
            &[query("{ a { b { c { d } } } }")],
            Transport::Post,
            false,
            Caller::default(),
        )
        .unwrap_err();
    assert_eq!(
        reasons(&error),
        vec![(
            None,
            Reason::Violation(Violation {
                rule: Rule::Depth,
                limit: 3,
                actual: 4
            })
        )]
    );
}

#[test]
fn a_batch_is_refused_whole_with_the_index_of_each_offending_member() {
    let requests = [
        query("{ a }"),
        query("{ __schema { types { name } } }"),
        query("{ a(first: 40) { b } }"),
        query("{ a(first: 40) { b } }"),
    ];
    let error = inspector()
        .inspect(&requests, Transport::Post, true, Caller::default())
        .unwrap_err();
    let found = reasons(&error);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(matches!(
        found[0],
        (
            Some(1),
            Reason::Violation(Violation {
                rule: Rule::Introspection,
                ..
            })
        )
    ));
    assert!(matches!(
        found[1],
        (
            None,
            Reason::Violation(Violation {
                rule: Rule::BatchCost,
                limit: 60,
                actual: 80
            })
        )
    ));
}

#[test]
fn monitored_rules_are_reported_and_the_operation_is_allowed() {
    let inspector = inspector_with(
        Mode::Off,
        modes(
            rules::Mode::Enforce,
            vec![(Rule::Cost, rules::Mode::Monitor)],
        ),
    );
    let inspection = inspector
        .inspect(
            &[query("{ a(first: 51) { b } }")],
            Transport::Post,
            false,
            Caller::default(),
        )
        .unwrap();
    assert_eq!(
        inspection.monitored,
        vec![(
            0,
            Violation {
                rule: Rule::Cost,
                limit: 50,
                actual: 51
            }
        )]
    );
}

#[test]
fn only_queries_may_travel_over_get() {
    let error = inspector()
        .inspect(
            &[query("mutation { a }")],
            Transport::Get,
            false,
            Caller::default(),
        )
        .unwrap_err();
    assert_eq!(reasons(&error), vec![(None, Reason::NotAllowedOverGet)]);
    assert!(
        inspector()
            .inspect(&[query("{ a }")], Transport::Get, false, Caller::default())
            .is_ok()
    );
}

#[test]
fn a_get_for_an_event_stream_may_subscribe_but_never_mutate_and_websocket_may_do_all() {
    let inspect = |text: &str, transport| {
        inspector().inspect(&[query(text)], transport, false, Caller::default())
    };
    assert!(inspect("subscription { a }", Transport::GetEventStream).is_ok());
    assert!(inspect("{ a }", Transport::GetEventStream).is_ok());
    let error = inspect("mutation { a }", Transport::GetEventStream).unwrap_err();
    assert_eq!(reasons(&error), vec![(None, Reason::NotAllowedOverGet)]);
    let error = inspect("subscription { a }", Transport::Get).unwrap_err();
    assert_eq!(reasons(&error), vec![(None, Reason::NotAllowedOverGet)]);
    for text in ["subscription { a }", "mutation { a }", "{ a }"] {
        assert!(inspect(text, Transport::WebSocket).is_ok(), "{text}");
    }
}

#[test]
fn a_manifest_id_runs_the_reviewed_text_without_its_document_limits() {
    let request = GraphqlRequest {
        document_id: Some(format!("sha256:{}", hex::encode(hash_document(LISTED)))),
        ..GraphqlRequest::default()
    };
    let inspection = inspector()
        .inspect(&[request], Transport::Post, false, Caller::default())
        .unwrap();
    let report = &inspection.operations[0];
    assert_eq!(report.origin, Origin::Manifest);
    assert_eq!(report.text_for_upstream.as_deref(), Some(LISTED));
    assert_eq!(report.manifest_name.as_deref(), Some("Listed"));
}

#[test]
fn the_allowlist_refuses_inline_text_unless_the_caller_holds_a_client_key() {
    let inspector = inspector_with(Mode::Allowlist, modes(rules::Mode::Enforce, Vec::new()));
    let error = inspector
        .inspect(&[query("{ a }")], Transport::Post, false, Caller::default())
        .unwrap_err();
    assert_eq!(
        reasons(&error),
        vec![(None, Reason::Resolve(ResolveError::Required))]
    );
    let keyed = Caller {
        holds_client_key: true,
        ..Caller::default()
    };
    let inspection = inspector
        .inspect(
            &[query("{ __schema { types { name } } }")],
            Transport::Post,
            false,
            keyed,
        )
        .unwrap();
    assert_eq!(
        inspection.operations.len(),
        1,
        "keyed callers may introspect"
    );
}

#[test]
fn variables_are_measured_against_their_limits() {
    let mut request = query("query Q($ids: [ID]) { a(ids: $ids) }");
    request.variables = json!({ "ids": (0..11).collect::<Vec<u32>>() })
        .as_object()
        .cloned();
    let error = inspector()
        .inspect(&[request], Transport::Post, false, Caller::default())
        .unwrap_err();
    assert!(matches!(
        error.errors[0].reason,
        Reason::Violation(Violation {
            rule: Rule::Variables,
            limit: 10,
            actual: 11
        })
    ));
}

#[test]
fn schema_probing_refusals_are_recognised() {
    let error = inspector()
        .inspect(
            &[query("{ a ...Missing }")],
            Transport::Post,
            false,
            Caller::default(),
        )
        .unwrap_err();
    assert!(error.probes_schema());
    let depth = inspector()
        .inspect(
            &[query("{ a { b { c { d } } } }")],
            Transport::Post,
            false,
            Caller::default(),
        )
        .unwrap_err();
    assert!(!depth.probes_schema());
}

#[test]
fn an_overlong_operation_name_is_refused_before_anything_is_looked_up() {
    let mut request = query("{ a }");
    request.operation_name = Some("x".repeat(MAX_OPERATION_NAME_BYTES + 1));
    let error = inspector()
        .inspect(&[request], Transport::Post, false, Caller::default())
        .unwrap_err();
    assert_eq!(reasons(&error), vec![(None, Reason::OperationNameTooLong)]);
}

#[test]
fn a_refused_document_is_cached_like_an_accepted_one() {
    let inspector = inspector();
    let hostile = query("{ a { b { c { d { e } } } } }");
    for _ in 0..3 {
        assert!(
            inspector
                .inspect(
                    std::slice::from_ref(&hostile),
                    Transport::Post,
                    false,
                    Caller::default()
                )
                .is_err()
        );
    }
    assert_eq!(inspector.cache_size().0, 1);
}

// === Schema access rules ===

const ACCESS_SDL: &str = r#"
directive @authenticated on OBJECT | FIELD_DEFINITION | INTERFACE | SCALAR | ENUM
directive @requiresScopes(scopes: [[String!]!]!) on OBJECT | FIELD_DEFINITION | INTERFACE | SCALAR | ENUM

type Query {
  me: User
  node(id: ID!): Node
  search(term: String!): [SearchResult!]!
  secretAdminToken: String
  audit: AuditLog
}

interface Node {
  id: ID!
  internalNote: String @authenticated
  score: Int
}

type User implements Node {
  id: ID!
  name: String!
  internalNote: String
  email: String @requiresScopes(scopes: [["read:email"], ["admin"]])
  passwordHash: String
  score: Int @authenticated
}

type Post implements Node {
  id: ID!
  title: String!
  internalNote: String
  score: Int
}

union SearchResult = User | Post

type AuditLog @authenticated {
  entries: [String!]!
}
"#;

/// A persisted document that selects a restricted field: reviewed is not authorised.
const LISTED_EMAIL: &str = "query MyEmail { me { email } }";

fn access_inspector() -> Inspector {
    let mut schema = analysis::Schema::from_sdl(ACCESS_SDL).unwrap();
    schema
        .deny(&[
            "User.passwordHash".to_owned(),
            "Query.secretAdminToken".to_owned(),
        ])
        .unwrap();
    let analysis = analysis::Settings {
        schema: Some(Arc::new(schema)),
        ..analysis::Settings::default()
    };
    inspector_listing(
        analysis,
        (LISTED_EMAIL, "MyEmail"),
        Mode::Audit,
        modes(rules::Mode::Enforce, Vec::new()),
    )
}

fn verified(scopes: &[&str]) -> Identity {
    Identity::verified(
        crate::identity::AuthMethod::Jwt,
        crate::identity::Subject::new("alice"),
        None,
        crate::identity::Scopes::new(scopes.iter().copied()),
    )
}

/// `Ok(())` when allowed, else the coordinate refused.
fn access(
    inspector: &Inspector,
    request: GraphqlRequest,
    identity: Option<&Identity>,
) -> Result<(), String> {
    let caller = Caller {
        identity,
        ..Caller::default()
    };
    match inspector.inspect(&[request], Transport::Post, false, caller) {
        Ok(_) => Ok(()),
        Err(error) => match &error.errors[..] {
            [
                OperationError {
                    reason: Reason::Forbidden { coordinate },
                    ..
                },
            ] => Err(coordinate.to_string()),
            other => panic!("not an access refusal: {other:?}"),
        },
    }
}

#[test]
fn denied_fields_are_refused_to_everyone_however_they_are_reached() {
    let inspector = access_inspector();
    let admin = verified(&["admin"]);
    for text in [
        "{ me { passwordHash } }",
        "{ me { innocent: passwordHash } }",
        "{ me { ...F } } fragment F on User { passwordHash }",
        "{ me { ...F } } fragment F on User { ...G } fragment G on User { hash: passwordHash }",
        "{ node(id: 1) { ... on User { passwordHash } } }",
        "{ search(term: \"a\") { ... on User { passwordHash } } }",
        "{ search(term: \"a\") { ...U } } fragment U on User { passwordHash }",
        "{ me { passwordHash @skip(if: true) } }",
    ] {
        assert_eq!(
            access(&inspector, query(text), Some(&admin)),
            Err("User.passwordHash".to_owned()),
            "{text}"
        );
    }
    assert_eq!(
        access(
            &inspector,
            query("{ token: secretAdminToken }"),
            Some(&admin)
        ),
        Err("Query.secretAdminToken".to_owned())
    );
    assert_eq!(
        access(&inspector, query("{ me { name } }"), None),
        Ok(()),
        "an unrestricted field"
    );
}

#[test]
fn authenticated_and_scoped_fields_need_a_verified_caller_with_the_scopes() {
    let inspector = access_inspector();
    let email = "{ me { id e: email } }";
    assert_eq!(
        access(&inspector, query(email), None),
        Err("User.email".to_owned())
    );
    let anonymous = Identity::anonymous();
    assert_eq!(
        access(&inspector, query(email), Some(&anonymous)),
        Err("User.email".to_owned())
    );
    assert_eq!(
        access(&inspector, query(email), Some(&verified(&["read:posts"]))),
        Err("User.email".to_owned())
    );
    assert_eq!(
        access(&inspector, query(email), Some(&verified(&["read:email"]))),
        Ok(())
    );
    assert_eq!(
        access(&inspector, query(email), Some(&verified(&["admin"]))),
        Ok(())
    );
    // A type marked @authenticated: every field returning it.
    assert_eq!(
        access(&inspector, query("{ audit { entries } }"), None),
        Err("Query.audit".to_owned())
    );
    assert_eq!(
        access(
            &inspector,
            query("{ audit { entries } }"),
            Some(&verified(&[]))
        ),
        Ok(())
    );
}

#[test]
fn a_rule_on_an_interface_field_holds_for_implementations_and_back() {
    let inspector = access_inspector();
    // `Node.internalNote` is @authenticated: so is `User.internalNote`, reached directly or
    // through a fragment on the implementation.
    for text in [
        "{ node(id: 1) { internalNote } }",
        "{ me { internalNote } }",
        "{ node(id: 1) { ... on Post { note: internalNote } } }",
        "{ search(term: \"x\") { ... on Post { internalNote } } }",
    ] {
        let refused = access(&inspector, query(text), None);
        assert!(
            matches!(&refused, Err(c) if c.ends_with(".internalNote")),
            "{text}: {refused:?}"
        );
        assert_eq!(
            access(&inspector, query(text), Some(&verified(&[]))),
            Ok(()),
            "{text}"
        );
    }
    // A rule on an implementation's field holds when it is reached through the interface (the
    // node may be a User).
    assert_eq!(
        access(&inspector, query("{ node(id: 1) { score } }"), None),
        Err("Node.score".to_owned())
    );
    assert_eq!(
        access(
            &inspector,
            query("{ node(id: 1) { score } }"),
            Some(&verified(&[]))
        ),
        Ok(())
    );
    // `User.email` needs scopes; `Node` does not declare it, so it is reachable only through a
    // fragment on `User` — which the rule covers.
    assert_eq!(
        access(
            &inspector,
            query("{ node(id: 1) { ... on User { email } } }"),
            Some(&verified(&[]))
        ),
        Err("User.email".to_owned())
    );
}

#[test]
fn a_persisted_document_is_checked_against_the_caller_too() {
    let inspector = access_inspector();
    let by_id = GraphqlRequest {
        document_id: Some(format!(
            "sha256:{}",
            hex::encode(hash_document(LISTED_EMAIL))
        )),
        ..GraphqlRequest::default()
    };
    assert_eq!(
        access(&inspector, by_id.clone(), None),
        Err("User.email".to_owned()),
        "a reviewed document is not an authorised caller"
    );
    assert_eq!(
        access(&inspector, by_id, Some(&verified(&["read:email"]))),
        Ok(())
    );
}

#[test]
fn a_denied_type_denies_every_field_returning_it_and_every_field_of_it() {
    let mut schema = analysis::Schema::from_sdl(ACCESS_SDL).unwrap();
    schema.deny(&["Post".to_owned()]).unwrap();
    assert!(
        schema.deny(&["Pots".to_owned()]).is_err(),
        "a typo denies nothing: refused"
    );
    assert!(schema.deny(&["User.passwrod".to_owned()]).is_err());
    let settings = analysis::Settings {
        schema: Some(Arc::new(schema)),
        ..analysis::Settings::default()
    };
    let restricted = |text: &str| -> Vec<String> {
        let document = analysis::analyse(text, &settings).unwrap();
        document
            .operation(None)
            .unwrap()
            .restricted()
            .iter()
            .map(|r| r.coordinate.to_string())
            .collect()
    };
    assert_eq!(
        restricted("{ search(term: \"a\") { ... on Post { title } } }"),
        vec!["Post.title".to_owned()]
    );
    assert_eq!(restricted("{ me { name } }"), Vec::<String>::new());
}
