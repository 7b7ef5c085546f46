//! Live state of every twin, in memory, sharded so concurrent batches for
//! different twins do not contend.
//!
//! Memory is the constraint here (a million twins with ten signals each must
//! fit in 2 GiB), so a live signal holds only its newest point and its
//! rolling windows; everything else is read from the store on demand.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use doppel_model::{ModelDef, SignalName, Timestamp, TwinId};
use parking_lot::RwLock;

use crate::window::RollingWindow;

/// Number of lock shards; a power of two comfortably above the core count
/// of the machines Doppel targets.
const SHARDS: usize = 64;

/// The present of one signal.
pub(crate) struct LiveSignal {
    pub signal: SignalName,
    pub last_time: i64,
    pub last_value: f64,
    pub windows: Windows,
}

/// A signal's rolling windows. Most signals have none or one, so one is
/// kept inline: a separate allocation per live signal costs more than the
/// window itself at millions of signals.
pub(crate) enum Windows {
    /// Category and interval signals, and models that keep none.
    None,
    /// The common case.
    One(RollingWindow),
    /// Several spans (e.g. acute and chronic training load).
    Many(Box<[RollingWindow]>),
}

impl Windows {
    fn new(spans: &[doppel_model::Span]) -> Self {
        match spans {
            [] => Self::None,
            [span] => Self::One(RollingWindow::new(*span)),
            spans => Self::Many(spans.iter().map(|span| RollingWindow::new(*span)).collect()),
        }
    }

    /// The windows, in the model's order.
    pub fn as_slice(&self) -> &[RollingWindow] {
        match self {
            Self::None => &[],
            Self::One(window) => std::slice::from_ref(window),
            Self::Many(windows) => windows,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [RollingWindow] {
        match self {
            Self::None => &mut [],
            Self::One(window) => std::slice::from_mut(window),
            Self::Many(windows) => windows,
        }
    }
}

impl LiveSignal {
    fn new(signal: SignalName, model: &ModelDef) -> Self {
        let windows = Windows::new(model.windows_for(&signal));
        Self { signal, last_time: i64::MIN, last_value: 0.0, windows }
    }

    /// Applies one point; order of application does not matter.
    pub fn apply(&mut self, time: Timestamp, value: f64) {
        let t = time.as_nanos();
        if t >= self.last_time {
            self.last_time = t;
            self.last_value = value;
        }
        for window in self.windows.as_mut_slice() {
            window.add(t, value);
        }
    }
}

/// The live part of one twin.
pub(crate) struct LiveTwin {
    pub model: Arc<ModelDef>,
    /// Sorted by signal name; a twin has tens of signals, so a sorted vector
    /// beats a map in both memory and lookup time.
    pub signals: Vec<LiveSignal>,
}

impl LiveTwin {
    pub fn new(model: Arc<ModelDef>) -> Self {
        Self { model, signals: Vec::new() }
    }

    /// The live signal, created on first use.
    pub fn signal_mut(&mut self, signal: &SignalName) -> &mut LiveSignal {
        let index = match self.signals.binary_search_by(|s| s.signal.cmp(signal)) {
            Ok(i) => i,
            Err(i) => {
                let live = LiveSignal::new(signal.clone(), &self.model);
                // Grow by exactly one: doubling would waste up to half the
                // vector across a million twins.
                self.signals.reserve_exact(1);
                self.signals.insert(i, live);
                i
            }
        };
        &mut self.signals[index]
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
        self.shards.iter().map(|s| s.read().values().map(|t| t.signals.len()).sum::<usize>()).sum()
    }
}
