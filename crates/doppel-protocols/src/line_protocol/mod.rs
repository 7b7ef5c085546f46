//! InfluxDB line protocol (1.x/2.x), the format Telegraf, Vector, Fluent Bit
//! and every Influx client write.
//!
//! ```text
//! heart_rate,twin=p0001,device=watch value=62 1700000000000000000
//! <measurement>[,<tag>=<value>...] <field>=<value>[,<field>=<value>...] [<timestamp>]
//! ```
//!
//! Grammar and escaping follow the InfluxDB 2.x "Line protocol" reference
//! (docs.influxdata.com, `reference/syntax/line-protocol`), which also
//! describes what 1.x accepts:
//!
//! - measurement: `\,` and `\ ` are escapes; tag keys, tag values and field
//!   keys also take `\=`. Any other backslash is literal, so names cannot
//!   end with a backslash.
//! - string field values are double-quoted; `\"`, `\\`, `\n`, `\r`, `\t`
//!   are escapes, any other backslash is literal, and a raw newline inside
//!   the quotes belongs to the string (as InfluxDB's own parsers accept).
//! - numbers: float by default (`1`, `-1.5`, `1e3`, `.5`); `i` suffix for a
//!   signed 64-bit integer, `u` for an unsigned one; NaN and infinities are
//!   refused. Booleans: `t T true True TRUE f F false False FALSE`.
//! - lines end in `\n` or `\r\n`; blank lines and lines whose first
//!   non-blank character is `#` are skipped; leading spaces are ignored.
//! - the timestamp is an integer in the request's precision; without one
//!   the point takes the server's `now`.
//!
//! Doppel's mapping (`docs/design.md`, "Contracts"): tag `twin` names the twin and
//! is required; the signal is the measurement when the field key is
//! `value`, `measurement.field` otherwise; every other tag becomes the
//! point's [`doppel_model::Provenance`]. Each field of a line is one sample
//! of its own series; a field key repeated within a line keeps its last
//! value, while a repeated tag key refuses the line, since readers differ
//! on which tag counts. Integers and unsigned integers become `f64`, so magnitudes beyond
//! 2^53 lose precision (accepted, the way a float gauge would); booleans
//! become 1 and 0; strings become [`doppel_model::FieldValue::Text`].

mod encode;
mod parse;

pub use encode::{encode_point, encode_points};
pub use parse::{MAX_STRING_FIELD_BYTES, parse};
