//! The record of each request: one structured audit event per operation (a batch gives one per
//! member), and the Prometheus counters and histograms, written once when the response is ready.
//!
//! Rejections are logged at `warn` and always; allowed operations at `info`, sampled by
//! `GRAPHQL_FIREWALL_LOG_SAMPLE` with a counter (not the client-chosen request id, which a client
//! could pick to stay out of the sample).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::admission::Client;
use crate::identity::{AuthMethod, Identity};
use crate::inspect::{Inspection, Learnt, OperationReport};
use crate::metrics::{
    ManifestOperationLabels, Metrics, OperationLabels, OutcomeLabels, RequestLabels, RuleLabels,
    TierLabels,
};
use crate::persisted::{DocumentHash, Origin};
use crate::policy::Violation;

use super::harden::Hardened;
use super::reject::{RejectCode, RejectError, Rejection};

/// What one request did, filled in by the pipeline stages.
#[derive(Debug, Default)]
pub struct Record {
    pub client: Option<Client>,
    pub batch: usize,
    pub rejection: Option<Rejection>,
    pub inspection: Inspection,
    /// Of a request the inspection refused: what it learnt of each operation (by position).
    pub learnt: Vec<Learnt>,
    /// Rules broken in monitor mode (limits and budgets), with their operation's batch position.
    pub monitored: Vec<(usize, Violation)>,
    pub upstream: Option<Duration>,
    pub upstream_status: Option<StatusCode>,
    pub hardened: Option<Hardened>,
    /// The answer's actual cost, when it is measured (see [`Measured`]).
    pub measured: Option<Arc<Measured>>,
}

/// An answer's actual cost, measured when its last byte has been read: before the audit event
/// for an answer read whole, after it for a streamed one (which then gets an event of its own).
#[derive(Debug, Default)]
pub struct Measured {
    pub actual: OnceLock<u64>,
    /// The request's audit event has been written.
    pub audited: AtomicBool,
}

/// How the client reached the firewall: the `transport` metric label and log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// An HTTP request (GET, POST, OPTIONS).
    Http,
    /// One operation of a GraphQL-over-WebSocket connection.
    WebSocket,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Http => "http",
            Channel::WebSocket => "ws",
        }
    }
}

/// The end-of-request facts that are not in the [`Record`].
#[derive(Debug)]
pub struct Outcome<'a> {
    pub channel: Channel,
    pub request_id: &'a str,
    pub method: &'a Method,
    pub peer: IpAddr,
    pub status: StatusCode,
    pub total: Duration,
    pub response_bytes: Option<u64>,
    /// `LOG_SUBJECT`: how the caller's subject is written.
    pub subjects: SubjectLog,
}

/// Samples allowed events: `rate` in [0, 1].
#[derive(Debug)]
pub struct Sampler {
    rate: f64,
    seen: AtomicU64,
}

impl Sampler {
    pub fn new(rate: f64) -> Sampler {
        Sampler {
            rate: rate.clamp(0.0, 1.0),
            seen: AtomicU64::new(0),
        }
    }

    /// True for `rate` of the calls, evenly spread (1 in 10 for 0.1).
    fn sample(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        (n * self.rate).floor() != ((n + 1.0) * self.rate).floor()
    }
}

/// `LOG_SUBJECT`: how a verified caller's subject appears in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectLog {
    /// `sha256:` and 12 hex digits of its SHA-256: events of one caller can be joined, and a
    /// leaked log does not name people (subjects are often e-mail addresses).
    Hash,
    /// As verified.
    Clear,
}

impl SubjectLog {
    /// The subject as logged. A gateway's key is always hashed: the header a gateway sets may be
    /// the caller's API key itself, a secret that must never reach a log.
    fn render(self, identity: &Identity) -> Option<String> {
        let subject = identity.subject.as_ref()?.as_str();
        let clear = self == SubjectLog::Clear && identity.method != AuthMethod::Gateway;
        Some(if clear {
            subject.to_owned()
        } else {
            Self::hash(subject)
        })
    }

    fn hash(subject: &str) -> String {
        let digest: [u8; 32] = Sha256::digest(subject.as_bytes()).into();
        let [a, b, c, d, e, f, ..] = digest;
        format!("sha256:{}", hex::encode([a, b, c, d, e, f]))
    }
}

/// Writes the audit events and the metrics of one request.
pub fn record(record: &Record, outcome: &Outcome<'_>, metrics: &Metrics, sampler: &Sampler) {
    write(record, outcome, metrics, sampler);
    if let Some(measured) = &record.measured {
        measured.audited.store(true, Ordering::Release);
    }
}

/// The actual cost of a streamed answer, measured after its audit event was written: an event
/// of its own, with the request id to join them.
pub fn record_late_actual_cost(request_id: &str, estimate: u64, actual: u64) {
    tracing::info!(
        target: "graphql_firewall::audit",
        request_id,
        cost = estimate,
        cost_actual = actual,
        "answer measured"
    );
}

fn write(record: &Record, outcome: &Outcome<'_>, metrics: &Metrics, sampler: &Sampler) {
    let monitored = !record.monitored.is_empty();
    let verdict = match (&record.rejection, monitored) {
        (Some(_), _) => "rejected",
        (None, true) => "monitored",
        (None, false) => "allowed",
    };
    let code = record.rejection.as_ref().map(Rejection::code);
    record_metrics(record, outcome, metrics, verdict, code);
    for (index, violation) in &record.monitored {
        log_monitored(outcome.request_id, *index, violation);
    }
    match &record.rejection {
        Some(rejection) => {
            for error in &rejection.errors {
                // A batch-wide error (the batch's cost) belongs to no one member.
                let index = match (error.batch_index, record.batch > 1) {
                    (Some(index), _) => Some(index),
                    (None, false) => Some(0),
                    (None, true) => None,
                };
                let (report, hash) = index.map_or((None, None), |i| learnt(record, i));
                log_operation(
                    record,
                    outcome,
                    report,
                    hash,
                    error.batch_index,
                    verdict,
                    Some(error),
                );
            }
        }
        // The event's fields cost allocations: build them only when the event will be written.
        None if tracing::enabled!(target: "graphql_firewall::audit", tracing::Level::INFO)
            && sampler.sample() =>
        {
            for (index, report) in record.inspection.operations.iter().enumerate() {
                let hash = Some(report.hash);
                log_operation(
                    record,
                    outcome,
                    Some(report),
                    hash,
                    Some(index),
                    verdict,
                    None,
                );
            }
            if record.inspection.operations.is_empty() {
                log_operation(record, outcome, None, None, None, verdict, None);
            }
        }
        None => {}
    }
}

/// What is known of the operation at `index` of a refused request: from the inspection's refusal,
/// or, when a later stage refused (a cost budget, the upstream), from the inspection itself.
fn learnt(record: &Record, index: usize) -> (Option<&OperationReport>, Option<DocumentHash>) {
    match record.learnt.get(index) {
        Some(learnt) => (learnt.report.as_ref(), learnt.hash),
        None => match record.inspection.operations.get(index) {
            Some(report) => (Some(report), Some(report.hash)),
            None => (None, None),
        },
    }
}

fn record_metrics(
    record: &Record,
    outcome: &Outcome<'_>,
    metrics: &Metrics,
    verdict: &'static str,
    code: Option<RejectCode>,
) {
    metrics
        .requests
        .get_or_create(&RequestLabels {
            transport: outcome.channel.as_str(),
            verdict,
            code: code.map_or("none", RejectCode::as_str),
        })
        .inc();
    if let Some(tier) = record
        .client
        .as_ref()
        .and_then(|c| c.identity.tier.as_ref())
    {
        metrics
            .tier_requests
            .get_or_create(&TierLabels {
                tier: tier.as_str().to_owned(),
                verdict,
            })
            .inc();
    }
    let total = outcome.total.as_secs_f64();
    metrics.request_duration.observe(total);
    if let Some(upstream) = record.upstream {
        metrics.upstream_duration.observe(upstream.as_secs_f64());
        metrics
            .overhead
            .observe((total - upstream.as_secs_f64()).max(0.0));
    }
    if let Some(hardened) = record.hardened {
        metrics
            .responses
            .get_or_create(&OutcomeLabels {
                outcome: hardened.as_str(),
            })
            .inc();
    }
    for violation in record.monitored.iter().map(|(_, v)| v) {
        metrics
            .monitored
            .get_or_create(&RuleLabels {
                rule: violation.rule.as_str(),
            })
            .inc();
    }
    if record.rejection.is_some() {
        return;
    }
    for report in &record.inspection.operations {
        metrics
            .operations
            .get_or_create(&OperationLabels {
                operation_type: report.kind.as_str(),
                persisted: report.origin.as_str(),
            })
            .inc();
        metrics.operation_cost.observe(report.cost as f64);
        metrics
            .operation_depth
            .observe(f64::from(report.metrics.depth));
        if let (Origin::Manifest, Some(name)) = (report.origin, &report.manifest_name) {
            metrics
                .persisted_operations
                .get_or_create(&ManifestOperationLabels {
                    operation: name.clone(),
                })
                .inc();
        }
    }
}

/// One operation's event: `report` holds its measurements when it got that far, `hash` its
/// document once resolved, `refusal` the error it was refused with (its limit and actual value).
fn log_operation(
    record: &Record,
    outcome: &Outcome<'_>,
    report: Option<&OperationReport>,
    hash: Option<DocumentHash>,
    batch_index: Option<usize>,
    verdict: &'static str,
    refusal: Option<&RejectError>,
) {
    // The schema coordinate an access rule refused.
    let forbidden = refusal.and_then(|error| error.audit_only.as_deref());
    let request_id = outcome.request_id;
    let transport = outcome.channel.as_str();
    let client_key = record.client.as_ref().map(|c| c.key.short_hex());
    let identity = record.client.as_ref().map(|c| &c.identity);
    let auth_method = identity.map(|i| i.method.as_str());
    let subject = identity.and_then(|i| outcome.subjects.render(i));
    let tier = identity.and_then(|i| i.tier.as_ref()).map(|t| t.as_str());
    let client_ip = record.client.as_ref().map_or(outcome.peer, |c| c.ip);
    let operation_type = report.map(|r| r.kind.as_str());
    let operation_name = report.and_then(|r| r.name.as_deref());
    let hash = hash.map(hex::encode);
    let persisted = report.map(|r| r.origin.as_str());
    let metrics = report.map(|r| r.metrics);
    let depth = metrics.map(|m| m.depth);
    let aliases = metrics.map(|m| m.aliases);
    let root_fields = metrics.map(|m| m.root_fields);
    let directives = metrics.map(|m| m.directives);
    let fields = metrics.map(|m| m.fields);
    let tokens = report.map(|r| r.tokens);
    let cost = report.map(|r| r.cost);
    let cost_actual = record
        .measured
        .as_ref()
        .and_then(|measured| measured.actual.get().copied());
    let code = refusal.map(|error| error.code.as_str());
    let detail = |name: &str| {
        refusal.and_then(|error| {
            error
                .details
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
        })
    };
    let (limit, actual) = (detail("limit"), detail("actual"));
    let upstream_status = record.upstream_status.map(|s| s.as_u16());
    let upstream_ms = record.upstream.map(|d| d.as_secs_f64() * 1000.0);
    let total_ms = outcome.total.as_secs_f64() * 1000.0;
    let hardened = record.hardened.map(Hardened::as_str);
    macro_rules! event {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                target: "graphql_firewall::audit",
                request_id, transport, client_key, client_ip = %client_ip, peer = %outcome.peer,
                auth_method, subject, tier,
                method = %outcome.method, batch = record.batch, batch_index,
                operation_type, operation_name, hash, persisted,
                depth, aliases, root_fields, directives, fields, tokens, cost, cost_actual,
                verdict, code, limit, actual, forbidden, status = outcome.status.as_u16(), upstream_status,
                upstream_ms, total_ms, response_bytes = outcome.response_bytes, hardened,
                $message
            )
        };
    }
    if code.is_some() {
        event!(warn, "operation rejected");
    } else {
        event!(info, "operation forwarded");
    }
}

fn log_monitored(request_id: &str, index: usize, violation: &Violation) {
    tracing::warn!(
        target: "graphql_firewall::policy",
        request_id,
        batch_index = index,
        rule = violation.rule.as_str(),
        code = RejectCode::from(violation.rule).as_str(),
        limit = violation.limit,
        actual = violation.actual,
        "rule broken in monitor mode: forwarded"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_hashed_unless_clear_and_a_gateways_key_always_is() {
        use crate::identity::{Scopes, Subject};
        let named = |method| {
            Identity::verified(
                method,
                Subject::new("billing@example.com"),
                None,
                Scopes::default(),
            )
        };
        let hashed = SubjectLog::Hash.render(&named(AuthMethod::Jwt)).unwrap();
        assert!(
            hashed.starts_with("sha256:") && hashed.len() == 19,
            "{hashed}"
        );
        assert_eq!(
            SubjectLog::Clear
                .render(&named(AuthMethod::ApiKey))
                .as_deref(),
            Some("billing@example.com")
        );
        assert_eq!(
            SubjectLog::Clear.render(&named(AuthMethod::Gateway)),
            Some(hashed),
            "a gateway's key may be a secret"
        );
        assert_eq!(SubjectLog::Clear.render(&Identity::anonymous()), None);
    }

    #[test]
    fn the_sampler_keeps_the_configured_share() {
        for (rate, expected) in [(1.0, 1000), (0.1, 100), (0.0, 0), (0.25, 250)] {
            let sampler = Sampler::new(rate);
            let kept = (0..1000).filter(|_| sampler.sample()).count();
            assert_eq!(kept, expected, "rate {rate}");
        }
    }
}
