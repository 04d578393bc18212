//! The firewall's own refusals: every failure becomes a GraphQL-shaped body with a stable
//! `extensions.code` and the right HTTP status, built here and nowhere else.
//!
//! # Threats
//! An error path that echoes client input is a reflection channel, and one that returns plain text
//! or a 500 breaks clients and monitoring. Messages are fixed strings plus numbers; a piece of
//! client input, where useful, is cut to [`EXCERPT_BYTES`] and JSON-escaped by serde.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::config::RejectStatus;
use crate::policy::Rule;

/// Longest excerpt of client input a message may carry.
pub const EXCERPT_BYTES: usize = 64;

/// DESIGN.md's rejection table, as code.
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
    VariablesLimitExceeded,
    FragmentCycle,
    IntrospectionDisabled,
    RateLimited,
    PersistedQueryNotFound,
    PersistedQueryHashMismatch,
    PersistedQueryRequired,
    UpstreamUnavailable,
    UpstreamTimeout,
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
            RejectCode::VariablesLimitExceeded => "VARIABLES_LIMIT_EXCEEDED",
            RejectCode::FragmentCycle => "FRAGMENT_CYCLE",
            RejectCode::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            RejectCode::RateLimited => "RATE_LIMITED",
            RejectCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            RejectCode::PersistedQueryHashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            RejectCode::PersistedQueryRequired => "PERSISTED_QUERY_REQUIRED",
            RejectCode::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            RejectCode::UpstreamTimeout => "UPSTREAM_TIMEOUT",
        }
    }

    /// HTTP status; rule rejections follow the operator's `REJECT_STATUS`.
    fn status(self, rule_status: RejectStatus) -> StatusCode {
        let rule = match rule_status {
            RejectStatus::BadRequest => StatusCode::BAD_REQUEST,
            RejectStatus::UnprocessableEntity => StatusCode::UNPROCESSABLE_ENTITY,
        };
        match self {
            RejectCode::InvalidRequest
            | RejectCode::CsrfBlocked
            | RejectCode::GraphqlParseFailed => StatusCode::BAD_REQUEST,
            RejectCode::IntrospectionDisabled => StatusCode::FORBIDDEN,
            RejectCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            // APQ clients look for this error in a 200 response and resend with the text.
            RejectCode::PersistedQueryNotFound => StatusCode::OK,
            RejectCode::PersistedQueryHashMismatch => StatusCode::BAD_REQUEST,
            RejectCode::PersistedQueryRequired => StatusCode::FORBIDDEN,
            RejectCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RejectCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RejectCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RejectCode::NotFound => StatusCode::NOT_FOUND,
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
            | RejectCode::VariablesLimitExceeded
            | RejectCode::FragmentCycle => rule,
            RejectCode::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            RejectCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
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
            errors: vec![RejectError {
                code,
                message: message.into(),
                details: Vec::new(),
                batch_index: None,
            }],
            headers: HeaderMap::new(),
        }
    }

    /// A 405 with the `Allow` header RFC 9110 requires.
    pub fn method_not_allowed(message: impl Into<String>, allow: &'static str) -> Rejection {
        let mut rejection = Rejection::new(RejectCode::MethodNotAllowed, message);
        rejection
            .headers
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        rejection
    }

    pub fn with_detail(mut self, name: &'static str, value: u64) -> Rejection {
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

    /// Builds the response for a client whose `Accept` header is `accept`.
    pub fn into_response(self, render: &Render, accept: &HeaderMap) -> Response {
        let status = self.code().status(render.reject_status);
        let errors: Vec<Value> = self
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
        let body = json!({ "errors": errors }).to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, response_content_type(accept));
        headers.extend(self.headers);
        response
    }
}

/// What the operator decided about rendering rejections.
#[derive(Debug, Clone, Copy)]
pub struct Render {
    pub reject_status: RejectStatus,
    pub expose_limits: bool,
}

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// `application/graphql-response+json` when the client accepts it, else `application/json` (legacy clients).
fn response_content_type(accept: &HeaderMap) -> HeaderValue {
    let accepts_graphql_response = accept
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            let mut parts = media.split(';');
            let essence = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            essence.eq_ignore_ascii_case(GRAPHQL_RESPONSE_JSON) && !refused
        });
    if accepts_graphql_response {
        HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
    } else {
        HeaderValue::from_static("application/json")
    }
}

/// A short excerpt of client input, cut on a character boundary (serde escapes it when serialised).
pub fn excerpt(input: &str) -> &str {
    if input.len() <= EXCERPT_BYTES {
        return input;
    }
    let mut end = EXCERPT_BYTES;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    input.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render() -> Render {
        Render {
            reject_status: RejectStatus::BadRequest,
            expose_limits: true,
        }
    }

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
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
    fn method_not_allowed_carries_allow() {
        let response = Rejection::method_not_allowed("no", "GET, POST")
            .into_response(&render(), &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET, POST");
    }

    #[test]
    fn rule_rejections_follow_the_configured_status() {
        let render = Render {
            reject_status: RejectStatus::UnprocessableEntity,
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
    fn excerpt_is_bounded_and_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let cut = excerpt(&long);
        assert!(cut.len() <= EXCERPT_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(excerpt("short"), "short");
    }
}
