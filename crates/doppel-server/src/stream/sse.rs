//! Server-Sent Events of one twin: `GET /api/v1/twins/{id}/events`.
//!
//! The answer body is fed by a task of its own, the forwarder, through a
//! queue of [`SSE_QUEUE_EVENTS`]: hyper polls a body only while it can
//! write to the client, so only a task beside the body can notice that a
//! client stopped reading. The forwarder reads the bus, filters, and waits
//! at most `subscriber_send_timeout` for room in the queue. When it drops
//! the subscriber, it releases its bus receiver at once and queues a last
//! `event: dropped` message, after which the body ends; if the body does
//! not take that message in time either, the client is not reading at
//! all, and its connection is closed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use doppel_engine::Event;
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{broadcast, mpsc, watch};
use utoipa::IntoParams;

use super::dropped::{DropCounts, DropReason};
use super::filter::{Filter, Subscription};
use super::{Delivery, next_delivery};
use crate::AppState;
use crate::auth::{AccessWatch, Caller};
use crate::limits::{KEEP_ALIVE_INTERVAL_MS, SSE_QUEUE_EVENTS};
use crate::listener::{ConnectionCloser, ShutdownSignal};
use crate::problem::{ApiError, Problem};

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
        (status = 200, description = "text/event-stream: each event has `event: <kind>`, `id: <seq>` and the JSON event as data, trimmed to the signals the caller may read at that moment; keep-alive comments every 15 s. A slow subscriber is dropped: when the server's bounded event buffer skipped events it had not read, or one event was not accepted within the send timeout (`[limits] subscriber_send_timeout`, 10 s by default), the stream ends with `event: dropped` and data {\"dropped\": {\"reason\": \"lagged\" | \"send_timeout\", \"skipped\": n, \"detail\": \"...\"}} (a client that reads nothing at all has its connection closed instead). The stream also ends when the caller can no longer read the twin or its token is revoked.", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad id, signals or kinds", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No twin the caller may read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn twin_events(
    State(state): State<AppState>,
    ShutdownSignal(shutdown): ShutdownSignal,
    closer: ConnectionCloser,
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
    let (queue, queued) = mpsc::channel(SSE_QUEUE_EVENTS);
    let forwarder = Forwarder {
        receiver: state.engine.subscribe(),
        filter,
        access: AccessWatch::new(&caller, Some(twin)),
        caller,
        shutdown,
        queue,
        send_timeout: state.limits.subscriber_send_timeout,
        drops: state.dropped_subscribers.clone(),
        closer,
    };
    tokio::spawn(forwarder.run());
    Ok(Sse::new(body(queued))
        .keep_alive(KeepAlive::new().interval(Duration::from_millis(KEEP_ALIVE_INTERVAL_MS))))
}

/// One message of the queue between the forwarder and the body.
#[derive(Debug)]
enum Queued {
    /// An event; more may follow.
    Event(SseEvent),
    /// The last message: the body ends after it.
    Last(SseEvent),
}

/// The answer body: the queue's messages until the last one, or until the
/// forwarder leaves (shutdown, access ended).
fn body(queued: mpsc::Receiver<Queued>) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(Some(queued), |queued| async move {
        let mut queued = queued?;
        match queued.recv().await? {
            Queued::Event(message) => Some((Ok(message), Some(queued))),
            Queued::Last(message) => Some((Ok(message), None)),
        }
    })
}

/// Moves one subscriber's events from the bus to its answer body.
struct Forwarder {
    receiver: broadcast::Receiver<Arc<Event>>,
    filter: Filter,
    caller: Caller,
    access: AccessWatch,
    shutdown: watch::Receiver<bool>,
    queue: mpsc::Sender<Queued>,
    send_timeout: Duration,
    drops: Arc<DropCounts>,
    closer: ConnectionCloser,
}

impl Forwarder {
    /// Forwards until the client leaves, the subscription ends, or the
    /// subscriber is dropped.
    async fn run(mut self) {
        loop {
            let delivery = tokio::select! {
                // The body was dropped: the client left.
                () = self.queue.closed() => return,
                delivery = next_delivery(&mut self.receiver, &self.filter, &self.caller, &mut self.access, &mut self.shutdown) => delivery,
            };
            let event = match delivery {
                None => return,
                Some(Delivery::Dropped(reason)) => return self.drop_subscriber(reason).await,
                Some(Delivery::Event(event)) => event,
            };
            let message = match serde_json::to_string(&*event) {
                Ok(json) => {
                    SseEvent::default().event(event.kind.as_str()).id(event.seq.to_string()).data(json)
                }
                Err(error) => {
                    tracing::error!(%error, "event could not be serialised");
                    continue;
                }
            };
            match self.queue.send_timeout(Queued::Event(message), self.send_timeout).await {
                Ok(()) => {}
                Err(SendTimeoutError::Closed(_)) => return,
                Err(SendTimeoutError::Timeout(_)) => {
                    let reason = DropReason::SendTimeout { timeout: self.send_timeout };
                    return self.drop_subscriber(reason).await;
                }
            }
        }
    }

    /// Ends the subscription: releases the bus receiver, counts the drop,
    /// and tells the client why if it is still reading; if it is not,
    /// closes its connection, the last thing it held.
    async fn drop_subscriber(self, reason: DropReason) {
        let Self { receiver, queue, send_timeout, drops, closer, .. } = self;
        drop(receiver);
        drops.record(reason);
        let last = SseEvent::default().event("dropped").data(reason.notice());
        let told = queue.send_timeout(Queued::Last(last), send_timeout).await.is_ok()
            && tokio::time::timeout(send_timeout, queue.closed()).await.is_ok();
        if !told {
            closer.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::filter::tests::points_event;
    use futures_util::StreamExt;
    use tokio::sync::Notify;

    /// What a test drives: the bus, a forwarder reading it into a queue
    /// of two, the queue's receiving end, and what the closer notifies.
    type Rig = (broadcast::Sender<Arc<Event>>, Forwarder, mpsc::Receiver<Queued>, Arc<Notify>);

    fn rig(capacity: usize, send_timeout: Duration) -> Rig {
        let (bus, receiver) = broadcast::channel(capacity);
        let (queue, queued) = mpsc::channel(2);
        let (closer, closed) = ConnectionCloser::new();
        let caller = Caller::unrestricted();
        let forwarder = Forwarder {
            receiver,
            filter: Filter::default(),
            access: AccessWatch::new(&caller, None),
            caller,
            shutdown: watch::channel(false).1,
            queue,
            send_timeout,
            drops: Arc::new(DropCounts::default()),
            closer,
        };
        (bus, forwarder, queued, closed)
    }

    fn publish(bus: &broadcast::Sender<Arc<Event>>, count: u64) {
        for seq in 1..=count {
            let mut event = (*points_event("a", &["heart_rate"])).clone();
            event.seq = seq;
            bus.send(Arc::new(event)).unwrap();
        }
    }

    async fn was_notified(notify: &Notify) -> bool {
        tokio::time::timeout(Duration::ZERO, notify.notified()).await.is_ok()
    }

    fn is_dropped_message(message: &SseEvent, reason: &str) -> bool {
        let text = format!("{message:?}");
        text.contains("dropped") && text.contains(reason)
    }

    #[tokio::test]
    async fn a_subscriber_the_bus_skipped_events_for_gets_a_last_dropped_message() {
        let (bus, forwarder, queued, closed) = rig(2, Duration::from_secs(5));
        let drops = forwarder.drops.clone();
        publish(&bus, 5);
        let task = tokio::spawn(forwarder.run());
        let messages: Vec<_> = body(queued).map(|message| message.unwrap()).collect().await;
        task.await.unwrap();
        assert_eq!(messages.len(), 1, "only the dropped message: {messages:?}");
        assert!(is_dropped_message(&messages[0], "lagged"), "{:?}", messages[0]);
        assert_eq!(drops.counts(), [("lagged", 1), ("send_timeout", 0)]);
        assert_eq!(bus.receiver_count(), 0, "the bus receiver is released");
        assert!(!was_notified(&closed).await, "a client that was told keeps its connection");
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_that_pauses_past_the_send_timeout_is_dropped_and_told_why() {
        let (bus, forwarder, queued, closed) = rig(64, Duration::from_millis(500));
        let drops = forwarder.drops.clone();
        let task = tokio::spawn(forwarder.run());
        // Two events fill the queue; the third waits for room.
        publish(&bus, 3);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(drops.counts(), [("lagged", 0), ("send_timeout", 0)], "dropped before the timeout");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(drops.counts(), [("lagged", 0), ("send_timeout", 1)]);
        assert_eq!(bus.receiver_count(), 0, "the bus receiver is released at once");
        // The client reads again within the timeout: it gets what was
        // queued, then the reason, and the stream ends.
        let messages: Vec<_> = body(queued).map(|message| message.unwrap()).collect().await;
        task.await.unwrap();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(is_dropped_message(&messages[2], "send_timeout"), "{:?}", messages[2]);
        assert!(!was_notified(&closed).await);
    }

    #[tokio::test(start_paused = true)]
    async fn the_connection_of_a_subscriber_that_reads_nothing_is_closed() {
        let (bus, forwarder, _queued, closed) = rig(64, Duration::from_millis(500));
        let drops = forwarder.drops.clone();
        let task = tokio::spawn(forwarder.run());
        publish(&bus, 3);
        task.await.unwrap();
        assert_eq!(drops.counts(), [("lagged", 0), ("send_timeout", 1)]);
        assert!(was_notified(&closed).await, "the connection is closed");
    }
}
