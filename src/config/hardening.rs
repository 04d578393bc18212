//! What the firewall removes from the upstream's answers.

use super::parse::{choice, parse_size, parse_switch};
use super::table::*;
use super::values::{MaskErrors, SanitiseOverflow};
use super::{ConfigError, Reader};

/// Response hardening.
#[derive(Debug, Clone)]
pub struct HardeningConfig {
    /// `BLOCK_FIELD_SUGGESTIONS`.
    pub block_suggestions: bool,
    /// `MASK_ERRORS`.
    pub mask: MaskErrors,
    /// `MASK_KEEP_CODES`: codes whose message survives `all`.
    pub keep_codes: Vec<String>,
    /// `SANITISE_MAX_BYTES`: the largest `errors` member (or event, or part) inspected.
    pub sanitise_max_bytes: usize,
    /// `SANITISE_OVERFLOW`.
    pub overflow: SanitiseOverflow,
    /// `MAX_RESPONSE_BYTES`.
    pub max_response_bytes: u64,
}

impl HardeningConfig {
    pub(super) fn read(read: &Reader<'_>) -> Result<HardeningConfig, ConfigError> {
        Ok(HardeningConfig {
            block_suggestions: read.value(BLOCK_FIELD_SUGGESTIONS, parse_switch)?,
            mask: read.value(MASK_ERRORS, |v| choice(v, MaskErrors::CHOICES))?,
            keep_codes: read.value(MASK_KEEP_CODES, |v| {
                let codes: Vec<String> = v
                    .split(',')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty())
                    .collect();
                if codes
                    .iter()
                    .all(|c| c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                {
                    Ok(codes)
                } else {
                    Err(
                        "a comma-separated list of error codes such as BAD_USER_INPUT,FORBIDDEN"
                            .to_owned(),
                    )
                }
            })?,
            sanitise_max_bytes: read.value(SANITISE_MAX_BYTES, parse_size)?,
            overflow: read.value(SANITISE_OVERFLOW, |v| choice(v, SanitiseOverflow::CHOICES))?,
            max_response_bytes: read
                .value(MAX_RESPONSE_BYTES, |v| parse_size(v).map(|n| n as u64))?,
        })
    }
}
