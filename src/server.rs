//! Serving the traffic router that `lib.rs` built: one listener in tests ([`serve`]), or per-core
//! workers in the binary ([`serve_workers`]); every connection under the same connection limits,
//! and graceful shutdown bounded by a grace period.
//!
//! # Threats
//! A connection costs a file descriptor and memory whether or not it ever sends a request, so
//! nothing a client does at the connection level may hold one for free: the request head must
//! arrive within `HEADER_READ_TIMEOUT` of the connection (or of the next request's first byte), a
//! keep-alive connection with no request in flight is closed after `IDLE_TIMEOUT` without traffic
//! (a client that stops reading its answer included), the process holds at most `MAX_CONNECTIONS`
//! and one address at most `MAX_CONNECTIONS_PER_IP` (IPv6 by /64; trusted proxies are exempt, as
//! every client arrives through them). Beyond a cap a new connection is closed at once: the
//! acceptor never queues it and never spins. The traffic port speaks HTTP/1.1 only (with upgrades,
//! for WebSockets): HTTP/2 belongs to the TLS-terminating proxy in front, and h2c (HTTP/2 with prior
//! knowledge) would bring stream-level attacks (rapid reset, CONTINUATION floods) without a benefit.
//!
//! # Workers
//! Each worker is a single-threaded runtime that owns its connections, their upstream exchanges
//! included, so a request is served without waking another core. Connections are handed to the
//! workers by one acceptor, always to the worker with the fewest open connections: when the workers
//! instead raced to accept from a shared socket, whichever was awake took the whole backlog, and a
//! few long-lived keep-alive connections (a load balancer's pool, a benchmark's clients) could
//! leave every other core idle; docs/PERFORMANCE.md has the measurements.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::connection_slot::ConnectionSlot;
use crate::metrics::Metrics;
use crate::net::IpNetworks;

/// The connection-level limits (`HEADER_READ_TIMEOUT`, `IDLE_TIMEOUT`, `MAX_CONNECTIONS`,
/// `MAX_CONNECTIONS_PER_IP`).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// From the connection (or a later request's first byte) to its complete head.
    pub header_read_timeout: Duration,
    /// No traffic and no request in flight for this long closes a connection.
    pub idle_timeout: Duration,
    /// Open connections of the whole process.
    pub max_connections: usize,
    /// Open connections of one address (IPv6: one /64); `None`: no cap.
    pub max_connections_per_ip: Option<usize>,
    /// Peers exempt from the per-address cap (`TRUSTED_PROXIES`: every client comes through them).
    pub exempt: IpNetworks,
}

/// What [`serve`] and [`serve_workers`] serve: the traffic router, its connection limits, and the
/// metrics that count refused and timed-out connections.
#[derive(Clone, Debug)]
pub struct Traffic {
    pub router: Router,
    pub limits: ConnectionLimits,
    pub metrics: Arc<Metrics>,
}

/// Serves `traffic` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// for at most `grace` (idle keep-alive connections are closed at once).
pub async fn serve(
    listener: TcpListener,
    traffic: Traffic,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    let admission = Arc::new(Admission::new(&traffic.limits));
    let (stop, stopped) = watch::channel(false);
    let serving = Serving {
        traffic,
        stopped,
        open: Arc::default(),
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    pause_after_accept_error().await;
                    continue;
                };
                let Some(permit) = admission.admit(peer.ip(), &serving.traffic) else {
                    continue;
                };
                serving.spawn(stream, peer, permit);
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    serving.drain(grace).await;
    Ok(())
}

/// Serves `traffic` on `workers` threads until `shutdown` resolves, then lets in-flight requests
/// finish for at most `grace`.
///
/// The caller's runtime accepts and hands each connection to the worker with the fewest open
/// connections; each worker is a single-threaded runtime serving its connections as [`serve`]
/// does. A worker that fails or panics stops the whole process with an error rather than leaving
/// it a worker short.
pub async fn serve_workers(
    listener: std::net::TcpListener,
    traffic: Traffic,
    workers: NonZeroUsize,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let admission = Arc::new(Admission::new(&traffic.limits));
    let (stop, stopped) = watch::channel(false);
    let (report, mut reports) = mpsc::unbounded_channel();
    let mut handoffs = Vec::with_capacity(workers.get());
    for index in 0..workers.get() {
        let (handoff, incoming) = mpsc::unbounded_channel::<Accepted>();
        handoffs.push(Handoff {
            sender: handoff,
            open: Arc::default(),
        });
        let serving = Serving {
            traffic: traffic.clone(),
            stopped: stopped.clone(),
            open: Arc::default(),
        };
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
                        .and_then(|runtime| runtime.block_on(serving.worker(incoming, grace)))
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
        () = accept_loop(&listener, &handoffs, &admission, &traffic) => None,
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

// === Accepting ===

/// An accepted connection on its way to a worker, already counted as that worker's and admitted.
type Accepted = (std::net::TcpStream, SocketAddr, Permit);

/// A worker's end of the acceptor: where its connections are sent and how many it has open. The
/// channel is unbounded in type only: every queued connection holds a permit, so `MAX_CONNECTIONS`
/// bounds it.
struct Handoff {
    sender: mpsc::UnboundedSender<Accepted>,
    open: Arc<AtomicUsize>,
}

/// Accepts for ever (until a worker's channel is gone), handing each admitted connection to the
/// worker with the fewest open connections.
async fn accept_loop(
    listener: &TcpListener,
    handoffs: &[Handoff],
    admission: &Arc<Admission>,
    traffic: &Traffic,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                pause_after_accept_error().await;
                continue;
            }
        };
        let Some(permit) = admission.admit(peer.ip(), traffic) else {
            continue;
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
        let permit = permit.on_worker(&handoff.open);
        if handoff.sender.send((stream, peer, permit)).is_err() {
            // The worker is gone; its failure is reported by its thread.
            return;
        }
    }
}

/// Errors of one connection (reset before it was accepted) concern only that one; others (out of
/// file descriptors despite `MAX_CONNECTIONS`) last a while: pause rather than spin.
async fn pause_after_accept_error() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// The worker with the fewest open connections (the first of equals).
fn least_loaded(handoffs: &[Handoff]) -> Option<&Handoff> {
    handoffs
        .iter()
        .min_by_key(|handoff| handoff.open.load(Ordering::Relaxed))
}

/// The connection caps: the process's open connections and each address's.
#[derive(Debug)]
struct Admission {
    open: AtomicUsize,
    per_address: Mutex<HashMap<AddressKey, usize>>,
    max: usize,
    max_per_address: Option<usize>,
    exempt: IpNetworks,
}

/// An address as the per-address cap counts it: IPv4 as is, IPv6 by its /64 (one host usually
/// owns a whole /64, so rotating inside it must not multiply the cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddressKey {
    V4(u32),
    V6(u64),
}

impl AddressKey {
    fn of(ip: IpAddr) -> AddressKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressKey::V4(v4.to_bits()),
            IpAddr::V6(v6) => AddressKey::V6((v6.to_bits() >> 64) as u64),
        }
    }
}

impl Admission {
    fn new(limits: &ConnectionLimits) -> Admission {
        Admission {
            open: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            max: limits.max_connections,
            max_per_address: limits.max_connections_per_ip,
            exempt: limits.exempt.clone(),
        }
    }

    /// A permit for a new connection from `ip`, or `None` (the connection is dropped, i.e.
    /// closed, and counted).
    fn admit(self: &Arc<Self>, ip: IpAddr, traffic: &Traffic) -> Option<Permit> {
        let refuse = |cap: &'static str| {
            crate::metrics::count(&traffic.metrics.connections_refused, cap);
            None
        };
        let open = self.open.fetch_add(1, Ordering::AcqRel);
        if open >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return refuse("max_connections");
        }
        let key = match self.max_per_address {
            Some(max) if !self.exempt.contains(ip) => {
                let key = AddressKey::of(ip);
                let mut per_address = self
                    .per_address
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let count = per_address.entry(key).or_insert(0);
                if *count >= max {
                    drop(per_address);
                    self.open.fetch_sub(1, Ordering::AcqRel);
                    return refuse("max_connections_per_ip");
                }
                *count += 1;
                Some(key)
            }
            _ => None,
        };
        Some(Permit {
            admission: self.clone(),
            key,
            worker: None,
        })
    }

    fn release(&self, key: Option<AddressKey>) {
        if let Some(key) = key {
            let mut per_address = self
                .per_address
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = per_address.get_mut(&key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    per_address.remove(&key);
                }
            }
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One open connection, counted from its admission until it is dropped: in the process's total,
/// its address's count and its worker's.
struct Permit {
    admission: Arc<Admission>,
    key: Option<AddressKey>,
    worker: Option<Arc<AtomicUsize>>,
}

impl Permit {
    fn on_worker(mut self, open: &Arc<AtomicUsize>) -> Permit {
        open.fetch_add(1, Ordering::Relaxed);
        self.worker = Some(open.clone());
        self
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.release(self.key);
        if let Some(worker) = &self.worker {
            worker.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

// === Serving connections ===

/// One connection in its runtime's count of open connections, until dropped.
struct Opened(Arc<AtomicUsize>);

impl Opened {
    fn count(open: &Arc<AtomicUsize>) -> Opened {
        open.fetch_add(1, Ordering::AcqRel);
        Opened(Arc::clone(open))
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a runtime needs to serve connections.
struct Serving {
    traffic: Traffic,
    /// Turns `true` when the server stops: connections finish their request and close.
    stopped: watch::Receiver<bool>,
    /// This runtime's open connections (drained at shutdown).
    open: Arc<AtomicUsize>,
}

impl Serving {
    /// A worker: serves the connections the acceptor hands it until the acceptor stops.
    async fn worker(
        self,
        mut incoming: mpsc::UnboundedReceiver<Accepted>,
        grace: Duration,
    ) -> io::Result<()> {
        while let Some((stream, peer, permit)) = incoming.recv().await {
            // Registered with this worker's reactor, so its readiness wakes this thread only.
            let Ok(stream) = TcpStream::from_std(stream) else {
                continue;
            };
            self.spawn(stream, peer, permit);
        }
        self.drain(grace).await;
        Ok(())
    }

    fn spawn(&self, stream: TcpStream, peer: SocketAddr, permit: Permit) {
        // Answers are written whole, in one call: Nagle's algorithm could only hold them back.
        let _ = stream.set_nodelay(true);
        let traffic = self.traffic.clone();
        let mut stopped = self.stopped.clone();
        let open = Opened::count(&self.open);
        tokio::spawn(async move {
            // Released when the connection ends, unless an upgrade took it over.
            let slot = ConnectionSlot::new(Box::new((permit, open)), stopped.clone());
            serve_connection(stream, peer, traffic, &mut stopped, slot).await;
        });
    }

    /// Waits for this runtime's connections (upgraded ones included) to finish, at most `grace`.
    async fn drain(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        while self.open.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                tracing::warn!(
                    grace_ms = grace.as_millis() as u64,
                    open = self.open.load(Ordering::Acquire),
                    "in-flight requests outlived the shutdown grace period"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Serves one connection's requests (HTTP/1.1, keep-alive, upgrades) until it closes, a timeout
/// fires, or the server stops (then the request in flight is finished first).
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    traffic: Traffic,
    stopped: &mut watch::Receiver<bool>,
    slot: ConnectionSlot,
) {
    let activity = Arc::new(Activity::default());
    let io = Watched::new(stream, &traffic.limits, activity.clone());
    let router = traffic.router.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(slot.clone());
        let in_flight = InFlight::start(&activity);
        let answer = router.clone().oneshot(request);
        async move {
            let response = answer.await;
            if let Ok(response) = &response
                && response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS
            {
                in_flight.0.upgraded.store(true, Ordering::Release);
            }
            drop(in_flight);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The head's deadline is ours (see `Watched`); hyper's own timer would also close idle
    // keep-alive connections after the (much shorter) header deadline.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let stop = async {
        // Only `Err` when the server is gone, which also means stop.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = &mut connection => result,
        () = stop => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    let timed_out = result
        .as_ref()
        .err()
        .and_then(std::error::Error::source)
        .and_then(|source| source.downcast_ref::<io::Error>())
        .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut);
    if timed_out {
        traffic.metrics.connections_timed_out.inc();
    }
}

/// The largest request head hyper buffers (request line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Requests of one connection in flight: while one is, neither the head deadline nor the idle
/// timer runs (a slow upstream is not the client's idleness; the body has its own deadline).
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// The connection's task, waiting to read while a request is in flight: woken when the last
    /// request ends, so that the idle timer is armed (hyper reads again only when woken).
    reader: futures_util::task::AtomicWaker,
    /// The connection switched protocols (a WebSocket): no more request heads, only the idle timer.
    upgraded: std::sync::atomic::AtomicBool,
}

/// One request in flight, from its head until its handler answered.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.reader.wake();
        }
    }
}

/// A connection's socket with the head deadline and the idle timer.
///
/// The deadline of a request head starts at the connection's first byte (or at accept) and at the
/// first byte of each later request; the idle timer restarts at every byte read or written. Both
/// are checked only when the socket has nothing to give and no request is in flight; a timer is
/// re-armed lazily (only when it fires early), so traffic costs a clock read, not a timer update.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// Set while a request head is expected to complete.
    head_deadline: Option<Instant>,
    last_traffic: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Watched {
    fn new(stream: TcpStream, limits: &ConnectionLimits, activity: Arc<Activity>) -> Watched {
        let now = Instant::now();
        let head_deadline = now + limits.header_read_timeout;
        Watched {
            stream,
            activity,
            header_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
            head_deadline: Some(head_deadline),
            last_traffic: now,
            timer: Box::pin(tokio::time::sleep_until(head_deadline)),
        }
    }

    /// Pending I/O: an error once the applicable deadline has passed, else wake when it does.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.activity.in_flight.load(Ordering::Acquire) > 0 {
            // The request owns the connection now; the next head gets a fresh deadline.
            self.head_deadline = None;
            self.activity.reader.register(cx.waker());
            // The request may have ended between the load and the registration.
            if self.activity.in_flight.load(Ordering::Acquire) > 0 {
                return Poll::Pending;
            }
        }
        let deadline = self
            .head_deadline
            .unwrap_or(self.last_traffic + self.idle_timeout);
        if Instant::now() >= deadline {
            return Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                if self.head_deadline.is_some() {
                    "request head not received in time"
                } else {
                    "idle connection"
                },
            ));
        }
        // Re-armed only when the deadline moved earlier or the timer has fired: traffic moves
        // the deadline later on every request, and a timer that fires early only brings the
        // connection back here, where it is re-armed.
        if deadline < self.timer.deadline() || self.timer.is_elapsed() {
            self.timer.as_mut().reset(deadline);
        }
        // Registers the waker; the deadline is checked again when it fires.
        let _ = self.timer.as_mut().poll(cx);
        Poll::Pending
    }

    fn on_traffic(&mut self, read: bool) {
        self.last_traffic = Instant::now();
        if read
            && self.head_deadline.is_none()
            && self.activity.in_flight.load(Ordering::Acquire) == 0
            && !self.activity.upgraded.load(Ordering::Acquire)
        {
            // The first byte of the next request head.
            self.head_deadline = Some(self.last_traffic + self.header_timeout);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.on_traffic(true);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.poll_deadline(cx).map(Err),
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.on_traffic(false);
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_deadline(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.on_traffic(false);
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_deadline(cx).map(Err),
        }
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

    fn limits(max: usize, per_ip: Option<usize>) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: max,
            max_connections_per_ip: per_ip,
            exempt: "10.0.0.0/8".parse().unwrap(),
        }
    }

    fn traffic(limits: ConnectionLimits) -> Traffic {
        Traffic {
            router: Router::new(),
            limits,
            metrics: Arc::new(Metrics::new()),
        }
    }

    #[test]
    fn connections_go_to_the_worker_with_the_fewest_open() {
        let workers = handoffs(&[3, 1, 2, 1]);
        let chosen = least_loaded(&workers).expect("a worker");
        assert!(std::ptr::eq(chosen, &workers[1]));
        assert!(least_loaded(&[]).is_none());
    }

    #[test]
    fn a_connection_counts_until_it_is_dropped_everywhere_it_counts() {
        let traffic = traffic(limits(10, Some(5)));
        let admission = Arc::new(Admission::new(&traffic.limits));
        let worker = Arc::new(AtomicUsize::new(0));
        let permit = admission
            .admit("192.0.2.1".parse().unwrap(), &traffic)
            .unwrap()
            .on_worker(&worker);
        assert_eq!(admission.open.load(Ordering::Relaxed), 1);
        assert_eq!(worker.load(Ordering::Relaxed), 1);
        drop(permit);
        assert_eq!(admission.open.load(Ordering::Relaxed), 0);
        assert_eq!(worker.load(Ordering::Relaxed), 0);
        assert!(admission.per_address.lock().unwrap().is_empty());
    }

    #[test]
    fn the_caps_refuse_beyond_their_count_and_trusted_proxies_are_exempt() {
        let traffic = traffic(limits(4, Some(2)));
        let admission = Arc::new(Admission::new(&traffic.limits));
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64_other_host: IpAddr = "2001:db8::ffff".parse().unwrap();
        let a = admission.admit(client, &traffic).unwrap();
        let _b = admission.admit(client, &traffic).unwrap();
        assert!(admission.admit(client, &traffic).is_none(), "per address");
        let _c = admission.admit(same_64, &traffic).unwrap();
        let _d = admission.admit(same_64_other_host, &traffic).unwrap();
        assert!(
            admission
                .admit("10.1.2.3".parse().unwrap(), &traffic)
                .is_none(),
            "the process's cap holds for exempt peers too"
        );
        drop(a);
        assert!(
            admission
                .admit("10.1.2.3".parse().unwrap(), &traffic)
                .is_some()
        );
    }
}
