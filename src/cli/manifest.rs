//! `manifest build` and `manifest check`: the allowlist's tooling.

use std::path::Path;
use std::process::ExitCode;

use graphql_firewall::config::Config;
use graphql_firewall::persisted::build;
use graphql_firewall::persisted::load::OnViolation;

/// Writes the Apollo manifest of the operations under `dir` to `out` or standard output.
pub fn build(dir: &Path, out: Option<&Path>) -> ExitCode {
    let manifest = build::collect_sources(dir).and_then(|sources| build::build_manifest(&sources));
    let manifest = match manifest {
        Ok(manifest) => manifest,
        Err(error) => return super::config_error("manifest build", error),
    };
    match out {
        None => print!("{manifest}"),
        Some(path) => {
            if let Err(error) = std::fs::write(path, manifest) {
                eprintln!(
                    "graphql-firewall manifest build: {}: {error}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Verifies the manifests at `path` and prints each operation's measurements; exit 1 when one
/// breaks an enforced limit.
pub fn check(config: &Config, path: &Path) -> ExitCode {
    let analysis = match graphql_firewall::analysis_settings(config) {
        Ok(analysis) => analysis,
        Err(error) => return super::config_error("manifest check", error),
    };
    let mut source = graphql_firewall::manifest_source(config, &analysis);
    source.on_violation = OnViolation::Warn;
    let loaded = match source.load_path(path) {
        Ok(loaded) => loaded,
        Err(error) => return super::config_error("manifest check", error),
    };
    println!(
        "{:<28} {:<12} {:<9} {:>5} {:>7} {:>5} {:>10} {:>6} {:>7}",
        "operation", "id", "type", "depth", "aliases", "roots", "directives", "tokens", "cost"
    );
    for reviewed in loaded.manifest.sorted() {
        for operation in reviewed.document.operations() {
            let metrics = operation.metrics();
            println!(
                "{:<28} {:<12} {:<9} {:>5} {:>7} {:>5} {:>10} {:>6} {:>7}",
                operation.name().unwrap_or("(anonymous)"),
                hex::encode(reviewed.hash.get(..6).unwrap_or_default()),
                operation.kind().as_str(),
                metrics.depth,
                metrics.aliases,
                metrics.root_fields,
                metrics.directives,
                reviewed.document.tokens(),
                operation.document_cost(),
            );
        }
    }
    println!("{} document(s) verified", loaded.manifest.len());
    if loaded.warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        for warning in &loaded.warnings {
            eprintln!("limit broken: {warning}");
        }
        ExitCode::FAILURE
    }
}
