//! Counting the points a read returns without reading them, so that a
//! caller with a limit refuses a read past it before it allocates.

use crate::index::BlockMeta;

/// What one source of a series (a head, a segment) holds in a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SourceSpan {
    /// Points, each at its own time.
    pub points: u64,
    /// The first of their times.
    pub first: i64,
    /// The last of their times.
    pub last: i64,
}

impl SourceSpan {
    /// A segment's blocks wholly inside `[from, to)`, whose counts are
    /// exact without decoding them; `None` when there are none.
    pub(crate) fn of_blocks_inside(blocks: &[BlockMeta], from: i64, to: i64) -> Option<SourceSpan> {
        let mut inside = blocks.iter().filter(|b| b.min_time >= from && b.max_time < to);
        let first = inside.next()?;
        let mut span =
            SourceSpan { points: u64::from(first.count), first: first.min_time, last: first.max_time };
        for block in inside {
            span.points += u64::from(block.count);
            span.first = span.first.min(block.min_time);
            span.last = span.last.max(block.max_time);
        }
        Some(span)
    }
}

/// The fewest points one series' read returns, given what each source
/// holds: sources may hold the same time (the last write wins), so their
/// counts add up only when their times do not overlap; otherwise the
/// largest one is certain.
pub(crate) fn at_least(mut spans: Vec<SourceSpan>) -> u64 {
    spans.sort_by_key(|s| s.first);
    let disjoint = spans.windows(2).all(|pair| pair[0].last < pair[1].first);
    if disjoint {
        spans.iter().map(|s| s.points).sum()
    } else {
        spans.iter().map(|s| s.points).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(points: u64, first: i64, last: i64) -> SourceSpan {
        SourceSpan { points, first, last }
    }

    #[test]
    fn sources_apart_in_time_add_up_and_overlapping_ones_count_the_largest() {
        assert_eq!(at_least(vec![]), 0);
        assert_eq!(at_least(vec![span(5, 20, 29), span(10, 0, 9)]), 15);
        assert_eq!(at_least(vec![span(5, 0, 9), span(10, 9, 19)]), 10, "time 9 may be in both");
    }

    #[test]
    fn only_blocks_wholly_inside_the_range_are_counted() {
        let block = |min_time, max_time, count| BlockMeta { offset: 0, len: 0, min_time, max_time, count };
        let blocks = [block(0, 9, 10), block(10, 19, 10), block(20, 29, 10)];
        assert_eq!(SourceSpan::of_blocks_inside(&blocks, 5, 30), Some(span(20, 10, 29)));
        assert_eq!(SourceSpan::of_blocks_inside(&blocks, 5, 25), Some(span(10, 10, 19)));
        assert_eq!(SourceSpan::of_blocks_inside(&blocks, 5, 15), None);
    }
}
