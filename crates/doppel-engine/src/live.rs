//! Live state of every twin, in memory, sharded so concurrent batches for
//! different twins do not contend.
//!
//! Memory is the constraint here (a million twins with ten signals each must
//! fit in 2 GiB), so a live signal holds only its newest point and its
//! rolling windows, packed: 24 bytes per signal plus 80 per window, in two
//! allocations per twin. Everything else is read from the store on demand.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use doppel_model::{ModelDef, SignalName, Span, Timestamp, TwinId};
use parking_lot::RwLock;

use crate::window::{WindowRing, WindowSummary};

/// Number of lock shards; a power of two comfortably above the core count
/// of the machines Doppel targets.
const SHARDS: usize = 64;

/// Most distinct signal names one engine tracks live. Ids are `u16` to keep
/// a live signal at 24 bytes; models define tens of signals, so the limit
/// only stops a client inventing names without end on a non-strict model.
pub(crate) const MAX_SIGNAL_NAMES: usize = u16::MAX as usize;

/// `first_window` of a signal that keeps no windows because its twin
/// already holds the most rings a `u16` offset can address (a twin with
/// tens of thousands of signals): it still keeps its newest value.
const NO_WINDOWS: u16 = u16::MAX;

/// A dense number for each signal name seen, so that live signals store
/// two bytes instead of a 16-byte name.
#[derive(Default)]
pub(crate) struct SignalIds {
    table: RwLock<NameTable>,
}

/// Both directions of the mapping, changed together under one lock.
#[derive(Default)]
struct NameTable {
    by_name: HashMap<SignalName, u16>,
    names: Vec<SignalName>,
}

impl SignalIds {
    /// The id of `name`, assigned on first use; an error once
    /// [`MAX_SIGNAL_NAMES`] names exist.
    pub fn id(&self, name: &SignalName) -> Result<u16, String> {
        if let Some(&id) = self.table.read().by_name.get(name) {
            return Ok(id);
        }
        let mut table = self.table.write();
        if let Some(&id) = table.by_name.get(name) {
            return Ok(id);
        }
        let count = table.names.len();
        let id = u16::try_from(count).ok().filter(|&id| usize::from(id) < MAX_SIGNAL_NAMES).ok_or_else(|| {
            format!(
                "signal {name} would be distinct signal name number {}, above the limit of {MAX_SIGNAL_NAMES}",
                count + 1
            )
        })?;
        table.names.push(name.clone());
        table.by_name.insert(name.clone(), id);
        Ok(id)
    }

    /// The name of an id handed out by [`SignalIds::id`].
    pub fn name(&self, id: u16) -> SignalName {
        self.table.read().names[usize::from(id)].clone()
    }
}

/// The present of one signal. Its windows live in the twin's ring array
/// at `first_window`, one per span the model lists for the signal; the
/// newest sub-bucket of each follows from `last_time`.
#[derive(Clone, Copy)]
struct LiveSignal {
    last_time: i64,
    last_value: f64,
    /// What window sums are taken relative to: the signal's first value.
    reference: f32,
    signal: u16,
    first_window: u16,
}

impl LiveSignal {
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
}

impl LiveTwin {
    pub fn new(model: Arc<ModelDef>) -> Self {
        Self { model, signals: Box::new([]), rings: Box::new([]) }
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
    pub fn add_signals<'a>(&mut self, wanted: impl IntoIterator<Item = (u16, &'a SignalName)>) {
        let mut missing: Vec<(u16, &SignalName)> = wanted
            .into_iter()
            .filter(|(id, _)| self.signals.binary_search_by_key(id, |s| s.signal).is_err())
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
            signals.push(LiveSignal {
                last_time: i64::MIN,
                last_value: 0.0,
                reference: 0.0,
                signal: id,
                first_window,
            });
        }
        signals.sort_unstable_by_key(|s| s.signal);
        self.signals = signals.into_boxed_slice();
        if ring_count > self.rings.len() {
            let mut rings = Vec::with_capacity(ring_count);
            rings.extend_from_slice(&self.rings);
            rings.resize(ring_count, WindowRing::default());
            self.rings = rings.into_boxed_slice();
        }
    }

    /// Applies the points of one series of `name` (id `id`); the order of
    /// application does not matter.
    pub fn apply(&mut self, id: u16, name: &SignalName, points: impl Iterator<Item = (Timestamp, f64)>) {
        let index = match self.signals.binary_search_by_key(&id, |s| s.signal) {
            Ok(index) => index,
            Err(_) => {
                self.add_signals([(id, name)]);
                let Ok(index) = self.signals.binary_search_by_key(&id, |s| s.signal) else { return };
                index
            }
        };
        let Self { model, signals, rings } = self;
        let spans = model.windows_for(name);
        let signal = &mut signals[index];
        let rings = &mut rings[signal.rings(spans.len())];
        for (time, value) in points {
            let t = time.as_nanos();
            if signal.last_time == i64::MIN {
                signal.reference = value as f32;
            }
            for (ring, span) in rings.iter_mut().zip(spans) {
                ring.add(*span, signal.last_time, t, value, signal.reference);
            }
            if t >= signal.last_time {
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
            .map(|s| {
                let name = names.name(s.signal);
                let spans = self.model.windows_for(&name);
                let windows = spans
                    .iter()
                    .zip(&self.rings[s.rings(spans.len())])
                    .filter_map(|(span, ring)| Some((*span, ring.summary(s.reference)?)))
                    .collect();
                let snapshot = SignalSnapshot {
                    last_time: Timestamp::from_nanos(s.last_time),
                    last_value: s.last_value,
                    windows,
                };
                (name, snapshot)
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
    fn signal_ids_are_dense_stable_and_bounded() {
        let ids = SignalIds::default();
        let hr = SignalName::new("heart_rate").unwrap();
        assert_eq!(ids.id(&hr), Ok(0));
        assert_eq!(ids.id(&SignalName::new("steps").unwrap()), Ok(1));
        assert_eq!(ids.id(&hr), Ok(0));
        assert_eq!(ids.name(1).as_str(), "steps");
        for i in 2..MAX_SIGNAL_NAMES {
            ids.id(&SignalName::new(&format!("s{i}")).unwrap()).unwrap();
        }
        let err = ids.id(&SignalName::new("one_too_many").unwrap()).unwrap_err();
        assert!(err.contains("one_too_many") && err.contains("65535"), "{err}");
        assert_eq!(ids.id(&hr), Ok(0), "known names still resolve at the limit");
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
        let keyed: Vec<(u16, &SignalName)> = names.iter().map(|n| (ids.id(n).unwrap(), n)).collect();
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
