//! The upstream side of a GraphQL-over-WebSocket relay: a WebSocket opened on a connection of its
//! own (TLS for `https://` upstreams) with the subprotocol the client negotiated and the headers
//! an HTTP request would carry upstream (`X-Forwarded-For`, `X-Request-Id`, end-to-end client
//! headers such as `Authorization` or `Cookie`), never the client's own handshake headers.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, Method, header};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::pool::Connection;
use super::{Outgoing, Upstream, UpstreamError, request_headers};

/// A WebSocket to the upstream.
pub type UpstreamSocket = WebSocketStream<TokioIo<Connection>>;

/// What the upstream WebSocket is opened with.
#[derive(Debug)]
pub struct Opening<'a> {
    /// The client's upgrade request headers (end-to-end ones are forwarded).
    pub headers: &'a HeaderMap,
    pub client_ip: IpAddr,
    pub request_id: &'a HeaderValue,
    /// The subprotocol the client negotiated, asked of the upstream in turn.
    pub subprotocol: &'static str,
    /// The largest upstream message read (a larger one ends the connection).
    pub max_message_bytes: usize,
    /// The socket's read buffer.
    pub read_buffer_bytes: usize,
}

impl Upstream {
    /// Opens the WebSocket (connection and handshake within the upstream timeout).
    pub async fn open_websocket(
        &self,
        opening: Opening<'_>,
    ) -> Result<UpstreamSocket, UpstreamError> {
        let scheme = if self.url.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        let host = self.host.to_str().map_err(|_| UpstreamError::Unavailable)?;
        let mut request = format!("{scheme}://{host}{}", self.target)
            .into_client_request()
            .map_err(|_| UpstreamError::Unavailable)?;
        let forwarded = request_headers(&Outgoing {
            method: Method::GET,
            query_string: None,
            headers: opening.headers,
            body: Bytes::new(),
            client_ip: opening.client_ip,
            request_id: opening.request_id,
        });
        let headers = request.headers_mut();
        for (name, value) in &forwarded {
            // The handshake's own fields are this connection's, set by tungstenite.
            if !name.as_str().starts_with("sec-websocket-") {
                headers.append(name.clone(), value.clone());
            }
        }
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(opening.subprotocol),
        );
        let config = WebSocketConfig::default()
            .read_buffer_size(opening.read_buffer_bytes)
            .max_message_size(Some(opening.max_message_bytes))
            .max_frame_size(Some(opening.max_message_bytes));
        let connect = async {
            let io = self
                .pool
                .open(&self.authority)
                .await
                .map_err(|_| UpstreamError::Unavailable)?;
            // tungstenite checks that the upstream selected the subprotocol asked for.
            let (socket, _) = tokio_tungstenite::client_async_with_config(
                request,
                TokioIo::new(io),
                Some(config),
            )
            .await
            .map_err(|_| UpstreamError::Unavailable)?;
            Ok(socket)
        };
        tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }
}
