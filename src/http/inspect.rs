//! The inspection stage: every operation of a request is analysed (through a cache keyed by the
//! document's SHA-256), measured with its variables and judged by the policy before anything is
//! forwarded.
//!
//! # Threats
//! A flood of requests repeating one hostile document must cost a hash and a lookup, not a parse:
//! refused documents are cached too (negative cache). The cache is bounded by the analyses' own
//! memory estimate, so a flood of *unique* documents evicts instead of growing.

use std::sync::Arc;

use moka::sync::Cache;

use crate::analysis::{self, AnalysisError, Document, OperationKind};
use crate::policy::{self, Mode, Violation};

use super::Transport;
use super::decode::GraphqlRequest;
use super::reject::{RejectCode, RejectError, Rejection};

/// Longest `operationName` accepted (as Cosmo Router's default): a name is a lookup key, not a payload.
pub const MAX_OPERATION_NAME_BYTES: usize = 512;

/// What the inspection stage needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub analysis: analysis::Settings,
    pub limits: policy::Limits,
    pub modes: policy::Modes,
    pub cache_bytes: u64,
}

type Analysed = Arc<Result<Document, AnalysisError>>;

/// Analyses operations and applies the policy.
pub struct Inspector {
    settings: Settings,
    cache: Cache<[u8; 32], Analysed>,
}

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

impl Inspection {
    /// Sum of the operations' costs (what the batch spends from the client's budget).
    pub fn total_cost(&self) -> u64 {
        self.operations
            .iter()
            .fold(0, |sum, op| sum.saturating_add(op.cost))
    }
}

impl Inspector {
    pub fn new(settings: Settings) -> Inspector {
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
        Inspector { settings, cache }
    }

    /// Inspects every member of a request; refuses the whole request when any member breaks an
    /// enforced rule, with one error per offending member.
    pub fn inspect(
        &self,
        requests: &[GraphqlRequest],
        transport: Transport,
        batch: bool,
    ) -> Result<Inspection, Rejection> {
        let mut inspection = Inspection::default();
        let mut errors = Vec::new();
        let mut headers = axum::http::HeaderMap::new();
        let mut batch_cost: u64 = 0;
        for (index, request) in requests.iter().enumerate() {
            match self.inspect_one(request, transport) {
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
    ) -> Result<(OperationReport, Vec<Violation>), Rejection> {
        let query = request.query.as_deref().unwrap_or_default();
        if let Some(name) = &request.operation_name
            && name.len() > MAX_OPERATION_NAME_BYTES
        {
            return Err(Rejection::new(
                RejectCode::InvalidRequest,
                format!("operationName is longer than {MAX_OPERATION_NAME_BYTES} bytes"),
            ));
        }
        let hash = analysis::document_hash(query);
        let analysed = self.cache.get_with(hash, || {
            Arc::new(analysis::analyse(query, &self.settings.analysis))
        });
        let document = analysed.as_ref().as_ref().map_err(analysis_rejection)?;
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
            hash,
            kind: Some(operation.kind()),
            metrics: *operation.metrics(),
            tokens: document.tokens(),
            cost: operation.cost(variables),
        };
        let variable_metrics = analysis::measure_variables(variables);
        let violations = policy::check(
            &policy::Measured {
                tokens: report.tokens,
                metrics: &report.metrics,
                cost: report.cost,
                variables: &variable_metrics,
            },
            &self.settings.limits,
            &self.settings.modes,
        );
        Ok((report, violations))
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
