//! Keep-alive HTTP/1.1 connections to the upstream, one pool per thread.
//!
//! Each connection's state machine runs as a task on the thread that opened it (hyper's
//! `client::conn::http1`), and the pool keeps the idle request senders on a thread-local stack.
//! Against hyper-util's pooled client this drops, on every request, the shared pool's lock and
//! keyed map, the lazy-connect set-up and the URI rewriting: 41.2k → 32.6k instructions per
//! exchange in a minimal proxy, counted with callgrind. With the per-core workers of
//! [`crate::serve_workers`] a request, its upstream exchange and its answer stay on one thread.
//!
//! An answer's body streams ([`ResponseBody`]): its connection returns to the pool only once the
//! body has been read to its end.
//!
//! # Stale connections
//! The upstream may close an idle keep-alive connection at any time (Node.js does after 5 s). A
//! closed connection is dropped when it is taken; one that closes while the request is handed over
//! gives the request back unsent (hyper's `TrySendError`), and the request is retried on another
//! connection. A request that may have been written is never replayed: it may be a mutation.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::response::Parts;
use axum::http::{Request, Uri};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use thread_local::ThreadLocal;
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Idle connections kept per thread; beyond that, connections are closed after use.
const MAX_IDLE_PER_THREAD: usize = 512;
/// Idle connections older than this are closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A connection to the upstream, plain or TLS.
pub type Connection = MaybeHttpsStream<TokioIo<TcpStream>>;

/// Why an exchange produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error("connecting to the upstream failed")]
    Connect,
    #[error("the connection to the upstream failed during the exchange")]
    Broken,
}

/// An answer's body as it streams from the upstream. Read to its end, it gives its connection
/// back to the pool; dropped before (the client went away, a limit was hit), the connection is
/// closed with it, since unread bytes would be the next answer's beginning.
#[derive(Debug)]
pub struct ResponseBody {
    body: Incoming,
    release: Option<(Arc<Pool>, SendRequest<Full<Bytes>>)>,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = ExchangeError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(None) => {
                if let Some((pool, sender)) = self.release.take() {
                    pool.put(sender);
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(_))) => {
                self.release = None;
                Poll::Ready(Some(Err(ExchangeError::Broken)))
            }
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection waiting for its next request.
#[derive(Debug)]
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

impl Idle {
    fn usable(&self) -> bool {
        !self.sender.is_closed() && self.since.elapsed() < IDLE_TIMEOUT
    }
}

#[derive(Debug)]
pub struct Pool {
    connector: HttpsConnector<HttpConnector>,
    idle: ThreadLocal<RefCell<Vec<Idle>>>,
}

impl Pool {
    pub fn new(connector: HttpsConnector<HttpConnector>) -> Pool {
        Pool {
            connector,
            idle: ThreadLocal::new(),
        }
    }

    /// Sends `request` (origin-form URI, `Host` set) to the server at `authority`
    /// (`scheme://host:port`) and returns the answer's head; the body streams, and the connection
    /// goes back to this thread's pool when the body has been read to its end.
    pub async fn exchange(
        self: &Arc<Self>,
        authority: &Uri,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Parts, ResponseBody), ExchangeError> {
        loop {
            let (mut sender, reused) = match self.take() {
                Some(sender) => (sender, true),
                // Boxed: connecting (TLS included) is rare, and its future is large.
                None => (Box::pin(self.connect(authority)).await?, false),
            };
            // A new connection takes its first request at once; a reused one must be ready, and
            // one the upstream closed meanwhile fails here, before anything is sent.
            if reused && sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = ResponseBody {
                        body,
                        release: Some((Arc::clone(self), sender)),
                    };
                    return Ok((parts, body));
                }
                Err(mut error) => match error.take_message() {
                    // Not written: safe to send elsewhere. A new connection that fails this way
                    // would fail again, so only reused ones are retried.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(ExchangeError::Broken),
                },
            }
        }
    }

    /// Opens a new connection (TLS for `https`), never pooled: a WebSocket takes it over.
    pub async fn open(&self, authority: &Uri) -> Result<Connection, ExchangeError> {
        self.connector
            .clone()
            .oneshot(authority.clone())
            .await
            .map_err(|_| ExchangeError::Connect)
    }

    /// Opens a connection and runs its state machine as a task on this thread's runtime.
    async fn connect(&self, authority: &Uri) -> Result<SendRequest<Full<Bytes>>, ExchangeError> {
        let io = self.open(authority).await?;
        let (sender, connection) = http1::handshake(io)
            .await
            .map_err(|_| ExchangeError::Connect)?;
        tokio::spawn(async move {
            // Its end (closed by either side, or failed) is seen by the sender; nothing to report.
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// The most recently used idle connection of this thread that is still open.
    fn take(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.get_or_default().borrow_mut();
        while let Some(candidate) = idle.pop() {
            if candidate.usable() {
                return Some(candidate.sender);
            }
        }
        None
    }

    fn put(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.get_or_default().borrow_mut();
        // Reuse is last-in first-out, so the oldest sit at the bottom: expire them here.
        if idle.first().is_some_and(|oldest| !oldest.usable()) {
            idle.retain(Idle::usable);
        }
        if idle.len() < MAX_IDLE_PER_THREAD {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}
