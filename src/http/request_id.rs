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
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use tower::{Layer, Service};

/// The request's id, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// A caught panic's message, put in the 500's extensions by the panic guard (inside this layer)
/// so that it is logged here, with the request id (the panicking handler never got to log).
#[derive(Debug, Clone)]
pub struct Panicked(pub String);

/// The client's `X-Request-Id` when it is a sane token, else a fresh UUID.
pub fn decide(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(fresh, str::to_owned)
}

/// A random UUID, hyphenated and lower-case (written directly, without the formatting machinery).
fn fresh() -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_lower(&mut buffer)
        .to_owned()
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
        let id: Arc<str> = Arc::from(decide(request.headers()));
        request.extensions_mut().insert(RequestId(id.clone()));
        ResponseFuture {
            inner: self.inner.call(request),
            id,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`WithRequestId`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        id: Arc<str>,
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
        let id = &**this.id;
        if let Some(Panicked(message)) = response.extensions().get::<Panicked>() {
            tracing::error!(request_id = %id, panic = %message, "panic while handling a request");
        }
        if let Ok(value) = HeaderValue::from_str(id) {
            response.headers_mut().insert("x-request-id", value);
        }
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
            decide(&headers)
        };
        assert_eq!(with("trace-42.a:b_c"), "trace-42.a:b_c");
        for hostile in ["", "a b", "x\"}", &"a".repeat(129)] {
            let replaced = with(hostile);
            assert_ne!(replaced, hostile);
            assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
        }
        assert!(uuid::Uuid::parse_str(&decide(&HeaderMap::new())).is_ok());
    }
}
