//! graphql-firewall: a security firewall for GraphQL APIs.
//!
//! It sits in front of any GraphQL-over-HTTP server and refuses what is not allowed before it costs
//! the backend anything. The modules read like the request pipeline of DESIGN.md:
//! [`config`] → [`http`] (decode, CSRF guard, reject) → [`upstream`]; [`demo`] is the embedded
//! backend used by `graphql-firewall demo` and by the tests.

#![forbid(unsafe_code)]
#![deny(clippy::dbg_macro, clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod demo;
pub mod http;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Config;
use crate::http::reject::Render;

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the upstream HTTP client could not be created: {0}")]
    Client(#[from] reqwest::Error),
}

/// Builds the firewall's router from a validated configuration; `main` and every test use it.
pub fn build_app(config: &Config) -> Result<Router, BuildError> {
    let upstream = upstream::Upstream::new(&upstream::Settings {
        url: config.upstream.url.clone(),
        timeout: config.upstream.timeout,
        connect_timeout: config.upstream.connect_timeout,
    })?;
    let firewall = Arc::new(http::Firewall {
        settings: http::Settings {
            max_body_bytes: config.max_body_bytes,
            max_batch: config.max_batch,
            csrf_required_headers: config
                .csrf
                .enabled
                .then(|| config.csrf.required_headers.clone()),
            ready_timeout: config.ready_timeout,
            render: Render {
                reject_status: config.reject_status,
                expose_limits: true,
            },
        },
        upstream,
    });
    Ok(Router::new()
        .route(&config.path, any(http::graphql))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .fallback(http::not_found)
        .with_state(firewall)
        // Outermost: a bug that panics while handling one request answers that request with a
        // 500 and leaves the process serving every other one.
        .layer(CatchPanicLayer::new()))
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish for
/// at most `grace`. Connection info is attached so handlers know the client address.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
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
        joined = &mut server => return joined.unwrap_or_else(|e| Err(std::io::Error::other(e))),
        _ = stopping_rx => {}
    }
    match tokio::time::timeout(grace, &mut server).await {
        Ok(joined) => joined.unwrap_or_else(|e| Err(std::io::Error::other(e))),
        Err(_) => {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "in-flight requests outlived the shutdown grace period"
            );
            Ok(())
        }
    }
}
