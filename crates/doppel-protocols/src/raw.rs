//! What every parser produces: a raw batch grouped by series, or the list of
//! every bad line.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use doppel_model::{FieldValue, SeriesKey, Timestamp};
use thiserror::Error;

/// Most line errors one parse reports. A body with a million bad lines must
/// not produce a million-entry error answer; the first thousand are enough
/// to fix the sender, and `truncated` says there were more.
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// A parsed batch whose values are not yet checked against any twin's
/// model. The engine validates it and must be able to point at the input
/// line of every value it rejects, so each sample keeps its line number.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct RawBatch {
    /// One entry per distinct series, in first-seen order.
    pub series: Vec<RawSeries>,
}

/// The samples of one series, in input order.
#[derive(Clone, PartialEq, Debug)]
pub struct RawSeries {
    /// Twin, signal and provenance of every sample below.
    pub key: SeriesKey,
    /// The samples, in the order they appeared in the input.
    pub samples: Vec<RawSample>,
}

/// One value as it arrived, with the place it came from.
#[derive(Clone, PartialEq, Debug)]
pub struct RawSample {
    /// 1-based line number of the input line (for JSON: the 1-based item
    /// number) this sample came from.
    pub line: u32,
    /// When it was observed.
    pub time: Timestamp,
    /// The value, number or text, not yet checked against a model.
    pub value: FieldValue,
}

impl RawBatch {
    /// Number of samples across all series.
    pub fn point_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// True when the batch holds no samples (an empty body, or only
    /// comments and blank lines).
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.samples.is_empty())
    }
}

/// What a [`LineError::line`] counts: input lines, or items of a JSON array.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Unit {
    /// A 1-based line of text input.
    #[default]
    Line,
    /// A 1-based item of a JSON array of points.
    Item,
}

/// One rejected line (or JSON item) and why.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub struct LineError {
    /// 1-based number of the line, or of the JSON item when `unit` is
    /// [`Unit::Item`].
    pub line: u32,
    /// What was wrong, naming the element (tag, field, column) at fault.
    pub message: String,
    /// Whether `line` counts lines or JSON items.
    pub unit: Unit,
}

impl LineError {
    /// An error on a 1-based input line.
    pub fn at_line(line: u32, message: impl Into<String>) -> Self {
        Self { line, message: message.into(), unit: Unit::Line }
    }

    /// An error on a 1-based JSON item.
    pub fn at_item(item: u32, message: impl Into<String>) -> Self {
        Self { line: item, message: message.into(), unit: Unit::Item }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            Unit::Line => write!(f, "line {}: {}", self.line, self.message),
            Unit::Item => write!(f, "item {}, {}", self.line, self.message),
        }
    }
}

/// Why a whole input was refused: every bad line, in input order. Batches
/// are atomic, so one bad line refuses them all, and the sender learns about
/// every bad line at once rather than one per retry.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub struct ParseErrors {
    /// The bad lines, at most [`MAX_REPORTED_ERRORS`] of them.
    pub errors: Vec<LineError>,
    /// True when there were more bad lines than `errors` lists.
    pub truncated: bool,
}

impl ParseErrors {
    /// A refusal with a single reason (malformed JSON, a bad header).
    pub fn single(error: LineError) -> Self {
        Self { errors: vec![error], truncated: false }
    }

    /// The line numbers of the listed errors, for tests and summaries.
    pub fn lines(&self) -> Vec<u32> {
        self.errors.iter().map(|e| e.line).collect()
    }
}

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let more = if self.truncated { " (and more)" } else { "" };
        match self.errors.first() {
            Some(first) if self.errors.len() == 1 && !self.truncated => write!(f, "{first}"),
            Some(first) => write!(f, "{} bad lines{more}, first: {first}", self.errors.len()),
            None => f.write_str("input refused"),
        }
    }
}

/// Collects line errors up to [`MAX_REPORTED_ERRORS`].
#[derive(Default, Debug)]
pub(crate) struct ErrorList {
    errors: Vec<LineError>,
    truncated: bool,
}

impl ErrorList {
    /// Records one error; returns false once the list is full, so callers
    /// can stop scanning input that cannot be accepted anyway.
    pub(crate) fn push(&mut self, error: LineError) -> bool {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(error);
            true
        } else {
            self.truncated = true;
            false
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The batch when no error was recorded, the errors otherwise.
    pub(crate) fn finish(self, batch: RawBatch) -> Result<RawBatch, ParseErrors> {
        if self.errors.is_empty() {
            Ok(batch)
        } else {
            Err(ParseErrors { errors: self.errors, truncated: self.truncated })
        }
    }
}

/// Hashes a `u64` that is already a keyed hash by passing it through, so a
/// map keyed by such hashes never hashes twice, not even when it grows.
#[derive(Default)]
pub(crate) struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Maps using this hasher key on `u64`, which calls `write_u64`;
        // fold anything else in so the hasher stays correct regardless.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Groups samples by series key in first-seen order. Parsers that cache
/// their own raw-bytes → series index mapping call [`Grouper::series_index`]
/// only on a cache miss.
///
/// Keys are hashed once, with a random key (SipHash: input cannot be crafted
/// to collide), into a map from hash to the first series with that hash;
/// series with equal hashes are chained. Growing the map then never
/// rehashes the keys' strings.
#[derive(Default)]
pub(crate) struct Grouper {
    hasher: RandomState,
    index: HashMap<u64, usize, BuildHasherDefault<PrehashedKey>>,
    /// For each series, the next series whose key has the same hash.
    next_same_hash: Vec<Option<usize>>,
    pub(crate) batch: RawBatch,
}

impl Grouper {
    /// The index of the key's series, created empty when new.
    pub(crate) fn series_index(&mut self, key: SeriesKey) -> usize {
        let hash = self.hasher.hash_one(&key);
        let mut candidate = self.index.get(&hash).copied();
        let mut last_in_chain = None;
        while let Some(i) = candidate {
            if self.batch.series.get(i).is_some_and(|s| s.key == key) {
                return i;
            }
            last_in_chain = Some(i);
            candidate = self.next_same_hash.get(i).copied().flatten();
        }
        let i = self.batch.series.len();
        match last_in_chain.and_then(|last| self.next_same_hash.get_mut(last)) {
            Some(link) => *link = Some(i),
            None => {
                self.index.insert(hash, i);
            }
        }
        self.next_same_hash.push(None);
        self.batch.series.push(RawSeries { key, samples: Vec::new() });
        i
    }

    /// Appends a sample to the series at `index` (from [`Self::series_index`]).
    pub(crate) fn push(&mut self, index: usize, sample: RawSample) {
        if let Some(series) = self.batch.series.get_mut(index) {
            series.samples.push(sample);
        }
    }

    /// The batch, dropping series that never received a sample (a key can
    /// be resolved for a line whose later part turned out bad).
    pub(crate) fn finish(mut self) -> RawBatch {
        self.batch.series.retain(|s| !s.samples.is_empty());
        self.batch
    }
}

/// Converts a count of lines or items to the `u32` the error and sample
/// types carry; inputs are bounded by the server's body limit long before
/// four billion lines, and saturating keeps a pathological one from wrapping.
pub(crate) fn line_number(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_list_caps_and_marks_truncation() {
        let mut list = ErrorList::default();
        for i in 0..MAX_REPORTED_ERRORS + 5 {
            list.push(LineError::at_line(line_number(i + 1), "bad"));
        }
        let errors = list.finish(RawBatch::default()).unwrap_err();
        assert_eq!(errors.errors.len(), MAX_REPORTED_ERRORS);
        assert!(errors.truncated);
        assert!(errors.to_string().contains("(and more)"));
    }

    #[test]
    fn display_names_the_line_or_item() {
        assert_eq!(LineError::at_line(3, "missing tag 'twin'").to_string(), "line 3: missing tag 'twin'");
        assert_eq!(
            LineError::at_item(2, "field \"value\": expected a number").to_string(),
            "item 2, field \"value\": expected a number"
        );
    }
}
