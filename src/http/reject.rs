//! The firewall's own refusals: every failure of every stage becomes a GraphQL-shaped body with a
//! stable `extensions.code` and the right HTTP status, here and nowhere else. Each stage returns its
//! own error type; `From` turns it into a [`Rejection`], so a handler's `?` is the only conversion.
//!
//! # Threats
//! An error path that echoes client input is a reflection channel, and one that returns plain text
//! or a 500 breaks clients and monitoring. Messages are fixed strings plus numbers; a piece of
//! client input, where useful, is cut to 64 bytes and JSON-escaped by serde. A rejection never
//! names a schema field: a prober learns one bit per request, not the name it guessed.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::body::BodyError;
use super::decode::DecodeError;
use super::guard::GuardError;
use super::harden::HardenError;
use super::ws::caps::ClientCapExceeded;
use super::ws::protocol::Refusal as SessionRefusal;
use super::ws::relay::UpgradeError;
use crate::admission::Refusal;
use crate::analysis::{AnalysisError, CostError};
use crate::identity::AuthError;
use crate::inspect::{InspectError, Reason};
use crate::persisted::ResolveError;
use crate::policy::Violation;
use crate::ratelimit::Quota;
use crate::rules::Rule;
use crate::upstream::UpstreamError;

/// The table of rejection codes (README's "Error codes"), as code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    CsrfBlocked,
    MethodNotAllowed,
    NotFound,
    BatchLimitExceeded,
    GraphqlParseFailed,
    GraphqlValidationFailed,
    OperationNotFound,
    TokenLimitExceeded,
    DepthLimitExceeded,
    AliasLimitExceeded,
    RootFieldLimitExceeded,
    DirectiveLimitExceeded,
    FieldLimitExceeded,
    CostLimitExceeded,
    ListDepthLimitExceeded,
    VariablesLimitExceeded,
    VariablesInvalid,
    CostInvalidSlicing,
    FragmentCycle,
    IntrospectionDisabled,
    RateLimited,
    Unauthenticated,
    Forbidden,
    ForbiddenField,
    PersistedQueryNotFound,
    PersistedQueryHashMismatch,
    PersistedQueryRequired,
    UpstreamUnavailable,
    UpstreamTimeout,
    ResponseTooLarge,
    Overloaded,
    StateUnavailable,
    RequestTimeout,
    SubscriptionLimitExceeded,
    InternalError,
}

impl From<Rule> for RejectCode {
    fn from(rule: Rule) -> RejectCode {
        match rule {
            Rule::Tokens => RejectCode::TokenLimitExceeded,
            Rule::Depth => RejectCode::DepthLimitExceeded,
            Rule::Aliases => RejectCode::AliasLimitExceeded,
            Rule::RootFields => RejectCode::RootFieldLimitExceeded,
            Rule::Directives => RejectCode::DirectiveLimitExceeded,
            Rule::Fields => RejectCode::FieldLimitExceeded,
            Rule::Cost | Rule::BatchCost => RejectCode::CostLimitExceeded,
            Rule::ListDepth => RejectCode::ListDepthLimitExceeded,
            Rule::Introspection => RejectCode::IntrospectionDisabled,
            Rule::Schema => RejectCode::GraphqlValidationFailed,
            Rule::Variables => RejectCode::VariablesLimitExceeded,
            Rule::RateLimit | Rule::CostBudget => RejectCode::RateLimited,
        }
    }
}

impl RejectCode {
    /// The stable `extensions.code`, also used as a metric and log label.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::InvalidRequest => "INVALID_REQUEST",
            RejectCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            RejectCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            RejectCode::CsrfBlocked => "CSRF_BLOCKED",
            RejectCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            RejectCode::NotFound => "NOT_FOUND",
            RejectCode::BatchLimitExceeded => "BATCH_LIMIT_EXCEEDED",
            RejectCode::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            RejectCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            RejectCode::OperationNotFound => "OPERATION_NOT_FOUND",
            RejectCode::TokenLimitExceeded => "TOKEN_LIMIT_EXCEEDED",
            RejectCode::DepthLimitExceeded => "DEPTH_LIMIT_EXCEEDED",
            RejectCode::AliasLimitExceeded => "ALIAS_LIMIT_EXCEEDED",
            RejectCode::RootFieldLimitExceeded => "ROOT_FIELD_LIMIT_EXCEEDED",
            RejectCode::DirectiveLimitExceeded => "DIRECTIVE_LIMIT_EXCEEDED",
            RejectCode::FieldLimitExceeded => "FIELD_LIMIT_EXCEEDED",
            RejectCode::CostLimitExceeded => "COST_LIMIT_EXCEEDED",
            RejectCode::ListDepthLimitExceeded => "LIST_DEPTH_LIMIT_EXCEEDED",
            RejectCode::VariablesInvalid => "VARIABLES_INVALID",
            RejectCode::CostInvalidSlicing => "COST_INVALID_SLICING",
            RejectCode::VariablesLimitExceeded => "VARIABLES_LIMIT_EXCEEDED",
            RejectCode::FragmentCycle => "FRAGMENT_CYCLE",
            RejectCode::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            RejectCode::RateLimited => "RATE_LIMITED",
            RejectCode::Unauthenticated => "UNAUTHENTICATED",
            RejectCode::Forbidden => "FORBIDDEN",
            RejectCode::ForbiddenField => "FORBIDDEN_FIELD",
            RejectCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            RejectCode::PersistedQueryHashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            RejectCode::PersistedQueryRequired => "PERSISTED_QUERY_REQUIRED",
            RejectCode::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            RejectCode::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            RejectCode::ResponseTooLarge => "RESPONSE_TOO_LARGE",
            RejectCode::Overloaded => "OVERLOADED",
            RejectCode::StateUnavailable => "STATE_UNAVAILABLE",
            RejectCode::RequestTimeout => "REQUEST_TIMEOUT",
            RejectCode::SubscriptionLimitExceeded => "SUBSCRIPTION_LIMIT_EXCEEDED",
            RejectCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// How the status of this code is chosen.
    fn status_rule(self) -> StatusRule {
        let fixed = StatusRule::Fixed;
        match self {
            RejectCode::InvalidRequest | RejectCode::CsrfBlocked => fixed(StatusCode::BAD_REQUEST),
            RejectCode::GraphqlParseFailed => StatusRule::Parse,
            RejectCode::IntrospectionDisabled => fixed(StatusCode::FORBIDDEN),
            RejectCode::RateLimited | RejectCode::SubscriptionLimitExceeded => {
                fixed(StatusCode::TOO_MANY_REQUESTS)
            }
            RejectCode::Unauthenticated => fixed(StatusCode::UNAUTHORIZED),
            RejectCode::Forbidden | RejectCode::ForbiddenField => fixed(StatusCode::FORBIDDEN),
            // APQ clients look for this error in a 200 response and resend with the text.
            RejectCode::PersistedQueryNotFound => fixed(StatusCode::OK),
            RejectCode::PersistedQueryHashMismatch => fixed(StatusCode::BAD_REQUEST),
            RejectCode::PersistedQueryRequired => fixed(StatusCode::FORBIDDEN),
            RejectCode::PayloadTooLarge => fixed(StatusCode::PAYLOAD_TOO_LARGE),
            RejectCode::UnsupportedMediaType => fixed(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            RejectCode::MethodNotAllowed => fixed(StatusCode::METHOD_NOT_ALLOWED),
            RejectCode::NotFound => fixed(StatusCode::NOT_FOUND),
            RejectCode::BatchLimitExceeded
            | RejectCode::GraphqlValidationFailed
            | RejectCode::OperationNotFound
            | RejectCode::TokenLimitExceeded
            | RejectCode::DepthLimitExceeded
            | RejectCode::AliasLimitExceeded
            | RejectCode::RootFieldLimitExceeded
            | RejectCode::DirectiveLimitExceeded
            | RejectCode::FieldLimitExceeded
            | RejectCode::CostLimitExceeded
            | RejectCode::ListDepthLimitExceeded
            | RejectCode::VariablesLimitExceeded
            | RejectCode::VariablesInvalid
            | RejectCode::CostInvalidSlicing
            | RejectCode::FragmentCycle => StatusRule::Rule,
            RejectCode::UpstreamUnavailable => fixed(StatusCode::BAD_GATEWAY),
            RejectCode::UpstreamTimeout => fixed(StatusCode::GATEWAY_TIMEOUT),
            RejectCode::ResponseTooLarge => fixed(StatusCode::BAD_GATEWAY),
            RejectCode::Overloaded | RejectCode::StateUnavailable => {
                fixed(StatusCode::SERVICE_UNAVAILABLE)
            }
            RejectCode::RequestTimeout => fixed(StatusCode::REQUEST_TIMEOUT),
            RejectCode::InternalError => fixed(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

/// How a code's HTTP status is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusRule {
    Fixed(StatusCode),
    /// A rule rejection (limits, validation): `REJECT_STATUS`.
    Rule,
    /// A document that does not parse: 400, or 200 when `REJECT_STATUS=auto` answers a legacy
    /// `application/json` client.
    Parse,
}

/// One GraphQL error of a rejection.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectError {
    pub code: RejectCode,
    pub message: String,
    /// `limit` / `actual` and similar numbers, shown unless the operator hides them.
    pub details: Vec<(&'static str, u64)>,
    /// Position in a batch, when the error belongs to one member.
    pub batch_index: Option<usize>,
    /// What the audit log may say and the client may not (the schema coordinate an access rule
    /// refused: telling it would map the schema's protected parts for a prober).
    pub audit_only: Option<Box<str>>,
}

impl RejectError {
    fn new(code: RejectCode, message: impl Into<String>) -> RejectError {
        RejectError {
            code,
            message: message.into(),
            details: Vec::new(),
            batch_index: None,
            audit_only: None,
        }
    }
}

/// A refusal: one or more errors (one per offending batch member), the status of the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub errors: Vec<RejectError>,
    /// Headers the refusal needs (`Allow` on a 405, `Retry-After` on a 429).
    pub headers: HeaderMap,
}

impl Rejection {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Rejection {
        Rejection {
            errors: vec![RejectError::new(code, message)],
            headers: HeaderMap::new(),
        }
    }

    /// A 405 with the `Allow` header RFC 9110 requires.
    fn method_not_allowed(message: impl Into<String>, allow: &'static str) -> Rejection {
        let mut rejection = Rejection::new(RejectCode::MethodNotAllowed, message);
        rejection
            .headers
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        rejection
    }

    fn with_detail(mut self, name: &'static str, value: u64) -> Rejection {
        if let Some(first) = self.errors.first_mut() {
            first.details.push((name, value));
        }
        self
    }

    /// The code that decides the status and labels the log line.
    pub fn code(&self) -> RejectCode {
        self.errors
            .first()
            .map_or(RejectCode::InvalidRequest, |e| e.code)
    }

    /// The HTTP status of this refusal for a client that accepts (`graphql_response`) or not
    /// `application/graphql-response+json`.
    pub fn status(&self, render: &Render, graphql_response: bool) -> StatusCode {
        // GraphQL-over-HTTP: a request error is 4xx in the new media type, and 200 with `errors`
        // for a client that reads only `application/json` (what servers did before the spec).
        let legacy_ok = render.rule_status == RuleStatus::ByAccept && !graphql_response;
        match (self.code().status_rule(), render.rule_status) {
            (StatusRule::Fixed(status), _) => status,
            (StatusRule::Rule | StatusRule::Parse, _) if legacy_ok => StatusCode::OK,
            (StatusRule::Rule, RuleStatus::Fixed(status)) => status,
            (StatusRule::Rule | StatusRule::Parse, _) => StatusCode::BAD_REQUEST,
        }
    }

    /// The GraphQL errors, as the JSON array of a response's `errors` (a WebSocket `error`
    /// message carries the same array).
    pub fn errors_json(&self, render: &Render) -> Value {
        let errors = self
            .errors
            .iter()
            .map(|error| {
                let mut extensions = Map::new();
                extensions.insert("code".into(), error.code.as_str().into());
                if render.expose_limits {
                    for (name, value) in &error.details {
                        extensions.insert((*name).into(), (*value).into());
                    }
                }
                if let Some(index) = error.batch_index {
                    extensions.insert("batchIndex".into(), index.into());
                }
                json!({ "message": error.message, "extensions": extensions })
            })
            .collect();
        Value::Array(errors)
    }

    /// Builds the response for a client whose request carried `request_headers` (`Accept`).
    pub fn into_response(self, render: &Render, request_headers: &HeaderMap) -> Response {
        let graphql_response = accepts_graphql_response(request_headers);
        let status = self.status(render, graphql_response);
        let body = json!({ "errors": self.errors_json(render) }).to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            if graphql_response {
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
            } else {
                HeaderValue::from_static("application/json")
            },
        );
        headers.extend(self.headers);
        response
    }
}

/// What the operator decided about rendering rejections.
#[derive(Debug, Clone, Copy)]
pub struct Render {
    /// Status of request errors (`REJECT_STATUS`).
    pub rule_status: RuleStatus,
    /// Show `limit` / `actual` (`EXPOSE_LIMITS`).
    pub expose_limits: bool,
}

/// `REJECT_STATUS`: the status of request errors (parse, validation, limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleStatus {
    /// `400` or `422`, whatever the client accepts (a parse failure is always 400).
    Fixed(StatusCode),
    /// `auto`: 400 for a client that accepts `application/graphql-response+json`, 200 (with the
    /// errors) for one that accepts only `application/json`.
    ByAccept,
}

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// The client accepts `application/graphql-response+json`; otherwise it is a legacy client,
/// answered in `application/json`.
fn accepts_graphql_response(request_headers: &HeaderMap) -> bool {
    super::guard::accepts(request_headers, GRAPHQL_RESPONSE_JSON)
}

/// The answer to a request whose handler panicked: a GraphQL-shaped 500 that reveals nothing
/// about the panic but the request id to quote.
pub fn internal_error(request_id: &str, accept: Option<&HeaderValue>) -> Response {
    let render = Render {
        rule_status: RuleStatus::Fixed(StatusCode::BAD_REQUEST),
        expose_limits: false,
    };
    let mut headers = HeaderMap::new();
    if let Some(accept) = accept {
        headers.insert(header::ACCEPT, accept.clone());
    }
    let mut response = Rejection::new(
        RejectCode::InternalError,
        format!("internal error (request id: {request_id})"),
    )
    .into_response(&render, &headers);
    // Built outside the edge layer (the panic guard wraps it): the fixed security headers here.
    super::security_headers::SecurityHeaders::default().apply(
        response.headers_mut(),
        super::security_headers::Answer::Firewall,
    );
    response
}

/// IETF draft `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` (seconds, rounded up).
pub fn quota_headers(quota: &Quota) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("ratelimit-limit", HeaderValue::from(quota.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(quota.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(seconds(quota.reset)));
    headers
}

/// Whole seconds, rounded up, at least 1 (a `Retry-After: 0` invites an immediate retry).
fn seconds(duration: std::time::Duration) -> u64 {
    (duration.as_secs() + u64::from(duration.subsec_nanos() > 0)).max(1)
}

// === From each stage's error ===

impl From<GuardError> for Rejection {
    fn from(error: GuardError) -> Rejection {
        match error {
            GuardError::Method => {
                Rejection::method_not_allowed(error.to_string(), super::ALLOWED_METHODS)
            }
            GuardError::Csrf { .. } => Rejection::new(RejectCode::CsrfBlocked, error.to_string()),
            GuardError::ContentType => {
                Rejection::new(RejectCode::UnsupportedMediaType, error.to_string())
            }
        }
    }
}

/// 401 with the RFC 6750 challenge; the message says what is needed, never why a credential
/// failed (that is logged).
impl From<AuthError> for Rejection {
    fn from(error: AuthError) -> Rejection {
        let mut rejection = Rejection::new(RejectCode::Unauthenticated, error.client_message());
        rejection
            .headers
            .insert(header::WWW_AUTHENTICATE, error.www_authenticate());
        rejection
    }
}

impl From<BodyError> for Rejection {
    fn from(error: BodyError) -> Rejection {
        match error {
            BodyError::TooLarge { limit } => too_large(limit),
            BodyError::UnsupportedEncoding => Rejection::new(
                RejectCode::UnsupportedMediaType,
                "Content-Encoding must be gzip, br, deflate, zstd or identity",
            ),
            BodyError::Unreadable => Rejection::new(RejectCode::InvalidRequest, error.to_string()),
            BodyError::Timeout => Rejection::new(RejectCode::RequestTimeout, error.to_string()),
        }
    }
}

fn too_large(limit: usize) -> Rejection {
    Rejection::new(
        RejectCode::PayloadTooLarge,
        format!("the request exceeds {limit} bytes"),
    )
    .with_detail("limit", limit as u64)
}

impl From<DecodeError> for Rejection {
    fn from(error: DecodeError) -> Rejection {
        match error {
            DecodeError::BatchTooLarge { limit, actual } => {
                Rejection::new(RejectCode::BatchLimitExceeded, error.to_string())
                    .with_detail("limit", limit as u64)
                    .with_detail("actual", actual as u64)
            }
            DecodeError::QueryStringTooLarge { limit } => too_large(limit),
            _ => Rejection::new(RejectCode::InvalidRequest, error.to_string()),
        }
    }
}

impl From<InspectError> for Rejection {
    fn from(error: InspectError) -> Rejection {
        let mut headers = HeaderMap::new();
        let errors = error
            .errors
            .into_iter()
            .map(|refused| {
                if refused.reason == Reason::NotAllowedOverGet {
                    headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
                }
                RejectError {
                    batch_index: refused.batch_index,
                    ..operation_error(&refused.reason)
                }
            })
            .collect();
        Rejection { errors, headers }
    }
}

fn operation_error(reason: &Reason) -> RejectError {
    let message = reason.to_string();
    match reason {
        Reason::OperationNameTooLong => RejectError::new(RejectCode::InvalidRequest, message),
        Reason::NotAllowedOverGet => RejectError::new(RejectCode::MethodNotAllowed, message),
        Reason::Resolve(error) => RejectError::new(
            match error {
                ResolveError::MalformedExtension => RejectCode::InvalidRequest,
                ResolveError::HashMismatch => RejectCode::PersistedQueryHashMismatch,
                ResolveError::NotFound => RejectCode::PersistedQueryNotFound,
                ResolveError::Required => RejectCode::PersistedQueryRequired,
            },
            message,
        ),
        Reason::Analysis(error) => analysis_error(error, reason.is_validation_failure()),
        Reason::Cost(error) => cost_error(error),
        Reason::Violation(violation) => violation_error(violation),
        Reason::Forbidden { coordinate } => RejectError {
            audit_only: Some(coordinate.clone()),
            ..RejectError::new(RejectCode::ForbiddenField, message)
        },
    }
}

fn violation_error(violation: &Violation) -> RejectError {
    let code = RejectCode::from(violation.rule);
    let (message, details) = match violation.rule {
        Rule::Introspection => ("introspection is disabled".to_owned(), Vec::new()),
        // One generic answer whatever the unknown names were: a schema prober learns one bit.
        Rule::Schema => (
            "the operation is not valid for this API".to_owned(),
            Vec::new(),
        ),
        rule => (
            format!(
                "the operation exceeds the {} limit",
                rule.as_str().replace('_', " ")
            ),
            vec![("limit", violation.limit), ("actual", violation.actual)],
        ),
    };
    RejectError {
        details,
        ..RejectError::new(code, message)
    }
}

/// A variable that sizes the operation and does not coerce, or a field without its one slicing
/// argument: the request is invalid for the backend too, and its cost cannot be bounded.
fn cost_error(error: &CostError) -> RejectError {
    match error {
        CostError::VariableInvalid { variable, .. } => RejectError::new(
            RejectCode::VariablesInvalid,
            format!(
                "variable `${}` does not coerce to its declared type",
                crate::analysis::excerpt(variable)
            ),
        ),
        // The field is not named: a rejection never names a schema field.
        CostError::InvalidSlicing { found, .. } => RejectError {
            details: vec![("actual", u64::from(*found))],
            ..RejectError::new(
                RejectCode::CostInvalidSlicing,
                "a list field of the operation takes exactly one slicing argument",
            )
        },
    }
}

fn analysis_error(error: &AnalysisError, validation: bool) -> RejectError {
    let message = error.to_string();
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
        _ if validation => (RejectCode::GraphqlValidationFailed, Vec::new()),
        _ => (RejectCode::GraphqlParseFailed, Vec::new()),
    };
    RejectError {
        details,
        ..RejectError::new(code, message)
    }
}

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Rejection {
        let retry_after = seconds(refusal.retry_after());
        let code = match refusal {
            Refusal::StateUnavailable => RejectCode::StateUnavailable,
            Refusal::OverBudget { .. }
            | Refusal::CoolingDown { .. }
            | Refusal::TooManyVerifications { .. } => RejectCode::RateLimited,
        };
        let mut rejection = Rejection::new(code, refusal.to_string());
        rejection
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        if let Some(quota) = refusal.quota() {
            rejection.headers.extend(quota_headers(&quota));
        }
        rejection.with_detail("retryAfter", retry_after)
    }
}

impl From<UpgradeError> for Rejection {
    fn from(error: UpgradeError) -> Rejection {
        let code = match error {
            UpgradeError::Subprotocol | UpgradeError::Handshake => RejectCode::InvalidRequest,
            UpgradeError::CrossOrigin => RejectCode::CsrfBlocked,
        };
        Rejection::new(code, error.to_string())
    }
}

impl From<SessionRefusal> for Rejection {
    fn from(refusal: SessionRefusal) -> Rejection {
        match refusal {
            SessionRefusal::TooManySubscriptions { limit } => Rejection::new(
                RejectCode::SubscriptionLimitExceeded,
                format!("this connection already has {limit} operations open"),
            )
            .with_detail("limit", limit as u64),
        }
    }
}

impl From<ClientCapExceeded> for Rejection {
    fn from(exceeded: ClientCapExceeded) -> Rejection {
        Rejection::new(RejectCode::SubscriptionLimitExceeded, exceeded.to_string())
            .with_detail("limit", exceeded.limit as u64)
    }
}

impl From<HardenError> for Rejection {
    fn from(error: HardenError) -> Rejection {
        match error {
            HardenError::TooLarge { limit } => {
                Rejection::new(RejectCode::ResponseTooLarge, error.to_string())
                    .with_detail("limit", limit)
            }
            HardenError::Unreadable => {
                Rejection::new(RejectCode::UpstreamUnavailable, error.to_string())
            }
            HardenError::Timeout => Rejection::new(RejectCode::UpstreamTimeout, error.to_string()),
        }
    }
}

impl From<UpstreamError> for Rejection {
    fn from(error: UpstreamError) -> Rejection {
        let code = match error {
            UpstreamError::Unavailable => RejectCode::UpstreamUnavailable,
            UpstreamError::Timeout => RejectCode::UpstreamTimeout,
            UpstreamError::Overloaded => RejectCode::Overloaded,
        };
        let mut rejection = Rejection::new(code, error.to_string());
        if code == RejectCode::Overloaded {
            // A shed request may come back at once: the queue moves in well under a second.
            rejection
                .headers
                .insert(header::RETRY_AFTER, HeaderValue::from(1));
        }
        rejection
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::inspect::OperationError;

    fn render() -> Render {
        Render {
            rule_status: RuleStatus::Fixed(StatusCode::BAD_REQUEST),
            expose_limits: true,
        }
    }

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    async fn body(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn graphql_response_json_is_used_when_accepted() {
        let response = Rejection::new(RejectCode::InvalidRequest, "bad").into_response(
            &render(),
            &accept("application/graphql-response+json, application/json;q=0.9"),
        );
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(GRAPHQL_RESPONSE_JSON)
        );
    }

    #[test]
    fn legacy_clients_get_application_json() {
        for value in [
            "application/json",
            "*/*",
            "application/graphql-response+json;q=0",
        ] {
            let response = Rejection::new(RejectCode::InvalidRequest, "bad")
                .into_response(&render(), &accept(value));
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/json",
                "{value}"
            );
        }
    }

    #[test]
    fn rule_rejections_follow_the_configured_status() {
        let render = Render {
            rule_status: RuleStatus::Fixed(StatusCode::UNPROCESSABLE_ENTITY),
            expose_limits: true,
        };
        let response = Rejection::new(RejectCode::BatchLimitExceeded, "too many")
            .into_response(&render, &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let response = Rejection::new(RejectCode::InvalidRequest, "bad")
            .into_response(&render, &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn auto_negotiates_request_errors_by_accept_and_keeps_other_statuses() {
        let render = Render {
            rule_status: RuleStatus::ByAccept,
            expose_limits: true,
        };
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            headers
        };
        let legacy = accept("application/json");
        let modern = accept("application/graphql-response+json, application/json;q=0.9");
        let refused_modern = accept("application/graphql-response+json;q=0, application/json");
        for code in [
            RejectCode::DepthLimitExceeded,
            RejectCode::GraphqlParseFailed,
            RejectCode::GraphqlValidationFailed,
        ] {
            let response = Rejection::new(code, "x").into_response(&render, &legacy);
            assert_eq!(response.status(), StatusCode::OK, "{code:?}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let response = Rejection::new(code, "x").into_response(&render, &refused_modern);
            assert_eq!(response.status(), StatusCode::OK, "{code:?}");
            let response = Rejection::new(code, "x").into_response(&render, &modern);
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{code:?}");
            assert!(
                response.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("application/graphql-response+json")
            );
        }
        for (code, status) in [
            (RejectCode::RateLimited, StatusCode::TOO_MANY_REQUESTS),
            (RejectCode::CsrfBlocked, StatusCode::BAD_REQUEST),
            (RejectCode::IntrospectionDisabled, StatusCode::FORBIDDEN),
        ] {
            let response = Rejection::new(code, "x").into_response(&render, &legacy);
            assert_eq!(response.status(), status, "{code:?}");
        }
        // 422 applies to rule rejections; a document that does not parse stays a 400.
        let render = Render {
            rule_status: RuleStatus::Fixed(StatusCode::UNPROCESSABLE_ENTITY),
            expose_limits: true,
        };
        let response =
            Rejection::new(RejectCode::GraphqlParseFailed, "x").into_response(&render, &legacy);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_refused_batch_names_each_member_and_a_get_mutation_sets_allow() {
        let error = InspectError {
            errors: vec![
                OperationError {
                    batch_index: Some(1),
                    reason: Reason::Violation(Violation {
                        rule: Rule::Depth,
                        limit: 10,
                        actual: 12,
                    }),
                },
                OperationError {
                    batch_index: Some(2),
                    reason: Reason::NotAllowedOverGet,
                },
            ],
            learnt: Vec::new(),
        };
        let response = Rejection::from(error).into_response(&render(), &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::ALLOW], "POST");
        let body = body(response).await;
        assert_eq!(
            body["errors"][0]["extensions"],
            json!({"code": "DEPTH_LIMIT_EXCEEDED", "limit": 10, "actual": 12, "batchIndex": 1})
        );
        assert_eq!(
            body["errors"][1]["extensions"]["code"],
            "METHOD_NOT_ALLOWED"
        );
    }

    #[tokio::test]
    async fn unknown_schema_names_get_one_generic_error_naming_nothing() {
        let error = InspectError {
            errors: vec![OperationError {
                batch_index: None,
                reason: Reason::Violation(Violation {
                    rule: Rule::Schema,
                    limit: 0,
                    actual: 3,
                }),
            }],
            learnt: Vec::new(),
        };
        let body = body(Rejection::from(error).into_response(&render(), &HeaderMap::new())).await;
        assert_eq!(
            body,
            json!({"errors": [{"message": "the operation is not valid for this API",
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]})
        );
    }

    #[test]
    fn a_budget_refusal_says_when_to_retry() {
        let refusal = Refusal::OverBudget {
            rule: Rule::RateLimit,
            retry_after: Duration::from_millis(1_200),
            quota: Quota {
                limit: 5,
                remaining: 0,
                reset: Duration::from_secs(3),
            },
        };
        let response = Rejection::from(refusal).into_response(&render(), &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(response.headers()["ratelimit-limit"], "5");
        assert_eq!(response.headers()["ratelimit-reset"], "3");
    }

    #[tokio::test]
    async fn an_internal_error_carries_the_request_id_and_nothing_else() {
        let accept = HeaderValue::from_static("application/graphql-response+json");
        let response = internal_error("req-7", Some(&accept));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(GRAPHQL_RESPONSE_JSON)
        );
        let body = body(response).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL_ERROR");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("req-7")
        );
    }
}
