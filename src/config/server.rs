//! The server and its upstream: listeners, paths, timeouts, workers, logs.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use url::Url;

use super::parse::{
    choice, parse_connections, parse_count, parse_duration, parse_limit, parse_path,
    parse_upstream_url, parse_workers,
};
use super::table::*;
use super::values::LogFormat;
use super::{ConfigError, Profile, Reader};

/// Listeners, upstream, timeouts and logs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `LISTEN`.
    pub listen: SocketAddr,
    /// `PATH`: the path the firewall serves GraphQL on.
    pub path: String,
    pub upstream: UpstreamConfig,
    /// `READY_TIMEOUT`: how long `/readyz` waits for the upstream.
    pub ready_timeout: Duration,
    /// `SHUTDOWN_TIMEOUT`: how long in-flight requests may take after SIGTERM.
    pub shutdown_timeout: Duration,
    /// `HEADER_READ_TIMEOUT`.
    pub header_read_timeout: Duration,
    /// `IDLE_TIMEOUT`.
    pub idle_timeout: Duration,
    /// `BODY_READ_TIMEOUT`.
    pub body_read_timeout: Duration,
    /// `MAX_CONNECTIONS` (`auto`: see [`super::parse::parse_connections`]).
    pub max_connections: usize,
    /// `MAX_CONNECTIONS_PER_IP`; `None`: off.
    pub max_connections_per_ip: Option<usize>,
    /// `MAX_CONCURRENT_UPSTREAM`.
    pub max_concurrent_upstream: usize,
    /// `QUEUE_TIMEOUT`.
    pub queue_timeout: Duration,
    /// `WORKERS`: threads serving traffic, each with its own event loop.
    pub workers: NonZeroUsize,
    /// `METRICS_LISTEN`: the admin listener serving `/metrics`, or `None` (`off`).
    pub metrics_listen: Option<SocketAddr>,
    /// `LOG`: a tracing `EnvFilter` directive.
    pub log_filter: String,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `LOG_SAMPLE`: share of allowed operations written to the audit log (rejections always are).
    pub log_sample: f64,
}

/// Where requests are forwarded.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `UPSTREAM_URL`.
    pub url: Url,
    /// `UPSTREAM_TIMEOUT`.
    pub timeout: Duration,
    /// `UPSTREAM_CONNECT_TIMEOUT`.
    pub connect_timeout: Duration,
}

/// The upstream of commands that forward nothing until they know better (`demo` replaces it with
/// its embedded backend's address once that is bound).
const NO_UPSTREAM: &str = "http://127.0.0.1:0/graphql";

impl ServerConfig {
    pub(super) fn read(read: &Reader<'_>, profile: Profile) -> Result<ServerConfig, ConfigError> {
        let url = match profile {
            Profile::Serve => read
                .optional(UPSTREAM_URL, parse_upstream_url)?
                .ok_or_else(|| ConfigError::Missing {
                    name: UPSTREAM_URL.to_owned(),
                    accepted: "an http:// or https:// URL of the GraphQL endpoint".to_owned(),
                })?,
            Profile::Demo => {
                parse_upstream_url(NO_UPSTREAM).map_err(|accepted| ConfigError::Invalid {
                    name: UPSTREAM_URL.to_owned(),
                    value: NO_UPSTREAM.to_owned(),
                    accepted,
                })?
            }
            Profile::Offline => match read.optional(UPSTREAM_URL, parse_upstream_url)? {
                Some(url) => url,
                None => {
                    parse_upstream_url(NO_UPSTREAM).map_err(|accepted| ConfigError::Invalid {
                        name: UPSTREAM_URL.to_owned(),
                        value: NO_UPSTREAM.to_owned(),
                        accepted,
                    })?
                }
            },
        };
        Ok(ServerConfig {
            listen: read.value(LISTEN, parse_socket_address)?,
            path: read.value(PATH, parse_path)?,
            upstream: UpstreamConfig {
                url,
                timeout: read.value(UPSTREAM_TIMEOUT, parse_duration)?,
                connect_timeout: read.value(UPSTREAM_CONNECT_TIMEOUT, parse_duration)?,
            },
            ready_timeout: read.value(READY_TIMEOUT, parse_duration)?,
            shutdown_timeout: read.value(SHUTDOWN_TIMEOUT, parse_duration)?,
            header_read_timeout: read.value(HEADER_READ_TIMEOUT, parse_duration)?,
            idle_timeout: read.value(IDLE_TIMEOUT, parse_duration)?,
            body_read_timeout: read.value(BODY_READ_TIMEOUT, parse_duration)?,
            max_connections: read.value(MAX_CONNECTIONS, parse_connections)?,
            max_connections_per_ip: read.value(MAX_CONNECTIONS_PER_IP, |v| {
                parse_limit(v).map(|n| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
            })?,
            max_concurrent_upstream: read.value(MAX_CONCURRENT_UPSTREAM, |v| {
                parse_count(v).map(|n| n as usize)
            })?,
            queue_timeout: read.value(QUEUE_TIMEOUT, parse_duration)?,
            workers: read.value(WORKERS, parse_workers)?,
            metrics_listen: read.value(METRICS_LISTEN, |v| {
                if v.eq_ignore_ascii_case("off") {
                    return Ok(None);
                }
                parse_socket_address(v).map(Some)
            })?,
            log_filter: read.value(LOG, |v| {
                tracing_subscriber::EnvFilter::try_new(v)
                    .map(|_| v.to_owned())
                    .map_err(|_| {
                        "a tracing filter such as info, debug or graphql_firewall=debug,warn"
                            .to_owned()
                    })
            })?,
            log_format: read.value(LOG_FORMAT, |v| choice(v, LogFormat::CHOICES))?,
            log_sample: read.value(LOG_SAMPLE, |v| match v.parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
                _ => Err("a number from 0 to 1, such as 0.1".to_owned()),
            })?,
        })
    }
}

fn parse_socket_address(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .map_err(|_| "a socket address such as 127.0.0.1:8080 or [::]:8080".to_owned())
}
