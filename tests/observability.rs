//! The Grafana dashboard and the Prometheus alerts speak the firewall's language: every
//! expression parses as PromQL, every metric it names is in the real exposition (the firewall in
//! front of the demo backend, after traffic of every kind, scraped over HTTP), and every label it
//! selects or groups by is one the exposition carries.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::label::Matchers;
use promql_parser::parser::{self, Expr, LabelModifier};
use serde_json::{Value, json};
use yaml_rust2::YamlLoader;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Labels Prometheus adds to every series when it scrapes.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// The exposition: every sample name with the label names seen on it.
struct Exposition {
    samples: BTreeMap<String, BTreeSet<String>>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut samples: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in text.lines() {
            if let Some(family) = line.strip_prefix("# TYPE ") {
                let mut words = family.split_whitespace();
                let (name, kind) = (words.next().unwrap(), words.next().unwrap());
                let suffixes: &[&str] = match kind {
                    "counter" => &["_total"],
                    "histogram" => &["_bucket", "_sum", "_count"],
                    _ => &[""],
                };
                for suffix in suffixes {
                    samples.entry(format!("{name}{suffix}")).or_default();
                }
            } else if !line.starts_with('#') && !line.is_empty() {
                let name_end = line.find(['{', ' ']).unwrap();
                let labels = samples.entry(line[..name_end].to_owned()).or_default();
                if let Some(rest) = line[name_end..].strip_prefix('{') {
                    for pair in rest[..rest.find('}').unwrap()].split(',') {
                        labels.insert(pair.split('=').next().unwrap().to_owned());
                    }
                }
            }
        }
        Exposition { samples }
    }

    fn all_labels(&self) -> BTreeSet<&str> {
        self.samples
            .values()
            .flatten()
            .map(String::as_str)
            .chain(TARGET_LABELS)
            .collect()
    }
}

/// What an expression uses: metric names with the labels matched on each, and grouping labels.
#[derive(Default)]
struct Uses {
    selectors: Vec<(String, Vec<String>)>,
    grouping: Vec<String>,
}

fn collect(expr: &Expr, uses: &mut Uses) {
    let mut pending = vec![expr];
    while let Some(expr) = pending.pop() {
        match expr {
            Expr::VectorSelector(vs) => uses.selectors.push(selector(&vs.name, &vs.matchers)),
            Expr::MatrixSelector(ms) => {
                uses.selectors.push(selector(&ms.vs.name, &ms.vs.matchers));
            }
            Expr::Aggregate(aggregate) => {
                if let Some(LabelModifier::Include(labels) | LabelModifier::Exclude(labels)) =
                    &aggregate.modifier
                {
                    uses.grouping.extend(labels.labels.iter().cloned());
                }
                pending.push(&aggregate.expr);
                pending.extend(aggregate.param.as_deref());
            }
            Expr::Binary(binary) => pending.extend([&*binary.lhs, &*binary.rhs]),
            Expr::Unary(unary) => pending.push(&unary.expr),
            Expr::Paren(paren) => pending.push(&paren.expr),
            Expr::Subquery(subquery) => pending.push(&subquery.expr),
            Expr::Call(call) => pending.extend(call.args.args.iter().map(|arg| &**arg)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
}

fn selector(name: &Option<String>, matchers: &Matchers) -> (String, Vec<String>) {
    let name = name.clone().expect("every selector names its metric");
    let labels = matchers
        .matchers
        .iter()
        .chain(matchers.or_matchers.iter().flatten())
        .map(|m| m.name.clone())
        .filter(|label| label != "__name__")
        .collect();
    (name, labels)
}

/// Every `expr` of the dashboard's panels, with Grafana's variables given values.
fn dashboard_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/grafana/graphql-firewall.json"))
        .expect("the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut expressions = Vec::new();
    let mut pending = vec![&dashboard];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(expr)) = object.get("expr") {
                    expressions.push(expr.replace("$__rate_interval", "5m").replace("$job", ".*"));
                }
                pending.extend(object.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    expressions
}

fn alert_expressions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/prometheus/alerts.yml"))
        .expect("the alert rules");
    let documents = YamlLoader::load_from_str(&text).expect("the alert rules are YAML");
    let mut rules = Vec::new();
    for group in documents[0]["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            let name = rule["alert"].as_str().expect("each rule is an alert");
            let expr = rule["expr"].as_str().expect("each rule has an expr");
            rules.push((name.to_owned(), expr.to_owned()));
        }
    }
    rules
}

/// The exposition after traffic of every kind the panels show: allowed, refused, monitored,
/// persisted by id, rate limited.
async fn scraped() -> Exposition {
    let harness = common::start(&[
        ("GRAPHQL_FIREWALL_RULE_MODES", "aliases:monitor"),
        ("GRAPHQL_FIREWALL_MAX_ALIASES", "1"),
        ("GRAPHQL_FIREWALL_RATE_LIMIT", "8/min"),
    ])
    .await;
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/persisted-queries/manifest.json")).unwrap(),
    )
    .unwrap();
    let id = manifest["operations"][0]["id"].as_str().unwrap().to_owned();
    let bodies = [
        json!({ "query": "{ users(first: 2) { id } }" }),
        json!({ "query": "{ a: users(first: 1) { id } b: users(first: 1) { id } }" }),
        json!({ "query": "{ users { friends { friends { friends { friends { friends { friends { friends { friends { friends { name } } } } } } } } } } }" }),
        json!({ "documentId": id }),
        json!({ "documentId": "0".repeat(64) }),
    ];
    for body in bodies.iter().cycle().take(12) {
        harness.post_json(&body.to_string()).await;
    }
    Exposition::parse(&harness.metrics_text().await)
}

#[tokio::test]
async fn every_metric_and_label_of_the_dashboard_and_the_alerts_exists_and_every_query_parses() {
    let exposition = scraped().await;
    // The traffic reached the families whose labels the panels group by.
    for sample in [
        "graphql_firewall_requests_total",
        "graphql_firewall_monitored_violations_total",
        "graphql_firewall_rate_limited_total",
        "graphql_firewall_persisted_queries_total",
        "graphql_firewall_persisted_operation_requests_total",
    ] {
        assert!(
            !exposition.samples[sample].is_empty(),
            "no labelled sample of {sample}"
        );
    }
    let all_labels = exposition.all_labels();

    let dashboard = dashboard_expressions();
    assert!(dashboard.len() >= 20, "{} panel queries", dashboard.len());
    let alerts = alert_expressions();
    assert!(alerts.len() >= 5, "{} alert rules", alerts.len());
    let named = dashboard
        .iter()
        .map(|expr| ("dashboard".to_owned(), expr.clone()))
        .chain(alerts);

    let mut names_used = BTreeSet::new();
    for (source, expr) in named {
        let parsed =
            parser::parse(&expr).unwrap_or_else(|e| panic!("{source}: {expr} does not parse: {e}"));
        let mut uses = Uses::default();
        collect(&parsed, &mut uses);
        assert!(
            !uses.selectors.is_empty(),
            "{source}: {expr} names no metric"
        );
        for (name, labels) in &uses.selectors {
            let known = exposition
                .samples
                .get(name)
                .unwrap_or_else(|| panic!("{source}: {name} is not in the exposition"));
            for label in labels {
                assert!(
                    known.is_empty()
                        || known.contains(label)
                        || TARGET_LABELS.contains(&label.as_str()),
                    "{source}: {name} has no label {label} (it has {known:?})"
                );
            }
            names_used.insert(name.clone());
        }
        for label in &uses.grouping {
            assert!(
                all_labels.contains(label.as_str()),
                "{source}: grouping by {label}, which no series has"
            );
        }
    }
    // The dashboard covers what the issue asks for.
    for wanted in [
        "graphql_firewall_requests_total",
        "graphql_firewall_monitored_violations_total",
        "graphql_firewall_operation_cost_bucket",
        "graphql_firewall_operation_depth_bucket",
        "graphql_firewall_overhead_seconds_bucket",
        "graphql_firewall_upstream_duration_seconds_bucket",
        "graphql_firewall_persisted_queries_total",
        "graphql_firewall_rate_limited_total",
        "graphql_firewall_analysis_cache_total",
        "graphql_firewall_manifest_reloads_total",
    ] {
        assert!(
            names_used.contains(wanted),
            "{wanted} is on no panel or rule"
        );
    }
}

#[test]
fn a_misspelt_metric_or_broken_query_would_be_caught() {
    // The checks above are only as good as the parser and the walk: a broken expression fails to
    // parse, and a selector inside a function inside an aggregation is found.
    assert!(parser::parse("sum(rate(graphql_firewall_requests_total[5m]").is_err());
    let mut uses = Uses::default();
    collect(
        &parser::parse(
            "sum by (code) (rate(graphql_firewall_request_total{verdict=\"rejected\"}[5m])) / 2",
        )
        .unwrap(),
        &mut uses,
    );
    assert_eq!(
        uses.selectors,
        [(
            "graphql_firewall_request_total".to_owned(),
            vec!["verdict".to_owned()]
        )]
    );
    assert_eq!(uses.grouping, ["code"]);
}
