//! The demo backend's WebSocket endpoint: async-graphql's own protocol engine over an axum
//! WebSocket, with the subprotocol `graphql-transport-ws` (graphql-ws library) or the legacy
//! `graphql-ws` (subscriptions-transport-ws), chosen from the client's `Sec-WebSocket-Protocol`.
//!
//! async-graphql is a lenient peer: it replaces an operation whose id is reused, never times out a
//! missing `connection_init` and accepts either protocol's vocabulary on both. That makes it a
//! useful upstream for the firewall's tests, which must show that the firewall enforces the
//! protocol itself. Every data frame is counted in [`Observed`] before async-graphql sees it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};

use super::Observed;
use super::schema::DemoSchema;

/// Answers a `GET` carrying `Upgrade`: a WebSocket speaking the subprotocol the client asked for,
/// or 400 when the upgrade is malformed or names neither protocol.
pub(super) async fn upgrade(
    parts: &mut Parts,
    schema: DemoSchema,
    observed: Arc<Observed>,
) -> Response {
    let upgrade = match WebSocketUpgrade::from_request_parts(parts, &()).await {
        Ok(upgrade) => upgrade.protocols(ALL_WEBSOCKET_PROTOCOLS),
        Err(rejection) => return rejection.into_response(),
    };
    let protocol = upgrade
        .selected_protocol()
        .and_then(|name| name.to_str().ok())
        .and_then(|name| name.parse::<WebSocketProtocols>().ok());
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol must name graphql-transport-ws or graphql-ws",
        )
            .into_response();
    };
    observed.ws_connections.fetch_add(1, Ordering::SeqCst);
    upgrade.on_upgrade(move |socket| serve(socket, schema, protocol, observed))
}

async fn serve(
    socket: WebSocket,
    schema: DemoSchema,
    protocol: WebSocketProtocols,
    observed: Arc<Observed>,
) {
    let (mut sink, stream) = socket.split();
    let incoming = stream
        .take_while(|frame| {
            std::future::ready(matches!(frame, Ok(m) if !matches!(m, Message::Close(_))))
        })
        .filter_map(move |frame| {
            let data = match frame {
                Ok(Message::Text(text)) => {
                    observe(&observed, &text);
                    Some(text.as_str().as_bytes().to_vec())
                }
                Ok(Message::Binary(bytes)) => {
                    observed.ws_messages.fetch_add(1, Ordering::SeqCst);
                    Some(bytes.to_vec())
                }
                _ => None,
            };
            std::future::ready(data)
        });
    let mut outgoing = async_graphql::http::WebSocket::new(schema, incoming, protocol);
    while let Some(message) = outgoing.next().await {
        let frame = match message {
            WsMessage::Text(text) => Message::Text(text.into()),
            WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        };
        let closing = matches!(frame, Message::Close(_));
        if sink.send(frame).await.is_err() || closing {
            return;
        }
    }
    let _ = sink.close().await;
}

/// Counts a text frame, and an operation start when it is one.
fn observe(observed: &Observed, text: &str) {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    observed.ws_messages.fetch_add(1, Ordering::SeqCst);
    if let Ok(Kind { kind }) = serde_json::from_str::<Kind>(text)
        && (kind == "subscribe" || kind == "start")
    {
        observed.ws_subscribes.fetch_add(1, Ordering::SeqCst);
    }
    if let Ok(mut last) = observed.last_ws_message.lock() {
        *last = Some(text.to_owned());
    }
}
