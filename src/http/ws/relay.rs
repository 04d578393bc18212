//! The WebSocket relay on the GraphQL path: an upgrade request is admitted like any request, its
//! subprotocol negotiated (`graphql-transport-ws`, else the legacy `graphql-ws`), the upstream
//! WebSocket opened with the same subprotocol before the client gets its `101`, and then one task
//! per connection drives a [`Session`] with both sockets and the clock.
//!
//! # Threats
//! A WebSocket is a second door. Every `subscribe` (legacy `start`) is admitted, inspected and
//! charged exactly as a POST of the same operation ([`Transport::WebSocket`]): the request rate,
//! persisted ids and the allowlist, every limit, introspection, cost and the cost budget, monitor
//! mode, and one audit event and metric per operation (`transport="ws"`). A refused operation gets
//! the protocol's `error` message with the errors and codes an HTTP client would get, and the
//! connection stays open. The session enforces the protocol itself (sizes, ids, init, timeouts),
//! and every result is sanitised per message ([`super::payload`]).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite;

use super::caps::Claim;
use super::payload;
use super::protocol::{Action, Close, CloseCode, Session, Subprotocol};
use crate::admission::Client;
use crate::connection_slot::{ConnectionSlot, Place};
use crate::http::audit::{self, Record};
use crate::http::reject::Rejection;
use crate::http::request_id::RequestId;
use crate::http::{Firewall, client_ip, encode};
use crate::inspect::{Caller, GraphqlRequest, Transport};
use crate::metrics::count;
use crate::upstream::ws::{Opening, UpstreamSocket};

/// The read buffer of each of a connection's two sockets. tungstenite allocates 128 KiB by
/// default, and an idle subscribed connection would hold 256 KiB for nothing (measured by the
/// `ws_relay` bench); GraphQL-over-WebSocket messages are small, and a larger one is read in
/// several reads.
pub const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Why an upgrade request gets no WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// The firewall cannot enforce a protocol it does not know.
    #[error("Sec-WebSocket-Protocol must offer graphql-transport-ws or graphql-ws")]
    Subprotocol,
    #[error("not a valid WebSocket upgrade request")]
    Handshake,
    /// A browser page on an origin that is not allowed (cross-site WebSocket hijacking).
    #[error(
        "a WebSocket from a page on another origin is refused (the operator may allow it with WS_ALLOWED_ORIGINS)"
    )]
    CrossOrigin,
}

/// Which browser pages may open a WebSocket.
///
/// # Threats
/// A browser opens a WebSocket to any site a page asks for, with that site's cookies, and no
/// CORS preflight asks first (cross-site WebSocket hijacking): the CSRF guard's reasoning applies
/// to every upgrade. Browsers always send `Origin` with one, so a page on another origin is
/// refused unless listed; clients that are not browsers send none and are not concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// No check (`CSRF_PROTECTION=off`, or `WS_ALLOWED_ORIGINS=*`).
    Any,
    /// The endpoint's own origin (`Origin`'s host and port are the `Host` header), and these
    /// (lower-case `scheme://host[:port]`).
    SameOr(Vec<String>),
}

impl Origins {
    fn allow(&self, headers: &axum::http::HeaderMap) -> bool {
        let Origins::SameOr(listed) = self else {
            return true;
        };
        let mut values = headers.get_all(header::ORIGIN).iter();
        let Some(origin) = values.next() else {
            return true;
        };
        if values.next().is_some() {
            return false;
        }
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim().to_ascii_lowercase();
        // The scheme is not compared: TLS usually ends at a proxy in front of the firewall.
        let same = origin.split_once("://").is_some_and(|(_, authority)| {
            headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .is_some_and(|host| host.trim().eq_ignore_ascii_case(authority))
        });
        same || listed.contains(&origin)
    }
}

/// A request asking for a WebSocket (any method: a non-GET one is refused as a bad handshake).
pub fn is_upgrade(parts: &Parts) -> bool {
    parts
        .headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
}

/// Answers an upgrade request: `101` with the relay running, or the refusal.
pub async fn upgrade(
    firewall: &Arc<Firewall>,
    parts: &mut Parts,
    request_id: &RequestId,
    peer: IpAddr,
    record: &mut Record,
) -> Result<Response, Rejection> {
    let ip = client_ip::of(parts, peer, &firewall.settings.trusted_proxies);
    // The handshake carries the credentials (a token, a cookie, an API key): verified as on HTTP.
    let client = firewall.identify(parts, peer, ip).await?;
    record.client = Some(client.clone());
    // Refused at the door, like the CSRF guard's refusals: no budget spent.
    if !firewall.settings.ws.origins.allow(&parts.headers) {
        return Err(UpgradeError::CrossOrigin.into());
    }
    // The upgrade is a request like any other; each operation is one more.
    let admitted = firewall.budgets.admit_request(&client).await?;
    record.monitored.extend(admitted.monitored.map(|v| (0, v)));
    let offered = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok());
    let protocol = Subprotocol::negotiate(offered).ok_or(UpgradeError::Subprotocol)?;
    let mut upgrade = WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|_| UpgradeError::Handshake)?;
    let settings = &firewall.settings.ws.session;
    let upstream = firewall
        .upstream
        .open_websocket(Opening {
            headers: &parts.headers,
            client_ip: client.ip,
            request_id: request_id.header(),
            subprotocol: protocol.name(),
            max_message_bytes: usize::try_from(firewall.settings.harden.max_response_bytes)
                .unwrap_or(usize::MAX),
            read_buffer_bytes: READ_BUFFER_BYTES,
        })
        .await
        .inspect_err(|error| count(&firewall.metrics.upstream_errors, error.as_str()))?;
    upgrade.set_selected_protocol(HeaderValue::from_static(protocol.name()));
    let slot = parts.extensions.get::<ConnectionSlot>();
    let relay = Relay {
        // The connection's place in the connection limits stays taken while the WebSocket lives.
        _place: slot.and_then(ConnectionSlot::take),
        stopping: slot.map(ConnectionSlot::stopping),
        firewall: Arc::clone(firewall),
        holds_client_key: firewall.caller(&parts.headers, &client).holds_client_key,
        claim: firewall.ws_operations.claim(client.key),
        client,
        request_id: request_id.clone(),
        peer,
    };
    let session = Session::new(protocol, protocol, settings.clone(), Instant::now());
    Ok(upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(settings.max_message_bytes)
        .max_frame_size(settings.max_message_bytes)
        .on_upgrade(move |socket| relay.run(socket, upstream, session)))
}

/// One relayed connection.
struct Relay {
    _place: Option<Place>,
    /// The server's stop signal (absent for a router served without the firewall's server).
    stopping: Option<watch::Receiver<bool>>,
    firewall: Arc<Firewall>,
    client: Client,
    /// Presented a client key in the handshake (see [`Caller`]).
    holds_client_key: bool,
    claim: Claim,
    request_id: RequestId,
    peer: IpAddr,
}

type ClientSink = SplitSink<WebSocket, Message>;
type UpstreamSink = SplitSink<UpstreamSocket, tungstenite::Message>;

/// Where the loop stands after carrying out actions.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Open,
    /// Closed (by the session, or a socket failed): stop.
    Over,
}

impl Relay {
    async fn run(mut self, socket: WebSocket, upstream: UpstreamSocket, mut session: Session) {
        let (mut client_tx, mut client_rx) = socket.split();
        let (mut upstream_tx, mut upstream_rx) = upstream.split();
        loop {
            let deadline = session.next_deadline();
            let actions = tokio::select! {
                frame = client_rx.next() => match from_client(&mut session, frame) {
                    Some(actions) => actions,
                    None => break,
                },
                frame = upstream_rx.next() => from_upstream(&mut session, frame),
                () = sleep_until(deadline) => session.on_tick(Instant::now()),
                () = stopped(self.stopping.as_mut()) => vec![Action::Close(Close {
                    code: CloseCode::GoingAway,
                    reason: "The server is shutting down",
                })],
            };
            let flow = self
                .carry_out(&mut session, actions, &mut client_tx, &mut upstream_tx)
                .await;
            self.claim.set(session.open_operations());
            if flow == Flow::Over {
                break;
            }
        }
        // The client went away or the session closed: the upstream connection ends with it.
        let timeout = self.firewall.settings.ws.write_timeout;
        let _ = tokio::time::timeout(timeout, upstream_tx.send(tungstenite::Message::Close(None)))
            .await;
        let _ = tokio::time::timeout(timeout, upstream_tx.close()).await;
        let _ = tokio::time::timeout(timeout, client_tx.close()).await;
    }

    /// Carries out `actions` in order, with the ones each of them produces before the rest.
    async fn carry_out(
        &mut self,
        session: &mut Session,
        actions: Vec<Action>,
        client_tx: &mut ClientSink,
        upstream_tx: &mut UpstreamSink,
    ) -> Flow {
        let mut pending: VecDeque<Action> = actions.into();
        while let Some(action) = pending.pop_front() {
            let produced = match action {
                Action::Client(text) => {
                    if !self.send(client_tx, Message::Text(text.into())).await {
                        return Flow::Over;
                    }
                    Vec::new()
                }
                Action::Upstream(text) => {
                    // An upstream that stops reading must not hold the relay either.
                    let timeout = self.firewall.settings.ws.write_timeout;
                    let sent = upstream_tx.send(tungstenite::Message::Text(text.into()));
                    match tokio::time::timeout(timeout, sent).await {
                        Ok(Ok(())) => Vec::new(),
                        Ok(Err(_)) | Err(_) => session.on_upstream_closed(None),
                    }
                }
                Action::Inspect { id, request } => {
                    // The session counts the new operation already: the client's cap sees it.
                    self.claim.set(session.open_operations());
                    match self.admit(&request).await {
                        Ok(replacement) => session.allow(&id, replacement.as_ref()),
                        Err(rejection) => session.refuse(&id, &self.errors_json(&rejection)),
                    }
                }
                Action::Refuse { id, reason } => {
                    let rejection = Rejection::from(reason);
                    let errors = self.errors_json(&rejection);
                    self.audit(
                        Record {
                            client: Some(self.client.clone()),
                            batch: 1,
                            rejection: Some(rejection),
                            ..Record::default()
                        },
                        Instant::now(),
                    );
                    session.refuse(&id, &errors)
                }
                Action::Harden { id, kind, payload } => {
                    let settings = &self.firewall.settings.harden;
                    let shared = self.request_id.shared();
                    let hardened = payload::harden(settings, kind, payload.get(), shared);
                    vec![Action::Client(session.result_message(&id, kind, &hardened))]
                }
                Action::Close(close) => {
                    self.send(client_tx, close_message(close)).await;
                    return Flow::Over;
                }
            };
            for action in produced.into_iter().rev() {
                pending.push_front(action);
            }
        }
        if session.is_closed() {
            Flow::Over
        } else {
            Flow::Open
        }
    }

    /// Sends a message to the client; false when it is gone or did not take the message within
    /// the write timeout: a client that stops reading would otherwise hold this task, its
    /// upstream WebSocket and its subscriptions for as long as it likes.
    async fn send(&self, client_tx: &mut ClientSink, message: Message) -> bool {
        let timeout = self.firewall.settings.ws.write_timeout;
        matches!(
            tokio::time::timeout(timeout, client_tx.send(message)).await,
            Ok(Ok(()))
        )
    }

    /// Admits, inspects and charges one operation as the HTTP pipeline does a POST of it, and
    /// writes its audit event: the request to forward in its place, if it must be rewritten.
    async fn admit(
        &mut self,
        request: &GraphqlRequest,
    ) -> Result<Option<GraphqlRequest>, Rejection> {
        let started = Instant::now();
        let mut record = Record {
            client: Some(self.client.clone()),
            batch: 1,
            ..Record::default()
        };
        let result = self.decide(request, &mut record).await;
        if let Err(rejection) = &result {
            record.rejection = Some(rejection.clone());
        }
        self.audit(record, started);
        result
    }

    async fn decide(
        &self,
        request: &GraphqlRequest,
        record: &mut Record,
    ) -> Result<Option<GraphqlRequest>, Rejection> {
        let firewall = &self.firewall;
        self.claim.check()?;
        let admitted = firewall.budgets.admit_request(&self.client).await?;
        record.monitored.extend(admitted.monitored.map(|v| (0, v)));
        record.inspection = firewall
            .inspect(
                std::slice::from_ref(request),
                Transport::WebSocket,
                false,
                Caller {
                    identity: Some(&self.client.identity),
                    holds_client_key: self.holds_client_key,
                },
                &self.client,
            )
            .await
            .map_err(|mut error| {
                record.learnt = std::mem::take(&mut error.learnt);
                error
            })?;
        // A stream of results is not one answer to meter.
        record.inspection.meter = None;
        record
            .monitored
            .extend(record.inspection.monitored.iter().copied());
        let spent = firewall
            .budgets
            .admit_cost(&self.client, record.inspection.total_cost())
            .await?;
        record.monitored.extend(spent.monitored.map(|v| (0, v)));
        Ok(encode::for_upstream(
            request,
            &record.inspection,
            firewall.settings.pass_through,
        ))
    }

    fn errors_json(&self, rejection: &Rejection) -> String {
        rejection
            .errors_json(&self.firewall.settings.render)
            .to_string()
    }

    fn audit(&self, record: Record, started: Instant) {
        let firewall = &self.firewall;
        let status = record
            .rejection
            .as_ref()
            .map_or(StatusCode::OK, |rejection| {
                // No Accept on a WebSocket: the status an HTTP client of the new media type gets.
                rejection.status(&firewall.settings.render, true)
            });
        let outcome = audit::Outcome {
            channel: audit::Channel::WebSocket,
            request_id: self.request_id.as_str(),
            method: &Method::GET,
            peer: self.peer,
            status,
            total: started.elapsed(),
            response_bytes: None,
            subjects: firewall.settings.log_subject,
        };
        audit::record(&record, &outcome, &firewall.metrics, &firewall.sampler);
    }
}

/// What the session makes of a client frame; `None` when the client is gone.
fn from_client(
    session: &mut Session,
    frame: Option<Result<Message, axum::Error>>,
) -> Option<Vec<Action>> {
    let now = Instant::now();
    match frame? {
        Ok(Message::Text(text)) => Some(session.on_client_text(text.as_str(), now)),
        Ok(Message::Binary(bytes)) => Some(session.on_client_binary(&bytes, now)),
        // Answered by tungstenite itself; it shows the client is alive.
        Ok(Message::Ping(_) | Message::Pong(_)) => {
            session.on_client_activity(now);
            Some(Vec::new())
        }
        Ok(Message::Close(_)) => None,
        Err(error) => is_capacity(error).then(|| {
            vec![Action::Close(Close {
                code: CloseCode::MessageTooBig,
                reason: "Message too big",
            })]
        }),
    }
}

/// A frame or message over `WS_MAX_MESSAGE_BYTES`, stopped by tungstenite while reading it.
fn is_capacity(error: axum::Error) -> bool {
    error
        .into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|error| matches!(error, tungstenite::Error::Capacity(_)))
}

/// What the session makes of an upstream frame.
fn from_upstream(
    session: &mut Session,
    frame: Option<Result<tungstenite::Message, tungstenite::Error>>,
) -> Vec<Action> {
    match frame {
        Some(Ok(tungstenite::Message::Text(text))) => {
            session.on_upstream_text(text.as_str(), Instant::now())
        }
        Some(Ok(tungstenite::Message::Close(frame))) => {
            session.on_upstream_closed(frame.map(|frame| u16::from(frame.code)))
        }
        Some(Ok(
            tungstenite::Message::Ping(_)
            | tungstenite::Message::Pong(_)
            | tungstenite::Message::Frame(_),
        )) => Vec::new(),
        // Neither protocol has binary messages: an upstream that sends one is broken.
        Some(Ok(tungstenite::Message::Binary(_)) | Err(_)) | None => {
            session.on_upstream_closed(None)
        }
    }
}

fn close_message(close: Close) -> Message {
    Message::Close(Some(CloseFrame {
        code: close.code.code(),
        reason: close.reason.into(),
    }))
}

/// Resolves when the server stops (never without a stop signal).
async fn stopped(stopping: Option<&mut watch::Receiver<bool>>) {
    match stopping {
        // `Err`: the server is gone, which also means stop.
        Some(stopping) => {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
