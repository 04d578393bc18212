//! Serving the traffic router that `lib.rs` built: one listener in tests ([`serve`]), or per-core
//! workers in the binary ([`serve_workers`]), each with graceful shutdown bounded by a grace period.
//!
//! Each worker is a single-threaded runtime that owns its connections, their upstream exchanges
//! included, so a request is served without waking another core. Connections are handed to the
//! workers by one acceptor, always to the worker with the fewest open connections: when the workers
//! instead raced to accept from a shared socket, whichever was awake took the whole backlog, and a
//! few long-lived keep-alive connections (a load balancer's pool, a benchmark's clients) could
//! leave every other core idle; README's performance section has the measurements.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::serve::{Listener, ListenerExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish for
/// at most `grace`. Connection info is attached so handlers know the client address.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    serve_on(listener.tap_io(no_delay), app, shutdown, grace).await
}

/// Answers are written whole, in one call: Nagle's algorithm could only hold them back.
fn no_delay(stream: &mut TcpStream) {
    let _ = stream.set_nodelay(true);
}

/// [`serve`] on any listener whose connections carry the client's address.
async fn serve_on<L, F>(
    listener: axum::serve::TapIo<L, F>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    F: FnMut(&mut L::Io) + Send + 'static,
{
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    tokio::pin!(server);
    tokio::select! {
        joined = &mut server => return joined.unwrap_or_else(|e| Err(io::Error::other(e))),
        _ = stopping_rx => {}
    }
    match tokio::time::timeout(grace, &mut server).await {
        Ok(joined) => joined.unwrap_or_else(|e| Err(io::Error::other(e))),
        Err(_) => {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "in-flight requests outlived the shutdown grace period"
            );
            Ok(())
        }
    }
}

/// Serves `app` on `workers` threads until `shutdown` resolves, then lets in-flight requests finish
/// for at most `grace`.
///
/// The caller's runtime accepts and hands each connection to the worker with the fewest open
/// connections; each worker is a single-threaded runtime serving its connections as [`serve`]
/// does. A worker that fails or panics stops the whole process with an error rather than leaving
/// it a worker short.
pub async fn serve_workers(
    listener: std::net::TcpListener,
    app: Router,
    workers: NonZeroUsize,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let local_addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (report, mut reports) = mpsc::unbounded_channel();
    let mut handoffs = Vec::with_capacity(workers.get());
    for index in 0..workers.get() {
        let (handoff, incoming) = mpsc::unbounded_channel();
        handoffs.push(Handoff {
            sender: handoff,
            open: Arc::default(),
        });
        let app = app.clone();
        let mut stopped = stopped.clone();
        let report = report.clone();
        std::thread::Builder::new()
            .name(format!("graphql-firewall-worker-{index}"))
            .spawn(move || {
                // Handlers' panics are caught per request; this catches one of the worker itself,
                // so that it is reported instead of leaving the process one worker short.
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .and_then(|runtime| {
                            runtime.block_on(async move {
                                let listener = Handed {
                                    incoming,
                                    local_addr,
                                };
                                let stop = async move {
                                    let _ = stopped.wait_for(|stop| *stop).await;
                                };
                                serve_on(listener.tap_io(|_| {}), app, stop, grace).await
                            })
                        })
                }))
                .unwrap_or_else(|_| Err(io::Error::other("a worker panicked")));
                let _ = report.send(served);
            })?;
    }
    drop(report);
    // Workers only end on their own when they fail: then the others are stopped too.
    let failed = tokio::select! {
        () = shutdown => None,
        served = reports.recv() => served,
        () = accept_loop(&listener, &handoffs) => None,
    };
    // No new connections from here on: the workers finish the ones they have.
    drop(handoffs);
    drop(listener);
    let _ = stop.send(true);
    let mut outcome = match failed {
        None => Ok(()),
        Some(Ok(())) => Err(io::Error::other("a worker stopped serving")),
        Some(Err(error)) => Err(error),
    };
    while let Some(served) = reports.recv().await {
        if let (Ok(()), Err(error)) = (&outcome, served) {
            outcome = Err(error);
        }
    }
    outcome
}

/// An accepted connection on its way to a worker, already counted as that worker's.
type Accepted = (std::net::TcpStream, SocketAddr, OpenConnection);

/// A worker's end of the acceptor: where its connections are sent and how many it has open. The
/// channel is unbounded in type only: each queued connection holds a file descriptor, so the
/// process's descriptor limit bounds it, as it bounds the listener's own backlog.
struct Handoff {
    sender: mpsc::UnboundedSender<Accepted>,
    open: Arc<AtomicUsize>,
}

/// Accepts for ever (until a worker's channel is gone), handing each connection to the worker
/// with the fewest open connections.
async fn accept_loop(listener: &TcpListener, handoffs: &[Handoff]) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Errors of one connection (reset before it was accepted) concern only that one;
                // others (out of file descriptors) last a while: pause rather than spin.
                if !is_connection_error(&error) {
                    tracing::error!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        // Out of this runtime's reactor, into the worker's: tokio registers every socket its
        // listener accepts, and waiting on a plain listener would need the unsafe
        // `AsyncFd::register` (this crate forbids unsafe code). Two `epoll_ctl` per connection.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let Some(handoff) = least_loaded(handoffs) else {
            return;
        };
        let open = OpenConnection::new(&handoff.open);
        if handoff.sender.send((stream, peer, open)).is_err() {
            // The worker is gone; its failure is reported by its thread.
            return;
        }
    }
}

/// The worker with the fewest open connections (the first of equals).
fn least_loaded(handoffs: &[Handoff]) -> Option<&Handoff> {
    handoffs
        .iter()
        .min_by_key(|handoff| handoff.open.load(Ordering::Relaxed))
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A worker's listener: the connections the acceptor hands it.
struct Handed {
    incoming: mpsc::UnboundedReceiver<Accepted>,
    local_addr: SocketAddr,
}

impl Listener for Handed {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        loop {
            let Some((stream, peer, open)) = self.incoming.recv().await else {
                // The acceptor has stopped: shutdown is under way and ends this listener's loop.
                return std::future::pending().await;
            };
            // Registered with this worker's reactor, so its readiness wakes this thread only.
            let Ok(mut stream) = TcpStream::from_std(stream) else {
                continue;
            };
            no_delay(&mut stream);
            return (
                Counted {
                    stream,
                    _open: open,
                },
                peer,
            );
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

/// Counts one of a worker's open connections, from its hand-off until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn new(open: &Arc<AtomicUsize>) -> OpenConnection {
        open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(open.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A served connection, counted as open while it lives.
struct Counted {
    stream: TcpStream,
    _open: OpenConnection,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handoffs(open: &[usize]) -> Vec<Handoff> {
        open.iter()
            .map(|&n| Handoff {
                sender: mpsc::unbounded_channel().0,
                open: Arc::new(AtomicUsize::new(n)),
            })
            .collect()
    }

    #[test]
    fn connections_go_to_the_worker_with_the_fewest_open() {
        let workers = handoffs(&[3, 1, 2, 1]);
        let chosen = least_loaded(&workers).expect("a worker");
        assert!(std::ptr::eq(chosen, &workers[1]));
        assert!(least_loaded(&[]).is_none());
    }

    #[test]
    fn a_connection_counts_from_its_hand_off_until_it_is_dropped() {
        let open = Arc::new(AtomicUsize::new(0));
        let connection = OpenConnection::new(&open);
        assert_eq!(open.load(Ordering::Relaxed), 1);
        drop(connection);
        assert_eq!(open.load(Ordering::Relaxed), 0);
    }
}
