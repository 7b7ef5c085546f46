//! Live events: Server-Sent Events per twin
//! (`GET /api/v1/twins/{id}/events`) and a WebSocket for any set of twins
//! (`GET /api/v1/stream`).
//!
//! Each subscriber reads the engine's broadcast channel, whose buffer is
//! bounded (`EngineConfig::event_capacity`). A subscriber that falls
//! behind loses the oldest events; it is told how many (`{"lagged": n}` on
//! the WebSocket, an `event: lagged` message on SSE) and continues with the
//! newest, so one slow client never slows ingest or other clients. Streams
//! end when the server shuts down.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use doppel_engine::{Event, EventBody, EventKind};
use doppel_model::{SignalName, TwinId};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Caller, EventView};
use crate::limits::{KEEP_ALIVE_INTERVAL_MS, MAX_SUBSCRIPTION_ITEMS, MAX_WS_MESSAGE_BYTES};
use crate::listener::ShutdownSignal;
use crate::problem::{ApiError, Problem};

/// WebSocket close code "going away" (RFC 6455 §7.4.1), sent on shutdown.
const CLOSE_GOING_AWAY: u16 = 1001;
/// WebSocket close code "policy violation" (RFC 6455 §7.4.1), sent when the
/// subscriber's token is revoked or expires.
const CLOSE_POLICY_VIOLATION: u16 = 1008;

/// Which events a subscriber wants; an absent (null) member means "all".
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Subscription {
    /// Twin ids; null = every twin.
    #[serde(default)]
    pub(crate) twins: Option<Vec<String>>,
    /// Signal names; null = every signal. Applies to `points` events, whose
    /// points are trimmed to these signals; other kinds pass.
    #[serde(default)]
    pub(crate) signals: Option<Vec<String>>,
    /// Event kinds (`points`, `twin_created`, `twin_updated`, `twin_deleted`); null = every kind.
    #[serde(default)]
    pub(crate) kinds: Option<Vec<String>>,
}

/// A message a WebSocket client sends.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientMessage {
    /// Replaces the connection's subscription.
    pub(crate) subscribe: Subscription,
}

/// A subscription, parsed.
#[derive(Debug, Clone, Default)]
struct Filter {
    twins: Option<HashSet<TwinId>>,
    signals: Option<HashSet<SignalName>>,
    kinds: Option<Vec<EventKind>>,
}

/// Why a subscription was refused: the member at fault and the reason.
#[derive(Debug)]
struct FilterError {
    member: &'static str,
    reason: String,
}

fn parse_list<T>(
    member: &'static str,
    items: Option<Vec<String>>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<Vec<T>>, FilterError> {
    let Some(items) = items else { return Ok(None) };
    if items.len() > MAX_SUBSCRIPTION_ITEMS {
        return Err(FilterError { member, reason: format!("more than {MAX_SUBSCRIPTION_ITEMS} entries") });
    }
    items
        .iter()
        .map(|item| parse(item))
        .collect::<Result<Vec<T>, String>>()
        .map(Some)
        .map_err(|reason| FilterError { member, reason })
}

impl Filter {
    fn new(subscription: Subscription) -> Result<Self, FilterError> {
        let twins = parse_list("twins", subscription.twins, |t| TwinId::new(t).map_err(|e| e.to_string()))?;
        let signals =
            parse_list("signals", subscription.signals, |s| SignalName::new(s).map_err(|e| e.to_string()))?;
        let kinds = parse_list("kinds", subscription.kinds, |k| {
            k.parse::<EventKind>().map_err(|_| {
                format!(
                    "{k:?} is not an event kind (expected points, twin_created, twin_updated or twin_deleted)"
                )
            })
        })?;
        Ok(Self {
            twins: twins.map(|t| t.into_iter().collect()),
            signals: signals.map(|s| s.into_iter().collect()),
            kinds,
        })
    }

    /// The event as this subscriber should see it, or `None` to skip it.
    fn apply(&self, event: &Arc<Event>) -> Option<Arc<Event>> {
        if let Some(twins) = &self.twins
            && !twins.contains(&event.twin)
        {
            return None;
        }
        if let Some(kinds) = &self.kinds
            && !kinds.contains(&event.kind)
        {
            return None;
        }
        let (Some(signals), EventBody::Points { points }) = (&self.signals, &event.body) else {
            return Some(event.clone());
        };
        if points.iter().all(|p| signals.contains(&p.signal)) {
            return Some(event.clone());
        }
        let kept: Vec<_> = points.iter().filter(|p| signals.contains(&p.signal)).cloned().collect();
        if kept.is_empty() {
            return None;
        }
        Some(Arc::new(Event {
            seq: event.seq,
            twin: event.twin.clone(),
            kind: event.kind,
            time: event.time,
            body: EventBody::Points { points: kept },
        }))
    }
}

/// Completes when the server shuts down; never, if nobody can signal it
/// (a router served by something other than this crate's accept loop).
pub(crate) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Query of the SSE route.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Comma list of signals (default all); trims `points` events to them.
    signals: Option<String>,
    /// Comma list of kinds: points, twin_created, twin_updated, twin_deleted (default all).
    kinds: Option<String>,
}

fn comma_list(text: Option<String>) -> Option<Vec<String>> {
    text.filter(|t| !t.is_empty()).map(|t| t.split(',').map(|s| s.trim().to_owned()).collect())
}

/// Server-Sent Events of one twin.
#[utoipa::path(
    get,
    path = "/api/v1/twins/{id}/events",
    tag = "events",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Twin id (for administrators the twin need not exist yet: its creation is an event)", example = "p0001"), EventsQuery),
    responses(
        (status = 200, description = "text/event-stream: each event has `event: <kind>`, `id: <seq>` and the JSON event as data, trimmed to the signals the caller may read at that moment; `event: lagged` with {\"lagged\": n} when this subscriber fell behind and n events were skipped; keep-alive comments every 15 s. The stream ends when the caller can no longer read the twin or its token is revoked.", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad id, signals or kinds", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No twin the caller may read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn twin_events(
    State(state): State<AppState>,
    ShutdownSignal(shutdown): ShutdownSignal,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let twin = crate::twins::parse_twin_id(&id)?;
    caller.require_readable(&twin)?;
    let Query(query) = query
        .map_err(|rejection| ApiError::InvalidParameter { name: "query", reason: rejection.body_text() })?;
    let subscription = Subscription {
        twins: Some(vec![twin.to_string()]),
        signals: comma_list(query.signals),
        kinds: comma_list(query.kinds),
    };
    let filter = Filter::new(subscription).map_err(|error| ApiError::InvalidParameter {
        name: if error.member == "kinds" { "kinds" } else { "signals" },
        reason: error.reason,
    })?;
    let receiver = state.engine.subscribe();
    let stream = sse_stream(receiver, filter, caller, shutdown);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_millis(KEEP_ALIVE_INTERVAL_MS))))
}

/// What a subscriber receives next.
#[derive(Debug)]
enum Delivery {
    /// An event that passed the filter (possibly trimmed to its signals).
    Event(Arc<Event>),
    /// The subscriber fell behind and this many events were skipped.
    Lagged(u64),
}

/// Waits for the next delivery; `None` once the server shuts down, the
/// engine's bus closes, or the caller may no longer read the twin.
async fn next_delivery(
    receiver: &mut broadcast::Receiver<Arc<Event>>,
    filter: &Filter,
    caller: &Caller,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Delivery> {
    loop {
        let next = tokio::select! {
            () = shutdown_requested(shutdown) => return None,
            next = receiver.recv() => next,
        };
        match next {
            Ok(event) => {
                let Some(event) = filter.apply(&event) else { continue };
                match caller.view_event(&event) {
                    EventView::Visible(event) => return Some(Delivery::Event(event)),
                    // Whoever could follow the twin hears that it is gone.
                    EventView::TwinUnreadable if event.kind == EventKind::TwinDeleted => {
                        return Some(Delivery::Event(event));
                    }
                    EventView::Hidden => {}
                    EventView::TwinUnreadable | EventView::CredentialEnded => return None,
                }
            }
            Err(RecvError::Lagged(skipped)) => return Some(Delivery::Lagged(skipped)),
            Err(RecvError::Closed) => return None,
        }
    }
}

fn sse_stream(
    receiver: broadcast::Receiver<Arc<Event>>,
    filter: Filter,
    caller: Caller,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(
        (receiver, filter, caller, shutdown),
        |(mut receiver, filter, caller, mut shutdown)| async move {
            loop {
                let message = match next_delivery(&mut receiver, &filter, &caller, &mut shutdown).await? {
                    Delivery::Event(event) => match serde_json::to_string(&*event) {
                        Ok(json) => SseEvent::default()
                            .event(event.kind.as_str())
                            .id(event.seq.to_string())
                            .data(json),
                        Err(error) => {
                            tracing::error!(%error, "event could not be serialised");
                            continue;
                        }
                    },
                    Delivery::Lagged(skipped) => {
                        SseEvent::default().event("lagged").data(notice(ServerNotice::Lagged(skipped)))
                    }
                };
                return Some((Ok(message), (receiver, filter, caller, shutdown)));
            }
        },
    )
}

/// WebSocket of live events for any set of twins.
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "events",
    security(("bearer" = [])),
    responses(
        (status = 101, description = "WebSocket. Send {\"subscribe\": {\"twins\": [..] | null, \"signals\": [..] | null, \"kinds\": [..] | null}} (text); the server confirms with {\"subscribed\": {...}}, then sends each matching event the caller may read at that moment (trimmed to the signals it may read) as a JSON text frame, {\"lagged\": n} when this connection fell behind and n events were skipped, and {\"error\": \"...\"} for a bad message. Nothing is sent before the first subscription. Closed with code 1008 when the caller's token is revoked or expires.",
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
    Lagged(u64),
    Error(String),
}

async fn run_socket(
    mut socket: WebSocket,
    state: AppState,
    caller: Caller,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut receiver = state.engine.subscribe();
    let mut filter: Option<Filter> = None;
    let mut ping = tokio::time::interval(Duration::from_millis(KEEP_ALIVE_INTERVAL_MS));
    ping.reset();
    loop {
        let outgoing = tokio::select! {
            () = shutdown_requested(&mut shutdown) => {
                let frame = CloseFrame { code: CLOSE_GOING_AWAY, reason: "server shutting down".into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(text))) => Some(notice(handle_client_message(text.as_str(), &mut filter))),
                Some(Ok(Message::Binary(_))) => {
                    Some(notice(ServerNotice::Error("binary messages are not supported; send JSON text".into())))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
            },
            event = receiver.recv() => match event {
                Ok(event) => match filter.as_ref().and_then(|f| f.apply(&event)).map(|e| caller.view_event(&e)) {
                    Some(EventView::Visible(event)) => serde_json::to_string(&*event)
                        .inspect_err(|error| tracing::error!(%error, "event could not be serialised"))
                        .ok(),
                    Some(EventView::CredentialEnded) => {
                        let frame = CloseFrame { code: CLOSE_POLICY_VIOLATION, reason: "credential revoked or expired".into() };
                        let _ = socket.send(Message::Close(Some(frame))).await;
                        return;
                    }
                    Some(EventView::Hidden | EventView::TwinUnreadable) | None => None,
                },
                // Before the first subscription nothing was wanted, so nothing was lost.
                Err(RecvError::Lagged(skipped)) => filter.as_ref().map(|_| notice(ServerNotice::Lagged(skipped))),
                Err(RecvError::Closed) => return,
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                None
            }
        };
        if let Some(text) = outgoing
            && socket.send(Message::Text(text.into())).await.is_err()
        {
            return;
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
    use doppel_engine::PointUpdate;
    use doppel_model::{Provenance, Timestamp};

    fn points_event(twin: &str, signals: &[&str]) -> Arc<Event> {
        Arc::new(Event {
            seq: 7,
            twin: TwinId::new(twin).unwrap(),
            kind: EventKind::Points,
            time: Timestamp::from_secs(1),
            body: EventBody::Points {
                points: signals
                    .iter()
                    .map(|s| PointUpdate {
                        signal: SignalName::new(s).unwrap(),
                        provenance: Provenance::none(),
                        time: Timestamp::from_secs(1),
                        value: 60.0,
                        label: None,
                    })
                    .collect(),
            },
        })
    }

    fn filter(json: &str) -> Filter {
        Filter::new(serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn twin_filter_drops_other_twins() {
        let only_a = filter(r#"{"twins": ["a"]}"#);
        assert!(only_a.apply(&points_event("a", &["heart_rate"])).is_some());
        assert!(only_a.apply(&points_event("b", &["heart_rate"])).is_none());
        assert!(filter("{}").apply(&points_event("b", &["heart_rate"])).is_some());
    }

    #[test]
    fn signal_filter_trims_points_and_drops_events_left_empty() {
        let hr = filter(r#"{"signals": ["heart_rate"]}"#);
        let trimmed = hr.apply(&points_event("a", &["heart_rate", "steps"])).unwrap();
        let EventBody::Points { points } = &trimmed.body else { panic!("points event expected") };
        assert_eq!(points.len(), 1);
        assert_eq!(trimmed.seq, 7);
        assert!(hr.apply(&points_event("a", &["steps"])).is_none());
    }

    #[test]
    fn kind_filter_and_bad_members_are_named() {
        let deletions = filter(r#"{"kinds": ["twin_deleted"]}"#);
        assert!(deletions.apply(&points_event("a", &["heart_rate"])).is_none());
        let error = Filter::new(serde_json::from_str(r#"{"kinds": ["everything"]}"#).unwrap()).unwrap_err();
        assert_eq!(error.member, "kinds");
        let error = Filter::new(serde_json::from_str(r#"{"twins": ["a b"]}"#).unwrap()).unwrap_err();
        assert_eq!(error.member, "twins");
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_how_many_events_it_missed_then_continues() {
        let (sender, mut receiver) = broadcast::channel(2);
        for seq in 1..=4 {
            let mut event = (*points_event("a", &["heart_rate"])).clone();
            event.seq = seq;
            sender.send(Arc::new(event)).unwrap();
        }
        let (_stop, mut shutdown) = watch::channel(false);
        let all = Filter::default();
        let caller = Caller::unrestricted();
        let first = next_delivery(&mut receiver, &all, &caller, &mut shutdown).await;
        assert!(matches!(first, Some(Delivery::Lagged(2))), "{first:?}");
        let second = next_delivery(&mut receiver, &all, &caller, &mut shutdown).await;
        assert!(matches!(second, Some(Delivery::Event(e)) if e.seq == 3));
        let third = next_delivery(&mut receiver, &all, &caller, &mut shutdown).await;
        assert!(matches!(third, Some(Delivery::Event(e)) if e.seq == 4));
    }

    #[tokio::test]
    async fn deliveries_end_on_shutdown() {
        let (_sender, mut receiver) = broadcast::channel::<Arc<Event>>(2);
        let (stop, mut shutdown) = watch::channel(false);
        stop.send(true).unwrap();
        let caller = Caller::unrestricted();
        assert!(next_delivery(&mut receiver, &Filter::default(), &caller, &mut shutdown).await.is_none());
    }

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
        assert_eq!(notice(ServerNotice::Lagged(3)), r#"{"lagged":3}"#);
    }
}
