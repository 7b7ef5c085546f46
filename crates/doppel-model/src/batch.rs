//! Points, series and batches.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{Provenance, SignalName, Timestamp, TwinId, Value};

/// One observation: the unit users write and read.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Point {
    /// Whose observation it is.
    pub twin: TwinId,
    /// What was observed.
    pub signal: SignalName,
    /// Which source or device observed it.
    #[serde(default, skip_serializing_if = "Provenance::is_empty")]
    pub provenance: Provenance,
    /// When it was observed.
    pub time: Timestamp,
    /// What was observed.
    pub value: Value,
}

/// Identifies one time series: a signal of a twin from one provenance.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct SeriesKey {
    /// The twin the series belongs to.
    pub twin: TwinId,
    /// The signal it records.
    pub signal: SignalName,
    /// The source or device it comes from.
    #[serde(default, skip_serializing_if = "Provenance::is_empty")]
    pub provenance: Provenance,
}

/// A time and value within a known series.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
pub struct Sample {
    /// When.
    pub time: Timestamp,
    /// What.
    pub value: Value,
}

/// The samples of one series in a batch, in arrival order.
#[derive(Clone, PartialEq, Debug)]
pub struct SeriesBatch {
    /// The series.
    pub key: SeriesKey,
    /// Its new samples; may be out of order and hold duplicate times (the
    /// later one wins).
    pub samples: Vec<Sample>,
}

/// An atomic unit of ingest: accepted, made durable and applied whole.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Batch {
    /// One entry per distinct series, in first-seen order.
    pub series: Vec<SeriesBatch>,
}

impl Batch {
    /// Groups points by series, keeping first-seen series order and
    /// arrival order within a series.
    pub fn from_points(points: impl IntoIterator<Item = Point>) -> Self {
        let mut builder = BatchBuilder::default();
        for point in points {
            builder.push(point);
        }
        builder.finish()
    }

    /// Number of points across all series.
    pub fn point_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// True when the batch holds no points.
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.samples.is_empty())
    }

    /// The points again, one by one.
    pub fn points(&self) -> impl Iterator<Item = Point> + '_ {
        self.series.iter().flat_map(|s| {
            s.samples.iter().map(move |sample| Point {
                twin: s.key.twin.clone(),
                signal: s.key.signal.clone(),
                provenance: s.key.provenance.clone(),
                time: sample.time,
                value: sample.value,
            })
        })
    }
}

/// Builds a [`Batch`] point by point without re-hashing the series key for
/// every sample of a run.
#[derive(Default, Debug)]
pub struct BatchBuilder {
    index: HashMap<SeriesKey, usize>,
    batch: Batch,
}

impl BatchBuilder {
    /// Adds one point.
    pub fn push(&mut self, point: Point) {
        let key = SeriesKey { twin: point.twin, signal: point.signal, provenance: point.provenance };
        let sample = Sample { time: point.time, value: point.value };
        self.push_sample(key, sample);
    }

    /// Adds one sample to a series.
    pub fn push_sample(&mut self, key: SeriesKey, sample: Sample) {
        if let Some(last) = self.batch.series.last_mut()
            && last.key == key
        {
            last.samples.push(sample);
            return;
        }
        match self.index.get(&key) {
            Some(&i) => self.batch.series[i].samples.push(sample),
            None => {
                self.index.insert(key.clone(), self.batch.series.len());
                self.batch.series.push(SeriesBatch { key, samples: vec![sample] });
            }
        }
    }

    /// Number of points added so far.
    pub fn point_count(&self) -> usize {
        self.batch.point_count()
    }

    /// The finished batch.
    pub fn finish(self) -> Batch {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(twin: &str, signal: &str, secs: i64, value: f64) -> Point {
        Point {
            twin: TwinId::new(twin).unwrap(),
            signal: SignalName::new(signal).unwrap(),
            provenance: Provenance::none(),
            time: Timestamp::from_secs(secs),
            value: Value::new(value).unwrap(),
        }
    }

    #[test]
    fn groups_points_by_series_in_first_seen_order() {
        let batch = Batch::from_points([
            point("a", "heart_rate", 1, 60.0),
            point("b", "heart_rate", 1, 70.0),
            point("a", "heart_rate", 2, 61.0),
        ]);
        assert_eq!(batch.series.len(), 2);
        assert_eq!(batch.series[0].key.twin.as_str(), "a");
        assert_eq!(batch.series[0].samples.len(), 2);
        assert_eq!(batch.point_count(), 3);
        assert_eq!(batch.points().count(), 3);
    }
}
