//! Caps on what one batch and one twin may bring, so that no one person
//! can fill what all share: the server-wide tables of names, the live
//! state, a request's share of the write path, and a signal's present
//! (a point from a clock far ahead would hold it for good).
//!
//! Every ingest path hands the engine a `RawBatch`, so checking here
//! covers them all. Each refusal names the cap, its value and the line
//! (or JSON item) that went past it.

use std::collections::{HashMap, HashSet};

use doppel_model::{SignalName, Span, Timestamp, TwinId};
use doppel_protocols::{LineError, RawBatch};

/// Default `future_horizon`: an hour covers clocks that drifted for
/// months without a network sync (quartz drifts seconds a day) and late
/// daylight-saving changes, while a device that sends local time as UTC,
/// or a clock years off, is refused by name instead of holding a twin's
/// present until the clock catches up.
pub const DEFAULT_FUTURE_HORIZON: Span = match Span::from_secs(3_600) {
    Some(span) => span,
    None => panic!("an hour is a positive span"),
};

/// Default most fields one line-protocol line (or one CSV row) may carry:
/// Telegraf's widest inputs send a few hundred; a line of thousands is a
/// client inventing signal names.
pub const DEFAULT_MAX_FIELDS_PER_LINE: usize = 1_000;

/// Default most distinct signal names one request may bring.
pub const DEFAULT_MAX_SIGNALS_PER_REQUEST: usize = 1_000;

/// Default most series (twin × signal × tags) one request may bring: a
/// thousand twins' worth of a full person model.
pub const DEFAULT_MAX_SERIES_PER_REQUEST: usize = 100_000;

/// Default most twins one request may write.
pub const DEFAULT_MAX_TWINS_PER_REQUEST: usize = 10_000;

/// Default most tags (provenance entries) one point may carry: source,
/// device, app and a few more; each distinct set is a new series.
pub const DEFAULT_MAX_TAGS_PER_POINT: usize = 32;

/// Default most distinct signals one twin may have: models define tens;
/// this leaves room for non-strict clients' own names while bounding one
/// person's share of the server-wide name table and of live state.
pub const DEFAULT_MAX_SIGNALS_PER_TWIN: usize = 1_000;

/// Default most series one twin may have (its signals times the tag sets
/// each arrives with).
pub const DEFAULT_MAX_SERIES_PER_TWIN: usize = 10_000;

/// The caps, each with its configuration name in refusals.
#[derive(Clone, Debug)]
pub struct IngestLimits {
    /// Points more than this ahead of the server clock are refused.
    pub future_horizon: Span,
    /// Most fields (points) one input line may carry.
    pub max_fields_per_line: usize,
    /// Most distinct signal names one batch may bring.
    pub max_signals_per_request: usize,
    /// Most series one batch may bring.
    pub max_series_per_request: usize,
    /// Most twins one batch may write.
    pub max_twins_per_request: usize,
    /// Most tags one point may carry.
    pub max_tags_per_point: usize,
    /// Most distinct signals one twin may hold.
    pub max_signals_per_twin: usize,
    /// Most series one twin may hold.
    pub max_series_per_twin: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            future_horizon: DEFAULT_FUTURE_HORIZON,
            max_fields_per_line: DEFAULT_MAX_FIELDS_PER_LINE,
            max_signals_per_request: DEFAULT_MAX_SIGNALS_PER_REQUEST,
            max_series_per_request: DEFAULT_MAX_SERIES_PER_REQUEST,
            max_twins_per_request: DEFAULT_MAX_TWINS_PER_REQUEST,
            max_tags_per_point: DEFAULT_MAX_TAGS_PER_POINT,
            max_signals_per_twin: DEFAULT_MAX_SIGNALS_PER_TWIN,
            max_series_per_twin: DEFAULT_MAX_SERIES_PER_TWIN,
        }
    }
}

impl IngestLimits {
    /// Every way `batch` goes past a per-request cap or the horizon, given
    /// the server clock `now`. Caps are checked before anything else of
    /// the batch, so a huge batch costs no more than this pass.
    pub(crate) fn check_request(&self, batch: &RawBatch, now: Timestamp) -> Vec<LineError> {
        let mut errors = Vec::new();
        let latest = now.add_nanos(self.future_horizon.as_nanos());
        let mut per_line: HashMap<u32, usize> = HashMap::new();
        let mut signals: HashSet<&SignalName> = HashSet::new();
        let mut twins: HashSet<&TwinId> = HashSet::new();
        let mut signals_over = false;
        let mut twins_over = false;
        for (index, series) in batch.series.iter().enumerate() {
            let first_line = series.samples.first().map_or(0, |s| s.line);
            if index == self.max_series_per_request {
                errors.push(LineError::at_line(
                    first_line,
                    format!(
                        "the request brings more than {} series, the limit (max_series_per_request)",
                        self.max_series_per_request
                    ),
                ));
            }
            if signals.insert(&series.key.signal)
                && signals.len() > self.max_signals_per_request
                && !signals_over
            {
                signals_over = true;
                errors.push(LineError::at_line(
                    first_line,
                    format!(
                        "signal {} is distinct signal number {} of the request, above the limit of {} \
                         (max_signals_per_request)",
                        series.key.signal,
                        signals.len(),
                        self.max_signals_per_request
                    ),
                ));
            }
            if twins.insert(&series.key.twin) && twins.len() > self.max_twins_per_request && !twins_over {
                twins_over = true;
                errors.push(LineError::at_line(
                    first_line,
                    format!(
                        "twin {} is twin number {} of the request, above the limit of {} (max_twins_per_request)",
                        series.key.twin,
                        twins.len(),
                        self.max_twins_per_request
                    ),
                ));
            }
            let tags = series.key.provenance.tags().len();
            if tags > self.max_tags_per_point {
                errors.push(LineError::at_line(
                    first_line,
                    format!(
                        "{tags} tags on one point, above the limit of {} (max_tags_per_point)",
                        self.max_tags_per_point
                    ),
                ));
            }
            for sample in &series.samples {
                *per_line.entry(sample.line).or_default() += 1;
                if sample.time > latest {
                    errors.push(LineError::at_line(
                        sample.line,
                        format!(
                            "time {} is more than {} ahead of the server clock ({now}); fix the device's clock \
                             (future_horizon)",
                            sample.time, self.future_horizon
                        ),
                    ));
                }
            }
        }
        for (line, fields) in per_line {
            if fields > self.max_fields_per_line {
                errors.push(LineError::at_line(
                    line,
                    format!(
                        "{fields} fields on one line, above the limit of {} (max_fields_per_line)",
                        self.max_fields_per_line
                    ),
                ));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::Precision;

    fn parse(text: &str) -> RawBatch {
        doppel_protocols::line_protocol::parse(text.as_bytes(), Precision::S, Timestamp::from_secs(1_000))
            .unwrap()
    }

    fn small() -> IngestLimits {
        IngestLimits {
            future_horizon: "1m".parse().unwrap(),
            max_fields_per_line: 2,
            max_signals_per_request: 3,
            max_series_per_request: 4,
            max_twins_per_request: 2,
            max_tags_per_point: 1,
            max_signals_per_twin: 10,
            max_series_per_twin: 10,
        }
    }

    fn messages(errors: &[LineError]) -> Vec<String> {
        let mut all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        all.sort();
        all
    }

    #[test]
    fn a_batch_within_every_cap_passes() {
        let batch = parse("heart_rate,twin=a value=60 1000\nsteps,twin=b,source=x value=3 1030\n");
        assert!(small().check_request(&batch, Timestamp::from_secs(1_000)).is_empty());
    }

    #[test]
    fn each_cap_names_itself_its_value_and_the_line() {
        let now = Timestamp::from_secs(1_000);
        let cases = [
            (
                "m,twin=a x=1,y=2,z=3 1000",
                "line 1: 3 fields on one line, above the limit of 2 (max_fields_per_line)",
            ),
            (
                "m,twin=a,s=1,d=2 x=1 1000",
                "line 1: 2 tags on one point, above the limit of 1 (max_tags_per_point)",
            ),
            ("a,twin=a v=1 1000\nb,twin=b v=1 1000\nc,twin=c v=1 1000", "line 3: twin c is twin number 3"),
            (
                "a,twin=a v=1 1000\nb,twin=a v=1 1000\nc,twin=a v=1 1000\nd,twin=a v=1 1000",
                "line 4: signal d",
            ),
            (
                "a,twin=a v=1 1000\na,twin=a,s=1 v=1 1000\na,twin=a,s=2 v=1 1000\na,twin=a,s=3 v=1 1000\n\
              a,twin=a,s=4 v=1 1000",
                "line 5: the request brings more than 4 series",
            ),
            ("a,twin=a v=1 1061", "line 1: time 1970-01-01T00:17:41Z is more than 1m ahead"),
        ];
        for (text, expected) in cases {
            let errors = messages(&small().check_request(&parse(text), now));
            assert!(errors.iter().any(|e| e.starts_with(expected)), "{text}: {errors:?}");
        }
    }

    #[test]
    fn past_points_and_points_within_the_horizon_pass() {
        let batch = parse("a,twin=a v=1 0\na,twin=a v=2 1060");
        assert!(small().check_request(&batch, Timestamp::from_secs(1_000)).is_empty());
    }
}
