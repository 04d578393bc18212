//! The GraphQL endpoint: the pipeline, one call per stage, in order. A stage that refuses returns
//! its own error, which `?` turns into a [`Rejection`] (see [`super::reject`]); the audit record
//! is written once, whatever happened.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::Bytes;

use super::audit::{self, Measured, Record};
use super::decode::{self, decode_body, decode_query_string};
use super::edge::Forwarded;
use super::reject::{Rejection, quota_headers};
use super::request_id::RequestId;
use super::{Firewall, apq_sharing, body, client_ip, encode, harden, ws};
use crate::admission::Client;
use crate::analysis::ActualCostError;
use crate::identity::{AuthMethod, Identity, Scopes, Subject};
use crate::inspect::{Caller, GraphqlRequest, InspectError, Inspection, Transport};
use crate::metrics::{AuthLabels, count};
use crate::ratelimit::Quota;
use crate::upstream::Outgoing;

/// The GraphQL endpoint.
pub async fn graphql(State(firewall): State<Arc<Firewall>>, request: Request) -> Response {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    // Set by `RequestIdLayer`; a router served without it still gets an id.
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId::decide(&parts.headers));
    let peer = peer_ip(&parts);
    let mut record = Record::default();
    let handled = if ws::relay::is_upgrade(&parts) {
        // Boxed: the handshake's future is several times a request's, and rare.
        Box::pin(ws::relay::upgrade(
            &firewall,
            &mut parts,
            &request_id,
            peer,
            &mut record,
        ))
        .await
    } else {
        firewall
            .clone()
            .handle(&parts, body, &request_id, peer, &mut record)
            .await
    };
    let response = match handled {
        Ok(response) => response,
        Err(rejection) => {
            let response = rejection
                .clone()
                .into_response(&firewall.settings.render, &parts.headers);
            record.rejection = Some(rejection);
            response
        }
    };
    let outcome = audit::Outcome {
        channel: audit::Channel::Http,
        request_id: request_id.as_str(),
        method: &parts.method,
        peer,
        status: response.status(),
        total: started.elapsed(),
        response_bytes: http_body::Body::size_hint(response.body()).exact(),
        subjects: firewall.settings.log_subject,
    };
    audit::record(&record, &outcome, &firewall.metrics, &firewall.sampler);
    response
}

impl Firewall {
    async fn handle(
        self: Arc<Self>,
        parts: &Parts,
        body: Body,
        request_id: &RequestId,
        peer: IpAddr,
        record: &mut Record,
    ) -> Result<Response, Rejection> {
        let ip = client_ip::of(parts, peer, &self.settings.trusted_proxies);
        if parts.method == Method::OPTIONS {
            // An `OPTIONS` that is not a CORS preflight (those are answered at the edge and never
            // get here): it carries no credentials, so it is admitted as its address, and
            // forwarded without its query string (nothing in it is inspected).
            let client = self.budgets.identify(ip, Identity::anonymous());
            record.client = Some(client.clone());
            let admitted = self.budgets.admit_request(&client).await?;
            record.monitored.extend(admitted.monitored.map(|v| (0, v)));
            return self
                .forward(parts, Bytes::new(), None, request_id, &client, record)
                .await;
        }
        let transport = self.settings.guard.check(&parts.method, &parts.headers)?;
        let client = self.identify(parts, peer, ip).await?;
        record.client = Some(client.clone());
        let admitted = self.budgets.admit_request(&client).await?;
        record.monitored.extend(admitted.monitored.map(|v| (0, v)));
        let (requests, batch, body) = match transport {
            Transport::Get | Transport::GetEventStream => {
                let query = parts.uri.query().unwrap_or_default();
                let request = decode_query_string(query, self.settings.max_body_bytes)?;
                (vec![request], false, Bytes::new())
            }
            // The guard names only HTTP methods; WebSocket operations come through `ws::relay`.
            Transport::Post | Transport::WebSocket => {
                decode::check_post_query_string(parts.uri.query())?;
                let read = body::read_limited(&parts.headers, body, self.settings.max_body_bytes);
                let bytes = tokio::time::timeout(self.settings.body_read_timeout, read)
                    .await
                    .map_err(|_| body::BodyError::Timeout)??;
                let (requests, batch) =
                    decode_body(&bytes, self.settings.max_batch).inspect_err(|error| {
                        // A refused batch is logged with its real size.
                        if let decode::DecodeError::BatchTooLarge { actual, .. } = error {
                            record.batch = *actual;
                        }
                    })?;
                (requests, batch, bytes)
            }
        };
        record.batch = requests.len();
        let caller = self.caller(&parts.headers, &client);
        record.inspection = self
            .inspect(&requests, transport, batch, caller, &client)
            .await
            .map_err(|mut error| {
                record.learnt = std::mem::take(&mut error.learnt);
                error
            })?;
        record
            .monitored
            .extend(record.inspection.monitored.iter().copied());
        let spent = self
            .budgets
            .admit_cost(&client, record.inspection.total_cost())
            .await?;
        record.monitored.extend(spent.monitored.map(|v| (0, v)));
        let forwarded = encode::forwarded(
            &requests,
            batch,
            transport,
            body,
            parts.uri.query(),
            &record.inspection,
            self.settings.pass_through,
        );
        let mut response = self
            .forward(
                parts,
                forwarded.body,
                forwarded.query_string.as_deref(),
                request_id,
                &client,
                record,
            )
            .await?;
        // The request budget's quota is what clients pace themselves by; the cost budget's
        // headers would overwrite it, so they are sent only when no request rate is configured.
        if let Some(quota) = admitted.quota.or(spent.quota) {
            self.add_quota_headers(&mut response, &quota);
        }
        Ok(response)
    }

    /// What the decision needs to know of the caller: who it proved to be, and whether it
    /// presented a client key.
    pub(super) fn caller<'a>(&self, headers: &HeaderMap, client: &'a Client) -> Caller<'a> {
        Caller {
            identity: Some(&client.identity),
            holds_client_key: self
                .settings
                .client_keys
                .as_ref()
                .is_some_and(|keys| keys.presented_by(headers)),
        }
    }

    /// The decision on `requests` ([`crate::inspect`]), with what surrounds it on every
    /// transport: APQ registrations shared through Redis, and a schema-validation refusal counted
    /// towards the client's probe cool-down.
    pub(super) async fn inspect(
        &self,
        requests: &[GraphqlRequest],
        transport: Transport,
        batch: bool,
        caller: Caller<'_>,
        client: &Client,
    ) -> Result<Inspection, InspectError> {
        let shared_apq = self.budgets.shared_state().zip(self.inspector.apq_store());
        if let Some((shared, local)) = shared_apq {
            apq_sharing::fetch(shared, local, requests).await;
        }
        let inspection = match self.inspector.inspect(requests, transport, batch, caller) {
            Ok(inspection) => inspection,
            Err(error) => {
                if error.probes_schema() {
                    self.budgets.record_probe(client).await;
                }
                return Err(error);
            }
        };
        if let Some((shared, _)) = shared_apq {
            apq_sharing::publish(shared, requests, &inspection).await;
        }
        Ok(inspection)
    }

    /// The client: the caller `AUTH` verified; else the key a gateway set, believed only when a
    /// trusted proxy — the gateway that sets it — is the peer (from anyone else the header is the
    /// caller's own invention and would buy a fresh budget per value); else its address.
    ///
    /// A request `AUTH` refuses spends its address's request budget before it is refused, so
    /// guessing credentials is paced like any other traffic (and answered 429 once over it); and
    /// a token not verified before spends its address's `AUTH_JWT_VERIFY_RATE` first, so a flood
    /// of distinct forged tokens does not buy a signature check each.
    pub(super) async fn identify(
        &self,
        parts: &Parts,
        peer: IpAddr,
        ip: IpAddr,
    ) -> Result<Client, Rejection> {
        if self.authenticator.needs_verification(&parts.headers) {
            self.budgets.admit_verification(ip)?;
        }
        let authenticated = match self.authenticator.authenticate(&parts.headers).await {
            Ok(authenticated) => authenticated,
            Err(error) => {
                tracing::info!(
                    target: "graphql_firewall::identity",
                    client = %ip,
                    reason = error.reason(),
                    "request not authenticated"
                );
                self.count_auth("none", error.reason());
                let anonymous = self.budgets.identify(ip, Identity::anonymous());
                self.budgets.admit_request(&anonymous).await?;
                return Err(error.into());
            }
        };
        if let Some(refused) = &authenticated.refused {
            tracing::info!(
                target: "graphql_firewall::identity",
                client = %ip,
                reason = refused.reason(),
                "credential refused: going on as anonymous (AUTH=optional)"
            );
        }
        if authenticated.identity.is_verified() {
            self.count_auth(authenticated.identity.method.as_str(), "verified");
            return Ok(self.budgets.identify(ip, authenticated.identity));
        }
        let trusted = &self.settings.trusted_proxies;
        let gateway_key = self
            .settings
            .client_key_header
            .as_ref()
            .filter(|_| trusted.contains(peer))
            .and_then(|name| parts.headers.get(name))
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty());
        let identity = match gateway_key {
            Some(key) => Identity::verified(
                AuthMethod::Gateway,
                Subject::new(key),
                None,
                Scopes::default(),
            ),
            None => Identity::anonymous(),
        };
        let outcome = match (&authenticated.refused, identity.is_verified()) {
            (_, true) => "verified",
            (Some(refused), false) => refused.reason(),
            (None, false) => "anonymous",
        };
        self.count_auth(identity.method.as_str(), outcome);
        Ok(self.budgets.identify(ip, identity))
    }

    fn count_auth(&self, method: &'static str, outcome: &'static str) {
        self.metrics
            .auth
            .get_or_create(&AuthLabels { method, outcome })
            .inc();
    }

    async fn forward(
        self: &Arc<Self>,
        parts: &Parts,
        body: Bytes,
        query_string: Option<&str>,
        request_id: &RequestId,
        client: &Client,
        record: &mut Record,
    ) -> Result<Response, Rejection> {
        let outgoing = Outgoing {
            method: parts.method.clone(),
            query_string,
            headers: &parts.headers,
            body,
            client_ip: client.ip,
            request_id: request_id.header(),
        };
        let answer = self
            .upstream
            .forward(outgoing)
            .await
            .inspect_err(|error| count(&self.metrics.upstream_errors, error.as_str()))?;
        record.upstream = Some(answer.elapsed);
        record.upstream_status = Some(answer.status);
        let metering = self.metering(record, client, request_id);
        let mut headers = answer.headers;
        let (body, hardened) = harden::harden(
            &self.settings.harden,
            &self.metrics,
            &mut headers,
            answer.body,
            request_id.shared(),
            metering,
        )
        .await?;
        record.hardened = Some(hardened);
        let mut response = Response::new(body);
        *response.status_mut() = answer.status;
        *response.headers_mut() = headers;
        response.extensions_mut().insert(Forwarded);
        Ok(response)
    }

    /// The meter of the answer's actual cost, and what is done with it: counted, set against the
    /// estimate, settled in the cost budget, and written to the audit log.
    fn metering(
        self: &Arc<Self>,
        record: &mut Record,
        client: &Client,
        request_id: &RequestId,
    ) -> Option<harden::Metering> {
        let meter = record.inspection.meter.take()?;
        let estimate = record.inspection.total_cost();
        let measured = Arc::new(Measured::default());
        record.measured = Some(measured.clone());
        let firewall = Arc::clone(self);
        let client = client.clone();
        let request_id = request_id.shared().clone();
        let report = move |result: Result<u64, ActualCostError>| {
            let actual = match result {
                Ok(actual) => actual,
                Err(error) => {
                    count(&firewall.metrics.cost_unmeasured, error.as_str());
                    return;
                }
            };
            firewall
                .metrics
                .operation_cost_actual
                .observe(actual as f64);
            if firewall.budgets.settles_with_actual_cost() {
                // Settling may wait on Redis; the answer has been delivered already.
                let settling = Arc::clone(&firewall);
                let settled_client = client.clone();
                tokio::spawn(async move {
                    settling
                        .budgets
                        .settle_cost(&settled_client, estimate, actual)
                        .await;
                });
            }
            if actual > estimate {
                firewall.metrics.cost_underestimated.inc();
                tracing::warn!(
                    target: "graphql_firewall::policy",
                    request_id = %request_id,
                    cost = estimate,
                    cost_actual = actual,
                    "an answer cost more than its estimate: check the schema's @cost/@listSize"
                );
            }
            let _ = measured.actual.set(actual);
            if measured.audited.load(Ordering::Acquire) {
                audit::record_late_actual_cost(&request_id, estimate, actual);
            }
        };
        Some(harden::Metering {
            meter,
            report: Box::new(report),
        })
    }

    fn add_quota_headers(&self, response: &mut Response, quota: &Quota) {
        if self.settings.rate_limit_headers {
            response.headers_mut().extend(quota_headers(quota));
        }
    }
}

fn peer_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `handler` returns, without calling it.
    fn future_size<A, B, F: Fn(A, B) -> Fut, Fut>(_handler: &F) -> usize {
        size_of::<Fut>()
    }

    /// Every request's future is moved and boxed on its way through the router: rare paths with
    /// large futures (the WebSocket handshake, Redis calls, opening a connection) are boxed so
    /// that they do not weigh on each request. It was 11 KB with them inline.
    #[test]
    fn a_request_future_stays_small() {
        let size = future_size(&graphql);
        assert!(size <= 4 * 1024, "{size} bytes");
    }
}
