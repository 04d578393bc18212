//! The embedded demo backend: a real `async-graphql` server on a loopback port, used by
//! `graphql-firewall demo` and as the upstream of the end-to-end tests.
//!
//! It records what reached it ([`Observed`]) so that tests can prove a refused request never
//! touched the backend, and which headers a forwarded one carried.
//!
//! Transports, all on [`PATH`]: GraphQL-over-HTTP (GET and POST, batches on POST); subscriptions
//! (and any other operation) over WebSocket with the subprotocol `graphql-transport-ws` or the
//! legacy `graphql-ws` ([`ws`]); over Server-Sent Events when `Accept` asks for
//! `text/event-stream`, and as `multipart/mixed` parts when it asks for
//! `multipart/mixed;boundary="graphql";subscriptionSpec="1.0"` ([`stream`]). async-graphql 7.2 has
//! no `@defer`/`@stream`, so there is no incremental delivery to serve.

pub mod identity;
pub mod schema;
pub mod stream;
pub mod ws;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::http::{GraphiQLSource, parse_query_string};
use async_graphql::{BatchRequest, BatchResponse};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use schema::DemoSchema;

/// The demo backend's SDL, annotated with `@cost` / `@listSize` (the firewall's default schema in `demo`).
pub const SDL: &str = include_str!("../../schema/demo.graphql");
/// The demo client's persisted-query manifest, compiled in so that `demo` serves its documented
/// `documentId` examples from any working directory and in the container.
pub const MANIFEST: &str = include_str!("../../persisted-queries/manifest.json");

/// The path the demo backend serves GraphQL on.
pub const PATH: &str = "/graphql";

/// What reached the backend.
#[derive(Debug, Default)]
pub struct Observed {
    requests: AtomicU64,
    last_headers: Mutex<Option<HeaderMap>>,
    last_request: Mutex<Option<(Option<String>, Bytes)>>,
    ws_connections: AtomicU64,
    ws_messages: AtomicU64,
    ws_subscribes: AtomicU64,
    last_ws_message: Mutex<Option<String>>,
}

impl Observed {
    /// Number of HTTP requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Headers of the most recent request.
    pub fn last_headers(&self) -> Option<HeaderMap> {
        self.last_headers.lock().ok().and_then(|h| h.clone())
    }

    /// URL query string and body of the most recent request.
    pub fn last_request(&self) -> Option<(Option<String>, Bytes)> {
        self.last_request.lock().ok().and_then(|r| r.clone())
    }

    /// Number of WebSocket connections upgraded.
    pub fn ws_connections(&self) -> u64 {
        self.ws_connections.load(Ordering::SeqCst)
    }

    /// Number of WebSocket data frames received, whatever their content.
    pub fn ws_messages(&self) -> u64 {
        self.ws_messages.load(Ordering::SeqCst)
    }

    /// Number of WebSocket messages that start an operation (`subscribe`, or legacy `start`).
    pub fn ws_subscribes(&self) -> u64 {
        self.ws_subscribes.load(Ordering::SeqCst)
    }

    /// The most recent WebSocket text frame received, as sent.
    pub fn last_ws_message(&self) -> Option<String> {
        self.last_ws_message.lock().ok().and_then(|m| m.clone())
    }
}

/// A running demo backend.
#[derive(Debug, Clone)]
pub struct DemoBackend {
    pub addr: SocketAddr,
    pub observed: Arc<Observed>,
}

impl DemoBackend {
    /// The GraphQL endpoint URL.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}{PATH}", self.addr)).expect("socket address forms a URL")
    }
}

/// What the demo's handlers share.
#[derive(Clone)]
struct Demo {
    schema: DemoSchema,
    observed: Arc<Observed>,
}

/// The demo backend's router: GraphQL over GET and POST (batches included), WebSocket, SSE and
/// `multipart/mixed`, all on [`PATH`].
pub fn router(observed: Arc<Observed>) -> Router {
    let demo = Demo {
        schema: schema::build(),
        observed: observed.clone(),
    };
    Router::new()
        .route(PATH, get(execute_get).post(execute_post))
        .with_state(demo)
        .layer(middleware::from_fn_with_state(observed, record))
}

async fn execute_post(State(demo): State<Demo>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(streaming) = stream::Streaming::from_accept(&headers) {
        return match serde_json::from_slice::<async_graphql::Request>(&body) {
            Ok(request) => streaming.respond(demo.schema.execute_stream(request)),
            Err(error) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
        };
    }
    match serde_json::from_slice::<BatchRequest>(&body) {
        Ok(batch) => respond(demo.schema.execute_batch(batch).await),
        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    }
}

async fn execute_get(State(demo): State<Demo>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return ws::upgrade(&mut parts, demo.schema, demo.observed).await;
    }
    let Some(query) = parts.uri.query().filter(|q| !q.is_empty()) else {
        // A browser visiting the endpoint gets GraphiQL, like most GraphQL servers.
        return Html(GraphiQLSource::build().endpoint(PATH).finish()).into_response();
    };
    let request = match parse_query_string(query) {
        Ok(request) => request,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    match stream::Streaming::from_accept(&parts.headers) {
        Some(streaming) => streaming.respond(demo.schema.execute_stream(request)),
        None => respond(BatchResponse::Single(demo.schema.execute(request).await)),
    }
}

fn respond(response: BatchResponse) -> Response {
    match serde_json::to_vec(&response) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Serves the demo backend on `listener` in a background task.
pub fn spawn(listener: TcpListener) -> std::io::Result<DemoBackend> {
    let addr = listener.local_addr()?;
    let observed = Arc::new(Observed::default());
    let app = router(observed.clone());
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "demo backend stopped");
        }
    });
    Ok(DemoBackend { addr, observed })
}

async fn record(State(observed): State<Arc<Observed>>, request: Request, next: Next) -> Response {
    observed.requests.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut last) = observed.last_headers.lock() {
        *last = Some(request.headers().clone());
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    if let Ok(mut last) = observed.last_request.lock() {
        *last = Some((parts.uri.query().map(str::to_owned), bytes.clone()));
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}
