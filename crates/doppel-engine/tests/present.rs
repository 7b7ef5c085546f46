//! A twin's present (newest value and windows) is a function of the
//! points history holds, whatever order, duplication or batching brought
//! them; and the ingest caps refuse what would break that or fill shared
//! tables.

use std::collections::BTreeMap;

use doppel_engine::{Engine, EngineConfig, IngestError, IngestLimits, SignalState};
use doppel_model::{Precision, Provenance, SignalName, Timestamp, TwinId};
use doppel_protocols::{RawBatch, line_protocol};
use doppel_store::{RangeQuery, StoreConfig};
use proptest::prelude::*;

fn open_with(dir: &std::path::Path, limits: IngestLimits) -> Engine {
    let mut store = StoreConfig::new(dir);
    store.background = false;
    let mut config = EngineConfig::new(store);
    config.limits = limits;
    Engine::open(config).unwrap()
}

fn open(dir: &std::path::Path) -> Engine {
    open_with(dir, IngestLimits::default())
}

fn lines(text: &str) -> RawBatch {
    line_protocol::parse(text.as_bytes(), Precision::S, Timestamp::now()).unwrap()
}

fn signal(engine: &Engine, name: &str) -> SignalState {
    let twin = engine.twin(&TwinId::new("t").unwrap()).unwrap();
    twin.signals.into_iter().find(|s| s.signal.as_str() == name).unwrap()
}

fn rejection(result: Result<doppel_engine::IngestReceipt, IngestError>) -> String {
    match result {
        Err(IngestError::Rejected(errors)) => {
            errors.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_retried_batch_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let batch: String =
        (0..10).map(|i| format!("heart_rate,twin=t value={} {}\n", 60 + i, 1_000 + 60 * i)).collect();
    engine.ingest(lines(&batch)).unwrap();
    engine.ingest(lines(&batch)).unwrap();
    let hr = signal(&engine, "heart_rate");
    let day = hr.windows.iter().max_by_key(|w| w.window).unwrap();
    assert_eq!(day.count, 10);
    assert!((day.mean - 64.5).abs() < 1e-6, "{day:?}");
}

#[test]
fn an_overwrite_replaces_the_old_value_in_every_window() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.ingest(lines("heart_rate,twin=t value=40 1000\nheart_rate,twin=t value=70 1060")).unwrap();
    engine.ingest(lines("heart_rate,twin=t value=80 1000")).unwrap();
    let hr = signal(&engine, "heart_rate");
    for window in &hr.windows {
        assert_eq!((window.count, window.min, window.max), (2, 70.0, 80.0), "{window:?}");
    }
    assert_eq!(hr.last_value, 70.0);
    drop(engine);
    let reopened = open(dir.path());
    assert_eq!(signal(&reopened, "heart_rate").windows, hr.windows, "a restart rebuilds the same present");
}

#[test]
fn huge_values_give_finite_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine
        .ingest(lines("x,twin=t value=1e308 1000\nx,twin=t value=1.7e308 1060\nx,twin=t value=-1e308 1120"))
        .unwrap();
    let x = signal(&engine, "x");
    assert!(!x.windows.is_empty());
    for window in &x.windows {
        for stat in [window.mean, window.min, window.max, window.std] {
            assert!(stat.is_finite(), "{window:?}");
        }
        assert_eq!(window.count, 3);
        assert!((window.max / 1.7e308 - 1.0).abs() < 1e-6 && (window.min / -1e308 - 1.0).abs() < 1e-6);
    }
    engine.ingest(lines("x,twin=t value=1 1180")).unwrap();
    assert!(signal(&engine, "x").windows.iter().all(|w| w.mean.is_finite() && w.count == 4));
}

#[test]
fn a_late_point_never_replaces_a_newer_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.ingest(lines("heart_rate,twin=t value=70 2000")).unwrap();
    engine.ingest(lines("heart_rate,twin=t value=50 1000")).unwrap();
    let hr = signal(&engine, "heart_rate");
    assert_eq!((hr.last_time, hr.last_value), (Timestamp::from_secs(2000), 70.0));
}

#[test]
fn points_beyond_the_horizon_are_refused_by_line_and_later_points_move_the_present() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let now = Timestamp::now().as_nanos() / 1_000_000_000;
    let ten_years = 10 * 365 * 86_400;
    let text = format!("heart_rate,twin=t value=60 {now}\nheart_rate,twin=t value=61 {}", now + ten_years);
    let refused = rejection(engine.ingest(lines(&text)));
    assert!(refused.starts_with("line 2: ") && refused.contains("future_horizon"), "{refused}");
    assert!(engine.twin(&TwinId::new("t").unwrap()).is_none(), "nothing of the batch was written");
    engine.ingest(lines(&format!("heart_rate,twin=t value=62 {}", now - 60))).unwrap();
    engine.ingest(lines(&format!("heart_rate,twin=t value=63 {now}"))).unwrap();
    assert_eq!(signal(&engine, "heart_rate").last_value, 63.0);
}

#[test]
fn per_twin_caps_bound_signals_and_series_but_not_other_twins() {
    let dir = tempfile::tempdir().unwrap();
    let limits = IngestLimits { max_signals_per_twin: 3, max_series_per_twin: 4, ..IngestLimits::default() };
    let engine = open_with(dir.path(), limits);
    engine.ingest(lines("a,twin=t value=1 1000\nb,twin=t value=1 1000")).unwrap();
    let refused = rejection(engine.ingest(lines("c,twin=t value=1 1000\nd,twin=t value=1 1000")));
    assert!(
        refused
            .contains("line 2: signal d would be distinct signal number 4 of twin t, above the limit of 3"),
        "{refused}"
    );
    engine.ingest(lines("c,twin=t value=1 1000\nc,twin=u value=1 1000\nd,twin=u value=1 1000")).unwrap();
    let refused = rejection(engine.ingest(lines("a,twin=t,s=1 value=1 1000\na,twin=t,s=2 value=1 1000")));
    assert!(
        refused.contains("line 2: series a s=2 would be series number 5 of twin t, above the limit of 4"),
        "{refused}"
    );
    drop(engine);
    let engine = open_with(dir.path(), IngestLimits { max_signals_per_twin: 3, ..IngestLimits::default() });
    let refused = rejection(engine.ingest(lines("d,twin=t value=1 1000")));
    assert!(refused.contains("max_signals_per_twin"), "the count survives a restart: {refused}");
}

/// Everything a caller sees of one signal, with sums compared to a
/// relative tolerance (floating-point addition depends on order).
fn same_present(a: &SignalState, b: &SignalState) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.last_time, b.last_time);
    prop_assert_eq!(a.last_value, b.last_value);
    prop_assert_eq!(a.windows.len(), b.windows.len());
    for (x, y) in a.windows.iter().zip(&b.windows) {
        prop_assert_eq!((x.window, x.count, x.min, x.max), (y.window, y.count, y.min, y.max));
        prop_assert!((x.mean - y.mean).abs() <= 1e-3 * x.mean.abs().max(1.0), "{:?} vs {:?}", x, y);
        prop_assert!((x.std - y.std).abs() <= 0.05 + 1e-3 * x.std, "{:?} vs {:?}", x, y);
    }
    Ok(())
}

fn history(engine: &Engine) -> Vec<(String, Vec<(Timestamp, f64)>)> {
    let query = RangeQuery {
        twin: TwinId::new("t").unwrap(),
        signal: SignalName::new("heart_rate").unwrap(),
        provenance: Provenance::none(),
        from: Timestamp::MIN,
        to: Timestamp::MAX,
    };
    engine
        .read(&query)
        .unwrap()
        .into_iter()
        .map(|s| (s.key.provenance.to_string(), s.samples.iter().map(|p| (p.time, p.value.get())).collect()))
        .collect()
}

/// A point by (device, minute), with its value.
type Keyed = ((u8, i64), f64);

fn line(device: u8, minute: i64, value: f64) -> String {
    format!("heart_rate,twin=t,device=d{device} value={value} {}\n", 100_000 + minute * 60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any interleaving, duplication and batching of the same points gives
    /// the same history and the same present as one ordered batch.
    #[test]
    fn the_present_depends_only_on_the_points(
        points in proptest::collection::btree_map((0u8..3, 0i64..400), 40u32..200, 1..40),
        order in proptest::collection::vec(any::<u32>(), 80),
        duplicated in proptest::collection::vec(any::<bool>(), 40),
        splits in proptest::collection::vec(1usize..8, 80),
    ) {
        let points: BTreeMap<(u8, i64), f64> = points.into_iter().map(|(k, v)| (k, f64::from(v) + 0.25)).collect();
        let mut clean: Vec<(&(u8, i64), &f64)> = points.iter().collect();
        clean.sort_by_key(|((device, minute), _)| (*minute, *device));
        let clean_text: String = clean.iter().map(|((d, m), v)| line(*d, *m, **v)).collect();

        let mut messy: Vec<Keyed> = points.iter().map(|(k, v)| (*k, *v)).collect();
        messy.extend(points.iter().zip(&duplicated).filter(|(_, dup)| **dup).map(|((k, v), _)| (*k, *v)));
        let mut keyed: Vec<(u32, Keyed)> = messy.into_iter().enumerate().map(|(i, p)| (order[i % order.len()], p)).collect();
        keyed.sort_by_key(|(key, _)| *key);

        let clean_dir = tempfile::tempdir().unwrap();
        let clean_engine = open(clean_dir.path());
        clean_engine.ingest(lines(&clean_text)).unwrap();

        let messy_dir = tempfile::tempdir().unwrap();
        let messy_engine = open(messy_dir.path());
        let mut rest = keyed.as_slice();
        let mut split = splits.iter().cycle();
        while !rest.is_empty() {
            let take = (*split.next().unwrap()).min(rest.len());
            let text: String = rest[..take].iter().map(|(_, ((d, m), v))| line(*d, *m, *v)).collect();
            messy_engine.ingest(lines(&text)).unwrap();
            rest = &rest[take..];
        }

        prop_assert_eq!(history(&messy_engine), history(&clean_engine));
        same_present(&signal(&messy_engine, "heart_rate"), &signal(&clean_engine, "heart_rate"))?;
    }
}
