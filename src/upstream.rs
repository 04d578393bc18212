//! Forwards admitted requests to the real GraphQL server over one pooled keep-alive client, with
//! header hygiene, `X-Forwarded-*` / `X-Request-Id`, and connect and total timeouts.
//!
//! # Threats
//! Hop-by-hop headers (`Connection`, `Transfer-Encoding`, …) describe one connection, not the
//! message; forwarding them enables request smuggling and connection confusion, so they are dropped
//! in both directions, together with any header the `Connection` header names. Client-supplied
//! `X-Forwarded-For` / `Forwarded` are replaced, never trusted, so the upstream cannot be told a
//! false client address through the firewall.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use bytes::Bytes;
use url::Url;

/// Upstream settings, from `config::UpstreamConfig`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: Url,
    pub timeout: Duration,
    pub connect_timeout: Duration,
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
    pub request_id: &'a str,
}

/// The upstream's answer, minus hop-by-hop headers.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// From sending the request to the last body byte.
    pub elapsed: Duration,
}

/// The pooled client and where it points.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    url: Url,
}

impl Upstream {
    /// Builds the pooled client; fails only if the TLS backend cannot initialise.
    pub fn new(settings: &Settings) -> Result<Upstream, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // A redirect from the upstream is its answer to the client, not ours to follow.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Upstream {
            client,
            url: settings.url.clone(),
        })
    }

    /// Sends one request and reads the whole answer.
    pub async fn forward(&self, outgoing: Outgoing<'_>) -> Result<Answer, UpstreamError> {
        let started = Instant::now();
        let mut url = self.url.clone();
        if let Some(query) = outgoing.query_string.filter(|q| !q.is_empty()) {
            let joined = match url.query() {
                Some(existing) if !existing.is_empty() => format!("{existing}&{query}"),
                _ => query.to_owned(),
            };
            url.set_query(Some(&joined));
        }
        let mut request = self
            .client
            .request(outgoing.method.clone(), url)
            .headers(request_headers(&outgoing));
        if outgoing.method == Method::POST {
            request = request.body(outgoing.body);
        }
        let response = request.send().await.map_err(classify)?;
        let status = response.status();
        let headers = end_to_end(response.headers());
        let body = response.bytes().await.map_err(classify)?;
        Ok(Answer {
            status,
            headers,
            body,
            elapsed: started.elapsed(),
        })
    }

    /// True when the upstream answers HTTP at all within `timeout` (any status: it is up).
    pub async fn is_ready(&self, timeout: Duration) -> bool {
        self.client
            .get(self.url.clone())
            .timeout(timeout)
            .send()
            .await
            .is_ok()
    }
}

fn classify(error: reqwest::Error) -> UpstreamError {
    if error.is_timeout() {
        UpstreamError::Timeout
    } else {
        UpstreamError::Unavailable
    }
}

/// RFC 9110 §7.6.1 hop-by-hop fields, plus the legacy `Proxy-*` family.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-connection"
    ) || name.as_str().starts_with("proxy-")
}

/// Copies `headers` minus hop-by-hop ones and those the `Connection` header lists.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if is_hop_by_hop(name)
            || name == header::CONTENT_LENGTH
            || listed.iter().any(|l| l == name.as_str())
        {
            continue;
        }
        kept.append(name.clone(), value.clone());
    }
    kept
}

/// Headers that the firewall itself decides, never copied from the client.
const REPLACED: [&str; 8] = [
    "host",
    "content-type",
    "content-encoding",
    "expect",
    "x-forwarded-for",
    "x-forwarded-proto",
    "forwarded",
    "x-request-id",
];

fn request_headers(outgoing: &Outgoing<'_>) -> HeaderMap {
    let mut headers = end_to_end(outgoing.headers);
    for name in REPLACED {
        headers.remove(name);
    }
    if outgoing.method == Method::POST {
        // The body was decoded (and decompressed) as JSON, whatever the client labelled it.
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Ok(ip) = HeaderValue::from_str(&outgoing.client_ip.to_string()) {
        headers.insert("x-forwarded-for", ip);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Ok(id) = HeaderValue::from_str(outgoing.request_id) {
        headers.insert("x-request-id", id);
    }
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
        let kept = end_to_end(&headers);
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, vec!["authorization", "x-custom"]);
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
            request_id: "req-1",
        };
        let sent = request_headers(&outgoing);
        assert_eq!(sent["x-forwarded-for"], "10.1.2.3");
        assert!(sent.get("forwarded").is_none());
        assert_eq!(sent["content-type"], "application/json");
        assert_eq!(sent["cookie"], "session=1");
        assert_eq!(sent["x-request-id"], "req-1");
    }
}
