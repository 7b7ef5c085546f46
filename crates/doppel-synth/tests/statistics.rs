//! Population statistics against their published sources, and the planted
//! episodes against the ground truth the profiles expose.

mod common;

use common::{DAY_NS, HOUR_NS, mean, median, nights, series, simulate, weekday};
use doppel_model::Timestamp;
use doppel_synth::{EpisodeKind, Population, PopulationConfig};

#[test]
fn population_matches_published_norms() {
    let config = PopulationConfig { people: 90, days: 21, seed: 11, ..PopulationConfig::default() };
    let population = Population::generate(&config);
    let (mut person_rhr, mut daily_steps, mut asleep_h, mut rem_share, mut deep_share) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut workday_bed_h, mut free_bed_h) = (Vec::new(), Vec::new());
    for profile in &population.people {
        let points = simulate(profile, config.seed, config.history_end());
        let rhr: Vec<f64> = series(&points, "resting_heart_rate").into_iter().map(|(_, v)| v).collect();
        if !rhr.is_empty() {
            person_rhr.push(mean(&rhr));
        }

        // Daily steps on days the step counter was on all day (≥ 900 watch minutes, or a phone).
        let start = config.start.as_nanos();
        for day in 0..i64::from(config.days) {
            let (from, to) = (start + day * DAY_NS, start + (day + 1) * DAY_NS);
            let in_day = |t: i64| (from..to).contains(&t);
            let worn_minutes = points
                .iter()
                .filter(|p| p.signal.as_str() == "heart_rate" && in_day(p.time.as_nanos()))
                .count();
            if profile.devices.watch && worn_minutes < 900 {
                continue;
            }
            daily_steps.push(
                series(&points, "steps").iter().filter(|(t, _)| in_day(*t)).map(|(_, v)| v).sum::<f64>(),
            );
        }

        for night in nights(&series(&points, "sleep_stage")) {
            asleep_h.push(night.asleep_h);
            rem_share.push(night.rem_h / night.asleep_h);
            deep_share.push(night.deep_h / night.asleep_h);
            // Bed time as hours after the midnight that starts the evening's day.
            let evening_day_ns = (night.bed_ns - 12 * HOUR_NS).div_euclid(DAY_NS) * DAY_NS;
            let bed_h = (night.bed_ns - evening_day_ns) as f64 / HOUR_NS as f64;
            // Friday and Saturday nights precede free days.
            if matches!(weekday(evening_day_ns), 4 | 5) {
                free_bed_h.push(bed_h)
            } else {
                workday_bed_h.push(bed_h)
            }
        }
    }

    // Ostchega et al. 2011; Quer et al. 2020: adult mean resting heart rate 60–80 bpm.
    let rhr = mean(&person_rhr);
    assert!((60.0..=80.0).contains(&rhr), "mean resting heart rate {rhr:.1}");
    // Tudor-Locke et al. 2011: median daily steps between 4,000 and 12,000.
    let steps = median(&mut daily_steps);
    assert!((4_000.0..=12_000.0).contains(&steps), "median daily steps {steps:.0}");
    // 7–8 h in bed, a little less asleep.
    let sleep = mean(&asleep_h);
    assert!((6.0..=9.0).contains(&sleep), "mean sleep {sleep:.2} h");
    // Ohayon et al. 2004: REM about 20–25 % of sleep, N3 under about a quarter.
    let rem = mean(&rem_share);
    assert!((0.15..=0.30).contains(&rem), "REM share {rem:.3}");
    let deep = mean(&deep_share);
    assert!((0.05..=0.25).contains(&deep), "deep share {deep:.3}");
    // Wittmann et al. 2006: later bed times before free days.
    let (workday, free) = (mean(&workday_bed_h), mean(&free_bed_h));
    eprintln!(
        "rhr {rhr:.1} bpm, steps median {steps:.0}, sleep {sleep:.2} h, rem {rem:.3}, deep {deep:.3}, bed {workday:.2}/{free:.2} h"
    );
    assert!(free > workday + 0.3, "bed time {free:.2} h before free days vs {workday:.2} h before workdays");
}

#[test]
fn deep_sleep_declines_with_age() {
    let config = PopulationConfig { people: 80, days: 8, seed: 5, ..PopulationConfig::default() };
    let population = Population::generate(&config);
    let (mut young, mut old) = (Vec::new(), Vec::new());
    for profile in population.people.iter().filter(|p| p.devices.ring || p.devices.watch_in_bed) {
        let age = profile.age_years();
        if (30.0..60.0).contains(&age) {
            continue;
        }
        let points = simulate(profile, config.seed, config.history_end());
        let share: Vec<f64> =
            nights(&series(&points, "sleep_stage")).iter().map(|n| n.deep_h / n.asleep_h).collect();
        if age < 30.0 { young.extend(share) } else { old.extend(share) }
    }
    assert!(!young.is_empty() && !old.is_empty());
    assert!(mean(&young) > mean(&old) + 0.03, "deep share young {:.3} old {:.3}", mean(&young), mean(&old));
}

#[test]
fn planted_illness_raises_nightly_resting_heart_rate_and_skin_temperature_by_the_planted_amount() {
    let config = PopulationConfig {
        people: 60,
        days: 28,
        seed: 3,
        illness_fraction: 0.5,
        training_fraction: 0.0,
        ..PopulationConfig::default()
    };
    let population = Population::generate(&config);
    let mut ratios = Vec::new();
    let mut measured = 0;
    for profile in population.people.iter().filter(|p| p.devices.ring || p.devices.watch_in_bed) {
        let Some(episode) = profile.episodes.iter().find(|e| e.is_illness()) else { continue };
        let EpisodeKind::Illness { rhr_rise_bpm, skin_temp_rise_c, .. } = episode.kind else { continue };
        let points = simulate(profile, config.seed, config.history_end());
        let start = episode.start.as_nanos();
        let baseline_window = start - 14 * DAY_NS..start;
        let at_plateau = |t: i64| episode.intensity_at(Timestamp::from_nanos(t)) >= 0.99;

        let rhr = series(&points, "resting_heart_rate");
        let baseline: Vec<f64> =
            rhr.iter().filter(|(t, _)| baseline_window.contains(t)).map(|(_, v)| *v).collect();
        let plateau: Vec<f64> = rhr.iter().filter(|(t, _)| at_plateau(*t)).map(|(_, v)| *v).collect();
        if baseline.len() < 7 || plateau.is_empty() {
            continue;
        }
        measured += 1;
        let rise = mean(&plateau) - mean(&baseline);
        assert!(
            (rise - rhr_rise_bpm).abs() <= 0.35 * rhr_rise_bpm + 2.5,
            "{}: planted +{rhr_rise_bpm} bpm, measured {rise:+.1}",
            profile.id
        );
        ratios.push(rise / rhr_rise_bpm);

        let skin = series(&points, "skin_temp");
        let skin_base: Vec<f64> =
            skin.iter().filter(|(t, _)| baseline_window.contains(t)).map(|(_, v)| *v).collect();
        let skin_ill: Vec<f64> = skin.iter().filter(|(t, _)| at_plateau(*t)).map(|(_, v)| *v).collect();
        if !skin_ill.is_empty() {
            let skin_rise = mean(&skin_ill) - mean(&skin_base);
            assert!(
                (skin_rise - skin_temp_rise_c).abs() <= 0.3,
                "{}: planted +{skin_temp_rise_c} °C, measured {skin_rise:+.2}",
                profile.id
            );
        }

        // Symptoms are logged only inside the episode (and "none" the day after).
        for (t, value) in series(&points, "symptom") {
            let inside = episode.contains(Timestamp::from_nanos(t));
            assert!(inside || value == 0.0, "{}: symptom {value} outside the episode", profile.id);
        }
    }
    assert!(measured >= 10, "only {measured} illnesses measurable");
    let average = mean(&ratios);
    assert!((0.8..=1.2).contains(&average), "measured / planted rise averages {average:.2}");
}

#[test]
fn training_blocks_add_load_and_strain_hrv() {
    let config = PopulationConfig {
        people: 40,
        days: 42,
        seed: 9,
        illness_fraction: 0.0,
        training_fraction: 0.5,
        ..PopulationConfig::default()
    };
    let population = Population::generate(&config);
    let (mut load_ratio, mut hrv_ratio) = (Vec::new(), Vec::new());
    for profile in population.people.iter().filter(|p| p.devices.ring || p.devices.watch_in_bed) {
        let Some(block) = profile.episodes.first() else { continue };
        let EpisodeKind::TrainingBlock { daily_load } = block.kind else { continue };
        let points = simulate(profile, config.seed, config.history_end());
        let load: Vec<f64> = series(&points, "training_load")
            .into_iter()
            .filter(|(t, _)| block.contains(Timestamp::from_nanos(*t)))
            .map(|(_, v)| v)
            .collect();
        load_ratio.push(mean(&load) / daily_load);
        let hrv = series(&points, "hrv_rmssd");
        let before: Vec<f64> =
            hrv.iter().filter(|(t, _)| *t < block.start.as_nanos()).map(|(_, v)| *v).collect();
        // The hard part: the block's last week.
        let late = block.end.as_nanos() - 7 * DAY_NS..block.end.as_nanos();
        let hard: Vec<f64> = hrv.iter().filter(|(t, _)| late.contains(t)).map(|(_, v)| *v).collect();
        if before.len() >= 5 && !hard.is_empty() {
            hrv_ratio.push(mean(&hard) / mean(&before));
        }
    }
    assert!(load_ratio.len() >= 8, "{} blocks", load_ratio.len());
    let load = mean(&load_ratio);
    assert!((0.75..=1.3).contains(&load), "workout TSS / planted daily load {load:.2}");
    let hrv = mean(&hrv_ratio);
    assert!(hrv < 0.97, "HRV in the block's hard week relative to before: {hrv:.3}");
}

#[test]
fn cgm_users_have_plausible_time_in_range_meals_and_some_lows() {
    let config =
        PopulationConfig { people: 40, days: 14, seed: 21, cgm_fraction: 0.5, ..PopulationConfig::default() };
    let population = Population::generate(&config);
    let (mut tir, mut lows, mut means) = (Vec::new(), 0, Vec::new());
    for profile in population.people.iter().filter(|p| p.diabetes.is_some()) {
        let points = simulate(profile, config.seed, config.history_end());
        let glucose: Vec<f64> = series(&points, "glucose").into_iter().map(|(_, v)| v).collect();
        // Every 5 minutes, less a 2 h sensor warm-up every 10 days.
        assert!(glucose.len() >= 14 * 288 - 2 * 24, "{} readings", glucose.len());
        tir.push(
            glucose.iter().filter(|g| (70.0..=180.0).contains(*g)).count() as f64 / glucose.len() as f64,
        );
        lows += glucose.iter().filter(|g| **g < 70.0).count();
        means.push(mean(&glucose));
        let meals = series(&points, "carbs").iter().filter(|(_, g)| *g >= 30.0).count();
        assert!((14 * 2..=14 * 4).contains(&meals), "{} meals in 14 days", meals);
        assert!(series(&points, "insulin_bolus").len() >= meals * 3 / 4);
        assert_eq!(series(&points, "insulin_basal").len(), 14 * 3);
    }
    assert_eq!(tir.len(), 20);
    let average = mean(&tir);
    assert!((0.5..=0.95).contains(&average), "mean time in range {average:.2}");
    assert!(tir.iter().filter(|t| (0.4..=0.98).contains(*t)).count() >= 17, "{tir:?}");
    assert!(lows > 0, "no lows at all");
    let mean_glucose = mean(&means);
    eprintln!("time in range {average:.3}, mean glucose {mean_glucose:.0}, readings below 70: {lows}");
    assert!((120.0..=190.0).contains(&mean_glucose), "mean glucose {mean_glucose:.0}");
}
