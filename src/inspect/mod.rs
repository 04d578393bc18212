//! The decision, without HTTP types: every operation of a request is resolved (inline text, a
//! manifest document, an APQ registration; the allowlist), analysed (manifest documents at load
//! time, other text through [`cache`]), measured with its variables and judged by the policy,
//! before anything is forwarded.
//!
//! HTTP, the WebSocket relay and the CLI all call [`Inspector::inspect`]: a transport only decodes
//! its requests into [`GraphqlRequest`]s and renders the [`InspectError`] its own way, so no
//! transport is a second door with other rules.
//!
//! # Threats
//! The inspection must cost a hash and a lookup for a repeated document, whatever it is (see
//! [`cache`]); a name sent by the client is a lookup key, not a payload, so it is bounded; and every
//! way of naming a document goes through the one resolution of [`crate::persisted::resolve`].

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod cache;
mod request;

use std::sync::Arc;

use crate::analysis::{self, ActualCost, AnalysisError, CostError, OperationKind};
use crate::identity::Identity;
use crate::metrics::{Metrics, count};
use crate::persisted::{self, Claim, Origin, Registry, ResolveError, Resolver};
use crate::policy::{self, LimitProfiles, Violation};
use crate::rules;

use cache::AnalysisCache;
pub use request::GraphqlRequest;

/// Longest `operationName` accepted (as Cosmo Router's default): a name is a lookup key, not a payload.
pub const MAX_OPERATION_NAME_BYTES: usize = 512;

/// How the request travelled: it decides which operation types are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP GET: queries only (GraphQL-over-HTTP; a GET must be safe).
    Get,
    /// HTTP GET accepting `text/event-stream` (GraphQL over SSE, distinct connections): queries
    /// and subscriptions, which read; mutations still need POST.
    GetEventStream,
    /// HTTP POST: every operation type.
    Post,
    /// A `subscribe` (legacy `start`) message of a GraphQL-over-WebSocket connection: every
    /// operation type, under exactly the rules of a POST.
    WebSocket,
}

/// Who is asking, as far as the decision needs to know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caller<'a> {
    /// Presented one of the configured client keys ([`persisted::ClientKeys`]): not held to the
    /// allowlist, and introspection is allowed.
    pub holds_client_key: bool,
    /// Who the caller proved to be (`None`: anonymous), for the schema's access rules. A client
    /// key or a reviewed (persisted) document is not an identity: access rules hold for both.
    pub identity: Option<&'a Identity>,
}

impl Caller<'_> {
    /// Whether the caller may select what `requirement` guards.
    fn may(&self, requirement: &analysis::Requirement) -> bool {
        let identity = self.identity.filter(|identity| identity.is_verified());
        requirement.allows(identity.is_some(), &|scope| {
            identity.is_some_and(|identity| identity.scopes.contains(scope))
        })
    }
}

/// What the inspection needs, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub analysis: analysis::Settings,
    pub profiles: LimitProfiles,
    pub modes: rules::Modes,
    pub cache_bytes: u64,
    pub resolver: Resolver,
}

/// Resolves, analyses and judges operations.
#[derive(Debug)]
pub struct Inspector {
    settings: Settings,
    cache: AnalysisCache,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
}

/// What was measured of one operation, for the audit log, metrics and forwarding.
#[derive(Debug, Clone)]
pub struct OperationReport {
    pub hash: persisted::DocumentHash,
    /// The executed operation's name, cut to 64 bytes.
    pub name: Option<String>,
    /// The name the manifest gives the document (a bounded set: usable as a metric label).
    pub manifest_name: Option<String>,
    pub origin: Origin,
    /// The text to forward when the client sent only an id.
    pub text_for_upstream: Option<Arc<str>>,
    pub kind: OperationKind,
    pub metrics: analysis::Metrics,
    pub tokens: u32,
    pub cost: u64,
}

/// The outcome of a request that may be forwarded.
#[derive(Debug, Default)]
pub struct Inspection {
    pub operations: Vec<OperationReport>,
    /// Rules broken in monitor mode, with the batch position of their operation (0 otherwise).
    pub monitored: Vec<(usize, Violation)>,
    /// The meter of the answer's actual cost, for a request of one operation (a batch's answer
    /// is an array, which the meter does not map).
    pub meter: Option<ActualCost>,
}

impl Inspection {
    /// Sum of the operations' costs (what the batch spends from the client's budget).
    pub fn total_cost(&self) -> u64 {
        self.operations
            .iter()
            .fold(0, |sum, op| sum.saturating_add(op.cost))
    }
}

/// What a persisted-query lookup found (`graphql_firewall_persisted_queries_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PersistedLookup {
    /// A manifest document.
    Hit,
    /// An id nobody knows.
    Miss,
    /// Audit mode: a document outside the manifest, forwarded.
    UnknownInAudit,
}

impl PersistedLookup {
    fn as_str(self) -> &'static str {
        match self {
            PersistedLookup::Hit => "hit",
            PersistedLookup::Miss => "miss",
            PersistedLookup::UnknownInAudit => "unknown_in_audit",
        }
    }
}

/// Why one operation may not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("operationName is longer than {MAX_OPERATION_NAME_BYTES} bytes")]
    OperationNameTooLong,
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// A variable that sizes the operation does not coerce, or a slicing rule is broken: the
    /// cost cannot be bounded, so the operation is refused (never monitored).
    #[error(transparent)]
    Cost(#[from] CostError),
    /// GraphQL-over-HTTP: a GET must not change anything.
    #[error("mutations and subscriptions must be sent with POST")]
    NotAllowedOverGet,
    /// An enforced rule.
    #[error("the operation breaks the {} rule", .0.rule.as_str())]
    Violation(Violation),
    /// The operation selects a schema coordinate the caller may not (denied to everyone, or
    /// `@authenticated` / `@requiresScopes` unmet). Always enforced: access is not a limit to
    /// monitor. The coordinate is for the audit log only.
    #[error("the operation selects a field the caller may not access")]
    Forbidden { coordinate: Box<str> },
}

impl Reason {
    /// The document names something the schema or the document itself does not define: what a
    /// schema prober's guesses produce (one generic `GRAPHQL_VALIDATION_FAILED` to the client).
    pub fn is_validation_failure(&self) -> bool {
        match self {
            Reason::Violation(violation) => violation.rule == rules::Rule::Schema,
            Reason::Analysis(error) => matches!(
                error,
                AnalysisError::UnknownFragment { .. }
                    | AnalysisError::DuplicateFragment { .. }
                    | AnalysisError::DuplicateOperation { .. }
                    | AnalysisError::AnonymousNotAlone
                    | AnalysisError::NoOperation
            ),
            _ => false,
        }
    }
}

/// One refused operation, with its position when the request is a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationError {
    pub batch_index: Option<usize>,
    pub reason: Reason,
}

/// A refused request: one error per offending operation (a batch is refused whole).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} operation(s) refused", errors.len())]
pub struct InspectError {
    pub errors: Vec<OperationError>,
    /// What was learnt of each operation (by position in the request) before the refusal, for
    /// the audit log: repeated attacks are correlated by hash, and limits are tuned from the
    /// measurements of what was refused.
    pub learnt: Vec<Learnt>,
}

/// What the inspection learnt of one operation before the request was refused.
#[derive(Debug, Clone, Default)]
pub struct Learnt {
    /// The document's SHA-256, once it was resolved.
    pub hash: Option<persisted::DocumentHash>,
    /// Its measurements, once it was analysed and costed.
    pub report: Option<OperationReport>,
}

impl InspectError {
    /// Some operation was refused for naming what is not defined (counts toward `PROBE_LIMIT`).
    pub fn probes_schema(&self) -> bool {
        self.errors.iter().any(|e| e.reason.is_validation_failure())
    }
}

impl Inspector {
    pub fn new(settings: Settings, registry: Arc<Registry>, metrics: Arc<Metrics>) -> Inspector {
        Inspector {
            cache: AnalysisCache::new(settings.cache_bytes),
            settings,
            registry,
            metrics,
        }
    }

    /// Inspects every operation of a request (`batch`: a JSON array, whose errors carry their
    /// index); refuses the whole request when any operation breaks an enforced rule.
    pub fn inspect(
        &self,
        requests: &[GraphqlRequest],
        transport: Transport,
        batch: bool,
        caller: Caller<'_>,
    ) -> Result<Inspection, InspectError> {
        let mut inspection = Inspection::default();
        let mut errors = Vec::new();
        let mut hashes = Vec::with_capacity(requests.len());
        // The request position of each report in `inspection.operations`.
        let mut measured = Vec::with_capacity(requests.len());
        let mut batch_cost: u64 = 0;
        for (index, request) in requests.iter().enumerate() {
            let batch_index = batch.then_some(index);
            let mut hash = None;
            let inspected = self.inspect_one(request, transport, caller, !batch, &mut hash);
            hashes.push(hash);
            match inspected {
                Ok((report, verdict, meter)) => {
                    inspection.meter = meter;
                    batch_cost = batch_cost.saturating_add(report.cost);
                    // One error per operation: the first enforced rule it breaks.
                    if let Some(first) = verdict.enforced.first() {
                        errors.push(OperationError {
                            batch_index,
                            reason: Reason::Violation(*first),
                        });
                    }
                    let monitored = verdict.monitored.into_iter().map(|v| (index, v));
                    inspection.monitored.extend(monitored);
                    inspection.operations.push(report);
                    measured.push(index);
                }
                Err(reason) => errors.push(OperationError {
                    batch_index,
                    reason,
                }),
            }
        }
        if batch {
            let verdict = policy::judge_batch_cost(
                batch_cost,
                self.settings.profiles.standard(),
                &self.settings.modes,
            );
            errors.extend(verdict.enforced.into_iter().map(|v| OperationError {
                batch_index: None,
                reason: Reason::Violation(v),
            }));
            inspection
                .monitored
                .extend(verdict.monitored.into_iter().map(|v| (0, v)));
        }
        if errors.is_empty() {
            return Ok(inspection);
        }
        let mut learnt: Vec<Learnt> = hashes
            .into_iter()
            .map(|hash| Learnt { hash, report: None })
            .collect();
        for (index, report) in measured.into_iter().zip(inspection.operations) {
            if let Some(slot) = learnt.get_mut(index) {
                slot.report = Some(report);
            }
        }
        Err(InspectError { errors, learnt })
    }

    /// `measure`: also build the meter of the answer's actual cost. `hash` is set as soon as the
    /// document is known, so that a refusal after that point can be logged with it.
    fn inspect_one(
        &self,
        request: &GraphqlRequest,
        transport: Transport,
        caller: Caller<'_>,
        measure: bool,
        hash: &mut Option<persisted::DocumentHash>,
    ) -> Result<(OperationReport, policy::Verdict, Option<ActualCost>), Reason> {
        if request
            .operation_name
            .as_ref()
            .is_some_and(|name| name.len() > MAX_OPERATION_NAME_BYTES)
        {
            return Err(Reason::OperationNameTooLong);
        }
        let resolved = self.resolve(request, caller)?;
        *hash = Some(resolved.hash);
        let analysed;
        let document = match &resolved.reviewed {
            Some(reviewed) => &reviewed.document,
            None => {
                let text = resolved
                    .text_for_upstream
                    .as_deref()
                    .or(request.query.as_deref())
                    .unwrap_or_default();
                let lookup;
                (analysed, lookup) =
                    self.cache
                        .get_or_analyse(resolved.hash, text, &self.settings.analysis);
                count(&self.metrics.analysis_cache, lookup.as_str());
                analysed.as_ref().as_ref().map_err(|e| e.clone())?
            }
        };
        let operation = document.operation(request.operation_name.as_deref())?;
        let allowed_over_get = match transport {
            Transport::Get => operation.kind() == OperationKind::Query,
            Transport::GetEventStream => operation.kind() != OperationKind::Mutation,
            Transport::Post | Transport::WebSocket => true,
        };
        if !allowed_over_get {
            return Err(Reason::NotAllowedOverGet);
        }
        if let Some(refused) = operation
            .restricted()
            .iter()
            .find(|restriction| !caller.may(&restriction.requirement))
        {
            return Err(Reason::Forbidden {
                coordinate: refused.coordinate.clone(),
            });
        }
        let variables = request.variables.as_ref();
        let report = OperationReport {
            hash: resolved.hash,
            name: operation.name().map(|n| analysis::excerpt(n).to_owned()),
            manifest_name: resolved.reviewed.as_ref().and_then(|r| r.name.clone()),
            origin: resolved.origin,
            text_for_upstream: resolved.text_for_upstream,
            kind: operation.kind(),
            metrics: *operation.metrics(),
            tokens: document.tokens(),
            cost: operation.estimate(variables)?,
        };
        let limits = self
            .settings
            .profiles
            .select(report.origin == Origin::Manifest, caller.holds_client_key);
        let verdict = policy::judge(
            &policy::Measured {
                tokens: report.tokens,
                metrics: &report.metrics,
                cost: report.cost,
                variables: &analysis::measure_variables(variables),
            },
            limits,
            &self.settings.modes,
        );
        let meter = measure.then(|| ActualCost::new(operation, variables));
        Ok((report, verdict, meter))
    }

    /// Resolves the request's document, counting the persisted-query outcomes.
    fn resolve(
        &self,
        request: &GraphqlRequest,
        caller: Caller<'_>,
    ) -> Result<persisted::Resolved, Reason> {
        let claim = Claim {
            text: request.query.as_deref(),
            document_id: request.document_id.as_deref(),
            persisted_query: request.persisted_query(),
        };
        let manifest = self.registry.current();
        let resolved = self
            .settings
            .resolver
            .resolve(&claim, &manifest, caller.holds_client_key)
            .inspect_err(|error| {
                if matches!(error, ResolveError::NotFound | ResolveError::Required)
                    && request.names_an_id()
                {
                    self.count_persisted(PersistedLookup::Miss);
                }
            })?;
        if resolved.origin == Origin::Manifest {
            self.count_persisted(PersistedLookup::Hit);
        }
        if resolved.unlisted {
            self.count_persisted(PersistedLookup::UnknownInAudit);
            tracing::warn!(
                target: "graphql_firewall::persisted",
                hash = %hex::encode(resolved.hash),
                operation = request.operation_name.as_deref().map(analysis::excerpt),
                "document not in the manifest (audit mode: forwarded)"
            );
        }
        Ok(resolved)
    }

    fn count_persisted(&self, lookup: PersistedLookup) {
        count(&self.metrics.persisted, lookup.as_str());
    }

    /// This replica's APQ registrations, when `PERSISTED_QUERIES=apq` (shared through Redis by
    /// the edge with `STATE=redis`).
    pub fn apq_store(&self) -> Option<&persisted::ApqStore> {
        let resolver = &self.settings.resolver;
        (resolver.mode == persisted::Mode::Apq).then_some(&resolver.apq)
    }

    /// Current size of the analysis cache (entries, estimated bytes), for the gauges.
    pub fn cache_size(&self) -> (u64, u64) {
        self.cache.size()
    }
}

#[cfg(test)]
mod tests;
