//! Events the engine publishes to subscribers (SSE, WebSocket, later
//! webhooks and NATS). One event per twin per accepted batch keeps the
//! event rate proportional to batches, not points.

use std::str::FromStr;

use doppel_model::{Provenance, SignalName, Timestamp, TwinId};
use serde::Serialize;

/// What happened; subscribers filter on it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// New points were accepted for the twin.
    Points,
    /// The twin was created (explicitly or by its first write).
    TwinCreated,
    /// The twin's model or properties changed.
    TwinUpdated,
    /// The twin and its data were deleted.
    TwinDeleted,
}

impl EventKind {
    /// Every kind, for documentation and validation of filters.
    pub const ALL: [EventKind; 4] = [Self::Points, Self::TwinCreated, Self::TwinUpdated, Self::TwinDeleted];

    /// The kind's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Points => "points",
            Self::TwinCreated => "twin_created",
            Self::TwinUpdated => "twin_updated",
            Self::TwinDeleted => "twin_deleted",
        }
    }
}

impl FromStr for EventKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown event kind {s:?} (expected one of {})", names.join(", "))
        })
    }
}

/// One point as subscribers see it.
#[derive(Clone, Debug, Serialize)]
pub struct PointUpdate {
    /// The signal.
    pub signal: SignalName,
    /// Its source; omitted when empty.
    #[serde(skip_serializing_if = "Provenance::is_empty")]
    pub provenance: Provenance,
    /// When it was observed.
    #[serde(serialize_with = "Timestamp::serialize_rfc3339")]
    pub time: Timestamp,
    /// The stored value (a category's index for category signals).
    pub value: f64,
    /// The category label, for category and interval signals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What an event carries beyond its header.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum EventBody {
    /// The points accepted in one batch.
    Points {
        /// In batch order.
        points: Vec<PointUpdate>,
    },
    /// The twin's model after a create or update.
    Twin {
        /// Model name.
        model: String,
    },
    /// Nothing beyond the header.
    Deleted {},
}

/// An event about one twin.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Increases by one per published event, so a subscriber can see gaps.
    pub seq: u64,
    /// The twin concerned.
    pub twin: TwinId,
    /// What happened.
    pub kind: EventKind,
    /// When the engine published it.
    #[serde(serialize_with = "Timestamp::serialize_rfc3339")]
    pub time: Timestamp,
    /// The details.
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    /// The signals the event touches (none for twin lifecycle events).
    pub fn signals(&self) -> impl Iterator<Item = &SignalName> {
        let points: &[PointUpdate] = match &self.body {
            EventBody::Points { points } => points,
            _ => &[],
        };
        points.iter().map(|p| &p.signal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_their_wire_names() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), kind);
        }
        assert!("nope".parse::<EventKind>().unwrap_err().contains("points"));
    }

    #[test]
    fn points_event_serialises_flat() {
        let event = Event {
            seq: 7,
            twin: TwinId::new("a").unwrap(),
            kind: EventKind::Points,
            time: Timestamp::from_secs(0),
            body: EventBody::Points {
                points: vec![PointUpdate {
                    signal: SignalName::new("heart_rate").unwrap(),
                    provenance: Provenance::none(),
                    time: Timestamp::from_secs(1),
                    value: 61.0,
                    label: None,
                }],
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["kind"], "points");
        assert_eq!(json["points"][0]["signal"], "heart_rate");
        assert_eq!(json["seq"], 7);
    }
}
