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
    let analysis = analysis::Settings::default();
    let entry = Entry {
        hash: hash_document(LISTED),
        body: LISTED.to_owned(),
        name: Some("Listed".to_owned()),
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
