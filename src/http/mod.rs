//! The HTTP edge: the GraphQL endpoint's pipeline ([`handler`]) and the stages only HTTP has —
//! the guard at the door, the client's address, the body, GraphQL-over-HTTP decoding and
//! re-encoding, response hardening, the rendering of refusals and the audit record — plus the
//! health and metrics endpoints.
//!
//! The decision itself (persisted queries, analysis, limits) is [`crate::inspect`]'s and the
//! budgets are [`crate::admission`]'s: nothing here decides what an operation may do.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod apq_sharing;
pub mod audit;
pub mod body;
pub mod client_ip;
pub mod cors;
pub mod decode;
pub mod edge;
pub mod encode;
pub mod guard;
pub mod handler;
pub mod harden;
pub mod readiness;
pub mod reject;
pub mod request_id;
pub mod security_headers;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::admission::Budgets;
use crate::identity::Authenticator;
use crate::inspect::Inspector;
use crate::metrics::Metrics;
use crate::net::IpNetworks;
use crate::persisted::ClientKeys;
use crate::upstream::Upstream;
use reject::{RejectCode, Rejection, Render};

pub use handler::graphql;

/// Methods the GraphQL endpoint answers (OPTIONS is passed to the upstream for its CORS handling).
pub const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";

/// What the HTTP stages need to know, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub guard: guard::Guard,
    pub max_body_bytes: usize,
    pub max_batch: Option<usize>,
    /// Peers whose forwarding headers name the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: IpNetworks,
    /// A header naming the client (`CLIENT_KEY_HEADER`).
    pub client_key_header: Option<HeaderName>,
    /// Keys that let a caller past the allowlist and the introspection block.
    pub client_keys: Option<ClientKeys>,
    /// Keep persisted-query members for an APQ-aware upstream.
    pub pass_through: bool,
    /// `RateLimit-*` headers on forwarded responses too.
    pub rate_limit_headers: bool,
    pub ready_timeout: Duration,
    /// The whole request body must arrive within this.
    pub body_read_timeout: Duration,
    pub render: Render,
    pub harden: Arc<harden::Settings>,
    pub ws: ws::Settings,
    /// `LOG_SUBJECT`.
    pub log_subject: audit::SubjectLog,
}

/// Shared state of the request handlers.
#[derive(Debug)]
pub struct Firewall {
    pub settings: Settings,
    /// `AUTH`: who is calling.
    pub authenticator: Authenticator,
    pub budgets: Budgets,
    pub inspector: Inspector,
    pub upstream: Upstream,
    pub metrics: Arc<Metrics>,
    pub sampler: audit::Sampler,
    /// Operations open per client across its WebSocket connections.
    pub ws_operations: Arc<ws::caps::ClientOperations>,
    /// `/readyz`'s last probe.
    pub readiness: readiness::Readiness,
}

/// `GET /metrics` (admin listener): the Prometheus exposition.
pub async fn metrics(State(firewall): State<Arc<Firewall>>) -> Response {
    let (entries, bytes) = firewall.inspector.cache_size();
    firewall.metrics.analysis_cache_entries.set(entries as i64);
    firewall.metrics.analysis_cache_bytes.set(bytes as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        firewall.metrics.render(),
    )
        .into_response()
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Response {
    status(StatusCode::OK, "ok")
}

/// `GET /readyz`: the upstream (and Redis, with `STATE=redis`) answer; see [`readiness`].
pub async fn readyz(State(firewall): State<Arc<Firewall>>) -> Response {
    firewall.readiness.answer(&firewall).await
}

/// Any other path.
pub async fn not_found(headers: HeaderMap, State(firewall): State<Arc<Firewall>>) -> Response {
    Rejection::new(RejectCode::NotFound, "not found")
        .into_response(&firewall.settings.render, &headers)
}

/// A health answer: `{"status": …}` (not a GraphQL response, so plain JSON).
fn status(code: StatusCode, text: &'static str) -> Response {
    (code, axum::Json(json!({ "status": text }))).into_response()
}
