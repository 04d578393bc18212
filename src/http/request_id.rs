//! The request id: decided once per request, before anything else runs, so that the audit event,
//! the upstream's `X-Request-Id`, the client's response header and a panic's log line all carry
//! the same one.
//!
//! The client's `X-Request-Id` is kept when it is a sane token (it joins the firewall's log to the
//! client's traces); anything else (too long, control characters, log-injection attempts) is
//! replaced by a fresh UUID. [`RequestIdLayer`] is a plain tower layer rather than
//! `axum::middleware::from_fn`, which clones the inner service and boxes the whole request future
//! on every call (1.5% of the firewall's instructions per proxied request, counted with callgrind).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use tower::{Layer, Service};

use crate::upstream::X_REQUEST_ID;

/// The request's id (in the request's extensions), as text for logs and as the header value sent
/// upstream and echoed to the client: decided and validated once.
#[derive(Debug, Clone)]
pub struct RequestId {
    text: Arc<str>,
    header: HeaderValue,
}

impl RequestId {
    /// The client's `X-Request-Id` when it is a sane token, else a fresh UUID.
    pub fn decide(headers: &HeaderMap) -> RequestId {
        let sane = |id: &&str| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        };
        let client = headers
            .get(X_REQUEST_ID)
            .and_then(|value| Some((value.to_str().ok().filter(sane)?, value)));
        match client {
            Some((text, value)) => RequestId {
                text: Arc::from(text),
                header: value.clone(),
            },
            None => {
                let mut buffer = uuid::Uuid::encode_buffer();
                let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
                // Hex digits and dashes always make a valid header value; the fallback keeps this
                // total without a panic path.
                let header = HeaderValue::from_str(text)
                    .unwrap_or_else(|_| HeaderValue::from_static("request-id-unavailable"));
                RequestId {
                    text: Arc::from(&*text),
                    header,
                }
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text, shared (for work that outlives the handler, such as a streamed answer).
    pub fn shared(&self) -> &Arc<str> {
        &self.text
    }

    pub fn header(&self) -> &HeaderValue {
        &self.header
    }
}

/// A caught panic's message, put in the 500's extensions by [`caught_panic`] (the panic guard,
/// inside this layer) so that it is logged here with the request id, and the answer is rendered
/// for the client's `Accept` (the panicking handler never got to do either).
#[derive(Debug, Clone)]
struct Panicked(String);

/// The panic guard's answer (`CatchPanicLayer::custom`): this layer turns it into a GraphQL-shaped
/// `INTERNAL_ERROR` that names the request id and nothing about the panic.
pub fn caught_panic(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    let mut response = Response::new(axum::body::Body::empty());
    response.extensions_mut().insert(Panicked(message));
    response
}

/// Gives every request a [`RequestId`], echoes it in `X-Request-Id`, logs caught panics with it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = WithRequestId<S>;

    fn layer(&self, inner: S) -> WithRequestId<S> {
        WithRequestId { inner }
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct WithRequestId<S> {
    inner: S,
}

impl<S> Service<Request> for WithRequestId<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let id = RequestId::decide(request.headers());
        request.extensions_mut().insert(id.clone());
        // Kept for the rare panic's answer; a header value shares the request's buffer.
        let accept = request.headers().get(header::ACCEPT).cloned();
        ResponseFuture {
            inner: self.inner.call(request),
            id,
            accept,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`WithRequestId`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        id: RequestId,
        accept: Option<HeaderValue>,
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Ready(Ok(response)) => response,
        };
        if let Some(Panicked(message)) = response.extensions().get::<Panicked>() {
            let id = this.id.as_str();
            tracing::error!(request_id = %id, panic = %message, "panic while handling a request");
            response = super::reject::internal_error(id, this.accept.as_ref());
        }
        response
            .headers_mut()
            .insert(X_REQUEST_ID, this.id.header().clone());
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_client_ids_are_kept_and_others_replaced() {
        let with = |id: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-request-id", HeaderValue::from_str(id).unwrap());
            RequestId::decide(&headers)
        };
        let kept = with("trace-42.a:b_c");
        assert_eq!(kept.as_str(), "trace-42.a:b_c");
        assert_eq!(kept.header(), "trace-42.a:b_c");
        for hostile in ["", "a b", "x\"}", &"a".repeat(129)] {
            let replaced = with(hostile);
            assert_ne!(replaced.as_str(), hostile);
            assert!(
                uuid::Uuid::parse_str(replaced.as_str()).is_ok(),
                "{replaced:?}"
            );
            assert_eq!(replaced.header(), replaced.as_str());
        }
        assert!(uuid::Uuid::parse_str(RequestId::decide(&HeaderMap::new()).as_str()).is_ok());
    }
}
