//! `GET /readyz`: whether this replica can serve, probed at most once per [`FRESH`].
//!
//! # Threats
//! `/readyz` answers anyone on the traffic port and spends no budget, yet each fresh answer costs
//! an upstream exchange and, with `STATE=redis`, Redis round trips: a flood of `/readyz` would be
//! a flood on the backend. So one probe runs at a time, and its answer serves every caller for
//! [`FRESH`] (the load balancer's period is seconds): the firewall probes at most once a second
//! whatever the traffic.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::Mutex;

use super::Firewall;
use crate::state::FailureMode;

/// How long one probe's answer stands.
pub const FRESH: Duration = Duration::from_secs(1);

/// The last probe's answer, and the lock that makes callers share one probe.
#[derive(Debug, Default)]
pub struct Readiness {
    last: Mutex<Option<(Instant, Ready)>>,
}

/// One probe's answer.
#[derive(Debug, Clone, Copy)]
struct Ready {
    code: StatusCode,
    status: &'static str,
    /// With `STATE=redis`: `ok` or `unreachable`.
    redis: Option<&'static str>,
}

impl Readiness {
    /// The answer of a probe at most [`FRESH`] old, probing when there is none.
    pub async fn answer(&self, firewall: &Firewall) -> Response {
        let mut last = self.last.lock().await;
        let ready = match *last {
            Some((at, ready)) if at.elapsed() < FRESH => ready,
            _ => {
                let ready = probe(firewall).await;
                *last = Some((Instant::now(), ready));
                ready
            }
        };
        let body = match ready.redis {
            None => json!({ "status": ready.status }),
            Some(redis) => json!({ "status": ready.status, "redis": redis }),
        };
        (ready.code, axum::Json(body)).into_response()
    }
}

async fn probe(firewall: &Firewall) -> Ready {
    let timeout = firewall.settings.ready_timeout;
    // Any HTTP answer, whatever its status, means the upstream is up.
    let upstream_up = firewall.upstream.probe(timeout).await.is_some();
    let redis = match firewall.budgets.shared_state() {
        None => None,
        Some(shared) => Some((
            shared.redis.verify(timeout).await.is_ok(),
            shared.failure_mode,
        )),
    };
    // Only `REDIS_FAILURE_MODE=closed` refuses traffic without Redis; under `local` and `open`
    // a replica without Redis still serves, so it stays in the load balancer.
    let serving = redis.is_none_or(|(up, mode)| up || mode != FailureMode::Closed);
    let (code, status) = match (upstream_up, serving) {
        (true, true) => (StatusCode::OK, "ready"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "upstream unreachable"),
        (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable"),
    };
    Ready {
        code,
        status,
        redis: redis.map(|(up, _)| if up { "ok" } else { "unreachable" }),
    }
}
