//! Doppel's wire formats: pure parsers and encoders with no I/O.
//!
//! Every parser turns bytes into a [`RawBatch`]: samples grouped by
//! [`doppel_model::SeriesKey`] in first-seen order, each remembering the
//! input line (or JSON item) it came from, so the engine can name the line
//! of every value a twin's model rejects. A batch is atomic: one bad line
//! and the parser answers [`ParseErrors`] listing every bad line instead.
//!
//! - [`line_protocol`]: InfluxDB line protocol, the ingest hot path, plus an
//!   encoder for benchmarks and tests;
//! - [`json_points`]: the REST API's JSON points;
//! - [`csv`]: long and wide CSV for `doppel import`.
//!
//! ```
//! use doppel_model::{Precision, Timestamp};
//! use doppel_protocols::line_protocol;
//!
//! let body = b"heart_rate,twin=p0001,device=watch value=62 1700000000000000000\n";
//! let batch = line_protocol::parse(body, Precision::Ns, Timestamp::from_secs(0)).unwrap();
//! assert_eq!(batch.point_count(), 1);
//! assert_eq!(batch.series[0].key.signal.as_str(), "heart_rate");
//! assert_eq!(batch.series[0].key.provenance.as_str(), "device=watch");
//! ```
//!
//! This crate must not know about files, sockets, compression or HTTP:
//! the server reads and inflates bodies before calling it, which keeps
//! every parser fuzzable (see `fuzz/`).

pub mod csv;
pub mod json_keys;
pub mod json_points;
pub mod line_protocol;
mod number;
mod raw;

pub use raw::{LineError, MAX_REPORTED_ERRORS, ParseErrors, RawBatch, RawSample, RawSeries, Unit};
