//! Doppel's live twins.
//!
//! The engine turns raw parsed batches into durable history and live state:
//! it validates every value against the twin's model (all or nothing, with
//! every bad line named), creates twins on their first write unless strict,
//! writes through the store (acknowledged only once durable), updates each
//! twin's live state (newest value and rolling windows per signal) and
//! publishes one event per twin per batch to subscribers.
//!
//! ```no_run
//! use doppel_engine::{Engine, EngineConfig};
//! use doppel_store::StoreConfig;
//!
//! let engine = Engine::open(EngineConfig::new(StoreConfig::new("./doppel-data"))).unwrap();
//! let batch = doppel_protocols::line_protocol::parse(
//!     b"heart_rate,twin=alice value=61 1700000000000000000",
//!     doppel_model::Precision::Ns,
//!     doppel_model::Timestamp::now(),
//! ).unwrap();
//! engine.ingest(batch).unwrap();
//! assert_eq!(engine.twin(&"alice".parse().unwrap()).unwrap().signals.len(), 1);
//! ```
//!
//! The engine knows nothing of HTTP; it is synchronous and blocks on disk
//! I/O, so async callers run it on blocking threads. Later detectors and
//! features plug in where a batch is applied to live state.

mod engine;
mod error;
mod events;
mod limits;
mod live;
mod view;
mod window;

pub use engine::{DEFAULT_EVENT_CAPACITY, Engine, EngineConfig, EngineStats, IngestReceipt};
pub use error::{EngineError, IngestError};
pub use events::{Event, EventBody, EventKind, PointUpdate};
pub use limits::{
    DEFAULT_FUTURE_HORIZON, DEFAULT_MAX_FIELDS_PER_LINE, DEFAULT_MAX_SERIES_PER_REQUEST,
    DEFAULT_MAX_SERIES_PER_TWIN, DEFAULT_MAX_SIGNALS_PER_REQUEST, DEFAULT_MAX_SIGNALS_PER_TWIN,
    DEFAULT_MAX_TAGS_PER_POINT, DEFAULT_MAX_TWINS_PER_REQUEST, IngestLimits,
};
pub use view::{SignalState, TwinSummary, TwinView, WindowStats};
pub use window::SUB_BUCKETS;
