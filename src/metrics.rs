//! Prometheus metrics: names, closed label sets, the registry and the text exposition served on
//! the admin listener (`GRAPHQL_FIREWALL_METRICS_LISTEN`), never on the traffic port.
//!
//! # Threats
//! A label taken from request data (an operation name, a hash, a client key) lets any client
//! create time series until the monitoring system falls over. Every label here comes from a closed
//! set (`RejectCode::as_str`, operation types, outcomes) — except the persisted operation name and
//! the tier, which only ever take names from the operator's own manifest and `TIERS`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `http` or `ws` (one operation of a WebSocket connection).
    pub transport: &'static str,
    /// `allowed`, `rejected` or `monitored`.
    pub verdict: &'static str,
    /// The rejection code, or `none`.
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `query`, `mutation`, `subscription`.
    pub operation_type: &'static str,
    /// `manifest`, `apq` or `no`.
    pub persisted: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    /// `jwt`, `api_key`, `gateway`, `anonymous`, or `none` when the request was refused.
    pub method: &'static str,
    /// `verified`, `anonymous`, or why a credential was refused (a closed set of reasons).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    /// A tier name from the operator's `TIERS` (bounded by it), or `none`.
    pub tier: String,
    /// `allowed`, `rejected` or `monitored`.
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ManifestOperationLabels {
    /// A name from the operator's manifest (bounded by its size).
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedisErrorLabels {
    /// `budget`, `probe`, `apq_lookup`, `apq_registration`, `settle`.
    pub operation: &'static str,
    /// `timeout`, `redis`, `reply`.
    pub error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedisFallbackLabels {
    pub operation: &'static str,
    /// `local` (this replica's state), `proceed` (admitted without it), `refuse` (503).
    pub fallback: &'static str,
}

/// Every metric of the firewall.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub operations: Family<OperationLabels, Counter>,
    pub request_duration: Histogram,
    pub upstream_duration: Histogram,
    pub overhead: Histogram,
    pub operation_cost: Histogram,
    /// The actual cost of answers (Apollo's response-shape rules).
    pub operation_cost_actual: Histogram,
    /// Answers that cost more than their estimate: the schema's annotations are wrong somewhere.
    pub cost_underestimated: Counter,
    /// Answers whose actual cost could not be measured: `malformed`, `too_deep`, `unmapped`.
    pub cost_unmeasured: Family<OutcomeLabels, Counter>,
    pub operation_depth: Histogram,
    /// `hit` (a manifest document), `miss` (an id nobody knows), `unknown_in_audit`.
    pub persisted: Family<OutcomeLabels, Counter>,
    pub persisted_operations: Family<ManifestOperationLabels, Counter>,
    /// `rate_limit`, `cost_budget`, `probe_cooldown`.
    pub rate_limited: Family<RuleLabels, Counter>,
    /// Requests by how the caller was identified.
    pub auth: Family<AuthLabels, Counter>,
    /// Requests of identified callers by tier.
    pub tier_requests: Family<TierLabels, Counter>,
    /// CORS preflights answered at the edge: `allowed`, `refused`.
    pub cors_preflights: Family<OutcomeLabels, Counter>,
    /// Rules broken in monitor mode.
    pub monitored: Family<RuleLabels, Counter>,
    /// `unavailable`, `timeout`.
    pub upstream_errors: Family<OutcomeLabels, Counter>,
    /// `hit`, `miss`.
    pub analysis_cache: Family<OutcomeLabels, Counter>,
    pub analysis_cache_entries: Gauge,
    pub analysis_cache_bytes: Gauge,
    /// `unchanged`, `rewritten`, `masked` (read whole), `streamed`, `passed`.
    pub responses: Family<OutcomeLabels, Counter>,
    /// Streamed answers when they end: `unchanged`, `rewritten`, `masked`, `passed`.
    pub responses_streamed: Family<OutcomeLabels, Counter>,
    /// Streamed answers cut off: `too_large`, `timeout`, `upstream`, `unreadable`.
    pub responses_aborted: Family<OutcomeLabels, Counter>,
    pub manifest_operations: Gauge,
    pub manifest_reload_timestamp: Gauge<f64, AtomicU64>,
    /// `success`, `failure`.
    pub manifest_reloads: Family<OutcomeLabels, Counter>,
    /// New connections closed at once: `max_connections`, `max_connections_per_ip`.
    pub connections_refused: Family<OutcomeLabels, Counter>,
    /// Connections closed because a head did not arrive in time or they sat idle.
    pub connections_timed_out: Counter,
    /// `STATE=redis`: every call's latency, failures, and what was done instead.
    pub redis_call_duration: Histogram,
    pub redis_errors: Family<RedisErrorLabels, Counter>,
    pub redis_fallbacks: Family<RedisFallbackLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let seconds = || Histogram::new(exponential_buckets(0.000_05, 2.0, 18));
        let mut metrics = Metrics {
            registry: Registry::with_prefix("graphql_firewall"),
            requests: Family::default(),
            operations: Family::default(),
            request_duration: seconds(),
            upstream_duration: seconds(),
            overhead: seconds(),
            operation_cost: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            operation_cost_actual: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            cost_underestimated: Counter::default(),
            cost_unmeasured: Family::default(),
            operation_depth: Histogram::new([
                1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0,
            ]),
            persisted: Family::default(),
            persisted_operations: Family::default(),
            rate_limited: Family::default(),
            auth: Family::default(),
            tier_requests: Family::default(),
            cors_preflights: Family::default(),
            monitored: Family::default(),
            upstream_errors: Family::default(),
            analysis_cache: Family::default(),
            analysis_cache_entries: Gauge::default(),
            analysis_cache_bytes: Gauge::default(),
            responses: Family::default(),
            responses_streamed: Family::default(),
            responses_aborted: Family::default(),
            manifest_operations: Gauge::default(),
            manifest_reload_timestamp: Gauge::default(),
            manifest_reloads: Family::default(),
            connections_refused: Family::default(),
            connections_timed_out: Counter::default(),
            redis_call_duration: Histogram::new(exponential_buckets(0.000_05, 2.0, 14)),
            redis_errors: Family::default(),
            redis_fallbacks: Family::default(),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "requests",
            "HTTP requests by verdict and rejection code",
            metrics.requests.clone(),
        );
        registry.register(
            "operations",
            "Forwarded operations by type and persistence",
            metrics.operations.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Total time per request",
            metrics.request_duration.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Upstream time per request",
            metrics.upstream_duration.clone(),
        );
        registry.register(
            "overhead_seconds",
            "Time the firewall added per forwarded request (total minus upstream)",
            metrics.overhead.clone(),
        );
        registry.register(
            "operation_cost",
            "Static cost per operation",
            metrics.operation_cost.clone(),
        );
        registry.register(
            "operation_cost_actual",
            "Actual cost per answer, measured on the response",
            metrics.operation_cost_actual.clone(),
        );
        registry.register(
            "cost_underestimated",
            "Answers whose actual cost exceeded their estimate",
            metrics.cost_underestimated.clone(),
        );
        registry.register(
            "cost_unmeasured",
            "Answers whose actual cost could not be measured",
            metrics.cost_unmeasured.clone(),
        );
        registry.register(
            "operation_depth",
            "Depth per operation",
            metrics.operation_depth.clone(),
        );
        registry.register(
            "persisted_queries",
            "Persisted-query lookups by outcome",
            metrics.persisted.clone(),
        );
        registry.register(
            "persisted_operation_requests",
            "Requests per manifest operation",
            metrics.persisted_operations.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a client budget",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "auth",
            "Requests by authentication method and outcome",
            metrics.auth.clone(),
        );
        registry.register(
            "tier_requests",
            "Requests by caller tier and verdict",
            metrics.tier_requests.clone(),
        );
        registry.register(
            "cors_preflights",
            "CORS preflights answered by the firewall, by outcome",
            metrics.cors_preflights.clone(),
        );
        registry.register(
            "monitored_violations",
            "Rules broken in monitor mode",
            metrics.monitored.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream failures by kind",
            metrics.upstream_errors.clone(),
        );
        registry.register(
            "analysis_cache",
            "Analysis cache lookups",
            metrics.analysis_cache.clone(),
        );
        registry.register(
            "analysis_cache_entries",
            "Documents in the analysis cache",
            metrics.analysis_cache_entries.clone(),
        );
        registry.register(
            "analysis_cache_weight_bytes",
            "Estimated memory of the analysis cache",
            metrics.analysis_cache_bytes.clone(),
        );
        registry.register(
            "responses",
            "Upstream responses by sanitising outcome",
            metrics.responses.clone(),
        );
        registry.register(
            "responses_streamed",
            "Streamed upstream answers by sanitising outcome, counted when they end",
            metrics.responses_streamed.clone(),
        );
        registry.register(
            "responses_aborted",
            "Streamed upstream answers cut off, by reason",
            metrics.responses_aborted.clone(),
        );
        registry.register(
            "manifest_operations",
            "Persisted documents in force",
            metrics.manifest_operations.clone(),
        );
        registry.register(
            "manifest_reload_timestamp_seconds",
            "Unix time of the last manifest load",
            metrics.manifest_reload_timestamp.clone(),
        );
        registry.register(
            "manifest_reloads",
            "Manifest loads by result",
            metrics.manifest_reloads.clone(),
        );
        registry.register(
            "connections_refused",
            "New connections closed at once by a connection cap",
            metrics.connections_refused.clone(),
        );
        registry.register(
            "connections_timed_out",
            "Connections closed for a late request head or idleness",
            metrics.connections_timed_out.clone(),
        );
        registry.register(
            "redis_call_duration_seconds",
            "Calls to the shared Redis (STATE=redis), successful or not",
            metrics.redis_call_duration.clone(),
        );
        registry.register(
            "redis_errors",
            "Redis calls that failed or timed out, by operation and error",
            metrics.redis_errors.clone(),
        );
        registry.register(
            "redis_fallbacks",
            "Requests handled under REDIS_FAILURE_MODE, by operation and fallback",
            metrics.redis_fallbacks.clone(),
        );
        metrics
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Records a manifest load.
    pub fn manifest_loaded(&self, operations: usize, success: bool) {
        let outcome = if success { "success" } else { "failure" };
        self.manifest_reloads
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        if success {
            self.manifest_operations.set(operations as i64);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.manifest_reload_timestamp.set(now);
        }
    }
}

/// Counts one `outcome` in a family labelled by outcome.
pub fn count(family: &Family<OutcomeLabels, Counter>, outcome: &'static str) {
    family.get_or_create(&OutcomeLabels { outcome }).inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_family_with_the_prefix() {
        let metrics = Metrics::new();
        metrics
            .requests
            .get_or_create(&RequestLabels {
                transport: "http",
                verdict: "rejected",
                code: "DEPTH_LIMIT_EXCEEDED",
            })
            .inc();
        let text = metrics.render();
        assert!(
            text.contains(r#"graphql_firewall_requests_total{transport="http",verdict="rejected",code="DEPTH_LIMIT_EXCEEDED"} 1"#),
            "{text}"
        );
        assert!(text.contains("graphql_firewall_overhead_seconds_bucket"));
        assert!(text.ends_with("# EOF\n"));
    }
}
