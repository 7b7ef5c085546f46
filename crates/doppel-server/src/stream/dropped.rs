//! Slow subscribers: why one is dropped, what it is told, and the counts
//! `/metrics` shows.
//!
//! A subscriber is dropped, never waited for, in two cases: it fell so far
//! behind that the engine's bounded bus skipped events it had not read
//! yet, or one send to it did not complete within
//! [`crate::ServerConfig::subscriber_send_timeout`]. Either way its
//! subscription ends with a reason it can act on (reconnect, then read
//! faster or ask for less), and everything it held is released, so what a
//! client costs the server stays bounded whatever the client does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Why a subscriber was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// The engine's bus skipped this many events the subscriber had not
    /// read: its stream would have a gap, so it ends instead.
    Lagged {
        /// Events skipped, counted over the whole bus (not only those the
        /// subscription matches).
        skipped: u64,
    },
    /// One send did not complete within the timeout: the client stopped
    /// reading, or reads too slowly for the events it asked for.
    SendTimeout {
        /// The configured timeout.
        timeout: Duration,
    },
}

/// The `{"dropped": {...}}` notice, last on the stream.
#[derive(Debug, Serialize)]
struct DroppedNotice {
    dropped: DroppedBody,
}

#[derive(Debug, Serialize)]
struct DroppedBody {
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u64>,
    detail: String,
}

impl DropReason {
    /// Stable name of the reason: the `reason` member of the notice and the
    /// `reason` label of the metric.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Lagged { .. } => "lagged",
            Self::SendTimeout { .. } => "send_timeout",
        }
    }

    /// The reason in words. At most 123 bytes, so it fits a WebSocket
    /// close frame (RFC 6455 §5.5.1).
    pub(crate) fn describe(self) -> String {
        match self {
            Self::Lagged { skipped } => {
                format!("subscriber fell behind: {skipped} events were skipped; reconnect and read faster")
            }
            Self::SendTimeout { timeout } => {
                format!("subscriber did not accept an event within {} ms", timeout.as_millis())
            }
        }
    }

    /// The JSON notice sent last on the stream:
    /// `{"dropped": {"reason": "lagged", "skipped": 12, "detail": "..."}}`.
    pub(crate) fn notice(self) -> String {
        let skipped = match self {
            Self::Lagged { skipped } => Some(skipped),
            Self::SendTimeout { .. } => None,
        };
        let notice =
            DroppedNotice { dropped: DroppedBody { reason: self.name(), skipped, detail: self.describe() } };
        serde_json::to_string(&notice).unwrap_or_else(|_| r#"{"dropped":{"reason":"unknown"}}"#.to_owned())
    }
}

/// Subscribers dropped since the server started, by reason.
#[derive(Debug, Default)]
pub(crate) struct DropCounts {
    lagged: AtomicU64,
    send_timeout: AtomicU64,
}

impl DropCounts {
    /// Counts (and logs) one dropped subscriber.
    pub(crate) fn record(&self, reason: DropReason) {
        let counter = match reason {
            DropReason::Lagged { .. } => &self.lagged,
            DropReason::SendTimeout { .. } => &self.send_timeout,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::info!(reason = reason.name(), detail = %reason.describe(), "dropped a slow stream subscriber");
    }

    /// `(reason, count)` for each reason, for `/metrics`.
    pub(crate) fn counts(&self) -> [(&'static str, u64); 2] {
        [
            ("lagged", self.lagged.load(Ordering::Relaxed)),
            ("send_timeout", self.send_timeout.load(Ordering::Relaxed)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_name_the_reason_and_how_many_events_were_skipped() {
        let lagged = DropReason::Lagged { skipped: 42 };
        let notice: serde_json::Value = serde_json::from_str(&lagged.notice()).unwrap();
        assert_eq!(notice["dropped"]["reason"], "lagged");
        assert_eq!(notice["dropped"]["skipped"], 42);
        assert!(notice["dropped"]["detail"].as_str().unwrap().contains("42 events were skipped"));
        let timeout = DropReason::SendTimeout { timeout: Duration::from_millis(250) };
        let notice: serde_json::Value = serde_json::from_str(&timeout.notice()).unwrap();
        assert_eq!(notice["dropped"]["reason"], "send_timeout");
        assert!(notice["dropped"].get("skipped").is_none());
        assert!(notice["dropped"]["detail"].as_str().unwrap().contains("250 ms"));
    }

    #[test]
    fn every_description_fits_a_websocket_close_frame() {
        for reason in [
            DropReason::Lagged { skipped: u64::MAX },
            DropReason::SendTimeout { timeout: Duration::from_secs(u64::MAX) },
        ] {
            assert!(reason.describe().len() <= 123, "{}", reason.describe());
        }
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let counts = DropCounts::default();
        counts.record(DropReason::Lagged { skipped: 1 });
        counts.record(DropReason::Lagged { skipped: 9 });
        counts.record(DropReason::SendTimeout { timeout: Duration::from_secs(1) });
        assert_eq!(counts.counts(), [("lagged", 2), ("send_timeout", 1)]);
    }
}
