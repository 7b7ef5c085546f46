//! What callers see of a twin: read-only snapshots built from live state.

use doppel_model::{SignalName, Span, Timestamp, TwinId};
use serde::Serialize;

/// A twin's properties and present state.
#[derive(Clone, Debug, Serialize)]
pub struct TwinView {
    /// The twin's id.
    pub id: TwinId,
    /// The name of its model.
    pub model: String,
    /// When it was created.
    #[serde(serialize_with = "Timestamp::serialize_rfc3339")]
    pub created: Timestamp,
    /// Slow facts (birth year, therapy settings, ...).
    pub properties: serde_json::Map<String, serde_json::Value>,
    /// Live state per signal, sorted by signal name.
    pub signals: Vec<SignalState>,
}

/// The present of one signal of a twin, across all its sources.
#[derive(Clone, Debug, Serialize)]
pub struct SignalState {
    /// The signal.
    pub signal: SignalName,
    /// Its unit when the model defines it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Time of the newest point.
    #[serde(serialize_with = "Timestamp::serialize_rfc3339")]
    pub last_time: Timestamp,
    /// Value of the newest point.
    pub last_value: f64,
    /// The newest point's category label, for category and interval signals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Rolling statistics, one per configured window.
    pub windows: Vec<WindowStats>,
}

/// Rolling statistics over one window ending at the signal's newest point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowStats {
    /// The window's span.
    pub window: Span,
    /// Points in the window.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Population standard deviation.
    pub std: f64,
}

/// A twin in a listing.
#[derive(Clone, Debug, Serialize)]
pub struct TwinSummary {
    /// The twin's id.
    pub id: TwinId,
    /// The name of its model.
    pub model: String,
    /// When it was created.
    #[serde(serialize_with = "Timestamp::serialize_rfc3339")]
    pub created: Timestamp,
}
