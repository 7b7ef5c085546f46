//! Helpers shared by the integration tests.
#![allow(dead_code)]

use doppel_model::{Point, Timestamp};
use doppel_synth::{PersonSimulator, Profile};

pub const MIN_NS: i64 = 60_000_000_000;
pub const HOUR_NS: i64 = 60 * MIN_NS;
pub const DAY_NS: i64 = 24 * HOUR_NS;

/// Every point of `profile` from its start until `until`, in one advance.
pub fn simulate(profile: &Profile, seed: u64, until: Timestamp) -> Vec<Point> {
    let mut simulator = PersonSimulator::new(profile, seed);
    let mut points = Vec::new();
    simulator.advance(until, &mut points);
    points
}

/// The points of one signal, as (time ns, value).
pub fn series(points: &[Point], signal: &str) -> Vec<(i64, f64)> {
    points
        .iter()
        .filter(|p| p.signal.as_str() == signal)
        .map(|p| (p.time.as_nanos(), p.value.get()))
        .collect()
}

/// 0 = Monday … 6 = Sunday for the day containing `ns`.
pub fn weekday(ns: i64) -> i64 {
    (ns.div_euclid(DAY_NS) + 3).rem_euclid(7)
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One night from a sleep_stage series: bed time, hours asleep, hours in REM and in deep sleep.
pub struct Night {
    pub bed_ns: i64,
    pub asleep_h: f64,
    pub rem_h: f64,
    pub deep_h: f64,
}

/// Splits a sleep_stage series into complete nights: an awake stretch of
/// more than 3 h separates nights; nights cut off by either end are dropped.
pub fn nights(stages: &[(i64, f64)]) -> Vec<Night> {
    const OUT_OF_BED_NS: i64 = 3 * HOUR_NS;
    let mut nights = Vec::new();
    let mut current: Option<Night> = None;
    for pair in stages.windows(2) {
        let ((t0, stage), (t1, _)) = (pair[0], pair[1]);
        let hours = (t1 - t0) as f64 / HOUR_NS as f64;
        if stage == 0.0 && t1 - t0 > OUT_OF_BED_NS {
            // The night that just ended is complete; the next one starts at t1.
            if let Some(night) = current.take() {
                nights.push(night);
            }
            current = Some(Night { bed_ns: t1, asleep_h: 0.0, rem_h: 0.0, deep_h: 0.0 });
            continue;
        }
        if let Some(night) = current.as_mut() {
            if stage != 0.0 {
                night.asleep_h += hours;
            }
            if stage == 3.0 {
                night.rem_h += hours;
            }
            if stage == 2.0 {
                night.deep_h += hours;
            }
        }
    }
    nights
}
