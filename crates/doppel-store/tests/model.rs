//! The store agrees with a naive in-memory model (a BTreeMap per series,
//! last write wins) under random writes, flushes, compactions, deletions
//! and reopens.

mod common;

use std::collections::BTreeMap;

use common::{batch, config, key, query};
use doppel_model::{SeriesKey, Span, Timestamp, TwinId};
use doppel_store::{Aggregate, Store};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Write {
        series: usize,
        samples: Vec<(i64, i8)>,
    },
    Flush,
    Compact,
    /// Merge size tiers until none is due, as the background does.
    CompactTiers,
    Reopen,
    Delete {
        twin: usize,
    },
}

const TWINS: [&str; 2] = ["a", "b"];

fn series_keys() -> Vec<SeriesKey> {
    vec![
        key("a", "heart_rate", None),
        key("a", "heart_rate", Some("watch")),
        key("a", "steps", None),
        key("b", "heart_rate", None),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4usize, proptest::collection::vec((0i64..40, any::<i8>()), 1..8))
            .prop_map(|(series, samples)| Op::Write { series, samples }),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        2 => Just(Op::CompactTiers),
        1 => Just(Op::Reopen),
        1 => (0..2usize).prop_map(|twin| Op::Delete { twin }),
    ]
}

type Model = BTreeMap<SeriesKey, BTreeMap<i64, f64>>;

fn check(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let keys = series_keys();
    for twin in TWINS {
        for signal in ["heart_rate", "steps"] {
            let mut q = query(twin, signal);
            q.from = Timestamp::from_nanos(5);
            q.to = Timestamp::from_nanos(35);
            let got: BTreeMap<SeriesKey, Vec<(i64, f64)>> = store
                .read(&q)
                .unwrap()
                .into_iter()
                .map(|s| (s.key, s.samples.iter().map(|x| (x.time.as_nanos(), x.value.get())).collect()))
                .collect();
            let want: BTreeMap<SeriesKey, Vec<(i64, f64)>> = keys
                .iter()
                .filter(|k| k.twin.as_str() == twin && k.signal.as_str() == signal)
                .filter_map(|k| {
                    let pts: Vec<(i64, f64)> = model.get(k)?.range(5..35).map(|(&t, &v)| (t, v)).collect();
                    (!pts.is_empty()).then(|| (k.clone(), pts))
                })
                .collect();
            prop_assert_eq!(&got, &want, "read {}/{}", twin, signal);

            // Aggregates over all provenances, 10 ns buckets.
            let mut all: Vec<(i64, f64)> = want.values().flatten().copied().collect();
            all.sort_by_key(|p| p.0);
            let buckets = store
                .aggregate(&q, Span::from_nanos(10), &[Aggregate::Count, Aggregate::Sum, Aggregate::Max])
                .unwrap();
            let mut expect: BTreeMap<i64, (f64, f64, f64)> = BTreeMap::new();
            for (t, v) in &all {
                let e = expect.entry(t.div_euclid(10) * 10).or_insert((0.0, 0.0, f64::MIN));
                e.0 += 1.0;
                e.1 += v;
                e.2 = e.2.max(*v);
            }
            let got_b: Vec<(i64, Vec<f64>)> =
                buckets.iter().map(|b| (b.start.as_nanos(), b.values.clone())).collect();
            let want_b: Vec<(i64, Vec<f64>)> =
                expect.iter().map(|(&s, &(c, sum, max))| (s, vec![c, sum, max])).collect();
            prop_assert_eq!(got_b, want_b, "aggregate {}/{}", twin, signal);

            let last = store.last(&q).unwrap().map(|(_, s)| (s.time.as_nanos(), s.value.get()));
            let want_last = all.iter().map(|p| p.0).max().map(|t| {
                // Latest time; on a tie across series, the first series in key order.
                let v = want.values().find_map(|pts| pts.iter().find(|p| p.0 == t)).map(|p| p.1);
                (t, v.unwrap_or(f64::NAN))
            });
            prop_assert_eq!(last, want_last, "last {}/{}", twin, signal);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_a_last_write_wins_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(config(dir.path())).unwrap();
        let mut model: Model = BTreeMap::new();
        let keys = series_keys();
        for op in ops {
            match op {
                Op::Write { series, samples } => {
                    let samples: Vec<(i64, f64)> = samples.into_iter().map(|(t, v)| (t, f64::from(v))).collect();
                    store.write(&batch(&keys[series], &samples)).unwrap();
                    let entry = model.entry(keys[series].clone()).or_default();
                    for (t, v) in samples {
                        entry.insert(t, v);
                    }
                }
                Op::Flush => { store.flush().unwrap(); }
                Op::Compact => { store.compact().unwrap(); }
                Op::CompactTiers => while store.compact_tier().unwrap().is_some() {},
                Op::Reopen => {
                    drop(store);
                    store = Store::open(config(dir.path())).unwrap();
                }
                Op::Delete { twin } => {
                    let id = TwinId::new(TWINS[twin]).unwrap();
                    store.delete_twin(&id).unwrap();
                    model.retain(|k, _| k.twin != id);
                }
            }
            check(&store, &model)?;
        }
    }
}
