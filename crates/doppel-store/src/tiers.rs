//! Which segments background compaction merges next: size tiers over the
//! segments in write order, so that each byte is rewritten about once per
//! tier (`log_MERGE_WIDTH` of the data) instead of at every compaction.
//!
//! Only a *contiguous* run of segment orders is ever merged: the output
//! takes the run's highest order, and last-writer-wins between the output
//! and every segment outside the run stays what it was between them and
//! the run's inputs. Merging non-adjacent orders would let a segment in
//! between lose to, or win over, data it should not.
//!
//! The shape is that of a size-tiered LSM kept in write order (RocksDB's
//! "universal" compaction): walking from the newest segment towards older
//! ones, a run grows while the next older segment is no bigger than all
//! the newer ones of the run together (with [`TIER_SLACK_TENTHS`] of
//! slack), and is merged once it holds [`MERGE_WIDTH`] segments. Equal
//! flushes thus merge four at a time into a segment four times bigger,
//! four of those merge in turn, and so on: a base-4 counter of flushes,
//! each byte rewritten once per digit.

use std::ops::Range;

/// Segments merged together at least: the tier fan-out. Four makes each
/// tier four times the size of the one below it, so a byte is rewritten
/// `log4(data / flush)` times, while reads visit at most about
/// `3 × log4(data / flush)` segments.
pub(crate) const MERGE_WIDTH: usize = 4;
/// Segments beyond which the newest run of [`MERGE_WIDTH`] with the fewest
/// bytes is merged even though the sizes do not form a tier: every read of
/// a series visits every segment, so their number stays bounded whatever
/// the sizes flushes happen to have.
pub(crate) const MAX_SEGMENTS: usize = 16;

/// How much bigger than all newer segments of a run together an older
/// segment may be and still join it, in tenths: flushes of one size vary a
/// little (points compress unevenly), and a tier must still hold them all.
const TIER_SLACK_TENTHS: u64 = 12;

/// The run of segments to merge next, as a range of positions in `bytes`,
/// the segments' sizes ordered oldest order first; `None` when nothing is
/// due.
pub(crate) fn next_merge(bytes: &[u64]) -> Option<Range<usize>> {
    let n = bytes.len();
    // Candidate runs end at each segment, newest first; the first that
    // grows to the merge width wins, so small new segments merge before
    // big old ones are touched.
    for end in (0..n).rev() {
        let mut run_bytes = u128::from(bytes[end]);
        let mut start = end;
        while start > 0 && u128::from(bytes[start - 1]) * 10 <= run_bytes * u128::from(TIER_SLACK_TENTHS) {
            start -= 1;
            run_bytes += u128::from(bytes[start]);
        }
        if end + 1 - start >= MERGE_WIDTH {
            return Some(start..end + 1);
        }
    }
    if n > MAX_SEGMENTS {
        let cheapest = (0..=n - MERGE_WIDTH)
            .rev()
            .min_by_key(|&start| bytes[start..start + MERGE_WIDTH].iter().sum::<u64>())?;
        return Some(cheapest..cheapest + MERGE_WIDTH);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flushes `flushes` segments of `size` bytes one at a time, merging
    /// whatever [`next_merge`] picks after each (outputs as big as their
    /// inputs together); returns (bytes merged, segments left).
    fn simulate(sizes: impl IntoIterator<Item = u64>) -> (u64, Vec<u64>) {
        let mut segments: Vec<u64> = Vec::new();
        let mut merged = 0;
        for size in sizes {
            segments.push(size);
            while let Some(run) = next_merge(&segments) {
                let total: u64 = segments[run.clone()].iter().sum();
                merged += total;
                segments.splice(run, [total]);
            }
        }
        (merged, segments)
    }

    #[test]
    fn fewer_segments_than_the_merge_width_are_left_alone() {
        assert_eq!(next_merge(&[]), None);
        assert_eq!(next_merge(&[5, 5, 5]), None);
    }

    #[test]
    fn the_newest_equal_segments_merge_before_a_bigger_older_one() {
        assert_eq!(next_merge(&[64, 1, 1, 1, 1]), Some(1..5));
        assert_eq!(next_merge(&[64, 1, 1, 1]), None);
    }

    #[test]
    fn equal_flushes_form_a_base_four_counter() {
        let (merged, segments) = simulate(std::iter::repeat_n(1, 64));
        assert_eq!(segments, vec![64]);
        // Each flushed byte is rewritten once per tier: log4(64) = 3.
        assert_eq!(merged, 64 * 3);
    }

    #[test]
    fn any_sizes_keep_the_segment_count_bounded_and_rewrites_logarithmic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let sizes: Vec<u64> = (0..2000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                1 + state % 1000
            })
            .collect();
        let flushed: u64 = sizes.iter().sum();
        let (merged, segments) = simulate(sizes);
        assert!(segments.len() <= MAX_SEGMENTS, "{segments:?}");
        // Under log4(2000 flushes) < 6 rewrites per byte.
        assert!(merged <= flushed * 6, "merged {merged} of {flushed} flushed");
    }
}
