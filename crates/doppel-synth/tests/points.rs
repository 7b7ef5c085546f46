//! The contract of the emitted points: determinism, names, ranges, order,
//! and stepping independence.

mod common;

use common::{DAY_NS, HOUR_NS, MIN_NS, series, simulate};
use doppel_model::{Point, Timestamp};
use doppel_synth::{PersonSimulator, Population, PopulationConfig, Signal};
use proptest::prelude::*;

/// A small population where every role is common, so every signal appears.
fn varied_config(people: usize, days: u32) -> PopulationConfig {
    PopulationConfig {
        people,
        days,
        seed: 7,
        cgm_fraction: 0.3,
        illness_fraction: 0.3,
        training_fraction: 0.3,
        ..PopulationConfig::default()
    }
}

#[test]
fn same_config_gives_identical_points_and_another_seed_does_not() {
    let config = varied_config(8, 6);
    let run = |config: &PopulationConfig| -> Vec<Vec<Point>> {
        let population = Population::generate(config);
        population.people.iter().map(|p| simulate(p, config.seed, config.history_end())).collect()
    };
    let first = run(&config);
    assert_eq!(first, run(&config));
    assert_eq!(Population::generate(&config), Population::generate(&config));
    let other = PopulationConfig { seed: 8, ..config.clone() };
    assert_ne!(first, run(&other));
}

/// Plausible bounds for each signal: wide enough for real extremes, narrow
/// enough to catch a generator bug.
fn plausible(signal: &str, value: f64) -> bool {
    let whole = value.fract() == 0.0;
    match signal {
        "heart_rate" => (30.0..=220.0).contains(&value) && whole,
        "resting_heart_rate" => (30.0..=120.0).contains(&value),
        "hrv_rmssd" => (5.0..=250.0).contains(&value),
        "steps" => (0.0..=250.0).contains(&value) && whole,
        "active_energy" => (0.0..=300.0).contains(&value),
        "spo2" => (80.0..=100.0).contains(&value),
        "respiratory_rate" => (8.0..=30.0).contains(&value),
        "skin_temp" => (28.0..=40.0).contains(&value),
        "sleep_stage" => (0.0..=3.0).contains(&value) && whole,
        "weight" => (30.0..=250.0).contains(&value),
        "blood_pressure.systolic" => (80.0..=220.0).contains(&value),
        "blood_pressure.diastolic" => (40.0..=140.0).contains(&value),
        "glucose" => (40.0..=400.0).contains(&value),
        "carbs" => (1.0..=150.0).contains(&value),
        "insulin_bolus" => (0.1..=40.0).contains(&value),
        "insulin_basal" => (0.05..=5.0).contains(&value),
        "training_load" => (1.0..=400.0).contains(&value),
        "workout" => (0.0..=6.0).contains(&value) && whole,
        "mood" => (1.0..=10.0).contains(&value) && whole,
        "symptom" => (0.0..=12.0).contains(&value) && whole,
        "medication" => value > 0.0 && value <= 2_000.0,
        _ => false,
    }
}

#[test]
fn every_point_has_a_person_model_name_a_device_and_a_plausible_value() {
    let config = varied_config(30, 12);
    let population = Population::generate(&config);
    let mut seen = std::collections::BTreeSet::new();
    for profile in &population.people {
        for point in simulate(profile, config.seed, config.history_end()) {
            let name = point.signal.as_str();
            assert!(Signal::from_name(name).is_some(), "{name} is not a person-model signal");
            assert!(
                plausible(name, point.value.get()),
                "{} {name} = {} at {}",
                profile.id,
                point.value.get(),
                point.time
            );
            assert_eq!(point.twin, profile.id);
            let device = point.provenance.get("device").unwrap_or_default();
            assert!(
                ["watch", "ring", "cgm", "scale", "bp_cuff", "phone", "app"].contains(&device.as_str()),
                "{name} from {:?}",
                point.provenance
            );
            assert_eq!(
                point.provenance.get("drug").is_some(),
                name == "medication",
                "{:?}",
                point.provenance
            );
            assert!(point.time >= config.start && point.time < config.history_end());
            seen.insert(name.to_owned());
        }
    }
    let all: std::collections::BTreeSet<_> = Signal::ALL.iter().map(|s| s.name().to_owned()).collect();
    assert_eq!(seen, all, "every signal appears somewhere in a varied population");
}

#[test]
fn points_come_out_in_time_order_per_person() {
    let config = varied_config(10, 5);
    let population = Population::generate(&config);
    for profile in &population.people {
        let points = simulate(profile, config.seed, config.history_end());
        for pair in points.windows(2) {
            assert!(pair[0].time <= pair[1].time, "{} out of order at {}", profile.id, pair[1].time);
            let same_series = pair[0].signal == pair[1].signal && pair[0].provenance == pair[1].provenance;
            assert!(
                !(same_series && pair[0].time == pair[1].time),
                "duplicate {} at {}",
                pair[0].signal,
                pair[0].time
            );
        }
    }
}

#[test]
fn a_start_that_is_not_midnight_emits_nothing_before_it() {
    let start = Timestamp::from_nanos(PopulationConfig::default().start.as_nanos() + 14 * HOUR_NS + 7);
    let config = PopulationConfig { people: 3, days: 2, start, ..PopulationConfig::default() };
    let population = Population::generate(&config);
    for profile in &population.people {
        let points = simulate(profile, config.seed, config.history_end());
        assert!(points.first().is_some_and(|p| p.time >= start));
    }
}

#[test]
fn watches_come_off_for_charging_and_some_whole_days() {
    let config = PopulationConfig { people: 60, days: 14, ..PopulationConfig::default() };
    let population = Population::generate(&config);
    let (mut wearers, mut with_charging_gaps, mut day_long_gaps) = (0, 0, 0);
    for profile in population.people.iter().filter(|p| p.devices.watch && p.devices.watch_in_bed) {
        let points = simulate(profile, config.seed, config.history_end());
        let heart: Vec<i64> = points
            .iter()
            .filter(|p| {
                p.signal.as_str() == "heart_rate" && p.provenance.get("device").as_deref() == Some("watch")
            })
            .map(|p| p.time.as_nanos())
            .collect();
        let gaps: Vec<i64> = heart.windows(2).map(|w| w[1] - w[0]).collect();
        wearers += 1;
        if gaps.iter().filter(|g| (40 * MIN_NS..6 * HOUR_NS).contains(*g)).count() >= 5 {
            with_charging_gaps += 1;
        }
        day_long_gaps += gaps.iter().filter(|g| **g >= 12 * HOUR_NS).count();
        // Minute cadence while worn.
        assert!(gaps.iter().filter(|g| **g == MIN_NS).count() > gaps.len() * 9 / 10);
    }
    assert!(wearers >= 15, "{wearers}");
    assert!(with_charging_gaps * 10 >= wearers * 9, "{with_charging_gaps} of {wearers} charge");
    assert!(day_long_gaps >= 1, "no day-long gap in {wearers} × 14 days");
}

#[test]
fn the_live_stream_continues_past_the_history() {
    let config = PopulationConfig { people: 2, days: 1, ..PopulationConfig::default() };
    let population = Population::generate(&config);
    let end = config.history_end().as_nanos();
    let mut simulator = PersonSimulator::new(&population.people[0], config.seed);
    let mut points = Vec::new();
    simulator.advance(config.history_end(), &mut points);
    let history = points.len();
    simulator.advance(Timestamp::from_nanos(end + 2 * DAY_NS), &mut points);
    assert!(points.len() > history + 500, "{} live points", points.len() - history);
    assert!(series(&points[history..], "resting_heart_rate").len() >= 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn small_steps_give_exactly_the_points_of_one_big_step(
        person in 0usize..10,
        steps_min in proptest::collection::vec(1i64..600, 1..40),
    ) {
        let config = varied_config(10, 3);
        let population = Population::generate(&config);
        let profile = &population.people[person];
        let until = Timestamp::from_nanos(config.history_end().as_nanos() + DAY_NS);
        let whole = simulate(profile, config.seed, until);

        let mut simulator = PersonSimulator::new(profile, config.seed);
        let mut stepped = Vec::new();
        let mut t = config.start.as_nanos();
        let mut i = 0;
        while t < until.as_nanos() {
            // Cycle through the drawn step sizes, scaled up so three days take a few hundred calls.
            t = (t + steps_min[i % steps_min.len()] * 7 * MIN_NS).min(until.as_nanos());
            let before = stepped.len();
            simulator.advance(Timestamp::from_nanos(t), &mut stepped);
            prop_assert!(stepped[before..].iter().all(|p| p.time.as_nanos() < t));
            prop_assert_eq!(simulator.current().as_nanos(), t);
            i += 1;
        }
        prop_assert_eq!(whole, stepped);
    }
}
