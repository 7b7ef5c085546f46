//! Helpers shared by the integration tests.
#![allow(dead_code)]

use doppel_model::{
    Batch, BatchBuilder, Provenance, Sample, SeriesKey, SignalName, Timestamp, TwinId, Value,
};
use doppel_store::{RangeQuery, Store, StoreConfig};

pub fn config(dir: &std::path::Path) -> StoreConfig {
    let mut config = StoreConfig::new(dir);
    config.background = false;
    config
}

pub fn key(twin: &str, signal: &str, device: Option<&str>) -> SeriesKey {
    SeriesKey {
        twin: TwinId::new(twin).unwrap(),
        signal: SignalName::new(signal).unwrap(),
        provenance: match device {
            Some(d) => Provenance::from_tags([("device", d)]).unwrap(),
            None => Provenance::none(),
        },
    }
}

pub fn batch(key: &SeriesKey, samples: &[(i64, f64)]) -> Batch {
    let mut b = BatchBuilder::default();
    for &(t, v) in samples {
        b.push_sample(key.clone(), Sample { time: Timestamp::from_nanos(t), value: Value::new(v).unwrap() });
    }
    b.finish()
}

pub fn query(twin: &str, signal: &str) -> RangeQuery {
    RangeQuery {
        twin: TwinId::new(twin).unwrap(),
        signal: SignalName::new(signal).unwrap(),
        provenance: Provenance::none(),
        from: Timestamp::MIN,
        to: Timestamp::MAX,
    }
}

/// All (time, value) pairs of one series as the store returns them.
pub fn pairs(store: &Store, key: &SeriesKey) -> Vec<(i64, f64)> {
    let mut q = query(key.twin.as_str(), key.signal.as_str());
    q.provenance = key.provenance.clone();
    store
        .read(&q)
        .unwrap()
        .into_iter()
        .filter(|s| &s.key == key)
        .flat_map(|s| s.samples.into_iter().map(|x| (x.time.as_nanos(), x.value.get())))
        .collect()
}
