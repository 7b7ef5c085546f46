//! The series of several segments as one sorted stream, for compaction.
//!
//! Each input is read in key order a page at a time and the streams are
//! merged k ways, so compaction holds one page and one pending entry per
//! input, however many series the segments hold.

use doppel_model::SeriesKey;

use crate::StoreError;
use crate::index::{BlockMeta, IndexEntry};
use crate::segment::{Segment, Series};

/// One input: its stream and the entry it is waiting to give.
struct Input<'s> {
    series: Series<'s>,
    head: Option<IndexEntry>,
}

/// One key of the merged stream, with the blocks each input holds of it.
pub(crate) struct MergedSeries {
    pub key: SeriesKey,
    /// `(input index, blocks)`, inputs in the order given.
    pub holders: Vec<(usize, Vec<BlockMeta>)>,
}

impl Input<'_> {
    fn advance(&mut self) -> Result<(), StoreError> {
        self.head = self.series.next().transpose()?;
        Ok(())
    }
}

/// Every distinct key of the inputs in ascending order, each with the
/// blocks each input holds of it. Stops after the first error.
pub(crate) struct SeriesMerge<'s> {
    inputs: Vec<Input<'s>>,
    failed: bool,
}

impl<'s> SeriesMerge<'s> {
    /// Starts merging `segments`; reads the first page of each.
    pub(crate) fn new(segments: impl IntoIterator<Item = &'s Segment>) -> Result<Self, StoreError> {
        let mut inputs = Vec::new();
        for segment in segments {
            let mut input = Input { series: segment.series(), head: None };
            input.advance()?;
            inputs.push(input);
        }
        Ok(Self { inputs, failed: false })
    }

    fn step(&mut self) -> Result<Option<MergedSeries>, StoreError> {
        let Some(key) =
            self.inputs.iter().filter_map(|input| input.head.as_ref().map(|(k, _)| k)).min().cloned()
        else {
            return Ok(None);
        };
        let mut holders = Vec::new();
        for (index, input) in self.inputs.iter_mut().enumerate() {
            if input.head.as_ref().is_some_and(|(k, _)| *k == key) {
                if let Some((_, blocks)) = input.head.take() {
                    holders.push((index, blocks));
                }
                input.advance()?;
            }
        }
        Ok(Some(MergedSeries { key, holders }))
    }
}

impl Iterator for SeriesMerge<'_> {
    type Item = Result<MergedSeries, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let step = self.step();
        self.failed = step.is_err();
        step.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::Columns;
    use crate::segment::{SegmentMeta, write_segment};
    use doppel_model::{Provenance, SignalName, TwinId};

    fn key(twin: &str) -> SeriesKey {
        SeriesKey {
            twin: TwinId::new(twin).unwrap(),
            signal: SignalName::new("hr").unwrap(),
            provenance: Provenance::none(),
        }
    }

    fn segment(dir: &std::path::Path, id: u64, twins: &[&str]) -> Segment {
        let series =
            twins.iter().map(|t| Ok((key(t), Columns { times: vec![id as i64], values: vec![1.0] })));
        write_segment(dir, id, SegmentMeta::default(), None, series).unwrap()
    }

    #[test]
    fn merged_keys_come_once_in_order_with_every_holder() {
        let dir = tempfile::tempdir().unwrap();
        let twins: Vec<String> = (0..400).map(|i| format!("t{i:03}")).collect();
        let evens: Vec<&str> = twins.iter().step_by(2).map(String::as_str).collect();
        let thirds: Vec<&str> = twins.iter().step_by(3).map(String::as_str).collect();
        let segments =
            [segment(dir.path(), 1, &evens), segment(dir.path(), 2, &[]), segment(dir.path(), 3, &thirds)];
        let merged: Vec<(SeriesKey, Vec<usize>)> = SeriesMerge::new(&segments)
            .unwrap()
            .map(|item| {
                let merged = item.unwrap();
                (merged.key, merged.holders.into_iter().map(|(index, _)| index).collect())
            })
            .collect();
        let expected: Vec<(SeriesKey, Vec<usize>)> = (0..400)
            .filter(|i| i % 2 == 0 || i % 3 == 0)
            .map(|i| {
                let holders = [(i % 2 == 0).then_some(0), (i % 3 == 0).then_some(2)];
                (key(&twins[i]), holders.into_iter().flatten().collect())
            })
            .collect();
        assert_eq!(merged, expected);
    }
}
