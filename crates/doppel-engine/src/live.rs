//! Live state of every twin, in memory, sharded so concurrent batches for
//! different twins do not contend.
//!
//! Memory is the constraint here (a million twins with ten signals each must
//! fit in 2 GiB), so a live signal holds only its newest point and its
//! rolling windows, packed: 24 bytes per signal plus 80 per window, in two
//! allocations per twin. Everything else is read from the store on demand.
//!
//! The present is a function of the accepted points: points newer than a
//! signal's newest are added as they come; anything else that could
//! change it (a retry, an overwrite, a late point inside a window) makes
//! the engine rebuild the signal from history, which holds one point per
//! series and time.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use doppel_model::{ModelDef, SignalName, Span, Timestamp, TwinId};
use parking_lot::RwLock;

use crate::window::{
    SCALE_UNIT, SUB_BUCKETS, WindowRing, WindowSummary, bucket_index, scale_exponent, scaled,
};

/// Number of lock shards; a power of two comfortably above the core count
/// of the machines Doppel targets.
const SHARDS: usize = 64;

/// `first_window` of a signal that keeps no windows because its twin
/// already holds the most rings a `u16` offset can address (a twin with
/// tens of thousands of signals): it still keeps its newest value.
const NO_WINDOWS: u16 = u16::MAX;

/// Bits of a live signal's packed id word that hold its window scale.
const SCALE_BITS: u32 = 5;

/// Most distinct signal names one engine tracks live: ids take the 27 bits
/// of a live signal's id word the scale leaves. At tens of bytes per name
/// the table would hold gigabytes before it filled, and the per-twin caps
/// bound what any one person adds, so no one can use it up for others.
pub(crate) const MAX_SIGNAL_NAMES: u32 = 1 << (32 - SCALE_BITS);

/// A dense number for each signal name of an accepted batch, so that live
/// signals store a few bits instead of a 16-byte name. Shared by every
/// twin.
#[derive(Default)]
pub(crate) struct SignalIds {
    table: RwLock<NameTable>,
}

/// Both directions of the mapping, changed together under one lock.
#[derive(Default)]
struct NameTable {
    by_name: HashMap<SignalName, u32>,
    names: Vec<SignalName>,
}

impl SignalIds {
    /// The id of `name` if it has one; never assigns, so validating a
    /// batch that is then refused leaves the table as it was.
    pub fn get(&self, name: &SignalName) -> Option<u32> {
        self.table.read().by_name.get(name).copied()
    }

    /// The id of `name`, assigned on first use (call it only for accepted
    /// batches); `None` once [`MAX_SIGNAL_NAMES`] names exist.
    pub fn id(&self, name: &SignalName) -> Option<u32> {
        if let Some(id) = self.get(name) {
            return Some(id);
        }
        let mut table = self.table.write();
        if let Some(&id) = table.by_name.get(name) {
            return Some(id);
        }
        let id = u32::try_from(table.names.len()).ok().filter(|&id| id < MAX_SIGNAL_NAMES)?;
        table.names.push(name.clone());
        table.by_name.insert(name.clone(), id);
        Some(id)
    }

    /// The name of an id handed out by [`SignalIds::id`].
    pub fn name(&self, id: u32) -> Option<SignalName> {
        self.table.read().names.get(id as usize).cloned()
    }
}

/// The present of one signal. Its windows live in the twin's ring array
/// at `first_window`, one per span the model lists for the signal; the
/// newest sub-bucket of each follows from `last_time`.
#[derive(Clone, Copy)]
struct LiveSignal {
    last_time: i64,
    last_value: f64,
    /// The signal's id above [`SCALE_BITS`] bits of window scale: window
    /// values are divided by 2^(64 × scale) (see `window::scale_exponent`).
    id_scale: u32,
    first_window: u16,
    /// What window sums are taken relative to: the signal's first value,
    /// scaled, as the top half of an `f32` (bfloat16). It only needs to be
    /// near the values to keep sums small; it is always read back the
    /// same way, so sums and summaries agree on it exactly.
    reference: u16,
}

impl LiveSignal {
    fn empty(id: u32, first_window: u16) -> Self {
        Self { last_time: i64::MIN, last_value: 0.0, id_scale: id << SCALE_BITS, first_window, reference: 0 }
    }

    fn id(&self) -> u32 {
        self.id_scale >> SCALE_BITS
    }

    /// The power of two window values are divided by.
    fn scale(&self) -> i32 {
        (self.id_scale & ((1 << SCALE_BITS) - 1)) as i32 * SCALE_UNIT
    }

    fn set_scale(&mut self, exponent: i32) {
        let units = (exponent / SCALE_UNIT).clamp(0, (1 << SCALE_BITS) - 1) as u32;
        self.id_scale = (self.id_scale & !((1 << SCALE_BITS) - 1)) | units;
    }

    fn reference(&self) -> f32 {
        f32::from_bits(u32::from(self.reference) << 16)
    }

    fn set_reference(&mut self, value: f32) {
        self.reference = (value.to_bits() >> 16) as u16;
    }

    /// Where its `windows` rings sit in the twin's ring array (empty for a
    /// signal that keeps none).
    fn rings(&self, windows: usize) -> std::ops::Range<usize> {
        match self.first_window {
            NO_WINDOWS => 0..0,
            first => usize::from(first)..usize::from(first) + windows,
        }
    }
}

/// A signal's present as callers see it.
pub(crate) struct SignalSnapshot {
    pub last_time: Timestamp,
    pub last_value: f64,
    /// `(span, summary)` per window holding points, in the model's order.
    pub windows: Vec<(Span, WindowSummary)>,
}

/// The live part of one twin.
pub(crate) struct LiveTwin {
    pub model: Arc<ModelDef>,
    /// Sorted by signal id. Boxed slices grown by exactly one element: a
    /// vector's spare capacity would waste memory across a million twins.
    signals: Box<[LiveSignal]>,
    rings: Box<[WindowRing]>,
    /// Series the twin holds, for the per-twin series cap (which series
    /// they are, the store knows).
    series: u32,
}

impl LiveTwin {
    pub fn new(model: Arc<ModelDef>) -> Self {
        Self { model, signals: Box::new([]), rings: Box::new([]), series: 0 }
    }

    /// Whether the twin has live state for signal `id`.
    pub fn has_signal(&self, id: u32) -> bool {
        self.signals.binary_search_by_key(&id, |s| s.id()).is_ok()
    }

    /// Number of distinct series the twin holds.
    pub fn series_count(&self) -> usize {
        self.series as usize
    }

    /// Counts `new` series more.
    pub fn add_series(&mut self, new: usize) {
        self.series = self.series.saturating_add(u32::try_from(new).unwrap_or(u32::MAX));
    }

    /// Number of signals with live state.
    pub fn signal_count(&self) -> usize {
        self.signals.len()
    }

    /// Gives the signals among `wanted` (id and name) that have no live
    /// state yet an empty one, growing the signal and ring arrays once. A
    /// batch usually brings several new signals of a twin at once; growing
    /// the arrays signal by signal would leave a trail of freed smaller
    /// copies that the allocator keeps resident.
    pub fn add_signals<'a>(&mut self, wanted: impl IntoIterator<Item = (u32, &'a SignalName)>) {
        let mut missing: Vec<(u32, &SignalName)> = wanted
            .into_iter()
            .filter(|(id, _)| self.signals.binary_search_by_key(id, |s| s.id()).is_err())
            .collect();
        if missing.is_empty() {
            return;
        }
        missing.sort_unstable_by_key(|(id, _)| *id);
        missing.dedup_by_key(|(id, _)| *id);
        let mut signals = Vec::with_capacity(self.signals.len() + missing.len());
        signals.extend_from_slice(&self.signals);
        let mut ring_count = self.rings.len();
        for (id, name) in missing {
            let windows = self.model.windows_for(name).len();
            let first_window = match u16::try_from(ring_count + windows) {
                Ok(end) if end < NO_WINDOWS => ring_count as u16,
                _ => NO_WINDOWS,
            };
            if first_window != NO_WINDOWS {
                ring_count += windows;
            }
            signals.push(LiveSignal::empty(id, first_window));
        }
        signals.sort_unstable_by_key(|s| s.id());
        self.signals = signals.into_boxed_slice();
        if ring_count > self.rings.len() {
            let mut rings = Vec::with_capacity(ring_count);
            rings.extend_from_slice(&self.rings);
            rings.resize(ring_count, WindowRing::default());
            self.rings = rings.into_boxed_slice();
        }
    }

    /// Whether points at `times` could change signal `id`'s present in a
    /// way adding them cannot: a time at or before its newest that is still
    /// inside one of its windows (maybe a point history already holds, or
    /// an overwrite), or equal to its newest. Points older than every
    /// window cannot change it.
    pub fn needs_rebuild(
        &self,
        id: u32,
        name: &SignalName,
        mut times: impl Iterator<Item = Timestamp>,
    ) -> bool {
        let Ok(index) = self.signals.binary_search_by_key(&id, |s| s.id()) else { return false };
        let newest = self.signals[index].last_time;
        if newest == i64::MIN {
            return false;
        }
        let spans = self.model.windows_for(name);
        times.any(|time| {
            let t = time.as_nanos();
            t == newest
                || (t < newest
                    && spans.iter().any(|span| {
                        bucket_index(*span, newest).saturating_sub(bucket_index(*span, t))
                            < SUB_BUCKETS as i64
                    }))
        })
    }

    /// Forgets signal `id`'s present, before it is rebuilt from history.
    pub fn reset(&mut self, id: u32, name: &SignalName) {
        let Ok(index) = self.signals.binary_search_by_key(&id, |s| s.id()) else { return };
        let windows = self.model.windows_for(name).len();
        let signal = &mut self.signals[index];
        *signal = LiveSignal::empty(id, signal.first_window);
        for ring in &mut self.rings[signal.rings(windows)] {
            *ring = WindowRing::default();
        }
    }

    /// Applies points of signal `name` (id `id`) that history did not hold
    /// at their series and time. The order of application does not
    /// matter: of points at the signal's newest time, the largest value
    /// is its newest value.
    pub fn apply(&mut self, id: u32, name: &SignalName, points: impl Iterator<Item = (Timestamp, f64)>) {
        let index = match self.signals.binary_search_by_key(&id, |s| s.id()) {
            Ok(index) => index,
            Err(_) => {
                self.add_signals([(id, name)]);
                let Ok(index) = self.signals.binary_search_by_key(&id, |s| s.id()) else { return };
                index
            }
        };
        let Self { model, signals, rings, .. } = self;
        let spans = model.windows_for(name);
        let signal = &mut signals[index];
        let rings = &mut rings[signal.rings(spans.len())];
        for (time, value) in points {
            let t = time.as_nanos();
            let exponent = scale_exponent(value);
            if signal.last_time == i64::MIN {
                signal.set_scale(exponent);
                signal.set_reference(scaled(value, exponent));
            } else if exponent > signal.scale() {
                let by = exponent - signal.scale();
                for ring in rings.iter_mut() {
                    ring.rescale(by);
                }
                signal.set_reference(signal.reference() * 2f32.powi(-by));
                signal.set_scale(exponent);
            }
            let value_scaled = scaled(value, signal.scale());
            for (ring, span) in rings.iter_mut().zip(spans) {
                ring.add(*span, signal.last_time, t, value_scaled, signal.reference());
            }
            if t > signal.last_time || (t == signal.last_time && value > signal.last_value) {
                signal.last_time = t;
                signal.last_value = value;
            }
        }
    }

    /// Every signal that received a point, in id order.
    pub fn snapshot(&self, names: &SignalIds) -> Vec<(SignalName, SignalSnapshot)> {
        self.signals
            .iter()
            .filter(|s| s.last_time != i64::MIN)
            .filter_map(|s| {
                let name = names.name(s.id())?;
                let spans = self.model.windows_for(&name);
                let windows = spans
                    .iter()
                    .zip(&self.rings[s.rings(spans.len())])
                    .filter_map(|(span, ring)| Some((*span, ring.summary(s.reference(), s.scale())?)))
                    .collect();
                let snapshot = SignalSnapshot {
                    last_time: Timestamp::from_nanos(s.last_time),
                    last_value: s.last_value,
                    windows,
                };
                Some((name, snapshot))
            })
            .collect()
    }
}

/// All live twins.
pub(crate) struct TwinTable {
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[RwLock<HashMap<TwinId, LiveTwin>>]>,
}

impl TwinTable {
    pub fn new() -> Self {
        Self {
            hasher: std::collections::hash_map::RandomState::new(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    pub fn shard(&self, id: &TwinId) -> &RwLock<HashMap<TwinId, LiveTwin>> {
        let mut state = self.hasher.build_hasher();
        id.hash(&mut state);
        let hash = std::hash::Hasher::finish(&state);
        &self.shards[(hash as usize) % SHARDS]
    }

    pub fn contains(&self, id: &TwinId) -> bool {
        self.shard(id).read().contains_key(id)
    }

    pub fn insert(&self, id: TwinId, twin: LiveTwin) {
        self.shard(&id).write().insert(id, twin);
    }

    pub fn remove(&self, id: &TwinId) -> bool {
        self.shard(id).write().remove(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    pub fn live_signals(&self) -> usize {
        self.shards.iter().map(|s| s.read().values().map(LiveTwin::signal_count).sum::<usize>()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_signal_costs_24_bytes() {
        assert_eq!(std::mem::size_of::<LiveSignal>(), 24);
    }

    #[test]
    fn a_live_signal_keeps_its_id_scale_and_reference_apart() {
        let mut signal = LiveSignal::empty(MAX_SIGNAL_NAMES - 1, 3);
        signal.set_scale(1024);
        signal.set_reference(-61.0);
        assert_eq!((signal.id(), signal.scale(), signal.reference()), (MAX_SIGNAL_NAMES - 1, 1024, -61.0));
        signal.set_scale(0);
        assert_eq!((signal.id(), signal.scale()), (MAX_SIGNAL_NAMES - 1, 0));
    }

    #[test]
    fn signal_ids_are_dense_stable_and_assigned_only_when_asked() {
        let ids = SignalIds::default();
        let hr = SignalName::new("heart_rate").unwrap();
        assert_eq!(ids.get(&hr), None, "looking a name up does not register it");
        assert_eq!(ids.id(&hr), Some(0));
        assert_eq!(ids.id(&SignalName::new("steps").unwrap()), Some(1));
        assert_eq!(ids.id(&hr), Some(0));
        assert_eq!(ids.get(&hr), Some(0));
        assert_eq!(ids.name(1).unwrap().as_str(), "steps");
        assert_eq!(ids.name(2), None);
        for i in 2..70_000 {
            ids.id(&SignalName::new(&format!("s{i}")).unwrap()).unwrap();
        }
        assert_eq!(ids.id(&SignalName::new("past_u16").unwrap()), Some(70_000), "ids are wider than u16");
    }

    /// A signal's name, newest time, newest value and windows.
    type SignalState = (String, Timestamp, f64, Vec<(Span, WindowSummary)>);

    /// Every signal's state, to compare two twins' live state.
    fn state(twin: &LiveTwin, ids: &SignalIds) -> Vec<SignalState> {
        twin.snapshot(ids)
            .into_iter()
            .map(|(name, s)| (name.to_string(), s.last_time, s.last_value, s.windows))
            .collect()
    }

    #[test]
    fn signals_added_together_keep_the_same_state_as_one_by_one() {
        let model = Arc::new(ModelDef::person());
        let ids = SignalIds::default();
        let names: Vec<SignalName> = ["steps", "heart_rate", "spo2", "heart_rate"]
            .iter()
            .map(|n| SignalName::new(n).unwrap())
            .collect();
        let keyed: Vec<(u32, &SignalName)> = names.iter().map(|n| (ids.id(n).unwrap(), n)).collect();
        let points = |i: usize| {
            (0..5).map(move |k| (Timestamp::from_secs(60 * k + i as i64), 60.0 + (k as f64) + i as f64))
        };
        let mut one_by_one = LiveTwin::new(model.clone());
        let mut together = LiveTwin::new(model.clone());
        together.add_signals(keyed.iter().copied());
        assert_eq!(together.signal_count(), 3, "a signal named twice is added once");
        for (i, &(id, name)) in keyed.iter().enumerate() {
            one_by_one.apply(id, name, points(i));
            together.apply(id, name, points(i));
        }
        assert_eq!(together.signal_count(), 3);
        assert_eq!(state(&together, &ids), state(&one_by_one, &ids));
        let rings = |twin: &LiveTwin| twin.rings.len();
        assert_eq!(rings(&together), rings(&one_by_one));
        assert!(rings(&together) > 0, "the person model keeps windows for these signals");

        let hrv = SignalName::new("hrv_rmssd").unwrap();
        let hrv_id = ids.id(&hrv).unwrap();
        together.add_signals([(hrv_id, &hrv), keyed[0]]);
        assert_eq!(together.signal_count(), 4, "only the new signal is added");
        assert_eq!(state(&together, &ids), state(&one_by_one, &ids), "existing state is kept");
    }
}
