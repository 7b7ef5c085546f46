//! Query shapes and the aggregation kernel.

use std::fmt;
use std::str::FromStr;

use doppel_model::{Provenance, Sample, SeriesKey, SignalName, Span, Timestamp, TwinId};

#[cfg(test)]
use crate::head::Columns;

/// Selects the series of one signal of one twin (optionally narrowed by
/// provenance) and a half-open time range.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeQuery {
    /// Whose data.
    pub twin: TwinId,
    /// Which signal.
    pub signal: SignalName,
    /// Tags every matching series must carry; empty matches every provenance.
    pub provenance: Provenance,
    /// Inclusive start.
    pub from: Timestamp,
    /// Exclusive end.
    pub to: Timestamp,
}

/// The samples of one series, sorted by time, one per time.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesData {
    /// The series.
    pub key: SeriesKey,
    /// Its samples in the queried range.
    pub samples: Vec<Sample>,
}

/// A summary computed per bucket by [`crate::Store::aggregate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// Arithmetic mean.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Sum of values.
    Sum,
    /// Number of samples.
    Count,
    /// Value of the earliest sample.
    First,
    /// Value of the latest sample.
    Last,
    /// Median, nearest-rank.
    P50,
    /// 95th percentile, nearest-rank.
    P95,
}

impl Aggregate {
    /// Every aggregate, in declaration order.
    pub const ALL: [Aggregate; 9] = [
        Self::Mean,
        Self::Min,
        Self::Max,
        Self::Sum,
        Self::Count,
        Self::First,
        Self::Last,
        Self::P50,
        Self::P95,
    ];

    /// The canonical lower-case name used in query strings and output.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Min => "min",
            Self::Max => "max",
            Self::Sum => "sum",
            Self::Count => "count",
            Self::First => "first",
            Self::Last => "last",
            Self::P50 => "p50",
            Self::P95 => "p95",
        }
    }

    const fn percentile(self) -> Option<f64> {
        match self {
            Self::P50 => Some(50.0),
            Self::P95 => Some(95.0),
            _ => None,
        }
    }
}

/// An aggregate name that is not one of [`Aggregate::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown aggregate {0:?} (expected mean, min, max, sum, count, first, last, p50/median or p95)")]
pub struct UnknownAggregate(pub String);

impl FromStr for Aggregate {
    type Err = UnknownAggregate;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "median" => Ok(Self::P50),
            _ => Self::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| UnknownAggregate(s.to_owned())),
        }
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The aggregates of one time bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    /// Start of the bucket (a multiple of `every` since the epoch, or the
    /// query's `from` when there is one bucket).
    pub start: Timestamp,
    /// Samples in the bucket.
    pub count: u64,
    /// One value per requested aggregate, in request order.
    pub values: Vec<f64>,
}

/// Nearest-rank percentile of sorted values: the smallest value with at
/// least `p` % of the values at or below it (rank `ceil(p/100 * n)`).
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Aggregates time-sorted columns into buckets. `every: None` makes one
/// bucket starting at `whole_start`.
#[cfg(test)]
pub(crate) fn aggregate(
    cols: &Columns,
    every: Option<Span>,
    whole_start: i64,
    aggs: &[Aggregate],
) -> Vec<Bucket> {
    let mut builder = BucketBuilder::new(every, whole_start, aggs);
    builder.push(&cols.times, &cols.values);
    builder.finish()
}

/// The bucket being filled.
#[derive(Clone, Copy)]
struct OpenBucket {
    start: i64,
    /// Exclusive end; `i64::MAX` means unbounded (the one whole-range
    /// bucket, or a bucket whose end saturated).
    end: i64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    first: f64,
    last: f64,
}

/// Streaming aggregation: takes time-sorted columns piece by piece (block
/// by block straight from a segment, or all at once) and produces the same
/// buckets as aggregating the concatenation. Bucket boundaries are found
/// by binary search, not by a division per point, and only the values of
/// the current bucket are kept (and only when a percentile needs them).
pub(crate) struct BucketBuilder<'a> {
    every: Option<Span>,
    every_nanos: Option<i64>,
    whole_start: i64,
    aggs: &'a [Aggregate],
    needs_sum: bool,
    needs_min: bool,
    needs_max: bool,
    needs_values: bool,
    current: Option<OpenBucket>,
    /// The current bucket's values, kept only for percentiles.
    values: Vec<f64>,
    out: Vec<Bucket>,
}

/// The index of the first time at or after `end` in `times`, given that
/// `times[from] < end`. It gallops from `from` (1, 2, 4, ... ahead) before
/// searching the last step: a bucket holds few samples, so this touches a
/// few cache lines, where a binary search over a long range (a year of
/// minute data held in memory is 4 MiB of times) misses the cache at
/// nearly every one of its steps, once per bucket.
fn end_of_bucket(times: &[i64], from: usize, end: i64) -> usize {
    debug_assert!(times[from] < end);
    let (mut below, mut step) = (from, 1usize);
    let mut probe = from + 1;
    while probe < times.len() && times[probe] < end {
        below = probe;
        step = step.saturating_mul(2);
        probe = from.saturating_add(step);
    }
    let probe = probe.min(times.len());
    below + times[below..probe].partition_point(|&t| t < end)
}

impl<'a> BucketBuilder<'a> {
    /// A builder for buckets aligned to multiples of `every` since the
    /// epoch, or one bucket starting at `whole_start` when `every` is None.
    pub(crate) fn new(every: Option<Span>, whole_start: i64, aggs: &'a [Aggregate]) -> Self {
        let has = |wanted: &[Aggregate]| aggs.iter().any(|a| wanted.contains(a));
        Self {
            every,
            every_nanos: every.map(Span::as_nanos),
            whole_start,
            aggs,
            needs_sum: has(&[Aggregate::Mean, Aggregate::Sum]),
            needs_min: has(&[Aggregate::Min]),
            needs_max: has(&[Aggregate::Max]),
            needs_values: aggs.iter().any(|a| a.percentile().is_some()),
            current: None,
            values: Vec::new(),
            out: Vec::new(),
        }
    }

    fn open_at(&self, time: i64) -> OpenBucket {
        let (start, end) = match self.every_nanos {
            Some(span) => {
                let start = time.div_euclid(span).saturating_mul(span);
                (start, start.saturating_add(span))
            }
            None => (self.whole_start, i64::MAX),
        };
        OpenBucket {
            start,
            end,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            first: 0.0,
            last: 0.0,
        }
    }

    /// Adds samples that come after every sample pushed before.
    pub(crate) fn push(&mut self, times: &[i64], values: &[f64]) {
        let n = times.len().min(values.len());
        let mut i = 0;
        while i < n {
            let mut bucket = match self.current {
                Some(b) if b.end == i64::MAX || times[i] < b.end => b,
                Some(_) | None => {
                    self.close();
                    self.open_at(times[i])
                }
            };
            let j = if bucket.end == i64::MAX { n } else { end_of_bucket(&times[..n], i, bucket.end) };
            let slice = &values[i..j];
            if bucket.count == 0 {
                bucket.first = slice[0];
            }
            bucket.last = slice[slice.len() - 1];
            bucket.count += slice.len() as u64;
            if self.needs_sum {
                // Sequential, so the result does not depend on how the
                // samples were split into pieces.
                let mut sum = bucket.sum;
                for &v in slice {
                    sum += v;
                }
                bucket.sum = sum;
            }
            if self.needs_min {
                bucket.min = slice.iter().copied().fold(bucket.min, f64::min);
            }
            if self.needs_max {
                bucket.max = slice.iter().copied().fold(bucket.max, f64::max);
            }
            if self.needs_values {
                self.values.extend_from_slice(slice);
            }
            self.current = Some(bucket);
            i = j;
        }
    }

    fn close(&mut self) {
        let Some(b) = self.current.take() else { return };
        if self.needs_values {
            self.values.sort_unstable_by(f64::total_cmp);
        }
        let values = self
            .aggs
            .iter()
            .map(|agg| match agg {
                Aggregate::Mean => b.sum / b.count as f64,
                Aggregate::Min => b.min,
                Aggregate::Max => b.max,
                Aggregate::Sum => b.sum,
                Aggregate::Count => b.count as f64,
                Aggregate::First => b.first,
                Aggregate::Last => b.last,
                Aggregate::P50 | Aggregate::P95 => {
                    nearest_rank(&self.values, agg.percentile().unwrap_or(50.0))
                }
            })
            .collect();
        self.values.clear();
        self.out.push(Bucket { start: Timestamp::from_nanos(b.start), count: b.count, values });
    }

    /// The buckets, in time order; empty buckets are omitted.
    pub(crate) fn finish(mut self) -> Vec<Bucket> {
        self.close();
        self.out
    }

    /// An empty builder for samples that come after every sample this one
    /// will be given, to be filled on another thread and joined back with
    /// [`BucketBuilder::join`].
    pub(crate) fn tail(&self) -> TailBuilder<'a> {
        TailBuilder {
            lead_end: None,
            lead_times: Vec::new(),
            lead_values: Vec::new(),
            rest: BucketBuilder::new(self.every, self.whole_start, self.aggs),
        }
    }

    /// Appends what `tail` was given as if it had been pushed here. The
    /// tail's first bucket, the one that may also hold samples pushed here,
    /// is pushed sample by sample, so every bucket is summed in time order
    /// exactly as by one sequential builder: the results are bit-identical.
    pub(crate) fn join(&mut self, tail: TailBuilder<'a>) {
        self.push(&tail.lead_times, &tail.lead_values);
        let mut rest = tail.rest;
        if rest.current.is_none() {
            // The tail held nothing past its first bucket.
            return;
        }
        self.close();
        self.out.append(&mut rest.out);
        self.current = rest.current;
        self.values = rest.values;
    }
}

/// The second (or later) part of a range aggregated in pieces: keeps the
/// samples of its first bucket raw, because that bucket may have begun in
/// the part before, and aggregates the rest itself.
pub(crate) struct TailBuilder<'a> {
    /// Exclusive end of the first bucket, known once a sample arrives.
    lead_end: Option<i64>,
    lead_times: Vec<i64>,
    lead_values: Vec<f64>,
    rest: BucketBuilder<'a>,
}

impl TailBuilder<'_> {
    /// Adds samples that come after every sample pushed before.
    pub(crate) fn push(&mut self, times: &[i64], values: &[f64]) {
        let n = times.len().min(values.len());
        let (times, values) = (&times[..n], &values[..n]);
        let Some(&first) = times.first() else { return };
        let lead_end = *self.lead_end.get_or_insert_with(|| self.rest.open_at(first).end);
        let split = if self.rest.current.is_some() { 0 } else { times.partition_point(|&t| t < lead_end) };
        self.lead_times.extend_from_slice(&times[..split]);
        self.lead_values.extend_from_slice(&values[..split]);
        self.rest.push(&times[split..], &values[split..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn galloping_finds_the_same_end_as_a_binary_search(
            mut times in proptest::collection::vec(-1_000i64..1_000, 1..300),
            from_pick in 0usize..300,
            past in 1i64..500,
        ) {
            times.sort_unstable();
            let from = from_pick % times.len();
            let end = times[from] + past;
            let expected = from + times[from..].partition_point(|&t| t < end);
            proptest::prop_assert_eq!(end_of_bucket(&times, from, end), expected);
        }
    }

    #[test]
    fn names_parse_and_print() {
        for agg in Aggregate::ALL {
            assert_eq!(agg.name().parse::<Aggregate>().unwrap(), agg);
        }
        assert_eq!("median".parse::<Aggregate>().unwrap(), Aggregate::P50);
        assert!("avg".parse::<Aggregate>().is_err());
    }

    #[test]
    fn buckets_align_to_the_epoch_and_skip_empty_ones() {
        let cols = Columns { times: vec![-5, 1, 9, 10, 35], values: vec![4.0, 1.0, 2.0, 3.0, 5.0] };
        let every = Span::from_nanos(10);
        let b = aggregate(
            &cols,
            every,
            0,
            &[Aggregate::Count, Aggregate::Sum, Aggregate::First, Aggregate::Last],
        );
        let starts: Vec<i64> = b.iter().map(|b| b.start.as_nanos()).collect();
        assert_eq!(starts, vec![-10, 0, 10, 30]);
        assert_eq!(b[1].values, vec![2.0, 3.0, 1.0, 2.0]);
        let whole = aggregate(&cols, None, -100, &[Aggregate::Mean, Aggregate::Min, Aggregate::Max]);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].start.as_nanos(), -100);
        assert_eq!(whole[0].values, vec![3.0, 1.0, 5.0]);
    }

    proptest::proptest! {
        #[test]
        fn pieces_aggregate_like_the_whole(
            mut times in proptest::collection::vec(-1_000i64..1_000, 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..6),
            every in proptest::option::of(1i64..300),
        ) {
            times.sort_unstable();
            times.dedup();
            let values: Vec<f64> = times.iter().map(|&t| (t % 17) as f64 * 0.5).collect();
            let cols = Columns { times: times.clone(), values: values.clone() };
            let every = every.and_then(Span::from_nanos);
            let whole = aggregate(&cols, every, -5, &Aggregate::ALL);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(times.len())).collect();
            cuts.push(0);
            cuts.push(times.len());
            cuts.sort_unstable();
            let mut builder = BucketBuilder::new(every, -5, &Aggregate::ALL);
            for w in cuts.windows(2) {
                builder.push(&times[w[0]..w[1]], &values[w[0]..w[1]]);
            }
            proptest::prop_assert_eq!(builder.finish(), whole.clone());
            // Against a naive model: group by bucket start.
            let mut model: std::collections::BTreeMap<i64, Vec<f64>> = std::collections::BTreeMap::new();
            for (&t, &v) in times.iter().zip(&values) {
                let start = every.map_or(-5, |s| t.div_euclid(s.as_nanos()) * s.as_nanos());
                model.entry(start).or_default().push(v);
            }
            proptest::prop_assert_eq!(whole.len(), model.len());
            for (bucket, (start, vs)) in whole.iter().zip(&model) {
                proptest::prop_assert_eq!(bucket.start.as_nanos(), *start);
                proptest::prop_assert_eq!(bucket.count, vs.len() as u64);
                proptest::prop_assert_eq!(bucket.values[0], vs.iter().sum::<f64>() / vs.len() as f64);
                proptest::prop_assert_eq!(bucket.values[5], vs[0]);
                proptest::prop_assert_eq!(bucket.values[6], vs[vs.len() - 1]);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn parts_joined_from_tails_equal_one_sequential_builder(
            mut times in proptest::collection::vec(-1_000i64..1_000, 0..300),
            raw_values in proptest::collection::vec(-1e6f64..1e6, 300),
            cuts in proptest::collection::vec(0usize..300, 0..5),
            every in proptest::option::of(1i64..400),
        ) {
            times.sort_unstable();
            times.dedup();
            // Fractional values, so a changed summation order would show.
            let values: Vec<f64> = raw_values[..times.len()].iter().map(|v| v / 7.0).collect();
            let every = every.and_then(Span::from_nanos);
            let mut whole = BucketBuilder::new(every, -5, &Aggregate::ALL);
            whole.push(&times, &values);
            let whole = whole.finish();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(times.len())).collect();
            cuts.sort_unstable();
            let mut head = BucketBuilder::new(every, -5, &Aggregate::ALL);
            let first_cut = cuts.first().copied().unwrap_or(times.len());
            head.push(&times[..first_cut], &values[..first_cut]);
            let mut ends: Vec<usize> = cuts.iter().skip(1).copied().collect();
            ends.push(times.len());
            for (&start, &end) in cuts.iter().zip(&ends) {
                let mut tail = head.tail();
                // In two pieces, as a scan hands over block by block.
                let mid = start + (end - start) / 2;
                tail.push(&times[start..mid], &values[start..mid]);
                tail.push(&times[mid..end], &values[mid..end]);
                head.join(tail);
            }
            let joined = head.finish();
            let bits = |b: &[Bucket]| -> Vec<(i64, u64, Vec<u64>)> {
                b.iter().map(|b| (b.start.as_nanos(), b.count, b.values.iter().map(|v| v.to_bits()).collect())).collect()
            };
            proptest::prop_assert_eq!(bits(&joined), bits(&whole));
        }
    }

    #[test]
    fn a_tail_whose_first_bucket_continues_the_head_merges_into_one_bucket() {
        let every = Span::from_nanos(10);
        let aggs = [Aggregate::Count, Aggregate::Sum, Aggregate::First, Aggregate::Last, Aggregate::P50];
        let mut head = BucketBuilder::new(every, 0, &aggs);
        head.push(&[1, 5], &[0.1, 0.2]);
        let mut tail = head.tail();
        tail.push(&[7, 9, 12], &[0.3, 0.4, 0.5]);
        head.join(tail);
        let mut empty_tail = head.tail();
        empty_tail.push(&[], &[]);
        head.join(empty_tail);
        let buckets = head.finish();
        assert_eq!(buckets.len(), 2);
        assert_eq!(buckets[0].count, 4);
        assert_eq!(buckets[0].values, vec![4.0, ((0.1 + 0.2) + 0.3) + 0.4, 0.1, 0.4, 0.2]);
        assert_eq!(buckets[1].start.as_nanos(), 10);
        assert_eq!(buckets[1].values, vec![1.0, 0.5, 0.5, 0.5, 0.5]);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        let cols = Columns { times: (0..20).collect(), values };
        let b = aggregate(&cols, None, 0, &[Aggregate::P50, Aggregate::P95]);
        assert_eq!(b[0].values, vec![10.0, 19.0]);
        let one = Columns { times: vec![0], values: vec![7.0] };
        assert_eq!(aggregate(&one, None, 0, &[Aggregate::P95])[0].values, vec![7.0]);
    }
}
