//! Doppel's vocabulary: the types every other crate speaks.
//!
//! A [`Point`] is one observation of one [`SignalName`] of one [`TwinId`] at a
//! [`Timestamp`], with a finite [`Value`] and the [`Provenance`] (source,
//! device, other tags) that tells two devices reporting the same signal
//! apart. Ingest groups points into a [`Batch`] of [`SeriesBatch`]es, one per
//! [`SeriesKey`], because everything downstream (WAL, head, live state) works
//! per series.
//!
//! Every type here is parsed, not validated: a `TwinId` that exists is a
//! valid twin id, a `Value` that exists is finite.
//!
//! ```
//! use doppel_model::{Batch, Point, Provenance, SignalName, Timestamp, TwinId, Value};
//!
//! let point = Point {
//!     twin: TwinId::new("alice").unwrap(),
//!     signal: SignalName::new("heart_rate").unwrap(),
//!     provenance: Provenance::from_tags([("device", "watch")]).unwrap(),
//!     time: Timestamp::from_secs(1_700_000_000),
//!     value: Value::new(62.0).unwrap(),
//! };
//! let batch = Batch::from_points(vec![point]);
//! assert_eq!(batch.point_count(), 1);
//! ```
//!
//! This crate knows nothing of storage, HTTP or wire formats.

mod batch;
mod definition;
mod duration;
mod error;
mod field;
mod ids;
mod intern;
mod provenance;
mod time;
mod value;

pub use batch::{Batch, BatchBuilder, Point, Sample, SeriesBatch, SeriesKey};
pub use definition::{
    DefinitionError, FieldPath, Format, Location, MAX_CATEGORIES, MAX_DEFINITION_BYTES,
    MAX_DESCRIPTION_BYTES, MAX_LABEL_BYTES, MAX_PROPERTIES, MAX_RELATIONS, MAX_SIGNALS, MAX_UNIT_BYTES,
    MAX_WINDOWS, ModelDef, ModelRegistry, PathSegment, PropertyDef, PropertyRejection, PropertyType,
    Rejection, RelationDef, SignalDef, SignalKind, ValueRange,
};
pub use duration::Span;
pub use error::ModelError;
pub use field::FieldValue;
pub use ids::{MAX_NAME_BYTES, SignalName, TwinId};
pub use provenance::{MAX_PROVENANCE_BYTES, Provenance};
pub use time::{Precision, Timestamp};
pub use value::Value;
