//! Reading a signal's history a slice of time at a time, so that exports
//! of years of data hold one slice in memory, never the whole range.
//!
//! The store answers range reads with whole vectors and has no "first
//! point after" query, but it does answer "newest point before" cheaply
//! from its indexes. [`slices`] walks backwards with it: each slice ends
//! where the previous one began and starts [`SLICE_NANOS`] before the
//! newest point left, so every slice holds data, gaps of any length cost
//! one look-up, and together the slices cover every point of the range.

use doppel_engine::Engine;
use doppel_model::{Provenance, SignalName, Timestamp, TwinId};
use doppel_store::{RangeQuery, SeriesData};

use crate::problem::ApiError;

/// Width of one slice: a day, which for a signal sampled every second is
/// 86,400 points per provenance (a few mebibytes while it is written out).
pub(crate) const SLICE_NANOS: i64 = 86_400 * 1_000_000_000;

/// One point of a slice, with the series it came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HistoryPoint<'a> {
    pub(crate) time: Timestamp,
    pub(crate) value: f64,
    pub(crate) provenance: &'a Provenance,
}

/// The `[start, end)` slices, oldest first, that together hold every point
/// of `signal` of `twin` in `[from, to)`, each of them at least one.
pub(crate) fn slices(
    engine: &Engine,
    twin: &TwinId,
    signal: &SignalName,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(Timestamp, Timestamp)>, ApiError> {
    let mut slices = Vec::new();
    let mut end = to;
    while end > from {
        let query = query(twin, signal, from, end);
        let Some((_, newest)) = engine.store().last(&query).map_err(doppel_engine::EngineError::from)? else {
            break;
        };
        let start = newest.time.add_nanos(1 - SLICE_NANOS).max(from);
        slices.push((start, end));
        end = start;
    }
    slices.reverse();
    Ok(slices)
}

fn query(twin: &TwinId, signal: &SignalName, from: Timestamp, to: Timestamp) -> RangeQuery {
    RangeQuery { twin: twin.clone(), signal: signal.clone(), provenance: Provenance::none(), from, to }
}

/// Calls `visit` with the points of `signal` of `twin` in `[from, to)`,
/// every provenance, in time order (on equal times, series in key order),
/// one slice at a time. Stops at the first error, `visit`'s included.
pub(crate) fn for_each_slice(
    engine: &Engine,
    twin: &TwinId,
    signal: &SignalName,
    from: Timestamp,
    to: Timestamp,
    mut visit: impl FnMut(&[HistoryPoint<'_>]) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    for (start, end) in slices(engine, twin, signal, from, to)? {
        let series = engine.read(&query(twin, signal, start, end))?;
        visit(&merge(&series))?;
    }
    Ok(())
}

/// The points of several series in one time order; stable, so equal times
/// keep the store's series order.
fn merge(series: &[SeriesData]) -> Vec<HistoryPoint<'_>> {
    let mut points: Vec<HistoryPoint<'_>> = series
        .iter()
        .flat_map(|data| {
            data.samples.iter().map(|sample| HistoryPoint {
                time: sample.time,
                value: sample.value.get(),
                provenance: &data.key.provenance,
            })
        })
        .collect();
    if series.len() > 1 {
        points.sort_by_key(|point| point.time);
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_engine::EngineConfig;
    use doppel_model::Precision;
    use doppel_protocols::line_protocol;
    use doppel_store::StoreConfig;

    const HOUR_SECS: i64 = 3_600;

    fn engine_with(lines: &str) -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StoreConfig::new(dir.path());
        store.background = false;
        let engine = Engine::open(EngineConfig::new(store)).unwrap();
        let batch = line_protocol::parse(lines.as_bytes(), Precision::S, Timestamp::now()).unwrap();
        engine.ingest(batch).unwrap();
        (dir, engine)
    }

    #[test]
    fn slices_cover_every_point_across_long_gaps_and_sources() {
        // Two sources, a burst, a gap of about three years, another burst.
        let mut lines = String::new();
        for hour in 0..60 {
            lines.push_str(&format!(
                "heart_rate,twin=a,device=watch value=60 {}\n",
                1_600_000_000 + hour * HOUR_SECS
            ));
            lines.push_str(&format!(
                "heart_rate,twin=a,device=ring value=61 {}\n",
                1_600_000_000 + hour * HOUR_SECS
            ));
        }
        for hour in 0..5 {
            lines.push_str(&format!(
                "heart_rate,twin=a,device=watch value=70 {}\n",
                1_700_000_000 + hour * HOUR_SECS
            ));
        }
        let (_dir, engine) = engine_with(&lines);
        let (twin, signal) = (TwinId::new("a").unwrap(), SignalName::new("heart_rate").unwrap());
        let slices = slices(&engine, &twin, &signal, Timestamp::MIN, Timestamp::MAX).unwrap();
        assert!(slices.len() <= 5, "a gap costs no slices: {slices:?}");
        assert!(slices.windows(2).all(|pair| pair[0].1 == pair[1].0), "slices are contiguous: {slices:?}");
        let mut seen = Vec::new();
        let mut largest = 0;
        for_each_slice(&engine, &twin, &signal, Timestamp::MIN, Timestamp::MAX, |points| {
            largest = largest.max(points.len());
            seen.extend(points.iter().map(|p| (p.time, p.value)));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 125);
        assert!(seen.windows(2).all(|pair| pair[0].0 <= pair[1].0), "time order");
        assert!(largest <= 2 * 24 + 2, "one slice holds about a day of both sources: {largest}");
    }

    #[test]
    fn a_signal_without_points_has_no_slices() {
        let (_dir, engine) = engine_with("heart_rate,twin=a value=60 1600000000\n");
        let (twin, steps) = (TwinId::new("a").unwrap(), SignalName::new("steps").unwrap());
        assert!(slices(&engine, &twin, &steps, Timestamp::MIN, Timestamp::MAX).unwrap().is_empty());
    }
}
