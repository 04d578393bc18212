//! The shape of a request: body and batch size, the CSRF guard, the variables' limits.

use super::parse::{parse_count, parse_header_names, parse_limit, parse_size, parse_switch};
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
    /// `MAX_VARIABLES`.
    pub max_variables: Option<u32>,
    /// `MAX_VARIABLE_DEPTH`.
    pub max_variable_depth: Option<u32>,
    /// `MAX_VARIABLE_LIST`.
    pub max_variable_list: Option<u32>,
    /// `MAX_VARIABLES_BYTES`; `None` (`off`): unbounded.
    pub max_variables_bytes: Option<u64>,
}

impl RequestsConfig {
    pub(super) fn read(read: &Reader<'_>) -> Result<RequestsConfig, ConfigError> {
        let count = |name: &str| read.value(name, parse_count_limit);
        let csrf = read.value(CSRF_PROTECTION, parse_switch)?;
        let headers = read.value(CSRF_REQUIRED_HEADERS, parse_header_names)?;
        Ok(RequestsConfig {
            max_body_bytes: read.value(MAX_BODY_BYTES, parse_size)?,
            max_batch: read.value(MAX_BATCH, |v| {
                parse_limit(v).map(|n| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
            })?,
            csrf_required_headers: csrf.then_some(headers),
            max_variables: count(MAX_VARIABLES)?,
            max_variable_depth: count(MAX_VARIABLE_DEPTH)?,
            max_variable_list: count(MAX_VARIABLE_LIST)?,
            max_variables_bytes: read.value(MAX_VARIABLES_BYTES, |v| {
                if v.eq_ignore_ascii_case("off") {
                    Ok(None)
                } else {
                    parse_size(v).map(|n| Some(n as u64))
                }
            })?,
        })
    }
}

/// A positive limit below 2^32, or `off`.
pub(super) fn parse_count_limit(text: &str) -> Result<Option<u32>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_count(text)
        .map(Some)
        .map_err(|_| "a positive integer below 2^32, or off".to_owned())
}
