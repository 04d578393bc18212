//! Loads the persisted-query allowlist from the manifest directory: manifests verified (ids are
//! SHA-256 of their bodies), every document analysed once, every operation judged against the
//! configured limits; and reloads it, atomically, on SIGHUP or when the directory changes.
//!
//! # Why one place
//! The manifest formats, `analysis` (measures documents) and `policy` (judges them) meet here, for
//! start-up, hot reload and `manifest check` alike, so the three can never disagree on what a
//! manifest entry is allowed to be.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::analysis::{self, VariableMetrics};
use crate::files::Depth;
use crate::metrics::Metrics;
use crate::persisted::{self, Manifest, Registry, StoreError};
use crate::policy;
use crate::rules;

/// Everything needed to (re)build the allowlist.
#[derive(Debug, Clone)]
pub struct Source {
    pub manifests: Manifests,
    pub analysis: analysis::Settings,
    pub limits: rules::Limits,
    pub modes: rules::Modes,
    /// What an entry breaking an enforced limit does to the load.
    pub on_violation: OnViolation,
}

/// Where the manifests are read from.
#[derive(Debug, Clone)]
pub enum Manifests {
    None,
    /// A manifest compiled into the binary (the demo's), named for messages.
    Embedded {
        name: &'static str,
        text: &'static str,
    },
    /// Every `*.json` of a directory, which must exist.
    Dir(PathBuf),
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
    /// Loads the configured manifests.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let entries = match &self.manifests {
            Manifests::None => Vec::new(),
            Manifests::Embedded { name, text } => persisted::manifest::parse_manifest(text, name)?,
            Manifests::Dir(dir) => persisted::manifest::load_dir(dir)?,
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
                        "{} ({}): {violation}",
                        reviewed.source,
                        operation.name().unwrap_or("anonymous"),
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

    /// A digest of the manifest files' names and contents, to notice changes. Contents, not
    /// metadata: a Kubernetes ConfigMap update swaps the directory's `..data` symlink to a new
    /// directory while the paths listed here (`manifest.json → ..data/manifest.json`) stay the
    /// same, and a copy that keeps timestamps (`cp -p`, `rsync -t`) can keep size and mtime too.
    /// Manifests are small and read every few seconds at most, so hashing them is cheap.
    pub fn fingerprint(&self) -> Option<[u8; 32]> {
        let Manifests::Dir(dir) = &self.manifests else {
            return None;
        };
        let mut digest = Sha256::new();
        for path in crate::files::list(dir, &["json"], Depth::Shallow).unwrap_or_default() {
            digest.update(path.as_os_str().as_encoded_bytes());
            digest.update([0]);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    digest.update((bytes.len() as u64).to_le_bytes());
                    digest.update(bytes);
                }
                Err(error) => digest.update(error.to_string()),
            }
        }
        Some(digest.finalize().into())
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
