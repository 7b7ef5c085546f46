//! The WebSocket of live events for any set of twins: `GET /api/v1/stream`.
//!
//! One task per connection reads the client's subscriptions and the bus,
//! and writes events. Every write is bounded by `subscriber_send_timeout`:
//! a client that does not accept a frame in time is dropped, and so is one
//! the bus skipped events for. A dropped client gets `{"dropped": {...}}`
//! and a close frame with code 1013 and the reason, if it still reads;
//! either way its socket is closed and its bus receiver released.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use utoipa::ToSchema;

use super::dropped::DropReason;
use super::filter::{Filter, Subscription};
use super::shutdown_requested;
use crate::AppState;
use crate::auth::{AccessEnded, AccessWatch, Caller, EventView};
use crate::limits::{KEEP_ALIVE_INTERVAL_MS, MAX_WS_MESSAGE_BYTES};
use crate::listener::ShutdownSignal;

/// WebSocket close code "going away" (RFC 6455 §7.4.1), sent on shutdown.
const CLOSE_GOING_AWAY: u16 = 1001;
/// WebSocket close code "policy violation" (RFC 6455 §7.4.1), sent when the
/// subscriber's token is revoked or expires.
const CLOSE_POLICY_VIOLATION: u16 = 1008;
/// WebSocket close code "try again later" (IANA WebSocket close code
/// registry), sent to a subscriber dropped for being slow: reconnecting
/// is fine, reading faster is what it needs.
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// A message a WebSocket client sends.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientMessage {
    /// Replaces the connection's subscription.
    pub(crate) subscribe: Subscription,
}

/// WebSocket of live events for any set of twins.
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "events",
    security(("bearer" = [])),
    responses(
        (status = 101, description = "WebSocket. Send {\"subscribe\": {\"twins\": [..] | null, \"signals\": [..] | null, \"kinds\": [..] | null}} (text); the server confirms with {\"subscribed\": {...}}, then sends each matching event the caller may read at that moment (trimmed to the signals it may read) as a JSON text frame, and {\"error\": \"...\"} for a bad message. Nothing is sent before the first subscription. A slow subscriber is dropped: when the server's bounded event buffer skipped events it had not read, or one frame was not accepted within the send timeout (`[limits] subscriber_send_timeout`, 10 s by default), the server sends {\"dropped\": {\"reason\": \"lagged\" | \"send_timeout\", \"skipped\": n, \"detail\": \"...\"}} and closes with code 1013 and the reason. Closed with code 1008 when the caller's token is revoked or expires, 1001 on shutdown.",
            body = ClientMessage),
    )
)]
pub(crate) async fn websocket(
    State(state): State<AppState>,
    ShutdownSignal(shutdown): ShutdownSignal,
    caller: Caller,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Response> {
    caller.require_authenticated().map_err(IntoResponse::into_response)?;
    Ok(upgrade
        .map_err(IntoResponse::into_response)?
        .max_message_size(MAX_WS_MESSAGE_BYTES)
        .on_upgrade(move |socket| run_socket(socket, state, caller, shutdown))
        .into_response())
}

/// What the server says to a WebSocket client besides events.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum ServerNotice {
    Subscribed(Subscription),
    Error(String),
}

/// How a connection ends, when the server ends it.
enum Ending {
    /// With a close frame of this code and reason.
    Close(u16, String),
    /// Dropped for being slow: the notice, then a 1013 close frame.
    Dropped(DropReason),
}

async fn run_socket(socket: WebSocket, state: AppState, caller: Caller, shutdown: watch::Receiver<bool>) {
    let send_timeout = state.limits.subscriber_send_timeout;
    let mut connection = Connection { socket, send_timeout };
    let Some(ending) = connection.serve(&state, &caller, shutdown).await else { return };
    let messages = match ending {
        Ending::Close(code, reason) => vec![close_frame(code, reason)],
        Ending::Dropped(reason) => {
            state.dropped_subscribers.record(reason);
            vec![Message::Text(reason.notice().into()), close_frame(CLOSE_TRY_AGAIN_LATER, reason.describe())]
        }
    };
    // Best effort: a client that stopped reading takes none of it, and its
    // socket is closed when this returns all the same.
    for message in messages {
        if connection.send(message).await.is_err() {
            return;
        }
    }
}

fn close_frame(code: u16, reason: String) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

/// Why a send failed.
enum SendFailure {
    /// The client is gone, or the connection broke.
    Closed,
    /// The client did not accept the frame within the send timeout.
    TimedOut,
}

/// One client's socket, every write bounded in time.
struct Connection {
    socket: WebSocket,
    send_timeout: Duration,
}

impl Connection {
    async fn send(&mut self, message: Message) -> Result<(), SendFailure> {
        match tokio::time::timeout(self.send_timeout, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(SendFailure::Closed),
            Err(_) => Err(SendFailure::TimedOut),
        }
    }

    /// Serves subscriptions and events until the connection ends. `None`
    /// when the client left or the connection broke; otherwise how the
    /// server ends it. The bus receiver is released on return, before
    /// anything more is sent.
    async fn serve(
        &mut self,
        state: &AppState,
        caller: &Caller,
        mut shutdown: watch::Receiver<bool>,
    ) -> Option<Ending> {
        let mut receiver = state.engine.subscribe();
        let mut access = AccessWatch::new(caller, None);
        let mut filter: Option<Filter> = None;
        let mut ping = tokio::time::interval(Duration::from_millis(KEEP_ALIVE_INTERVAL_MS));
        ping.reset();
        loop {
            let outgoing = tokio::select! {
                () = shutdown_requested(&mut shutdown) => {
                    return Some(Ending::Close(CLOSE_GOING_AWAY, "server shutting down".to_owned()));
                }
                incoming = self.socket.recv() => match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                    Some(Ok(Message::Text(text))) => {
                        Some(Message::Text(notice(handle_client_message(text.as_str(), &mut filter)).into()))
                    }
                    Some(Ok(Message::Binary(_))) => Some(Message::Text(
                        notice(ServerNotice::Error("binary messages are not supported; send JSON text".into())).into(),
                    )),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                },
                event = receiver.recv() => match event {
                    Ok(event) => match filter.as_ref().and_then(|f| f.apply(&event)).map(|e| caller.view_event(&e)) {
                        Some(EventView::Visible(event)) => serde_json::to_string(&*event)
                            .inspect_err(|error| tracing::error!(%error, "event could not be serialised"))
                            .ok()
                            .map(|json| Message::Text(json.into())),
                        Some(EventView::CredentialEnded) => {
                            return Some(Ending::Close(CLOSE_POLICY_VIOLATION, "credential revoked or expired".to_owned()));
                        }
                        Some(EventView::Hidden | EventView::TwinUnreadable) | None => None,
                    },
                    // Before the first subscription nothing was wanted, so nothing was lost.
                    Err(RecvError::Lagged(skipped)) => {
                        if filter.is_some() {
                            return Some(Ending::Dropped(DropReason::Lagged { skipped }));
                        }
                        None
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = ping.tick() => Some(Message::Ping(Default::default())),
                // A quiet stream ends all the same when its credential does.
                ended = access.ended() => {
                    let reason = match ended {
                        AccessEnded::Credential => "credential revoked or expired",
                        AccessEnded::Twin => "access to the twin ended",
                    };
                    return Some(Ending::Close(CLOSE_POLICY_VIOLATION, reason.to_owned()));
                }
            };
            let Some(message) = outgoing else { continue };
            match self.send(message).await {
                Ok(()) => {}
                Err(SendFailure::Closed) => return None,
                Err(SendFailure::TimedOut) => {
                    return Some(Ending::Dropped(DropReason::SendTimeout { timeout: self.send_timeout }));
                }
            }
        }
    }
}

fn notice(notice: ServerNotice) -> String {
    serde_json::to_string(&notice).unwrap_or_else(|_| r#"{"error":"internal error"}"#.to_owned())
}

fn handle_client_message(text: &str, filter: &mut Option<Filter>) -> ServerNotice {
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(error) => {
            return ServerNotice::Error(format!(
                "{error}; expected {{\"subscribe\": {{\"twins\": [...] | null, \"signals\": [...] | null, \"kinds\": [...] | null}}}}"
            ));
        }
    };
    let echo = message.subscribe.clone();
    match Filter::new(message.subscribe) {
        Ok(new_filter) => {
            *filter = Some(new_filter);
            ServerNotice::Subscribed(echo)
        }
        Err(error) => ServerNotice::Error(format!("subscribe.{}: {}", error.member, error.reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_are_confirmed_or_answered_with_an_error() {
        let mut current = None;
        let reply = notice(handle_client_message(r#"{"subscribe": {"twins": ["a"]}}"#, &mut current));
        assert_eq!(reply, r#"{"subscribed":{"twins":["a"],"signals":null,"kinds":null}}"#);
        assert!(current.is_some());
        let reply = notice(handle_client_message(r#"{"subscribe": {"twins": "a"}}"#, &mut current));
        assert!(reply.starts_with(r#"{"error":"invalid type"#), "{reply}");
        let reply = notice(handle_client_message("not json", &mut current));
        assert!(reply.starts_with(r#"{"error":"#), "{reply}");
    }
}
