//! The inspection stage: every operation of a request is resolved (inline text, a manifest
//! document, an APQ registration), analysed (manifest documents were analysed at load time; other
//! text through a cache keyed by its SHA-256), measured with its variables and judged by the policy
//! before anything is forwarded.
//!
//! # Threats
//! A flood of requests repeating one hostile document must cost a hash and a lookup, not a parse:
//! refused documents are cached too (negative cache). The cache is bounded by the analyses' own
//! memory estimate, so a flood of *unique* documents evicts instead of growing. A hash sent with a
//! text must be that text's hash (an APQ cache poisoned with another text would run it under the
//! reviewed id), and in allowlist mode every form — POST or GET, `query`, `documentId` or
//! `extensions.persistedQuery` — goes through the same manifest lookup.

use std::sync::Arc;

use moka::sync::Cache;

use crate::analysis::{self, AnalysisError, Document, OperationKind};
use crate::metrics::{Metrics, count};
use crate::persisted::{self, ApqStore, DocumentHash, Registry};
use crate::policy::{self, Mode, Violation};

use crate::http::Transport;
use crate::http::decode::GraphqlRequest;
use crate::http::reject::{self, RejectCode, RejectError, Rejection};

/// Longest `operationName` accepted (as Cosmo Router's default): a name is a lookup key, not a payload.
pub const MAX_OPERATION_NAME_BYTES: usize = 512;

/// What the inspection stage needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub analysis: analysis::Settings,
    pub limits: policy::Limits,
    pub modes: policy::Modes,
    pub cache_bytes: u64,
    pub persisted: PersistedSettings,
}

/// Persisted-query behaviour.
#[derive(Debug, Clone)]
pub struct PersistedSettings {
    pub mode: persisted::Mode,
    pub require_id: bool,
    pub skip_limits: bool,
    pub trusted_client_skip_limits: bool,
    pub apq_cache_bytes: u64,
    pub apq_ttl: std::time::Duration,
}

type Analysed = Arc<Result<Document, AnalysisError>>;

/// Analyses operations and applies the policy.
pub struct Inspector {
    settings: Settings,
    cache: Cache<[u8; 32], Analysed>,
    registry: Arc<Registry>,
    apq: ApqStore,
    metrics: Arc<Metrics>,
    /// Limits for manifest documents (document limits off when `PERSISTED_SKIP_LIMITS`).
    persisted_limits: policy::Limits,
    /// Limits for trusted clients (introspection allowed; depth at least 15 for the standard
    /// introspection query, or document limits off with `TRUSTED_CLIENT_SKIP_LIMITS`).
    trusted_client_limits: policy::Limits,
}

/// Where an operation's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persisted {
    /// Inline text not in the manifest.
    No,
    /// A manifest document (by id or identical text).
    Manifest,
    /// An APQ registration.
    Apq,
}

impl Persisted {
    /// Metric and log label.
    pub fn as_str(self) -> &'static str {
        match self {
            Persisted::No => "no",
            Persisted::Manifest => "manifest",
            Persisted::Apq => "apq",
        }
    }
}

/// The depth the standard introspection query needs.
const INTROSPECTION_DEPTH: u32 = 15;

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("settings", &self.settings)
            .field("cached_documents", &self.cache.entry_count())
            .finish()
    }
}

/// What was measured of one operation, for logs and metrics.
#[derive(Debug, Clone)]
pub struct OperationReport {
    pub hash: [u8; 32],
    /// The executed operation's name, cut to 64 bytes.
    pub name: Option<String>,
    /// The name the manifest gives the document (a bounded set: usable as a metric label).
    pub manifest_name: Option<String>,
    pub persisted: Persisted,
    /// The text to forward when the client sent only an id.
    pub resolved_text: Option<Arc<str>>,
    pub kind: Option<OperationKind>,
    pub metrics: analysis::Metrics,
    pub tokens: u32,
    pub cost: u64,
}

/// The outcome of a request that may be forwarded.
#[derive(Debug, Default)]
pub struct Inspection {
    pub operations: Vec<OperationReport>,
    /// Rules broken in monitor mode: logged, not enforced.
    pub monitored: Vec<(usize, Violation)>,
}

impl OperationReport {
    /// `query`, `mutation` or `subscription`.
    pub fn kind_str(&self) -> &'static str {
        match self.kind {
            Some(OperationKind::Query) | None => "query",
            Some(OperationKind::Mutation) => "mutation",
            Some(OperationKind::Subscription) => "subscription",
        }
    }
}

impl Inspection {
    /// Sum of the operations' costs (what the batch spends from the client's budget).
    pub fn total_cost(&self) -> u64 {
        self.operations
            .iter()
            .fold(0, |sum, op| sum.saturating_add(op.cost))
    }
}

impl Inspector {
    pub fn new(settings: Settings, registry: Arc<Registry>, metrics: Arc<Metrics>) -> Inspector {
        let apq = ApqStore::new(
            settings.persisted.apq_cache_bytes,
            settings.persisted.apq_ttl,
        );
        let persisted_limits = if settings.persisted.skip_limits {
            without_document_limits(&settings.limits)
        } else {
            settings.limits.clone()
        };
        let trusted_client_limits = policy::Limits {
            block_introspection: false,
            ..if settings.persisted.trusted_client_skip_limits {
                without_document_limits(&settings.limits)
            } else {
                policy::Limits {
                    depth: settings.limits.depth.map(|d| d.max(INTROSPECTION_DEPTH)),
                    ..settings.limits.clone()
                }
            }
        };
        let cache = Cache::builder()
            .max_capacity(settings.cache_bytes)
            .weigher(|_key: &[u8; 32], value: &Analysed| {
                let bytes = match value.as_ref() {
                    Ok(document) => document.heap_bytes(),
                    Err(_) => 128,
                };
                u32::try_from(bytes.saturating_add(64)).unwrap_or(u32::MAX)
            })
            .build();
        Inspector {
            settings,
            cache,
            registry,
            apq,
            metrics,
            persisted_limits,
            trusted_client_limits,
        }
    }

    /// The manifest registry (reloaded by the server).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Inspects every member of a request; refuses the whole request when any member breaks an
    /// enforced rule, with one error per offending member.
    pub fn inspect(
        &self,
        requests: &[GraphqlRequest],
        transport: Transport,
        batch: bool,
        trusted_client: bool,
    ) -> Result<Inspection, Rejection> {
        let mut inspection = Inspection::default();
        let mut errors = Vec::new();
        let mut headers = axum::http::HeaderMap::new();
        let mut batch_cost: u64 = 0;
        for (index, request) in requests.iter().enumerate() {
            match self.inspect_one(request, transport, trusted_client) {
                Ok((report, violations)) => {
                    batch_cost = batch_cost.saturating_add(report.cost);
                    let mut enforced = violations.iter().filter(|v| v.mode == Mode::Enforce);
                    if let Some(first) = enforced.next() {
                        errors.push(violation_error(first));
                    }
                    inspection.monitored.extend(
                        violations
                            .iter()
                            .filter(|v| v.mode == Mode::Monitor)
                            .map(|v| (index, *v)),
                    );
                    inspection.operations.push(report);
                }
                Err(rejection) => {
                    headers.extend(rejection.headers);
                    errors.extend(rejection.errors);
                }
            }
            if batch
                && let Some(last) = errors.last_mut()
                && last.batch_index.is_none()
            {
                last.batch_index = Some(index);
            }
        }
        if batch
            && let Some(violation) =
                policy::check_batch_cost(batch_cost, &self.settings.limits, &self.settings.modes)
        {
            match violation.mode {
                Mode::Enforce => errors.push(violation_error(&violation)),
                Mode::Monitor => inspection.monitored.push((0, violation)),
            }
        }
        if errors.is_empty() {
            Ok(inspection)
        } else {
            Err(Rejection { errors, headers })
        }
    }

    fn inspect_one(
        &self,
        request: &GraphqlRequest,
        transport: Transport,
        trusted_client: bool,
    ) -> Result<(OperationReport, Vec<Violation>), Rejection> {
        if let Some(name) = &request.operation_name
            && name.len() > MAX_OPERATION_NAME_BYTES
        {
            return Err(Rejection::new(
                RejectCode::InvalidRequest,
                format!("operationName is longer than {MAX_OPERATION_NAME_BYTES} bytes"),
            ));
        }
        let manifest = self.registry.current();
        let resolved = self.resolve(request, &manifest)?;
        let trusted_document = manifest.get(&resolved.hash);
        let persisted = match (trusted_document, resolved.from_apq) {
            (Some(_), _) => Persisted::Manifest,
            (None, true) => Persisted::Apq,
            (None, false) => Persisted::No,
        };
        if persisted == Persisted::Manifest {
            count(&self.metrics.persisted, "hit");
        }
        self.enforce_allowlist(request, persisted, trusted_client, &resolved)?;
        let analysed;
        let document = match trusted_document {
            Some(trusted) => &trusted.document,
            None => {
                let text = resolved
                    .text
                    .as_deref()
                    .or(request.query.as_deref())
                    .unwrap_or_default();
                let entry = self
                    .cache
                    .entry(resolved.hash)
                    .or_insert_with(|| Arc::new(analysis::analyse(text, &self.settings.analysis)));
                count(
                    &self.metrics.analysis_cache,
                    if entry.is_fresh() { "miss" } else { "hit" },
                );
                analysed = entry.into_value();
                analysed.as_ref().as_ref().map_err(analysis_rejection)?
            }
        };
        let operation = document
            .operation(request.operation_name.as_deref())
            .map_err(|e| analysis_rejection(&e))?;
        if transport == Transport::Get && operation.kind() != OperationKind::Query {
            return Err(Rejection::method_not_allowed(
                "mutations and subscriptions must be sent with POST",
                "POST",
            ));
        }
        let variables = request.variables.as_ref();
        let report = OperationReport {
            hash: resolved.hash,
            name: operation.name().map(|n| reject::excerpt(n).to_owned()),
            manifest_name: trusted_document.and_then(|t| t.name.clone()),
            persisted,
            resolved_text: resolved.text,
            kind: Some(operation.kind()),
            metrics: *operation.metrics(),
            tokens: document.tokens(),
            cost: operation.cost(variables),
        };
        let limits = match (trusted_client, persisted) {
            (true, _) => &self.trusted_client_limits,
            (false, Persisted::Manifest) => &self.persisted_limits,
            (false, _) => &self.settings.limits,
        };
        let variable_metrics = analysis::measure_variables(variables);
        let violations = policy::check(
            &policy::Measured {
                tokens: report.tokens,
                metrics: &report.metrics,
                cost: report.cost,
                variables: &variable_metrics,
            },
            limits,
            &self.settings.modes,
        );
        Ok((report, violations))
    }

    /// Finds the operation's text and hash from `query`, `documentId` or `extensions.persistedQuery`.
    fn resolve(
        &self,
        request: &GraphqlRequest,
        manifest: &persisted::Manifest,
    ) -> Result<Resolved, Rejection> {
        let claimed = claimed_hash(request)?;
        match (request.query.as_deref(), claimed) {
            (Some(text), Some(claimed)) => {
                let hash = persisted::hash_document(text);
                if hash != claimed {
                    return Err(Rejection::new(
                        RejectCode::PersistedQueryHashMismatch,
                        "the persisted query hash does not match the query text",
                    ));
                }
                // Registration: the hash was just verified against the text, so the cache cannot be
                // poisoned with a different document.
                if self.settings.persisted.mode == persisted::Mode::Apq
                    && manifest.get(&hash).is_none()
                {
                    let _ = self.apq.register(hash, text);
                }
                Ok(Resolved {
                    hash,
                    text: None,
                    from_apq: false,
                    by_id: true,
                })
            }
            (Some(text), None) => Ok(Resolved {
                hash: persisted::hash_document(text),
                text: None,
                from_apq: false,
                by_id: false,
            }),
            (None, Some(hash)) => {
                if let Some(trusted) = manifest.get(&hash) {
                    return Ok(Resolved {
                        hash,
                        text: Some(trusted.body.clone()),
                        from_apq: false,
                        by_id: true,
                    });
                }
                if self.settings.persisted.mode == persisted::Mode::Apq
                    && let Some(text) = self.apq.get(&hash)
                {
                    return Ok(Resolved {
                        hash,
                        text: Some(text),
                        from_apq: true,
                        by_id: true,
                    });
                }
                Err(self.unknown_id())
            }
            // A `documentId` that is not a SHA-256 id (Relay's MD5, say) cannot be in the manifest.
            (None, None) => Err(self.unknown_id()),
        }
    }

    /// Current size of the analysis cache, for the gauges.
    pub fn cache_size(&self) -> (u64, u64) {
        // moka counts lazily; settle the pending bookkeeping so the gauges are exact.
        self.cache.run_pending_tasks();
        (self.cache.entry_count(), self.cache.weighted_size())
    }

    fn unknown_id(&self) -> Rejection {
        count(&self.metrics.persisted, "miss");
        match self.settings.persisted.mode {
            persisted::Mode::Allowlist => persisted_query_required(),
            // The APQ protocol's answer, word for word: clients resend with the text.
            _ => Rejection::new(RejectCode::PersistedQueryNotFound, "PersistedQueryNotFound"),
        }
    }

    fn enforce_allowlist(
        &self,
        request: &GraphqlRequest,
        persisted: Persisted,
        trusted_client: bool,
        resolved: &Resolved,
    ) -> Result<(), Rejection> {
        match self.settings.persisted.mode {
            persisted::Mode::Allowlist if !trusted_client => {
                if persisted != Persisted::Manifest
                    || (self.settings.persisted.require_id && !resolved.by_id)
                {
                    return Err(persisted_query_required());
                }
                Ok(())
            }
            persisted::Mode::Audit if persisted != Persisted::Manifest => {
                count(&self.metrics.persisted, "unknown_in_audit");
                tracing::warn!(
                    target: "graphql_firewall::persisted",
                    hash = %hex::encode(resolved.hash),
                    operation = request.operation_name.as_deref().map(reject::excerpt),
                    "document not in the manifest (audit mode: forwarded)"
                );
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The resolved text and identity of one operation.
struct Resolved {
    hash: DocumentHash,
    /// The text, when it came from a manifest or the APQ cache rather than the request.
    text: Option<Arc<str>>,
    from_apq: bool,
    /// The client named the document by id (not only by text).
    by_id: bool,
}

/// The id a request names: `documentId`, else `extensions.persistedQuery.sha256Hash` (version 1).
fn claimed_hash(request: &GraphqlRequest) -> Result<Option<DocumentHash>, Rejection> {
    if let Some(id) = &request.document_id {
        return Ok(persisted::parse_hash(id));
    }
    let Some(extension) = request.persisted_query() else {
        return Ok(None);
    };
    let malformed = || {
        Rejection::new(
            RejectCode::InvalidRequest,
            "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}",
        )
    };
    if extension.get("version").and_then(serde_json::Value::as_u64) != Some(1) {
        return Err(malformed());
    }
    let hash = extension
        .get("sha256Hash")
        .and_then(serde_json::Value::as_str)
        .and_then(persisted::parse_hash)
        .ok_or_else(malformed)?;
    Ok(Some(hash))
}

fn persisted_query_required() -> Rejection {
    Rejection::new(
        RejectCode::PersistedQueryRequired,
        "only persisted operations are allowed",
    )
}

/// Limits with the document rules off (request-level rules — introspection, variables — stay).
fn without_document_limits(limits: &policy::Limits) -> policy::Limits {
    policy::Limits {
        tokens: None,
        depth: None,
        aliases: None,
        root_fields: None,
        directives: None,
        fields: None,
        cost: None,
        ..limits.clone()
    }
}

fn violation_error(violation: &Violation) -> RejectError {
    let code = RejectCode::from(violation.rule);
    let message = match violation.rule {
        policy::Rule::Introspection => "introspection is disabled".to_owned(),
        // One generic answer whatever the unknown names were: a schema prober learns one bit.
        policy::Rule::Schema => "the operation is not valid for this API".to_owned(),
        rule => format!(
            "the operation exceeds the {} limit",
            rule.as_str().replace('_', " ")
        ),
    };
    let details = match violation.rule {
        policy::Rule::Introspection | policy::Rule::Schema => Vec::new(),
        _ => vec![("limit", violation.limit), ("actual", violation.actual)],
    };
    RejectError {
        code,
        message,
        details,
        batch_index: None,
    }
}

fn analysis_rejection(error: &AnalysisError) -> Rejection {
    let (code, details) = match error {
        AnalysisError::Syntax { .. }
        | AnalysisError::TooLarge
        | AnalysisError::NotExecutable { .. } => (RejectCode::GraphqlParseFailed, Vec::new()),
        AnalysisError::TokenLimit { limit, at_least } => (
            RejectCode::TokenLimitExceeded,
            vec![
                ("limit", u64::from(*limit)),
                ("actual", u64::from(*at_least)),
            ],
        ),
        AnalysisError::DepthLimit { limit, at_least } => (
            RejectCode::DepthLimitExceeded,
            vec![
                ("limit", u64::from(*limit)),
                ("actual", u64::from(*at_least)),
            ],
        ),
        AnalysisError::ValueNestingLimit { limit } => (
            RejectCode::DepthLimitExceeded,
            vec![("limit", u64::from(*limit))],
        ),
        AnalysisError::FragmentCycle { .. } => (RejectCode::FragmentCycle, Vec::new()),
        AnalysisError::OperationNotFound { .. } => (RejectCode::OperationNotFound, Vec::new()),
        AnalysisError::UnknownFragment { .. }
        | AnalysisError::DuplicateFragment { .. }
        | AnalysisError::DuplicateOperation { .. }
        | AnalysisError::AnonymousNotAlone
        | AnalysisError::NoOperation => (RejectCode::GraphqlValidationFailed, Vec::new()),
    };
    let mut rejection = Rejection::new(code, error.to_string());
    for (name, value) in details {
        rejection = rejection.with_detail(name, value);
    }
    rejection
}
