//! Loads the persisted-query allowlist from the manifest directory: manifests verified (ids are
//! SHA-256 of their bodies), every document analysed once, every operation judged against the
//! configured limits; and reloads it, atomically, on SIGHUP or when the directory changes.
//!
//! # Why one place
//! The manifest formats, `analysis` (measures documents) and `policy` (judges them) meet here, for
//! start-up, hot reload and `manifest check` alike, so the three can never disagree on what a
//! manifest entry is allowed to be.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::analysis::{self, VariableMetrics};
use crate::files::Depth;
use crate::metrics::Metrics;
use crate::persisted::{self, Manifest, ManifestError, Registry, StoreError};
use crate::policy;
use crate::rules;

/// Everything needed to (re)build the allowlist.
#[derive(Debug, Clone)]
pub struct Source {
    pub dir: PathBuf,
    /// A missing directory is an error (the operator named it) rather than "no manifest".
    pub dir_required: bool,
    pub analysis: analysis::Settings,
    pub limits: rules::Limits,
    pub modes: rules::Modes,
    /// What an entry breaking an enforced limit does to the load.
    pub on_violation: OnViolation,
}

/// `PERSISTED_LIMIT_VIOLATIONS`: what a manifest entry that breaks an enforced limit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnViolation {
    /// The whole set is refused (at start-up: the process stops; on reload: the old set stays).
    Error,
    /// The set is loaded and each problem is logged.
    Warn,
}

/// A loaded allowlist and the limit problems found in it (when not fatal).
#[derive(Debug)]
pub struct Loaded {
    pub manifest: Manifest,
    pub warnings: Vec<String>,
}

impl Source {
    /// Loads every `*.json` manifest of the directory.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let entries = match persisted::manifest::load_dir(&self.dir) {
            Err(ManifestError::DirMissing { .. }) if !self.dir_required => Vec::new(),
            other => other?,
        };
        self.check(entries)
    }

    /// Loads one manifest file or a directory of them (`manifest check`).
    pub fn load_path(&self, path: &Path) -> Result<Loaded, StoreError> {
        let entries = if path.is_dir() {
            persisted::manifest::load_dir(path)?
        } else {
            persisted::manifest::load_file(path)?
        };
        self.check(entries)
    }

    fn check(&self, entries: Vec<persisted::Entry>) -> Result<Loaded, StoreError> {
        // Parse-time limits would turn "breaks a limit" into "does not parse"; limits are judged
        // below, by the policy, so the message says which limit.
        let unlimited = analysis::Settings {
            limits: analysis::Limits {
                max_tokens: None,
                max_depth: None,
                ..self.analysis.limits.clone()
            },
            ..self.analysis.clone()
        };
        let manifest = Manifest::from_entries(entries, |text| analysis::analyse(text, &unlimited))?;
        let mut problems = Vec::new();
        for reviewed in manifest.sorted() {
            for operation in reviewed.document.operations() {
                let verdict = policy::judge(
                    &policy::Measured {
                        tokens: reviewed.document.tokens(),
                        metrics: operation.metrics(),
                        cost: operation.document_cost(),
                        variables: &VariableMetrics::default(),
                    },
                    &self.limits,
                    &self.modes,
                );
                for violation in &verdict.enforced {
                    problems.push(format!(
                        "{} ({}): {} {} > limit {}",
                        reviewed.source,
                        operation.name().unwrap_or("anonymous"),
                        violation.rule.as_str(),
                        violation.actual,
                        violation.limit
                    ));
                }
            }
        }
        if self.on_violation == OnViolation::Error && !problems.is_empty() {
            return Err(StoreError::Limits(problems.join("\n")));
        }
        Ok(Loaded {
            manifest,
            warnings: problems,
        })
    }

    /// Reloads into `registry`; a broken new set is logged and the previous one stays in force.
    pub fn reload(&self, registry: &Registry, metrics: &Metrics) -> bool {
        match self.load() {
            Ok(loaded) => {
                log_warnings(&loaded.warnings);
                let operations = loaded.manifest.len();
                metrics.manifest_loaded(operations, true);
                let (added, removed) = registry.replace(loaded.manifest);
                tracing::info!(
                    target: "graphql_firewall::persisted",
                    operations, added, removed,
                    "persisted-query manifests reloaded"
                );
                true
            }
            Err(error) => {
                metrics.manifest_loaded(0, false);
                tracing::error!(
                    target: "graphql_firewall::persisted",
                    %error,
                    "persisted-query manifests not reloaded: the previous set stays in force"
                );
                false
            }
        }
    }

    /// A cheap summary of the directory (names, sizes, modification times) to notice changes.
    pub fn fingerprint(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        let files = crate::files::list(&self.dir, &["json"], Depth::Shallow).unwrap_or_default();
        files
            .into_iter()
            .filter_map(|path| {
                let meta = std::fs::metadata(&path).ok()?;
                Some((path, meta.len(), meta.modified().ok()))
            })
            .collect()
    }
}

/// Logs limit problems of manifest entries that were accepted as warnings.
pub fn log_warnings(warnings: &[String]) {
    for warning in warnings {
        tracing::warn!(target: "graphql_firewall::persisted", problem = %warning, "manifest entry breaks a limit");
    }
}

/// Watches for SIGHUP and, every `interval`, for changes in the manifest directory, for as long as
/// the registry lives. The SIGHUP handler is installed before this returns, so a SIGHUP sent once the
/// server is up can never hit the default action (terminate).
pub fn spawn_watcher(
    runtime: &tokio::runtime::Handle,
    source: Source,
    registry: std::sync::Weak<Registry>,
    metrics: std::sync::Arc<Metrics>,
    interval: Option<Duration>,
) {
    #[cfg(unix)]
    let mut hangup = {
        let _entered = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
    };
    runtime.spawn(async move {
        let mut last = source.fingerprint();
        let mut tick = tokio::time::interval(interval.unwrap_or(Duration::from_secs(3600)));
        tick.tick().await;
        loop {
            #[cfg(unix)]
            let hangup_signal = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup_signal = std::future::pending::<Option<()>>();
            let forced = tokio::select! {
                _ = tick.tick() => false,
                _ = hangup_signal => true,
            };
            let Some(registry) = registry.upgrade() else {
                return;
            };
            let current = source.fingerprint();
            if forced || (interval.is_some() && current != last) {
                source.reload(&registry, &metrics);
                last = current;
            }
        }
    });
}
