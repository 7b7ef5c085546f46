//! Live events: Server-Sent Events per twin
//! (`GET /api/v1/twins/{id}/events`, `sse.rs`) and a WebSocket for any set
//! of twins (`GET /api/v1/stream`, `websocket.rs`).
//!
//! Each subscriber reads the engine's broadcast channel, whose buffer is
//! bounded (`EngineConfig::event_capacity`), so no subscriber can make
//! ingest wait. A subscriber that falls behind far enough for the bus to
//! skip events it had not read, or that does not accept one send within
//! `ServerConfig::subscriber_send_timeout`, is dropped: its stream ends
//! with a reason (`dropped.rs`) and everything it held is released, so a
//! client that stops reading costs the server a bounded amount of memory
//! for a bounded time. Streams also end when the server shuts down.

mod dropped;
mod filter;
pub(crate) mod sse;
pub(crate) mod websocket;

use std::sync::Arc;

use doppel_engine::{Event, EventKind};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

pub(crate) use dropped::DropCounts;
pub(crate) use filter::Subscription;
pub(crate) use websocket::ClientMessage;

use crate::auth::{AccessWatch, Caller, EventView};
use dropped::DropReason;
use filter::Filter;

/// Completes when the server shuts down; never, if nobody can signal it
/// (a router served by something other than this crate's accept loop).
pub(crate) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What a subscriber receives next.
#[derive(Debug)]
enum Delivery {
    /// An event that passed the filter (possibly trimmed to its signals).
    Event(Arc<Event>),
    /// The subscriber fell behind and must be dropped.
    Dropped(DropReason),
}

/// Waits for the next delivery; `None` once the server shuts down, the
/// engine's bus closes, or the caller may no longer read the twin, whether
/// an event or `access` tells so first (a quiet twin's stream ends all the
/// same). Events already on the bus go first, so that a deleted twin's
/// subscriber hears of the deletion.
async fn next_delivery(
    receiver: &mut broadcast::Receiver<Arc<Event>>,
    filter: &Filter,
    caller: &Caller,
    access: &mut AccessWatch,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Delivery> {
    loop {
        let next = tokio::select! {
            biased;
            () = shutdown_requested(shutdown) => return None,
            next = receiver.recv() => next,
            _ = access.ended() => return None,
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
            Err(RecvError::Lagged(skipped)) => {
                return Some(Delivery::Dropped(DropReason::Lagged { skipped }));
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter::tests::points_event;

    #[tokio::test]
    async fn a_subscriber_the_bus_skipped_events_for_is_dropped_with_the_count() {
        let (sender, mut receiver) = broadcast::channel(2);
        for seq in 1..=4 {
            let mut event = (*points_event("a", &["heart_rate"])).clone();
            event.seq = seq;
            sender.send(Arc::new(event)).unwrap();
        }
        let (_stop, mut shutdown) = watch::channel(false);
        let caller = Caller::unrestricted();
        let mut access = AccessWatch::new(&caller, None);
        let first =
            next_delivery(&mut receiver, &Filter::default(), &caller, &mut access, &mut shutdown).await;
        assert!(matches!(first, Some(Delivery::Dropped(DropReason::Lagged { skipped: 2 }))), "{first:?}");
    }

    #[tokio::test]
    async fn deliveries_end_on_shutdown() {
        let (_sender, mut receiver) = broadcast::channel::<Arc<Event>>(2);
        let (stop, mut shutdown) = watch::channel(false);
        stop.send(true).unwrap();
        let caller = Caller::unrestricted();
        let mut access = AccessWatch::new(&caller, None);
        let filter = Filter::default();
        let delivery = next_delivery(&mut receiver, &filter, &caller, &mut access, &mut shutdown);
        assert!(delivery.await.is_none());
    }
}
