//! Forwards admitted requests to the real GraphQL server over keep-alive connections pooled per
//! worker thread, with header hygiene, `X-Forwarded-*` / `X-Request-Id`, and connect and total
//! timeouts.
//!
//! Connections are HTTP/1.1 (over TLS for `https://` upstreams), kept alive in per-thread pools
//! ([`pool`]). HTTP/1.1 is what reverse proxies speak to their upstreams (nginx does too), and one
//! connection per in-flight request keeps a slow answer from holding up the others.
//!
//! # Threats
//! Hop-by-hop headers (`Connection`, `Transfer-Encoding`, …) describe one connection, not the
//! message; forwarding them enables request smuggling and connection confusion, so they are dropped
//! in both directions, together with any header the `Connection` header names. Client-supplied
//! `X-Forwarded-For` / `Forwarded` are replaced, never trusted, so the upstream cannot be told a
//! false client address through the firewall.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod pool;
pub mod ws;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::Semaphore;
use url::Url;

use pool::Pool;
pub use pool::{ExchangeError, ResponseBody};

/// Where the upstream is, how long to wait for it, and how many requests it gets at once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: Url,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Requests in flight upstream at once (`MAX_CONCURRENT_UPSTREAM`): the upstream connections
    /// are capped with them.
    pub max_concurrent: usize,
    /// How long a request waits for a slot (`QUEUE_TIMEOUT`) before it is shed.
    pub queue_timeout: Duration,
}

/// Why the upstream gave no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// Connection refused or reset, or not a valid HTTP response.
    #[error("the upstream GraphQL server is unavailable")]
    Unavailable,
    /// No complete answer within the timeout.
    #[error("the upstream GraphQL server did not answer in time")]
    Timeout,
    /// Every upstream slot stayed busy for the queue timeout: the request is shed.
    #[error("the firewall is overloaded: try again shortly")]
    Overloaded,
}

impl UpstreamError {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamError::Unavailable => "unavailable",
            UpstreamError::Timeout => "timeout",
            UpstreamError::Overloaded => "overloaded",
        }
    }
}

/// What is sent upstream for one HTTP request.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub method: Method,
    /// The URL query to append (GET requests carry the GraphQL request there).
    pub query_string: Option<&'a str>,
    /// The client's headers; end-to-end ones are forwarded.
    pub headers: &'a HeaderMap,
    /// The decoded JSON body (empty for GET).
    pub body: Bytes,
    pub client_ip: IpAddr,
    /// `X-Request-Id`, as decided for the request.
    pub request_id: &'a HeaderValue,
}

/// The upstream's answer, minus hop-by-hop headers; its body still streaming.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ResponseBody,
    /// From sending the request to the answer's head.
    pub elapsed: Duration,
}

/// The upstream URL cannot be connected to.
#[derive(Debug, thiserror::Error)]
#[error("the upstream URL is not a valid HTTP URI with a host")]
pub struct UrlError;

/// Where the upstream is and the connections to it.
#[derive(Debug, Clone)]
pub struct Upstream {
    pool: Arc<Pool>,
    /// `scheme://host:port`: what connections are opened to.
    authority: Uri,
    /// The `Host` header of every request.
    host: HeaderValue,
    /// The URL's path and query in origin form: the target of every request without a query.
    target: Uri,
    url: Url,
    timeout: Duration,
    /// One permit per request in flight upstream.
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl Upstream {
    /// Prepares the per-thread connection pools; connections are opened on demand.
    pub fn new(settings: &Settings) -> Result<Upstream, UrlError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(settings.connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let url = &settings.url;
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(UrlError);
        };
        let host_header = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let parse = |text: &str| text.parse::<Uri>().map_err(|_| UrlError);
        Ok(Upstream {
            pool: Arc::new(Pool::new(connector)),
            authority: parse(&format!("{}://{host}:{port}", url.scheme()))?,
            host: HeaderValue::from_str(&host_header).map_err(|_| UrlError)?,
            target: parse(&url[url::Position::BeforePath..url::Position::AfterQuery])?,
            url: url.clone(),
            timeout: settings.timeout,
            slots: Arc::new(Semaphore::new(settings.max_concurrent)),
            queue_timeout: settings.queue_timeout,
        })
    }

    /// The origin-form target of a request: the URL's path and query, plus `query` if any.
    fn target(&self, query: Option<&str>) -> Result<Uri, UpstreamError> {
        let Some(query) = query.filter(|q| !q.is_empty()) else {
            return Ok(self.target.clone());
        };
        let path = self.url.path();
        let target = match self.url.query().filter(|q| !q.is_empty()) {
            None => format!("{path}?{query}"),
            Some(own) => format!("{path}?{own}&{query}"),
        };
        target.parse().map_err(|_| UpstreamError::Unavailable)
    }

    async fn exchange(
        &self,
        request: axum::http::Request<Full<Bytes>>,
    ) -> Result<(axum::http::response::Parts, ResponseBody), UpstreamError> {
        self.pool
            .exchange(&self.authority, request)
            .await
            .map_err(|error| match error {
                ExchangeError::Connect | ExchangeError::Broken => UpstreamError::Unavailable,
            })
    }

    /// Sends one request, once an upstream slot is free, and returns the answer's head; its body
    /// streams (the slot is held until the head: the body is bounded by the hardening stage).
    pub async fn forward(&self, outgoing: Outgoing<'_>) -> Result<Answer, UpstreamError> {
        let _slot = tokio::time::timeout(self.queue_timeout, self.slots.acquire())
            .await
            .map_err(|_| UpstreamError::Overloaded)?
            .map_err(|_| UpstreamError::Overloaded)?;
        let started = Instant::now();
        let uri = self.target(outgoing.query_string)?;
        let mut headers = request_headers(&outgoing);
        headers.insert(header::HOST, self.host.clone());
        let body = if outgoing.method == Method::POST {
            outgoing.body
        } else {
            Bytes::new()
        };
        let mut request = axum::http::Request::new(Full::new(body));
        *request.method_mut() = outgoing.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let exchange = self.exchange(request);
        let (parts, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout)??;
        Ok(Answer {
            status: parts.status,
            headers: end_to_end(parts.headers),
            body,
            elapsed: started.elapsed(),
        })
    }

    /// The status of a plain `GET` of the URL, if it answers within `timeout`.
    pub async fn probe(&self, timeout: Duration) -> Option<StatusCode> {
        let mut request = axum::http::Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = self.target.clone();
        request
            .headers_mut()
            .insert(header::HOST, self.host.clone());
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(Ok((parts, _))) => Some(parts.status),
            _ => None,
        }
    }
}

/// RFC 9110 §7.6.1 hop-by-hop fields, plus the legacy `Proxy-*` family.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name) || name.as_str().starts_with("proxy-")
}

/// Named once, as [`HeaderName`]s: comparing two standard names compares two small integers,
/// where comparing strings would cost a call per name on every request.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The names in `headers` that do not travel on: hop-by-hop ones, those the `Connection` header
/// lists, `Content-Length` (the body may change), and `dropped`. Usually one or two.
fn not_end_to_end(headers: &HeaderMap, dropped: &[HeaderName]) -> Vec<HeaderName> {
    // Listed names are looked up one by one, so a `Connection` header listing thousands of names
    // costs in proportion to its length, and the list never outgrows the headers present.
    let listed = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        // The usual `Connection: keep-alive` names a header dropped anyway: not parsed again.
        .filter(|name| !name.eq_ignore_ascii_case("keep-alive"))
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .filter(|name| headers.contains_key(name));
    let mut names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            is_hop_by_hop(name) || *name == header::CONTENT_LENGTH || dropped.contains(name)
        })
        .cloned()
        .collect();
    for name in listed {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// An answer's own headers, minus those that do not travel on ([`not_end_to_end`]), in place.
fn end_to_end(mut headers: HeaderMap) -> HeaderMap {
    for name in not_end_to_end(&headers, &[]) {
        headers.remove(name);
    }
    headers
}

/// A copy of `headers` minus those that do not travel on and `dropped`.
fn end_to_end_copy(headers: &HeaderMap, dropped: &[HeaderName]) -> HeaderMap {
    let skipped = not_end_to_end(headers, dropped);
    let mut kept = HeaderMap::with_capacity(headers.len() + 4);
    for (name, value) in headers {
        if !skipped.contains(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

// Named once: inserting by `&str` would parse and validate the name on every request.
/// The client address a proxy reports (read at the edge behind trusted proxies; set upstream).
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// The request id (read from the client, set upstream and on the answer).
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers that the firewall itself decides, never copied from the client. A byte range of an
/// answer the firewall may rewrite would not be a range of what the client receives.
const REPLACED: [HeaderName; 10] = [
    header::HOST,
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::EXPECT,
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    header::FORWARDED,
    X_REQUEST_ID,
    header::RANGE,
    header::IF_RANGE,
];

fn request_headers(outgoing: &Outgoing<'_>) -> HeaderMap {
    let mut headers = end_to_end_copy(outgoing.headers, &REPLACED);
    if outgoing.method == Method::POST {
        // The body was decoded (and decompressed) as JSON, whatever the client labelled it.
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Ok(ip) = HeaderValue::from_str(&outgoing.client_ip.to_string()) {
        headers.insert(X_FORWARDED_FOR, ip);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    headers.insert(X_REQUEST_ID, outgoing.request_id.clone());
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eA=="),
            ("x-secret-hop", "1"),
            ("authorization", "Bearer t"),
            ("x-custom", "kept"),
            ("content-length", "12"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        let kept = end_to_end(headers.clone());
        let mut names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, vec!["authorization", "x-custom"]);
        let copied = end_to_end_copy(&headers, &[]);
        assert_eq!(
            copied.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            names
        );
    }

    #[test]
    fn a_connection_header_listing_thousands_of_names_drops_just_those() {
        let mut headers = HeaderMap::new();
        let listed: Vec<String> = (0..2_000).map(|i| format!("X-Hop-{i}")).collect();
        headers.insert(
            "connection",
            HeaderValue::from_str(&listed.join(", ")).unwrap(),
        );
        headers.insert("x-hop-7", HeaderValue::from_static("1"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        let kept = end_to_end(headers.clone());
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, vec!["x-kept"]);
        assert_eq!(
            end_to_end_copy(&headers, &[]).keys().collect::<Vec<_>>(),
            ["x-kept"]
        );
    }

    #[test]
    fn forwarded_identity_headers_are_replaced_not_copied() {
        let mut client = HeaderMap::new();
        client.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        client.insert("forwarded", HeaderValue::from_static("for=6.6.6.6"));
        client.insert("content-type", HeaderValue::from_static("text/plain"));
        client.insert("cookie", HeaderValue::from_static("session=1"));
        let outgoing = Outgoing {
            method: Method::POST,
            query_string: None,
            headers: &client,
            body: Bytes::new(),
            client_ip: "10.1.2.3".parse().unwrap(),
            request_id: &HeaderValue::from_static("req-1"),
        };
        let sent = request_headers(&outgoing);
        assert_eq!(sent["x-forwarded-for"], "10.1.2.3");
        assert!(sent.get("forwarded").is_none());
        assert_eq!(sent["content-type"], "application/json");
        assert_eq!(sent["cookie"], "session=1");
        assert_eq!(sent["x-request-id"], "req-1");
    }
}
