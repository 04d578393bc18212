//! The small pure parsers behind every variable: each returns the value, or the text saying what
//! is accepted (the caller adds the variable's name and value).

use std::num::NonZeroUsize;
use std::time::Duration;

use url::Url;

/// `30s`, `500ms`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const ACCEPTED: &str = "a duration such as 500ms, 30s, 2m or 1h";
    let (digits, unit) = split_number(text);
    let amount: u64 = digits.parse().map_err(|_| ACCEPTED.to_owned())?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(amount),
        "" | "s" => Duration::from_secs(amount),
        "m" | "min" => Duration::from_secs(amount.saturating_mul(60)),
        "h" => Duration::from_secs(amount.saturating_mul(3600)),
        _ => return Err(ACCEPTED.to_owned()),
    };
    if duration.is_zero() {
        return Err(format!("{ACCEPTED}, greater than zero"));
    }
    Ok(duration)
}

/// A duration, or `off`.
pub fn parse_optional_duration(text: &str) -> Result<Option<Duration>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_duration(text)
        .map(Some)
        .map_err(|accepted| format!("{accepted}, or off"))
}

/// `1048576`, `512KiB`, `1MiB`, `64KB` (KB/MB are read as their binary twins: sizes here are caps, not disk labels).
pub fn parse_size(text: &str) -> Result<usize, String> {
    const ACCEPTED: &str = "a size in bytes such as 1048576, 512KiB or 1MiB";
    let (digits, unit) = split_number(text);
    let amount: usize = digits.parse().map_err(|_| ACCEPTED.to_owned())?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(ACCEPTED.to_owned()),
    };
    match amount.checked_mul(factor) {
        Some(0) | None => Err(format!("{ACCEPTED}, greater than zero")),
        Some(bytes) => Ok(bytes),
    }
}

/// A positive limit, or `off`.
pub fn parse_limit(text: &str) -> Result<Option<u64>, String> {
    const ACCEPTED: &str = "a positive integer or off";
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(0) | Err(_) => Err(ACCEPTED.to_owned()),
        Ok(n) => Ok(Some(n)),
    }
}

/// `on`/`off` (also `true`/`false`, `1`/`0`).
pub fn parse_switch(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err("on or off".to_owned()),
    }
}

/// One of `choices`, by name, any case; the error lists the names (`off, apq, audit or allowlist`).
pub fn choice<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
        .map(|(_, value)| *value)
        .ok_or_else(|| match choices {
            [] => String::new(),
            [only] => only.0.to_owned(),
            [first @ .., last] => {
                let names: Vec<&str> = first.iter().map(|(name, _)| *name).collect();
                format!("{} or {}", names.join(", "), last.0)
            }
        })
}

/// The CPUs this process may use (cgroup quotas and affinity included); 1 if unknown.
pub fn available_cpus() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// `auto` (one worker per available CPU) or a positive number of worker threads.
pub fn parse_workers(text: &str) -> Result<NonZeroUsize, String> {
    let accepted = || "auto or a positive integer up to 1024".to_owned();
    if text.eq_ignore_ascii_case("auto") {
        return Ok(available_cpus());
    }
    match text.parse::<usize>() {
        Ok(n @ 1..=1024) => NonZeroUsize::new(n).ok_or_else(accepted),
        _ => Err(accepted()),
    }
}

/// `auto` or a positive number of connections. `auto` leaves half of the file descriptors the
/// process may open to the upstream connections, the listeners and the files it reads: each
/// client connection may need one upstream connection of its own.
pub fn parse_connections(text: &str) -> Result<usize, String> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok((open_files_limit().saturating_sub(RESERVED_DESCRIPTORS) / 2).max(64));
    }
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("auto or a positive integer".to_owned()),
    }
}

/// Descriptors kept for listeners, the manifests, the schema, logs and the runtime.
const RESERVED_DESCRIPTORS: usize = 128;

/// The soft limit on open files (`ulimit -n`), from `/proc/self/limits`; 1024 where unknown.
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3))
                .and_then(|soft| match soft {
                    "unlimited" => Some(1 << 20),
                    soft => soft.parse().ok(),
                })
        })
        .unwrap_or(1024)
}

/// A positive count that fits in u32.
pub fn parse_count(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(0) | Err(_) => Err("a positive integer".to_owned()),
        Ok(n) => Ok(n),
    }
}

/// A non-negative integer weight or size.
pub fn parse_weight(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .map_err(|_| "a non-negative integer".to_owned())
}

/// A comma-separated list of GraphQL names.
pub fn parse_names(text: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = text
        .split(',')
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect();
    let valid = !names.is_empty()
        && names.iter().all(|name| {
            name.bytes()
                .enumerate()
                .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
        });
    if valid {
        Ok(names)
    } else {
        Err("a comma-separated list of GraphQL argument names such as first,last".to_owned())
    }
}

pub fn parse_upstream_url(text: &str) -> Result<Url, String> {
    const ACCEPTED: &str = "an http:// or https:// URL such as http://127.0.0.1:4000/graphql";
    let url = Url::parse(text).map_err(|_| ACCEPTED.to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ACCEPTED.to_owned());
    }
    Ok(url)
}

pub fn parse_path(text: &str) -> Result<String, String> {
    let valid = text.starts_with('/')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
    if valid {
        Ok(text.to_owned())
    } else {
        Err("an absolute URL path such as /graphql".to_owned())
    }
}

/// A comma-separated list of HTTP header names (stored lower-case, as HTTP/2 sends them).
pub fn parse_header_names(text: &str) -> Result<Vec<http::HeaderName>, String> {
    let names = text
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "a comma-separated list of HTTP header names".to_owned())?;
    if names.is_empty() {
        return Err("a comma-separated list of HTTP header names".to_owned());
    }
    Ok(names)
}

/// Comma-separated origins (`scheme://host[:port]`, lower-cased, no trailing `/`), or `*`.
pub fn parse_origins(text: &str) -> Result<Vec<String>, String> {
    const ACCEPTED: &str =
        "a comma-separated list of origins such as https://app.example.com, or *";
    let origins: Vec<String> = text
        .split(',')
        .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
        .filter(|origin| !origin.is_empty())
        .collect();
    let valid = !origins.is_empty()
        && origins.iter().all(|origin| {
            origin == "*"
                || origin.split_once("://").is_some_and(|(scheme, authority)| {
                    !scheme.is_empty() && !authority.is_empty() && !authority.contains('/')
                })
        });
    if valid {
        Ok(origins)
    } else {
        Err(ACCEPTED.to_owned())
    }
}

pub fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}
