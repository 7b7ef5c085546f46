use thiserror::Error;

/// Why a piece of input could not become one of this crate's types.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ModelError {
    /// A twin id was empty, too long or held a character outside the URL-safe set.
    #[error("invalid twin id {id:?}: {reason}")]
    InvalidTwinId { id: String, reason: &'static str },
    /// A signal name was empty, too long or held a character outside its set.
    #[error("invalid signal name {name:?}: {reason}")]
    InvalidSignalName { name: String, reason: &'static str },
    /// A provenance tag key or value was malformed.
    #[error("invalid provenance tag {tag:?}: {reason}")]
    InvalidProvenance { tag: String, reason: &'static str },
    /// A value was NaN or infinite; neither can be stored or aggregated.
    #[error("value {0} is not finite")]
    NonFiniteValue(f64),
    /// A timestamp did not fit in signed 64-bit nanoseconds since the epoch.
    #[error("timestamp {value} {unit} is out of range (must fit in i64 nanoseconds)")]
    TimestampOutOfRange { value: i64, unit: &'static str },
    /// A duration that is not a positive `<integer><unit>` (ns, us, ms, s, m, h, d, w).
    #[error("invalid duration {0:?}: expected a positive whole number and a unit, like 90s, 15m, 1h or 7d")]
    InvalidDuration(String),
    /// A precision name other than ns, us, ms or s.
    #[error("unknown precision {0:?} (expected ns, us, ms or s)")]
    UnknownPrecision(String),
}
