//! The engine's behaviour through its public API, on a real store in a
//! temporary directory.

use doppel_engine::{Engine, EngineConfig, EventBody, EventKind, IngestError};
use doppel_model::{Precision, Provenance, SignalName, Timestamp, TwinId};
use doppel_protocols::{RawBatch, line_protocol};
use doppel_store::{Aggregate, RangeQuery, StoreConfig};

fn open(dir: &std::path::Path) -> Engine {
    let mut store = StoreConfig::new(dir);
    store.background = false;
    Engine::open(EngineConfig::new(store)).unwrap()
}

fn lines(text: &str) -> RawBatch {
    line_protocol::parse(text.as_bytes(), Precision::S, Timestamp::from_secs(0)).unwrap()
}

fn id(s: &str) -> TwinId {
    TwinId::new(s).unwrap()
}

fn all_of(twin: &str, signal: &str) -> RangeQuery {
    RangeQuery {
        twin: id(twin),
        signal: SignalName::new(signal).unwrap(),
        provenance: Provenance::none(),
        from: Timestamp::MIN,
        to: Timestamp::MAX,
    }
}

#[test]
fn first_write_creates_a_person_twin_with_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let receipt = engine
        .ingest(lines(
            "heart_rate,twin=alice,device=watch value=60 1000\nheart_rate,twin=alice,device=watch value=70 1060",
        ))
        .unwrap();
    assert_eq!(receipt.points, 2);
    assert_eq!(receipt.twins_created, vec![id("alice")]);
    let twin = engine.twin(&id("alice")).unwrap();
    assert_eq!(twin.model, "person");
    let hr = &twin.signals[0];
    assert_eq!(hr.signal.as_str(), "heart_rate");
    assert_eq!(hr.last_value, 70.0);
    assert_eq!(hr.last_time, Timestamp::from_secs(1060));
    assert_eq!(hr.unit.as_deref(), Some("bpm"));
    let window = &hr.windows[0];
    assert_eq!(window.count, 2);
    assert!((window.mean - 65.0).abs() < 1e-6);
}

#[test]
fn a_bad_value_rejects_the_whole_batch_and_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let err = engine
        .ingest(lines("heart_rate,twin=bob value=60 1000\nheart_rate,twin=bob value=400 1060\nspo2,twin=bob value=101 1"))
        .unwrap_err();
    let IngestError::Rejected(rejected) = err else { panic!("expected a rejection") };
    let errors = rejected.errors;
    assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![2, 3]);
    assert!(errors[0].message.contains("heart_rate"), "{}", errors[0].message);
    assert!(engine.twin(&id("bob")).is_none(), "a rejected batch must not create its twin");
    assert_eq!(engine.stats().batches_rejected, 1);
}

#[test]
fn strict_mode_rejects_unknown_twins_but_accepts_created_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = StoreConfig::new(dir.path());
    store.background = false;
    let mut config = EngineConfig::new(store);
    config.strict_twins = true;
    let engine = Engine::open(config).unwrap();
    let err = engine.ingest(lines("steps,twin=carol value=10 5")).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    engine.put_twin(&id("carol"), None, serde_json::Map::new()).unwrap();
    engine.ingest(lines("steps,twin=carol value=10 5")).unwrap();
}

#[test]
fn live_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path());
        engine.ingest(lines("heart_rate,twin=dan value=55 100\nheart_rate,twin=dan value=65 160")).unwrap();
    }
    let engine = open(dir.path());
    let twin = engine.twin(&id("dan")).unwrap();
    assert_eq!(twin.signals[0].last_value, 65.0);
    assert_eq!(twin.signals[0].windows[0].count, 2);
}

#[test]
fn deleting_a_twin_removes_its_data_and_tells_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.ingest(lines("weight,twin=erin value=70.5 100")).unwrap();
    let mut events = engine.subscribe();
    assert!(engine.delete_twin(&id("erin")).unwrap());
    assert!(!engine.delete_twin(&id("erin")).unwrap());
    assert!(engine.twin(&id("erin")).is_none());
    assert!(engine.read(&all_of("erin", "weight")).is_err());
    let event = events.try_recv().unwrap();
    assert_eq!(event.kind, EventKind::TwinDeleted);
    engine.ingest(lines("weight,twin=erin value=71 200")).unwrap();
    let series = engine.read(&all_of("erin", "weight")).unwrap();
    assert_eq!(series.iter().map(|s| s.samples.len()).sum::<usize>(), 1, "old data must not reappear");
}

#[test]
fn subscribers_get_one_event_per_twin_with_category_labels() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.put_twin(&id("fay"), Some("person"), serde_json::Map::new()).unwrap();
    let mut events = engine.subscribe();
    engine
        .ingest(lines("sleep_stage,twin=fay value=\"deep\" 100\nheart_rate,twin=fay value=50 100"))
        .unwrap();
    let event = events.try_recv().unwrap();
    assert_eq!(event.kind, EventKind::Points);
    let EventBody::Points { points } = &event.body else { panic!("expected points") };
    assert_eq!(points.len(), 2);
    let stage = points.iter().find(|p| p.signal.as_str() == "sleep_stage").unwrap();
    assert_eq!(stage.label.as_deref(), Some("deep"));
    assert!(events.try_recv().is_err(), "one event per twin per batch");
}

#[test]
fn put_twin_checks_model_and_properties() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let err = engine.put_twin(&id("gus"), Some("spaceship"), serde_json::Map::new()).unwrap_err();
    assert!(err.to_string().contains("spaceship"), "{err}");
    let mut props = serde_json::Map::new();
    props.insert("birth_year".into(), serde_json::json!(1985));
    let (view, created) = engine.put_twin(&id("gus"), None, props.clone()).unwrap();
    assert!(created);
    assert_eq!(view.properties, props);
    let (_, created) = engine.put_twin(&id("gus"), None, props).unwrap();
    assert!(!created);
}

#[test]
fn aggregates_read_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine
        .ingest(lines("steps,twin=hal value=10 0\nsteps,twin=hal value=20 60\nsteps,twin=hal value=5 3600"))
        .unwrap();
    let buckets = engine
        .aggregate(&all_of("hal", "steps"), Some("1h".parse().unwrap()), &[Aggregate::Sum, Aggregate::Count])
        .unwrap();
    assert_eq!(buckets.len(), 2);
    assert_eq!(buckets[0].values, vec![30.0, 2.0]);
    assert_eq!(buckets[1].values, vec![5.0, 1.0]);
}

#[test]
fn changing_a_twins_model_rebuilds_its_windows_from_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new({
        let mut store = StoreConfig::new(dir.path());
        store.background = false;
        store
    });
    let coarse = doppel_model::ModelDef::from_toml(
        "name = \"coarse\"\nwindows = [\"7d\"]\n[signals.heart_rate]\nunit = \"bpm\"\nkind = \"gauge\"\n",
    )
    .unwrap();
    config.models.insert(coarse).unwrap();
    let engine = Engine::open(config).unwrap();
    // Three points an hour apart: person's 1h window holds the newest two
    // at most, the coarse model's 7d window all three.
    engine
        .ingest(lines("heart_rate,twin=cas value=60 0\nheart_rate,twin=cas value=70 3600\nheart_rate,twin=cas value=80 7200"))
        .unwrap();
    let person = engine.twin(&id("cas")).unwrap();
    let spans: Vec<String> = person.signals[0].windows.iter().map(|w| w.window.to_string()).collect();
    assert_eq!(spans, ["5m", "1h", "1d"]);
    engine.put_twin(&id("cas"), Some("coarse"), serde_json::Map::new()).unwrap();
    let coarse = engine.twin(&id("cas")).unwrap();
    let hr = &coarse.signals[0];
    assert_eq!(hr.windows.len(), 1);
    assert_eq!(hr.windows[0].window.to_string(), "1w");
    assert_eq!(hr.windows[0].count, 3);
    assert!((hr.windows[0].mean - 70.0).abs() < 1e-6);
    assert_eq!(hr.last_value, 80.0);
}

#[test]
fn signals_first_seen_in_any_order_keep_their_own_windows() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.ingest(lines("steps,twin=ann value=100 60")).unwrap();
    engine.ingest(lines("heart_rate,twin=ann value=55 60\nglucose,twin=ann value=140 60")).unwrap();
    engine.ingest(lines("steps,twin=ann value=300 120\nheart_rate,twin=ann value=65 120")).unwrap();
    let twin = engine.twin(&id("ann")).unwrap();
    let names: Vec<&str> = twin.signals.iter().map(|s| s.signal.as_str()).collect();
    assert_eq!(names, ["glucose", "heart_rate", "steps"]);
    let means: Vec<f64> = twin.signals.iter().map(|s| s.windows.last().unwrap().mean).collect();
    assert!((means[0] - 140.0).abs() < 1e-6, "{means:?}");
    assert!((means[1] - 60.0).abs() < 1e-6, "{means:?}");
    assert!((means[2] - 200.0).abs() < 1e-6, "{means:?}");
}
