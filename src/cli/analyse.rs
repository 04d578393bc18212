//! `analyse`: one operation's measurements and verdict under the configured limits. The operation
//! comes from one document (a file, or standard input), or from several files or a directory of
//! client sources, whose fragments are resolved across files exactly as `manifest build` does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use graphql_firewall::config::Config;
use graphql_firewall::persisted::build;
use graphql_firewall::{analysis, policy};

/// Exit 0 allowed (or only monitored), 1 rejected, 2 when the input cannot be read or assembled,
/// or names no single operation.
pub fn run(config: &Config, paths: &[PathBuf], operation: Option<&str>) -> ExitCode {
    let settings = match graphql_firewall::analysis_settings(config) {
        Ok(settings) => settings,
        Err(error) => return super::config_error("analyse", error),
    };
    let (text, operation) = match document(paths, operation) {
        Ok(found) => found,
        Err(message) => return super::config_error("analyse", message),
    };
    let document = analysis::analyse(&text, &settings);
    let selected = document
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|d| d.operation(operation.as_deref()).map(|op| (d, op)));
    let (document, op) = match selected {
        Ok(selected) => selected,
        Err(analysis::AnalysisError::OperationNotFound { .. }) => {
            let names: Vec<&str> = document
                .as_ref()
                .map(|d| d.operations().filter_map(|op| op.name()).collect())
                .unwrap_or_default();
            return super::config_error("analyse", choose(operation.as_deref(), &names));
        }
        Err(error @ analysis::AnalysisError::UnknownFragment { .. }) if paths.len() == 1 => {
            println!("verdict:              rejected ({error})");
            eprintln!(
                "hint: if the fragment is defined in another file, pass that file too, or the \
                 directory of your client's operations (analyse DIR --operation NAME)"
            );
            return ExitCode::FAILURE;
        }
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

/// The text to analyse and the operation to select in it: one document as it is, or the operation
/// named by `operation` among those of several files or a directory (with its fragments).
fn document(
    paths: &[PathBuf],
    operation: Option<&str>,
) -> Result<(String, Option<String>), String> {
    if let [path] = paths
        && !path.is_dir()
    {
        return read(path).map(|text| (text, operation.map(str::to_owned)));
    }
    let mut sources = Vec::new();
    for path in paths {
        if path.is_dir() {
            sources.extend(build::collect_sources(path).map_err(|e| e.to_string())?);
        } else {
            sources.push((path.display().to_string(), read(path)?));
        }
    }
    let operations = build::compose_operations(&sources).map_err(|e| e.to_string())?;
    let names: Vec<&str> = operations.iter().map(|op| op.name.as_str()).collect();
    let chosen = match (operation, operations.as_slice()) {
        (None, [only]) => Some(only),
        (None, _) => None,
        (Some(name), _) => operations.iter().find(|op| op.name == name),
    };
    let chosen = chosen.ok_or_else(|| choose(operation, &names))?;
    Ok((chosen.body.clone(), Some(chosen.name.clone())))
}

fn read(path: &Path) -> Result<String, String> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    text.map_err(|error| format!("{}: {error}", path.display()))
}

/// Why no operation was selected, with the names to choose from.
fn choose(asked: Option<&str>, names: &[&str]) -> String {
    let listed = if names.is_empty() {
        "none is named".to_owned()
    } else {
        names.join(", ")
    };
    match asked {
        Some(name) => format!("no operation named {name:?}; the operations are: {listed}"),
        None => format!(
            "{} operations: choose one with --operation NAME: {listed}",
            names.len()
        ),
    }
}
