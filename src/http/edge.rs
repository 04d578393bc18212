//! The network- and browser-facing edge, around every route of the traffic port: IP allow and
//! deny lists (`ALLOW_IPS`, `DENY_IPS`, judged on the client IP the `TRUSTED_PROXIES` rules
//! resolve), CORS preflights answered here and never forwarded ([`super::cors`]), CORS headers on
//! every other answer, and the security headers on every answer ([`super::security_headers`]).
//! The admin listener has its own guard: only `ADMIN_ALLOW_IPS` (loopback by default), judged on
//! the socket peer.
//!
//! # Threats
//! - An allow list judged on a header the client writes is no list: the address is the socket
//!   peer unless that peer is a trusted proxy (the same rule as budgets).
//! - A preflight forwarded to the upstream lets the upstream's CORS policy — often `*` — decide
//!   for the firewall; here no preflight reaches it, and without `CORS_ALLOW_ORIGINS` every
//!   preflight is refused (403, no `Access-Control-*` header).
//! - `/metrics` names rules, tiers and traffic volumes: it is answered only to listed addresses,
//!   and an answer without a known peer is refused (fail closed).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tower::{Layer, Service};

use super::client_ip::{ClientIp, client_ip};
use super::cors::Cors;
use super::reject::{RejectCode, Rejection, Render};
use super::security_headers::{Answer, SecurityHeaders};
use crate::metrics::{Metrics, RequestLabels, count};
use crate::net::IpNetworks;

/// Marks a response forwarded from the upstream (any other is the firewall's own answer).
#[derive(Debug, Clone, Copy)]
pub struct Forwarded;

/// The edge's settings.
#[derive(Debug)]
pub struct Edge {
    /// `CORS_ALLOW_ORIGINS` and the rest; `None`: no origin is allowed.
    pub cors: Option<Cors>,
    /// `ALLOW_IPS`: when set, only these clients.
    pub allow_ips: Option<IpNetworks>,
    /// `DENY_IPS`.
    pub deny_ips: IpNetworks,
    pub trusted_proxies: IpNetworks,
    pub headers: SecurityHeaders,
    pub render: Render,
    pub metrics: Arc<Metrics>,
}

impl Edge {
    fn admits(&self, ip: IpAddr) -> bool {
        !self.deny_ips.contains(ip) && self.allow_ips.as_ref().is_none_or(|list| list.contains(ip))
    }
}

/// The traffic port's edge around the routes: see the module documentation. A plain layer, not
/// `middleware::from_fn`, so that every request's future is not boxed once more for it.
#[derive(Debug, Clone)]
pub struct EdgeLayer(pub Arc<Edge>);

impl<S> Layer<S> for EdgeLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            edge: self.0.clone(),
        }
    }
}

/// The service of [`EdgeLayer`].
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    edge: Arc<Edge>,
}

impl<S> Service<Request> for Guarded<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = GuardedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let edge = &self.edge;
        let ip = client_ip(peer(&request), request.headers(), &edge.trusted_proxies);
        request.extensions_mut().insert(ClientIp(ip));
        let answer = if !edge.admits(ip) {
            tracing::info!(target: "graphql_firewall::policy", client = %ip, "client address refused");
            edge.metrics
                .requests
                .get_or_create(&RequestLabels {
                    // Refused before anything is known of it, a WebSocket handshake included.
                    transport: super::audit::Channel::Http.as_str(),
                    verdict: "rejected",
                    code: RejectCode::Forbidden.as_str(),
                })
                .inc();
            forbidden(&edge.render, request.headers())
        } else if Cors::is_preflight(request.method(), request.headers()) {
            let response = preflight(edge.cors.as_ref(), request.headers());
            let outcome = if response.status().is_success() {
                "allowed"
            } else {
                "refused"
            };
            count(&edge.metrics.cors_preflights, outcome);
            response
        } else {
            // The request's headers are needed once the inner service took the request: keep
            // only what CORS reads, and only when CORS is configured.
            let origin_headers = edge.cors.as_ref().map(|_| request.headers().clone());
            return GuardedFuture::Routed {
                inner: self.inner.call(request),
                edge: edge.clone(),
                origin_headers,
            };
        };
        GuardedFuture::Answered {
            answer: Some(finish(edge, answer)),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Guarded`].
    #[project = GuardedProjection]
    pub enum GuardedFuture<F> {
        /// Answered at the edge.
        Answered { answer: Option<Response> },
        /// Passed to the routes.
        Routed {
            #[pin]
            inner: F,
            edge: Arc<Edge>,
            origin_headers: Option<HeaderMap>,
        },
    }
}

impl<F, E> Future for GuardedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardedProjection::Answered { answer } => match answer.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            GuardedProjection::Routed {
                inner,
                edge,
                origin_headers,
            } => {
                let mut response = std::task::ready!(inner.poll(cx))?;
                if let (Some(cors), Some(request_headers)) = (&edge.cors, &*origin_headers) {
                    cors.apply(request_headers, response.headers_mut());
                }
                Poll::Ready(Ok(finish(edge, response)))
            }
        }
    }
}

/// The security headers every answer leaves with.
fn finish(edge: &Edge, mut response: Response) -> Response {
    let answer = if response.extensions().get::<Forwarded>().is_some() {
        Answer::Upstream
    } else {
        Answer::Firewall
    };
    edge.headers.apply(response.headers_mut(), answer);
    response
}

/// The admin listener's guard: the socket peer must be in `ADMIN_ALLOW_IPS`.
pub async fn admin_guard(
    State(allowed): State<Arc<IpNetworks>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    match peer {
        Some(peer) if allowed.contains(peer) => next.run(request).await,
        _ => {
            tracing::info!(
                target: "graphql_firewall::policy",
                peer = ?peer,
                "admin request refused: not in ADMIN_ALLOW_IPS"
            );
            let mut response = Response::new(Body::from("forbidden\n"));
            *response.status_mut() = StatusCode::FORBIDDEN;
            response
        }
    }
}

fn preflight(cors: Option<&Cors>, request: &HeaderMap) -> Response {
    let (status, headers) = match cors {
        Some(cors) => {
            let answer = cors.preflight(request);
            (answer.status, answer.headers)
        }
        None => (StatusCode::FORBIDDEN, HeaderMap::new()),
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn forbidden(render: &Render, request: &HeaderMap) -> Response {
    Rejection::new(RejectCode::Forbidden, "forbidden").into_response(render, request)
}

fn peer(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}
