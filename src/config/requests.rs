//! The shape of a request: body and batch size, the CSRF guard. (The variables' limits are
//! rules: see `limits.rs`.)

use super::parse::{parse_header_names, parse_limit, parse_size, parse_switch};
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
        })
    }
}
