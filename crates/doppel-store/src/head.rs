//! The head: recent points in memory, per series, sorted by time with one
//! value per time.
//!
//! Series are spread over [`SHARDS`] mutex-protected maps by twin hash so
//! concurrent writers rarely meet on one lock. A batch is inserted shard by
//! shard, taking each shard's lock once for all of the batch's series in
//! it, and each writer starts at a different shard (chosen by its lsn) so
//! writers walking the same series in the same order do not queue behind
//! one another in a convoy.
//!
//! Each stored sample carries the lsn of the WAL record that wrote it:
//! writers insert after their fsync, in any order, and the higher lsn wins
//! on equal times, so the head agrees with a WAL replay whatever the
//! interleaving. Samples are kept as one array of (time, value, lsn) per
//! series so that appending touches one allocation, not three.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use doppel_model::{Batch, Provenance, Sample, SeriesBatch, SeriesKey, SignalName, Timestamp, TwinId};
use parking_lot::Mutex;

use crate::point_count::SourceSpan;
use crate::registry::SeriesRegistry;

/// Number of head shards: a power of two comfortably above the core counts
/// Doppel targets, so two writers collide on a shard rarely.
const SHARDS: usize = 64;

/// One series' samples in columns, sorted by time, times unique.
#[derive(Default, Clone, Debug)]
pub(crate) struct Columns {
    pub times: Vec<i64>,
    pub values: Vec<f64>,
}

impl Columns {
    pub(crate) fn len(&self) -> usize {
        self.times.len()
    }

    /// The index range of times in `[from, to)`.
    pub(crate) fn range(&self, from: i64, to: i64) -> std::ops::Range<usize> {
        let lo = self.times.partition_point(|&t| t < from);
        let hi = self.times.partition_point(|&t| t < to);
        lo..hi.max(lo)
    }
}

/// One stored sample and the WAL record that wrote it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    time: i64,
    value: f64,
    lsn: u64,
}

/// One series: entries sorted by time, times unique.
#[derive(Default)]
struct SeriesBuf {
    entries: Vec<Entry>,
}

/// Sorts samples by time into `out`, keeping the last given value of each
/// time (the within-batch rule of last-write-wins). Stable, so arrival
/// order decides.
fn normalize_into(samples: &[Sample], out: &mut Vec<(i64, f64)>) {
    out.clear();
    out.extend(samples.iter().map(|s| (s.time.as_nanos(), s.value.get())));
    out.sort_by_key(|&(t, _)| t);
    out.dedup_by(|later, earlier| {
        // `dedup_by` hands (current, previous kept); keep the later value
        // of a repeated time in the earlier slot.
        if later.0 == earlier.0 {
            earlier.1 = later.1;
            true
        } else {
            false
        }
    });
}

fn strictly_increasing(samples: &[Sample]) -> bool {
    samples.windows(2).all(|w| w[0].time < w[1].time)
}

impl SeriesBuf {
    /// Merges `samples` (any order, duplicates allowed) written at `lsn`;
    /// returns how many new times were added. `sorted` and `merged` are
    /// scratch space reused across calls.
    fn insert(
        &mut self,
        samples: &[Sample],
        lsn: u64,
        sorted: &mut Vec<(i64, f64)>,
        merged: &mut Vec<Entry>,
    ) -> usize {
        let Some(first) = samples.first() else { return 0 };
        let ordered = strictly_increasing(samples);
        let appends = self.entries.last().is_none_or(|last| last.time < first.time.as_nanos());
        if ordered && appends {
            self.entries.extend(samples.iter().map(|s| Entry {
                time: s.time.as_nanos(),
                value: s.value.get(),
                lsn,
            }));
            return samples.len();
        }
        if ordered {
            sorted.clear();
            sorted.extend(samples.iter().map(|s| (s.time.as_nanos(), s.value.get())));
        } else {
            normalize_into(samples, sorted);
        }
        self.merge(sorted, lsn, merged)
    }

    /// Merges sorted unique `(time, value)` pairs written at `lsn`.
    fn merge(&mut self, new: &[(i64, f64)], lsn: u64, merged: &mut Vec<Entry>) -> usize {
        let Some(&(first, _)) = new.first() else { return 0 };
        let start = self.entries.partition_point(|e| e.time < first);
        let old = &self.entries[start..];
        merged.clear();
        merged.reserve(old.len() + new.len());
        let (mut i, mut j, mut added) = (0, 0, 0);
        while i < old.len() && j < new.len() {
            let (t, v) = new[j];
            let o = old[i];
            if o.time < t {
                merged.push(o);
                i += 1;
            } else if o.time == t {
                // Same time: the higher lsn is the later write.
                merged.push(if o.lsn > lsn { o } else { Entry { time: t, value: v, lsn } });
                i += 1;
                j += 1;
            } else {
                merged.push(Entry { time: t, value: v, lsn });
                added += 1;
                j += 1;
            }
        }
        merged.extend_from_slice(&old[i..]);
        added += new.len() - j;
        merged.extend(new[j..].iter().map(|&(time, value)| Entry { time, value, lsn }));
        self.entries.truncate(start);
        self.entries.extend_from_slice(merged);
        added
    }

    fn range(&self, from: i64, to: i64) -> &[Entry] {
        let lo = self.entries.partition_point(|e| e.time < from);
        let hi = self.entries.partition_point(|e| e.time < to).max(lo);
        &self.entries[lo..hi]
    }
}

fn columns(entries: &[Entry]) -> Columns {
    Columns {
        times: entries.iter().map(|e| e.time).collect(),
        values: entries.iter().map(|e| e.value).collect(),
    }
}

/// The series of one twin in the head, in key order so that the series of
/// one signal are a range: a query for one signal of a twin with tens of
/// thousands of series visits only that signal's.
type TwinSeries = BTreeMap<SeriesKey, SeriesBuf>;

#[derive(Default)]
struct Shard {
    twins: HashMap<TwinId, TwinSeries>,
    /// Set once the head's keys were released from the registry (its data
    /// is in a segment now); later purges must not release them again.
    retired: bool,
}

/// Scratch buffers for one batch insert, reused across its series.
#[derive(Default)]
struct Scratch {
    sorted: Vec<(i64, f64)>,
    merged: Vec<Entry>,
}

/// Recent points of every series, sharded by twin so that a twin's series
/// can be listed or purged by visiting one shard.
pub(crate) struct Head {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    registry: Arc<SeriesRegistry>,
    points: AtomicUsize,
    /// Wall-clock nanos of the first write since creation, or `i64::MAX`.
    first_write_nanos: AtomicI64,
}

impl Head {
    /// An empty head whose series are counted in `registry`.
    pub(crate) fn new(registry: Arc<SeriesRegistry>) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            registry,
            points: AtomicUsize::new(0),
            first_write_nanos: AtomicI64::new(i64::MAX),
        }
    }

    fn shard_index(&self, twin: &TwinId) -> usize {
        (self.hasher.hash_one(twin) as usize) & (SHARDS - 1)
    }

    fn shard(&self, twin: &TwinId) -> &Mutex<Shard> {
        &self.shards[self.shard_index(twin)]
    }

    /// Inserts every series of a batch written by the WAL record `lsn`.
    pub(crate) fn insert_batch(&self, batch: &Batch, lsn: u64) {
        // (shard, series index), grouped by shard below. Consecutive series
        // of one twin (the usual batch shape) reuse the twin's hash.
        let mut placed: Vec<(u16, u32)> = Vec::with_capacity(batch.series.len());
        let mut previous: Option<(&TwinId, u16)> = None;
        for (i, series) in batch.series.iter().enumerate() {
            if series.samples.is_empty() {
                continue;
            }
            let twin = &series.key.twin;
            let shard = match previous {
                Some((t, s)) if t == twin => s,
                _ => self.shard_index(twin) as u16,
            };
            previous = Some((twin, shard));
            placed.push((shard, i as u32));
        }
        // Start at a shard that depends on the lsn so that concurrent
        // writers begin in different places.
        let rotate = (lsn as usize) & (SHARDS - 1);
        placed.sort_by_key(|&(shard, i)| (((shard as usize).wrapping_sub(rotate)) & (SHARDS - 1), i));
        let mut scratch = Scratch::default();
        let mut added = 0;
        for group in placed.chunk_by(|a, b| a.0 == b.0) {
            let mut shard = self.shards[group[0].0 as usize].lock();
            for &(_, i) in group {
                added += self.insert_locked(&mut shard, &batch.series[i as usize], lsn, &mut scratch);
            }
        }
        self.points.fetch_add(added, Ordering::Relaxed);
    }

    fn insert_locked(
        &self,
        shard: &mut Shard,
        series: &SeriesBatch,
        lsn: u64,
        scratch: &mut Scratch,
    ) -> usize {
        let key = &series.key;
        let twin = match shard.twins.get_mut(&key.twin) {
            Some(twin) => twin,
            None => shard.twins.entry(key.twin.clone()).or_default(),
        };
        let buf = match twin.get_mut(key) {
            Some(buf) => buf,
            None => {
                self.registry.acquire(key);
                twin.entry(key.clone()).or_default()
            }
        };
        buf.insert(&series.samples, lsn, &mut scratch.sorted, &mut scratch.merged)
    }

    /// Inserts one series' samples (any order, duplicates allowed) written
    /// by the WAL record `lsn`.
    #[cfg(test)]
    pub(crate) fn insert(&self, key: &SeriesKey, samples: &[Sample], lsn: u64) {
        let batch = Batch { series: vec![SeriesBatch { key: key.clone(), samples: samples.to_vec() }] };
        self.insert_batch(&batch, lsn);
    }

    /// Records that a write landed now (for age-based flushing).
    pub(crate) fn note_write(&self, now: Timestamp) {
        let _ = self.first_write_nanos.fetch_min(now.as_nanos(), Ordering::Relaxed);
    }

    /// Unique points held.
    pub(crate) fn point_count(&self) -> usize {
        self.points.load(Ordering::Relaxed)
    }

    /// Wall-clock time of the first write, if any.
    pub(crate) fn first_write(&self) -> Option<Timestamp> {
        let nanos = self.first_write_nanos.load(Ordering::Relaxed);
        (nanos != i64::MAX).then(|| Timestamp::from_nanos(nanos))
    }

    /// The samples of `key` in `[from, to)`.
    pub(crate) fn read(&self, key: &SeriesKey, from: i64, to: i64) -> Option<Columns> {
        let shard = self.shard(&key.twin).lock();
        let buf = shard.twins.get(&key.twin)?.get(key)?;
        Some(columns(buf.range(from, to)))
    }

    /// How many samples `key` holds in `[from, to)`, with the first and
    /// last of their times.
    pub(crate) fn span(&self, key: &SeriesKey, from: i64, to: i64) -> Option<SourceSpan> {
        let shard = self.shard(&key.twin).lock();
        let entries = shard.twins.get(&key.twin)?.get(key)?.range(from, to);
        Some(SourceSpan {
            points: entries.len() as u64,
            first: entries.first()?.time,
            last: entries.last()?.time,
        })
    }

    /// True when `key` has samples in `[from, to)`.
    pub(crate) fn has_data(&self, key: &SeriesKey, from: i64, to: i64) -> bool {
        let shard = self.shard(&key.twin).lock();
        shard.twins.get(&key.twin).and_then(|t| t.get(key)).is_some_and(|buf| !buf.range(from, to).is_empty())
    }

    /// The latest sample of `key` in `[from, to)`.
    pub(crate) fn last(&self, key: &SeriesKey, from: i64, to: i64) -> Option<(i64, f64)> {
        let shard = self.shard(&key.twin).lock();
        let buf = shard.twins.get(&key.twin)?.get(key)?;
        buf.range(from, to).last().map(|e| (e.time, e.value))
    }

    /// Every series key held for `twin`.
    pub(crate) fn keys_of(&self, twin: &TwinId) -> Vec<SeriesKey> {
        let shard = self.shard(twin).lock();
        shard.twins.get(twin).map(|series| series.keys().cloned().collect()).unwrap_or_default()
    }

    /// The keys of one signal of `twin`, whatever their provenance.
    pub(crate) fn keys_of_signal(&self, twin: &TwinId, signal: &SignalName) -> Vec<SeriesKey> {
        let shard = self.shard(twin).lock();
        let Some(series) = shard.twins.get(twin) else { return Vec::new() };
        // The empty provenance sorts first, so this is the signal's first key.
        let first = SeriesKey { twin: twin.clone(), signal: signal.clone(), provenance: Provenance::none() };
        series.range(first..).map(|(key, _)| key).take_while(|key| key.signal == *signal).cloned().collect()
    }

    /// Every series key held.
    #[cfg(test)]
    pub(crate) fn all_keys(&self) -> Vec<SeriesKey> {
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            keys.extend(shard.lock().twins.values().flat_map(|series| series.keys().cloned()));
        }
        keys
    }

    /// True when nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.lock().twins.is_empty())
    }

    /// Drops every series of `twin` (a deletion).
    pub(crate) fn purge(&self, twin: &TwinId) {
        let mut shard = self.shard(twin).lock();
        let Some(removed) = shard.twins.remove(twin) else { return };
        if !shard.retired {
            for key in removed.keys() {
                self.registry.release(key);
            }
        }
        drop(shard);
        let points: usize = removed.values().map(|buf| buf.entries.len()).sum();
        self.points.fetch_sub(points, Ordering::Relaxed);
    }

    /// Releases this head's series from the registry once its data lives
    /// in a segment (which holds its own references). Readers that still
    /// hold the head keep reading it; it is only no longer counted.
    pub(crate) fn retire(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            if shard.retired {
                continue;
            }
            shard.retired = true;
            for key in shard.twins.values().flat_map(|series| series.keys()) {
                self.registry.release(key);
            }
        }
    }

    /// Copies of all series and their samples, sorted by key (for writing a
    /// segment).
    pub(crate) fn sorted_series(&self) -> Vec<(SeriesKey, Columns)> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for (key, buf) in shard.twins.values().flatten() {
                all.push((key.clone(), columns(&buf.entries)));
            }
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::Value;
    use proptest::prelude::*;

    fn key_of(twin: &str, signal: &str) -> SeriesKey {
        SeriesKey {
            twin: TwinId::new(twin).unwrap(),
            signal: SignalName::new(signal).unwrap(),
            provenance: Provenance::none(),
        }
    }

    fn key() -> SeriesKey {
        key_of("a", "hr")
    }

    fn head() -> Head {
        Head::new(Arc::new(SeriesRegistry::default()))
    }

    fn samples(pairs: &[(i64, f64)]) -> Vec<Sample> {
        pairs
            .iter()
            .map(|&(t, v)| Sample { time: Timestamp::from_nanos(t), value: Value::new(v).unwrap() })
            .collect()
    }

    #[test]
    fn the_keys_of_a_signal_are_those_of_every_provenance_and_no_other_signal() {
        let head = head();
        let with = |signal: &str, provenance: &str| SeriesKey {
            provenance: Provenance::parse(provenance).unwrap(),
            ..key_of("a", signal)
        };
        for key in [
            key_of("a", "hr"),
            with("hr", "device=watch"),
            with("hr", "device=ring"),
            key_of("a", "hr_rest"),
            key_of("a", "h"),
            with("steps", "device=watch"),
            key_of("b", "hr"),
        ] {
            head.insert(&key, &samples(&[(1, 1.0)]), 1);
        }
        let hr = SignalName::new("hr").unwrap();
        let mut keys = head.keys_of_signal(&TwinId::new("a").unwrap(), &hr);
        keys.sort();
        assert_eq!(keys, vec![key_of("a", "hr"), with("hr", "device=ring"), with("hr", "device=watch")]);
        assert!(head.keys_of_signal(&TwinId::new("c").unwrap(), &hr).is_empty());
    }

    #[test]
    fn a_higher_lsn_wins_even_when_inserted_first() {
        let head = head();
        head.insert(&key(), &samples(&[(10, 2.0)]), 2);
        head.insert(&key(), &samples(&[(10, 1.0), (5, 0.5)]), 1);
        let c = head.read(&key(), i64::MIN, i64::MAX).unwrap();
        assert_eq!(c.times, vec![5, 10]);
        assert_eq!(c.values, vec![0.5, 2.0]);
        assert_eq!(head.point_count(), 2);
    }

    #[test]
    fn series_are_counted_once_and_released_by_purge_or_retirement() {
        let registry = Arc::new(SeriesRegistry::default());
        let head = Head::new(Arc::clone(&registry));
        let batch = Batch {
            series: vec![
                SeriesBatch { key: key_of("a", "hr"), samples: samples(&[(1, 1.0)]) },
                SeriesBatch { key: key_of("a", "steps"), samples: samples(&[(1, 1.0)]) },
                SeriesBatch { key: key_of("b", "hr"), samples: samples(&[(1, 1.0)]) },
                SeriesBatch { key: key_of("c", "hr"), samples: Vec::new() },
            ],
        };
        head.insert_batch(&batch, 1);
        head.insert_batch(&batch, 2);
        assert_eq!(registry.count(), 3);
        head.purge(&TwinId::new("a").unwrap());
        assert_eq!(registry.count(), 1);
        head.retire();
        assert_eq!(registry.count(), 0);
        head.purge(&TwinId::new("b").unwrap());
        assert_eq!(registry.count(), 0);
        assert_eq!(head.point_count(), 0);
    }

    proptest! {
        #[test]
        fn head_matches_a_map_model(batches in proptest::collection::vec(proptest::collection::vec((0i64..50, 0f64..10.0), 1..10), 1..10)) {
            let head = head();
            let mut model = std::collections::BTreeMap::new();
            for (lsn, batch) in batches.iter().enumerate() {
                head.insert(&key(), &samples(batch), lsn as u64 + 1);
                for &(t, v) in batch {
                    model.insert(t, v);
                }
            }
            let c = head.read(&key(), i64::MIN, i64::MAX).unwrap();
            prop_assert_eq!(c.times, model.keys().copied().collect::<Vec<_>>());
            prop_assert_eq!(c.values, model.values().copied().collect::<Vec<_>>());
            prop_assert_eq!(head.point_count(), model.len());
        }

        #[test]
        fn inserts_in_any_lsn_order_agree_with_lsn_order(
            batches in proptest::collection::vec(proptest::collection::vec((0i64..30, 0f64..10.0), 1..8), 1..8),
            seed in any::<u64>(),
        ) {
            // Apply in a shuffled order, as concurrent writers may; the
            // result must equal applying in lsn order.
            let mut order: Vec<usize> = (0..batches.len()).collect();
            let mut state = seed | 1;
            for i in (1..order.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                order.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let head = head();
            for &i in &order {
                head.insert(&key(), &samples(&batches[i]), i as u64 + 1);
            }
            let mut model = std::collections::BTreeMap::new();
            for batch in &batches {
                for &(t, v) in batch {
                    model.insert(t, v);
                }
            }
            let c = head.read(&key(), i64::MIN, i64::MAX).unwrap();
            prop_assert_eq!(c.times, model.keys().copied().collect::<Vec<_>>());
            prop_assert_eq!(c.values, model.values().copied().collect::<Vec<_>>());
        }
    }
}
