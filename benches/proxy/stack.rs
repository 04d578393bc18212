//! The firewall's bare stack, (d) and its variants (g) and (h): the variants rebuild `serve_workers`
//! here (per-core single-threaded runtimes, one acceptor handing each connection to the worker
//! with the fewest open) so that one knob at a time can change without touching `src/`.
//!
//! The rebuild leaves out what the firewall wraps around each connection (the head deadline and
//! idle timer, the connection caps): (h0) is the rebuild with every knob as the firewall sets it,
//! so that each variant compares against h0 and h0 against d sizes the wrapping.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use graphql_firewall::upstream::{Outgoing, Settings, Upstream};
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tower::ServiceExt;

/// The largest request head the firewall's server buffers (`MAX_HEAD_BYTES` in `src/server.rs`).
const FIREWALL_MAX_BUF: usize = 64 * 1024;

/// What a variant changes from the firewall's stack; `FIREWALL` is the stack as it is.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    /// hyper's `service_fn` forwarding directly, instead of axum's router, extractors and the
    /// firewall's edge layers (request id, panic catching).
    pub plain: bool,
    /// hyper writes each answer flattened into one buffer (`writev(false)`) instead of queueing
    /// head and body for one vectored write.
    pub flatten: bool,
    /// hyper's default `max_buf_size` (~400 KiB) instead of the firewall's 64 KiB.
    pub default_max_buf: bool,
    /// hyper's `pipeline_flush`: answers of pipelined requests flushed together.
    pub pipeline_flush: bool,
    /// Every worker accepts from its own `SO_REUSEPORT` socket (the kernel spreads connections by
    /// hash) instead of one acceptor handing them out.
    pub reuseport: bool,
    /// Each downstream connection forwards on its own upstream connection, opened at its first
    /// request, instead of the firewall's upstream client (per-thread pools, header hygiene).
    pub dedicated: bool,
}

const FIREWALL: Knobs = Knobs {
    plain: false,
    flatten: false,
    default_max_buf: false,
    pipeline_flush: false,
    reuseport: false,
    dedicated: false,
};

/// The variants `PROXY_BENCH_VARIANTS=on` adds, one knob each.
pub const VARIANTS: [(&str, Knobs); 7] = [
    (
        "g: hyper service_fn",
        Knobs {
            plain: true,
            ..FIREWALL
        },
    ),
    ("h0: d rebuilt", FIREWALL),
    (
        "h1: flattened writes",
        Knobs {
            flatten: true,
            ..FIREWALL
        },
    ),
    (
        "h2: default max_buf",
        Knobs {
            default_max_buf: true,
            ..FIREWALL
        },
    ),
    (
        "h3: pipeline_flush",
        Knobs {
            pipeline_flush: true,
            ..FIREWALL
        },
    ),
    (
        "h4: SO_REUSEPORT",
        Knobs {
            reuseport: true,
            ..FIREWALL
        },
    ),
    (
        "h5: upstream per conn",
        Knobs {
            dedicated: true,
            ..FIREWALL
        },
    ),
];

/// The firewall's upstream client for the static upstream on `port`.
fn upstream_client(port: u16) -> Upstream {
    Upstream::new(&Settings {
        url: format!("http://127.0.0.1:{port}/graphql")
            .parse()
            .expect("static URL"),
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
        max_concurrent: 1024,
        queue_timeout: Duration::from_secs(1),
    })
    .expect("upstream client")
}

/// One per core, or `PROXY_BENCH_WORKERS` (the instruction counts run every proxy on one thread).
fn workers() -> usize {
    std::env::var("PROXY_BENCH_WORKERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A loopback listener on `port` (0: a free one).
fn listen(port: u16) -> std::net::TcpListener {
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("a loopback port")
}

/// The request id every bare stack sends (the firewall decides one per request).
const REQUEST_ID: HeaderValue = HeaderValue::from_static("bench");

/// The upstream's answer body, read to its end as the firewall's hardening stage reads it.
///
/// The upstream client gives a connection back to its pool only when the body is polled to its
/// end (`None`); hyper's server stops polling a body as soon as it reports `is_end_stream` or its
/// `Content-Length` is written, so handed to hyper directly the body is dropped one poll short and
/// every request opens a new upstream connection (measured: the bare stack at 0.35–0.41 of nginx
/// with the static upstream spending 31–34 µs per request instead of 8–9). The firewall itself
/// never hands it over directly (its hardening stage reads the body to its end), so the bare stacks
/// take the last poll here.
struct ReadToEnd(graphql_firewall::upstream::ResponseBody);

impl http_body::Body for ReadToEnd {
    type Data = Bytes;
    type Error = graphql_firewall::upstream::ExchangeError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let inner = std::pin::Pin::new(&mut self.0);
        let frame = std::task::ready!(inner.poll_frame(cx));
        if matches!(frame, Some(Ok(_))) && self.0.is_end_stream() {
            // At its end the body answers `None` at once, which gives the connection back.
            let _ = std::pin::Pin::new(&mut self.0).poll_frame(cx);
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// axum's handler of the bare stacks: the body read by axum, forwarded by the firewall's
/// upstream client, its answer streamed back.
async fn forward(
    State(upstream): State<Arc<Upstream>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let outgoing = Outgoing {
        method: Method::POST,
        query_string: None,
        headers: &headers,
        body,
        client_ip: peer.ip(),
        request_id: &REQUEST_ID,
    };
    match upstream.forward(outgoing).await {
        Ok(answer) => {
            let mut response = Response::new(Body::new(ReadToEnd(answer.body)));
            *response.status_mut() = answer.status;
            *response.headers_mut() = answer.headers;
            response
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// The router of the axum-based stacks: one route, the firewall's edge layers.
fn router(upstream: Arc<Upstream>, dedicated: bool) -> axum::Router {
    let route = if dedicated {
        axum::routing::post(forward_dedicated)
    } else {
        axum::routing::post(forward)
    };
    graphql_firewall::edge_layers(
        axum::Router::new()
            .route("/graphql", route)
            .with_state(upstream),
    )
}

/// Serves (d) on `port` (0: a free one): axum on the firewall's own `serve_workers` with its
/// connection handling and limits, forwarding with [`forward`]. Returns the port.
pub fn spawn_bare(upstream_port: u16, port: u16) -> u16 {
    let listener = listen(port);
    let port = listener.local_addr().expect("bound").port();
    let traffic = graphql_firewall::Traffic {
        router: router(Arc::new(upstream_client(upstream_port)), false),
        limits: graphql_firewall::ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_connections_per_ip: None,
            exempt: graphql_firewall::net::IpNetworks::default(),
        },
        metrics: Arc::new(graphql_firewall::metrics::Metrics::new()),
    };
    let workers = std::num::NonZeroUsize::new(workers()).unwrap_or(std::num::NonZeroUsize::MIN);
    std::thread::spawn(move || {
        let control = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("bench runtime");
        let forever = std::future::pending::<()>();
        let _ = control.block_on(graphql_firewall::serve_workers(
            listener,
            traffic,
            workers,
            forever,
            Duration::ZERO,
        ));
    });
    port
}

/// Everything a variant's connection needs.
#[derive(Clone)]
struct Stack {
    knobs: Knobs,
    upstream: Arc<Upstream>,
    upstream_address: SocketAddr,
    router: axum::Router,
}

/// Serves a variant on `port` (0: a free one); returns the port.
pub fn spawn_variant(upstream_port: u16, knobs: Knobs, port: u16) -> u16 {
    let upstream = Arc::new(upstream_client(upstream_port));
    let stack = Stack {
        knobs,
        router: router(upstream.clone(), knobs.dedicated),
        upstream,
        upstream_address: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
    };
    if knobs.reuseport {
        let port = if port == 0 { crate::free_port() } else { port };
        for _ in 0..workers() {
            // Bound here, listening on the worker (a listener belongs to the runtime that polls it).
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.set_reuseport(true).expect("SO_REUSEPORT");
            socket
                .bind(SocketAddr::from(([127, 0, 0, 1], port)))
                .expect("bind the shared port");
            let stack = stack.clone();
            run_on_worker(async move {
                let listener = socket.listen(1024).expect("listen");
                loop {
                    if let Ok((stream, peer)) = listener.accept().await {
                        tokio::spawn(serve(stream, peer, stack.clone()));
                    }
                }
            });
        }
        return port;
    }
    let listener = listen(port);
    let port = listener.local_addr().expect("bound").port();
    let mut handoffs = Vec::new();
    for _ in 0..workers() {
        let (handoff, mut incoming) =
            mpsc::unbounded_channel::<(std::net::TcpStream, SocketAddr)>();
        let open = Arc::new(AtomicUsize::new(0));
        handoffs.push((handoff, open.clone()));
        let stack = stack.clone();
        run_on_worker(async move {
            while let Some((stream, peer)) = incoming.recv().await {
                let Ok(stream) = TcpStream::from_std(stream) else {
                    continue;
                };
                let stack = stack.clone();
                let open = open.clone();
                tokio::spawn(async move {
                    serve(stream, peer, stack).await;
                    open.fetch_sub(1, Ordering::AcqRel);
                });
            }
        });
    }
    run_on_worker(async move {
        listener.set_nonblocking(true).expect("non-blocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let Ok(stream) = stream.into_std() else {
                continue;
            };
            // As the firewall's acceptor: the worker with the fewest open connections.
            if let Some((handoff, open)) = handoffs
                .iter()
                .min_by_key(|(_, open)| open.load(Ordering::Acquire))
            {
                open.fetch_add(1, Ordering::AcqRel);
                let _ = handoff.send((stream, peer));
            }
        }
    });
    port
}

/// Runs `work` on a thread of its own with a single-threaded runtime, for the process's life.
fn run_on_worker(work: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("worker runtime")
            .block_on(work);
    });
}

/// One connection of a variant, with hyper configured by its knobs.
async fn serve(stream: TcpStream, peer: SocketAddr, stack: Stack) {
    let _ = stream.set_nodelay(true);
    let knobs = stack.knobs;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    if !knobs.default_max_buf {
        builder.max_buf_size(FIREWALL_MAX_BUF);
    }
    if knobs.flatten {
        builder.writev(false);
    }
    if knobs.pipeline_flush {
        builder.pipeline_flush(true);
    }
    let io = TokioIo::new(stream);
    if knobs.plain {
        let upstream = stack.upstream;
        let service = hyper::service::service_fn(move |request| {
            forward_plain(request, peer, upstream.clone())
        });
        let _ = builder.serve_connection(io, service).with_upgrades().await;
        return;
    }
    let dedicated = knobs
        .dedicated
        .then(|| Arc::new(Dedicated::new(stack.upstream_address)));
    let router = stack.router;
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(dedicated) = &dedicated {
            request.extensions_mut().insert(dedicated.clone());
        }
        router.clone().oneshot(request)
    });
    let _ = builder.serve_connection(io, service).with_upgrades().await;
}

type PlainBody = Either<ReadToEnd, Empty<Bytes>>;

/// (g): the same forwarding as [`forward`], straight from hyper's `service_fn`.
async fn forward_plain(
    request: Request<Incoming>,
    peer: SocketAddr,
    upstream: Arc<Upstream>,
) -> Result<Response<PlainBody>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let status_only = |status| {
        let mut response = Response::new(Either::Right(Empty::new()));
        *response.status_mut() = status;
        Ok(response)
    };
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return status_only(StatusCode::BAD_REQUEST);
    };
    let outgoing = Outgoing {
        method: Method::POST,
        query_string: None,
        headers: &parts.headers,
        body,
        client_ip: peer.ip(),
        request_id: &REQUEST_ID,
    };
    match upstream.forward(outgoing).await {
        Ok(answer) => {
            let mut response = Response::new(Either::Left(ReadToEnd(answer.body)));
            *response.status_mut() = answer.status;
            *response.headers_mut() = answer.headers;
            Ok(response)
        }
        Err(_) => status_only(StatusCode::BAD_GATEWAY),
    }
}

/// (h5): a downstream connection's own upstream connection, opened at its first request. HTTP/1
/// serves one request of a connection at a time, so the lock is never contended.
struct Dedicated {
    upstream: SocketAddr,
    sender: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl Dedicated {
    fn new(upstream: SocketAddr) -> Dedicated {
        Dedicated {
            upstream,
            sender: tokio::sync::Mutex::new(None),
        }
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Option<Response<Incoming>> {
        let mut slot = self.sender.lock().await;
        if slot.as_ref().is_none_or(SendRequest::is_closed) {
            let stream = TcpStream::connect(self.upstream).await.ok()?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .ok()?;
            tokio::spawn(connection);
            *slot = Some(sender);
        }
        let sender = slot.as_mut()?;
        // The previous answer's body may still be streaming to the client.
        sender.ready().await.ok()?;
        sender.send_request(request).await.ok()
    }
}

/// (h5)'s handler: the client's headers as they came, `Host` and `X-Forwarded-For` set, on the
/// connection's own upstream connection.
async fn forward_dedicated(
    axum::Extension(dedicated): axum::Extension<Arc<Dedicated>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    headers.remove(header::CONTENT_LENGTH);
    if let Ok(host) = HeaderValue::from_str(&dedicated.upstream.to_string()) {
        headers.insert(header::HOST, host);
    }
    if let Ok(client) = HeaderValue::from_str(&peer.ip().to_string()) {
        headers.insert("x-forwarded-for", client);
    }
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = axum::http::Uri::from_static("/graphql");
    *request.headers_mut() = headers;
    match dedicated.send(request).await {
        Some(answer) => answer.map(Body::new),
        None => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// `PROXY_BENCH_SERVE=<target>,<port>,<upstream port>`: serves one of the in-process stacks (d, g,
/// h0–h5, by the letter before the colon) on `port` until killed, so that a profiler or
/// `valgrind --tool=callgrind` can run it alone (`benches/engines/callgrind.sh`).
pub fn serve_alone(spec: &str) -> ! {
    let parts: Vec<&str> = spec.split(',').collect();
    let [target, port, upstream] = parts.as_slice() else {
        panic!("PROXY_BENCH_SERVE=<target>,<port>,<upstream port>, not {spec}");
    };
    let port: u16 = port.parse().expect("PROXY_BENCH_SERVE's port");
    let upstream: u16 = upstream.parse().expect("PROXY_BENCH_SERVE's upstream port");
    if *target == "d" {
        spawn_bare(upstream, port);
    } else {
        let (_, knobs) = VARIANTS
            .iter()
            .find(|(name, _)| name.split(':').next() == Some(target))
            .unwrap_or_else(|| panic!("no in-process target {target} (d, g, h0–h5)"));
        spawn_variant(upstream, *knobs, port);
    }
    loop {
        std::thread::park();
    }
}
