//! Background compaction merges size tiers: bytes rewritten grow with the
//! logarithm of the data, not with the data, and what reads see is what a
//! full merge would give. Deleted twins' data and expired points are
//! still reclaimed.

mod common;

use std::collections::BTreeMap;

use common::{batch, config, key, pairs};
use doppel_model::{SeriesKey, Span, TwinId};
use doppel_store::{CompactionReport, RetentionPolicy, Store};

/// Series written by every flush of [`flush_round`].
const SERIES: usize = 4;
/// Points per series per flush.
const POINTS: i64 = 100;

type Model = BTreeMap<SeriesKey, BTreeMap<i64, f64>>;

fn series_key(series: usize) -> SeriesKey {
    key("p", &format!("signal_{series}"), None)
}

/// Writes round `round`'s points (new times, every fifth one overwriting
/// a time of the previous round, so merges have duplicates to resolve),
/// flushes, then merges tiers until none is due; returns what the merges
/// did.
fn flush_round(store: &Store, model: &mut Model, round: i64) -> Vec<CompactionReport> {
    for series in 0..SERIES {
        let key = series_key(series);
        let samples: Vec<(i64, f64)> = (0..POINTS)
            .map(|i| {
                let time = if i % 5 == 0 { (round - 1) * POINTS + i } else { round * POINTS + i };
                (time, ((round * 7919 + i * 104_729 + series as i64 * 31) % 1000) as f64 / 8.0)
            })
            .collect();
        store.write(&batch(&key, &samples)).unwrap();
        model.entry(key).or_default().extend(samples);
    }
    store.flush().unwrap();
    std::iter::from_fn(|| store.compact_tier().unwrap()).collect()
}

fn assert_reads_equal(store: &Store, model: &Model) {
    for (key, points) in model {
        let want: Vec<(i64, f64)> = points.iter().map(|(&t, &v)| (t, v)).collect();
        assert_eq!(pairs(store, key), want, "{key:?}");
    }
}

#[test]
fn tier_merges_rewrite_each_flushed_byte_once_per_tier_and_read_as_a_full_merge() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let mut model = Model::new();
    let rounds = 256;
    for round in 1..=rounds {
        flush_round(&store, &mut model, round);
        // At most three segments per tier wait for a fourth.
        assert!(store.stats().segments <= 13, "round {round}: {} segments", store.stats().segments);
    }
    let stats = store.stats();
    assert_eq!(stats.flushes_total, rounds as u64);
    // 256 equal flushes make log4(256) = 4 tiers, so each flushed byte is
    // written about four more times; merged segments compress a little
    // differently from their inputs, hence the quarter of slack. Merging
    // every segment whenever there are more than eight would rewrite the
    // data ~16 times here, and more the more data there is.
    let tiers = 4;
    assert!(stats.compacted_bytes_total > 0);
    assert!(
        stats.compacted_bytes_total * 4 <= stats.flushed_bytes_total * tiers * 5,
        "compacted {} bytes for {} flushed",
        stats.compacted_bytes_total,
        stats.flushed_bytes_total
    );
    assert_reads_equal(&store, &model);
    let report = store.compact().unwrap();
    assert!(report.segments_in >= 1);
    assert_eq!(store.stats().segments, 1);
    assert_reads_equal(&store, &model);
}

#[test]
fn tier_merges_drop_a_deleted_twins_data_and_keep_a_recreated_twins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let gone = key("gone", "heart_rate", None);
    let mut model = Model::new();
    let mut reports = Vec::new();
    for round in 1..=4 {
        if round == 3 {
            store.delete_twin(&TwinId::new("gone").unwrap()).unwrap();
        }
        store.write(&batch(&gone, &[(round, 1.0)])).unwrap();
        reports.extend(flush_round(&store, &mut model, round));
    }
    // The four flushes merged into one: the two points written before the
    // delete are gone for good, the two after it are kept.
    assert_eq!(store.stats().segments, 1);
    assert_eq!(reports.iter().map(|r| r.points_dropped_deleted).sum::<u64>(), 2);
    assert_eq!(pairs(&store, &gone), vec![(3, 1.0), (4, 1.0)]);
    assert_reads_equal(&store, &model);
}

#[test]
fn expired_points_are_dropped_by_merges_that_reach_the_oldest_segment() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let old = key("p", "old", None);
    let hour = Span::from_secs(3600).unwrap();
    let mut model = Model::new();
    // A big oldest segment, then small ones each holding an expired point
    // (time 1 ns after the epoch) of series `old`.
    for round in 1..=4 {
        flush_round(&store, &mut model, round);
    }
    assert_eq!(store.stats().segments, 1);
    store.set_retention(RetentionPolicy { default: None, per_signal: [(old.signal.clone(), hour)].into() });
    for round in 0..4 {
        store.write(&batch(&old, &[(round, 1.0)])).unwrap();
        store.flush().unwrap();
    }
    // The four small segments merge, but not with the oldest: dropping an
    // expired point there could uncover an older value of the same time,
    // so retention waits for a merge that holds the oldest segment.
    let report = store.compact_tier().unwrap().expect("four small segments make a tier");
    assert_eq!((report.segments_in, report.points_dropped_retention), (4, 0));
    assert_eq!(pairs(&store, &old).len(), 4);
    assert_eq!(store.stats().segments, 2);
    let report = store.compact().unwrap();
    assert_eq!(report.points_dropped_retention, 4);
    assert!(pairs(&store, &old).is_empty());
    assert_reads_equal(&store, &model);
}
