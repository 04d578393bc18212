//! The shape of a request: body and batch size, the CSRF guard. (The variables' limits are
//! rules: see `limits.rs`.)

use std::time::Duration;

use super::parse::{
    parse_count, parse_duration, parse_header_names, parse_limit, parse_optional_duration,
    parse_origins, parse_size, parse_switch,
};
use super::table::*;
use super::{ConfigError, Reader};

/// What a request may look like before its document is read.
#[derive(Debug, Clone)]
pub struct RequestsConfig {
    /// `MAX_BODY_BYTES`, after decompression (also caps a GET query string).
    pub max_body_bytes: usize,
    /// `MAX_BATCH`; `None` (`off`): unbounded.
    pub max_batch: Option<usize>,
    /// `CSRF_REQUIRED_HEADERS` (lower-case), or `None` when `CSRF_PROTECTION=off`.
    pub csrf_required_headers: Option<Vec<http::HeaderName>>,
    pub websocket: WebSocketConfig,
}

/// The limits of GraphQL over WebSocket (`WS_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// `WS_ALLOWED_ORIGINS` (lower-case; `*` for any); empty: the endpoint's own origin only.
    pub allowed_origins: Vec<String>,
    /// `WS_MAX_MESSAGE_BYTES`.
    pub max_message_bytes: usize,
    /// `WS_MAX_SUBSCRIPTIONS`, per connection.
    pub max_subscriptions: usize,
    /// `WS_MAX_SUBSCRIPTIONS_PER_CLIENT`; `None` (`off`): unbounded.
    pub max_subscriptions_per_client: Option<usize>,
    /// `WS_INIT_TIMEOUT`.
    pub init_timeout: Duration,
    /// `WS_KEEPALIVE`; `None` (`off`): no keep-alive.
    pub keepalive: Option<Duration>,
    /// `WS_IDLE_TIMEOUT`; `None` (`off`).
    pub idle_timeout: Option<Duration>,
    /// `WS_WRITE_TIMEOUT`.
    pub write_timeout: Duration,
}

impl WebSocketConfig {
    fn read(read: &Reader<'_>) -> Result<WebSocketConfig, ConfigError> {
        let count = |v: &str| parse_count(v).map(|n| n as usize);
        Ok(WebSocketConfig {
            allowed_origins: read
                .optional(WS_ALLOWED_ORIGINS, parse_origins)?
                .unwrap_or_default(),
            max_message_bytes: read.value(WS_MAX_MESSAGE_BYTES, parse_size)?,
            max_subscriptions: read.value(WS_MAX_SUBSCRIPTIONS, count)?,
            max_subscriptions_per_client: read.value(WS_MAX_SUBSCRIPTIONS_PER_CLIENT, |v| {
                parse_limit(v).map(|n| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
            })?,
            init_timeout: read.value(WS_INIT_TIMEOUT, parse_duration)?,
            keepalive: read.value(WS_KEEPALIVE, parse_optional_duration)?,
            idle_timeout: read.value(WS_IDLE_TIMEOUT, parse_optional_duration)?,
            write_timeout: read.value(WS_WRITE_TIMEOUT, parse_duration)?,
        })
    }
}

impl RequestsConfig {
    pub(super) fn read(read: &Reader<'_>) -> Result<RequestsConfig, ConfigError> {
        let csrf = read.value(CSRF_PROTECTION, parse_switch)?;
        let headers = read.value(CSRF_REQUIRED_HEADERS, parse_header_names)?;
        Ok(RequestsConfig {
            max_body_bytes: read.value(MAX_BODY_BYTES, parse_size)?,
            max_batch: read.value(MAX_BATCH, |v| {
                parse_limit(v).map(|n| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
            })?,
            csrf_required_headers: csrf.then_some(headers),
            websocket: WebSocketConfig::read(read)?,
        })
    }
}
