//! The HTTP face of the firewall: the GraphQL endpoint's pipeline (decode → guard → forward →
//! respond → record) and the health endpoints.
//!
//! Each stage is a small function called in pipeline order by [`graphql`]; a stage that refuses
//! returns a [`Rejection`], which becomes the response in exactly one place.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod audit;
pub mod body;
pub mod budget;
pub mod client;
pub mod cors;
pub mod csrf;
pub mod decode;
pub mod harden;
pub mod inspect;
pub mod reject;
pub mod request_id;
pub mod security_headers;
pub mod trusted;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::metrics::{Metrics, count};
use crate::upstream::{Outgoing, Upstream, UpstreamError};
use audit::Record;
use body::BodyError;
use decode::{DecodeError, GraphqlRequest};
use inspect::{Inspection, Inspector};
use reject::{RejectCode, RejectError, Rejection, Render};
use request_id::{Panicked, RequestId};

/// Methods the GraphQL endpoint answers (OPTIONS is passed to the upstream for its CORS handling).
const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";

/// What the HTTP stages need to know, from `Config`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_body_bytes: usize,
    pub max_batch: Option<usize>,
    pub csrf_required_headers: Option<Vec<String>>,
    pub ready_timeout: Duration,
    pub render: Render,
}

/// Shared state of the request handlers.
#[derive(Debug)]
pub struct Firewall {
    pub settings: Settings,
    pub budgets: budget::Budgets,
    pub inspector: Inspector,
    pub upstream: Upstream,
    pub harden: harden::Settings,
    pub trusted: Option<trusted::TrustedClients>,
    /// Keep persisted-query members for an APQ-aware upstream.
    pub pass_through: bool,
    pub metrics: Arc<Metrics>,
    pub sampler: audit::Sampler,
}

/// How the GraphQL request travelled: it decides which operation types are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Get,
    Post,
}

/// A decoded request, ready to be inspected and forwarded.
#[derive(Debug)]
struct Admitted {
    transport: Transport,
    operations: Vec<GraphqlRequest>,
    /// A JSON array (answered as an array, errors carry their index).
    batch: bool,
    /// The decoded JSON body as received (forwarded untouched; empty for GET).
    body: Bytes,
}

/// The GraphQL endpoint.
pub async fn graphql(State(firewall): State<Arc<Firewall>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // Set by `RequestIdLayer`; a router served without it still gets an id.
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId::decide(&parts.headers));
    let peer = peer_ip(&parts);
    let mut record = Record::default();
    let response = match firewall
        .handle(&parts, body, &request_id, peer, &mut record)
        .await
    {
        Ok(response) => response,
        Err(rejection) => {
            let response = rejection
                .clone()
                .into_response(&firewall.settings.render, &parts.headers);
            record.rejection = Some(rejection);
            response
        }
    };
    let outcome = audit::Outcome {
        request_id: request_id.as_str(),
        method: &parts.method,
        peer,
        status: response.status(),
        total: started.elapsed(),
        response_bytes: http_body::Body::size_hint(response.body()).exact(),
    };
    audit::record(&record, &outcome, &firewall.metrics, &firewall.sampler);
    response
}

impl Firewall {
    async fn handle(
        &self,
        parts: &Parts,
        body: Body,
        request_id: &RequestId,
        peer: IpAddr,
        record: &mut Record,
    ) -> Result<Response, Rejection> {
        let client = self.budgets.client(peer, &parts.headers);
        record.client = Some(client.clone());
        if parts.method == Method::OPTIONS {
            return self
                .forward(
                    parts,
                    Bytes::new(),
                    parts.uri.query(),
                    request_id,
                    &client,
                    record,
                )
                .await;
        }
        let quota = self.budgets.admit_request(&client)?;
        let admitted = self.decode(parts, body).await?;
        record.batch = admitted.operations.len();
        record.inspection = self
            .inspector
            .inspect(
                &admitted.operations,
                admitted.transport,
                admitted.batch,
                self.trusted
                    .as_ref()
                    .is_some_and(|t| t.is_trusted(&parts.headers)),
            )
            .inspect_err(|rejection| {
                if rejection
                    .errors
                    .iter()
                    .any(|e| e.code == RejectCode::GraphqlValidationFailed)
                {
                    self.budgets.record_probe(&client);
                }
            })?;
        let cost = record.inspection.total_cost();
        let cost_quota = self.budgets.admit_cost(&client, cost)?;
        let (body, query_string) = match self.rewrite(&admitted, &record.inspection) {
            None => (admitted.body, parts.uri.query().map(str::to_owned)),
            Some(requests) => match admitted.transport {
                Transport::Post => (
                    Bytes::from(decode::encode_body(&requests, admitted.batch)),
                    parts.uri.query().map(str::to_owned),
                ),
                Transport::Get => (
                    Bytes::new(),
                    requests.first().map(decode::encode_query_string),
                ),
            },
        };
        let mut response = self
            .forward(
                parts,
                body,
                query_string.as_deref(),
                request_id,
                &client,
                record,
            )
            .await?;
        // The request budget's quota is what clients pace themselves by; the cost budget's
        // headers would overwrite it, so they are sent only when no request rate is configured.
        response
            .headers_mut()
            .extend(self.budgets.headers(quota.or(cost_quota)));
        Ok(response)
    }

    /// The requests to forward when the client's can not go as they are: an operation sent as an
    /// id gets its text, and persisted-query members the upstream would not understand are
    /// removed. `None`: forward the client's bytes untouched.
    fn rewrite(&self, admitted: &Admitted, inspection: &Inspection) -> Option<Vec<GraphqlRequest>> {
        let resolved = inspection
            .operations
            .iter()
            .any(|op| op.resolved_text.is_some());
        let carries_ids = admitted
            .operations
            .iter()
            .any(|r| r.document_id.is_some() || r.persisted_query().is_some());
        if !resolved && (self.pass_through || !carries_ids) {
            return None;
        }
        let requests = admitted
            .operations
            .iter()
            .zip(&inspection.operations)
            .map(|(request, report)| {
                let mut request = request.clone();
                if let Some(text) = &report.resolved_text {
                    request.query = Some(text.to_string());
                }
                if !self.pass_through {
                    request.document_id = None;
                    if let Some(extensions) = &mut request.extensions {
                        extensions.remove("persistedQuery");
                    }
                }
                request
            })
            .collect();
        Some(requests)
    }

    /// Method, CSRF guard, content type, body and GraphQL-over-HTTP decoding.
    async fn decode(&self, parts: &Parts, body: Body) -> Result<Admitted, Rejection> {
        let transport = match parts.method {
            Method::GET => Transport::Get,
            Method::POST => Transport::Post,
            _ => {
                return Err(Rejection::method_not_allowed(
                    "only GET and POST are supported",
                    ALLOWED_METHODS,
                ));
            }
        };
        if let Some(required) = &self.settings.csrf_required_headers
            && !csrf::is_preflighted(&parts.headers, required)
        {
            return Err(Rejection::new(
                RejectCode::CsrfBlocked,
                format!(
                    "this request has a content type a browser may send cross-site; send Content-Type: application/json or one of these headers: {}",
                    required.join(", ")
                ),
            ));
        }
        match transport {
            Transport::Get => {
                let query = parts.uri.query().unwrap_or_default();
                if query.len() > self.settings.max_body_bytes {
                    return Err(too_large(self.settings.max_body_bytes));
                }
                let operation = decode::decode_query_string(query).map_err(invalid)?;
                Ok(Admitted {
                    transport,
                    operations: vec![operation],
                    batch: false,
                    body: Bytes::new(),
                })
            }
            Transport::Post => {
                check_post_content_type(&parts.headers)?;
                let bytes = body::read_limited(&parts.headers, body, self.settings.max_body_bytes)
                    .await
                    .map_err(|error| match error {
                        BodyError::TooLarge { limit } => too_large(limit),
                        BodyError::UnsupportedEncoding => Rejection::new(
                            RejectCode::UnsupportedMediaType,
                            "Content-Encoding must be gzip, br, deflate, zstd or identity",
                        ),
                        BodyError::Unreadable => {
                            Rejection::new(RejectCode::InvalidRequest, error.to_string())
                        }
                    })?;
                let (operations, batch) =
                    decode::decode_body(&bytes, self.settings.max_batch).map_err(invalid)?;
                Ok(Admitted {
                    transport,
                    operations,
                    batch,
                    body: bytes,
                })
            }
        }
    }

    async fn forward(
        &self,
        parts: &Parts,
        body: Bytes,
        query_string: Option<&str>,
        request_id: &RequestId,
        client: &budget::Client,
        record: &mut Record,
    ) -> Result<Response, Rejection> {
        let outgoing = Outgoing {
            method: parts.method.clone(),
            query_string,
            headers: &parts.headers,
            body,
            client_ip: client.ip,
            request_id: request_id.header(),
        };
        let answer = self.upstream.forward(outgoing).await.map_err(|error| {
            let (code, kind) = match error {
                UpstreamError::Unavailable => (RejectCode::UpstreamUnavailable, "unavailable"),
                UpstreamError::Timeout => (RejectCode::UpstreamTimeout, "timeout"),
            };
            count(&self.metrics.upstream_errors, kind);
            Rejection::new(code, error.to_string())
        })?;
        record.upstream = Some(answer.elapsed);
        record.upstream_status = Some(answer.status);
        let (mut headers, mut body) = (answer.headers, answer.body);
        record.hardened =
            Some(harden::harden(&self.harden, &mut headers, &mut body, request_id.as_str()).await);
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = answer.status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// POST bodies must be JSON; `text/plain` or no type is read as JSON only once the CSRF guard
/// has established the request was preflighted (non-browser clients such as curl send those).
fn check_post_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut params = content_type.split(';');
    let essence = params.next().unwrap_or_default().trim();
    let charset_ok = params.all(|param| {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        !name.trim().eq_ignore_ascii_case("charset")
            || value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    });
    let json_like = ["application/json", "text/plain", ""]
        .iter()
        .any(|accepted| essence.eq_ignore_ascii_case(accepted));
    if json_like && charset_ok {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectCode::UnsupportedMediaType,
            "POST requests must have Content-Type: application/json (UTF-8)",
        ))
    }
}

fn too_large(limit: usize) -> Rejection {
    Rejection::new(
        RejectCode::PayloadTooLarge,
        format!("the request exceeds {limit} bytes"),
    )
    .with_detail("limit", limit as u64)
}

fn invalid(error: DecodeError) -> Rejection {
    match error {
        DecodeError::BatchTooLarge { limit, actual } => Rejection {
            errors: vec![RejectError {
                code: RejectCode::BatchLimitExceeded,
                message: error.to_string(),
                details: vec![("limit", limit as u64), ("actual", actual as u64)],
                batch_index: None,
            }],
            headers: HeaderMap::new(),
        },
        _ => Rejection::new(RejectCode::InvalidRequest, error.to_string()),
    }
}

fn peer_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
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

/// The panic guard's answer: a GraphQL-shaped 500 that reveals nothing about the panic.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    let mut response = (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL_ERROR"}}]}"#,
    )
        .into_response();
    response.extensions_mut().insert(Panicked(message));
    response
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Response {
    json_status(StatusCode::OK, "ok")
}

/// `GET /readyz`: the upstream answers HTTP within the ready timeout.
pub async fn readyz(State(firewall): State<Arc<Firewall>>) -> Response {
    // Any HTTP answer, whatever its status, means the upstream is up.
    if firewall
        .upstream
        .probe(firewall.settings.ready_timeout)
        .await
        .is_some()
    {
        json_status(StatusCode::OK, "ready")
    } else {
        json_status(StatusCode::SERVICE_UNAVAILABLE, "upstream unreachable")
    }
}

/// Any other path.
pub async fn not_found(headers: HeaderMap, State(firewall): State<Arc<Firewall>>) -> Response {
    Rejection::new(RejectCode::NotFound, "not found")
        .into_response(&firewall.settings.render, &headers)
}

fn json_status(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"status\":\"{text}\"}}"),
    )
        .into_response()
}
