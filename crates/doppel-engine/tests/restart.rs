//! A restart's work (opening the store, rebuilding live state) grows
//! linearly with a twin's series, from the WAL and from segments alike:
//! counted in series keys listed, never timed.

use doppel_engine::{Engine, EngineConfig};
use doppel_model::{BatchBuilder, Provenance, Sample, SeriesKey, SignalName, Timestamp, TwinId, Value};
use doppel_store::{StoreConfig, TwinRecord};

/// Devices per signal: the twin's series are signals × devices, so both a
/// twin with many signals and a signal with many provenances are covered.
const DEVICES: usize = 10;
/// Points per batch, well under the WAL's record limit.
const BATCH_POINTS: usize = 5_000;

fn open(dir: &std::path::Path) -> Engine {
    let mut store = StoreConfig::new(dir);
    store.background = false;
    Engine::open(EngineConfig::new(store)).unwrap()
}

/// Writes one twin with `series` series (one point each) straight to the
/// store, past the engine's per-twin caps; flushes them to a segment when
/// `flush`, else leaves them in the WAL. Restarts, and returns the keys
/// listed by the restart, after checking that every signal is live again.
fn restart_work(series: usize, flush: bool) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let twin = TwinId::new("wide").unwrap();
    {
        let engine = open(dir.path());
        let store = engine.store();
        let record = TwinRecord {
            id: twin.clone(),
            model: "person".to_owned(),
            properties: serde_json::Map::new(),
            created: Timestamp::from_secs(0),
        };
        store.put_twin(&record).unwrap();
        let mut builder = BatchBuilder::default();
        for n in 0..series {
            let (signal, device) = (n / DEVICES, n % DEVICES);
            let key = SeriesKey {
                twin: twin.clone(),
                signal: SignalName::new(&format!("s{signal:06}")).unwrap(),
                provenance: Provenance::from_tags([("device", format!("d{device}").as_str())]).unwrap(),
            };
            let sample = Sample { time: Timestamp::from_secs(n as i64), value: Value::new(1.0).unwrap() };
            builder.push_sample(key, sample);
            if (n + 1) % BATCH_POINTS == 0 {
                store.write(&std::mem::take(&mut builder).finish()).unwrap();
            }
        }
        store.write(&builder.finish()).unwrap();
        if flush {
            store.flush().unwrap();
        }
    }
    let engine = open(dir.path());
    assert_eq!(engine.store().stats().series, series);
    assert_eq!(engine.stats().live_signals, series / DEVICES);
    engine.store().stats().series_keys_listed_total
}

fn assert_linear(flush: bool) {
    let half = restart_work(25_000, flush);
    let full = restart_work(50_000, flush);
    // Each series is listed a bounded number of times (opening, the
    // twin's listing, its signal's read plans), whatever the twin's size.
    assert!(half >= 25_000, "only {half} keys listed for 25,000 series");
    assert!(full * 10 <= half * 22 + 10_000, "50,000 series: {full} keys listed; 25,000: {half}");
}

#[test]
fn restarting_a_twin_of_50k_series_from_the_wal_lists_each_series_a_bounded_number_of_times() {
    assert_linear(false);
}

#[test]
fn restarting_a_twin_of_50k_series_from_segments_lists_each_series_a_bounded_number_of_times() {
    assert_linear(true);
}
