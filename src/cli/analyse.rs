//! `analyse`: one document's measurements and verdict under the configured limits.

use std::path::Path;
use std::process::ExitCode;

use graphql_firewall::config::Config;
use graphql_firewall::{analysis, policy};

pub fn run(config: &Config, file: &Path, operation: Option<&str>) -> ExitCode {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(file)
    };
    let text = match text {
        Ok(text) => text,
        Err(error) => {
            eprintln!("graphql-firewall analyse: {}: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let settings = match graphql_firewall::analysis_settings(config) {
        Ok(settings) => settings,
        Err(error) => return super::config_error("analyse", error),
    };
    let document = analysis::analyse(&text, &settings);
    let selected = document
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|d| d.operation(operation).map(|op| (d, op)));
    let (document, op) = match selected {
        Ok(selected) => selected,
        Err(error) => {
            println!("verdict:              rejected ({error})");
            return ExitCode::FAILURE;
        }
    };
    let metrics = op.metrics();
    let cost = op.document_cost();
    println!(
        "operation:            {}",
        op.name().unwrap_or("(anonymous)")
    );
    println!("type:                 {}", op.kind().as_str());
    println!("tokens:               {}", document.tokens());
    println!("depth:                {}", metrics.depth);
    println!("aliases:              {}", metrics.aliases);
    println!("root fields:          {}", metrics.root_fields);
    println!("directives:           {}", metrics.directives);
    println!("fields:               {}", metrics.fields);
    println!("introspection fields: {}", metrics.introspection_fields);
    println!("unknown schema names: {}", metrics.unknown_schema_names);
    println!("cost:                 {cost} (variables at their defaults)");
    print_breakdown(op);
    let verdict = policy::judge(
        &policy::Measured {
            tokens: document.tokens(),
            metrics,
            cost,
            variables: &analysis::VariableMetrics::default(),
        },
        &config.limits.limits,
        &config.limits.modes,
    );
    let violations = [
        ("enforce", &verdict.enforced),
        ("monitor", &verdict.monitored),
    ];
    for (mode, list) in violations {
        for violation in list {
            println!("violation:            {violation} ({mode})");
        }
    }
    let outcome = match (verdict.allows(), verdict.monitored.is_empty()) {
        (false, _) => "rejected",
        (true, false) => "monitored",
        (true, true) => "allowed",
    };
    println!("verdict:              {outcome}");
    if verdict.allows() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The fields that contribute most to the cost, with their multipliers: why the operation costs
/// what it costs.
fn print_breakdown(op: &analysis::Operation) {
    let Ok(contributions) = op.cost_breakdown(None, 10) else {
        return;
    };
    if contributions.is_empty() {
        return;
    }
    println!("largest cost contributions:");
    for c in contributions {
        println!(
            "  {:<40} ×{:<8} weight {:<4} = {}",
            c.path, c.multiplier, c.weight, c.subtotal
        );
    }
}
