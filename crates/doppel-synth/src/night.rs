//! One night: when the person goes to bed and wakes, the stage sequence,
//! and what the ring or watch measures while they sleep.

use rand::Rng;

use crate::clock::{NS_PER_MIN, hours_to_ns, is_weekend, minutes_to_ns};
use crate::episode::round_to;
use crate::person::{Carry, Person, Raw, Source};
use crate::physiology::{
    DEEP_SHARE_BY_CYCLE, ILLNESS_EXTRA_SLEEP_H, ILLNESS_RESPIRATORY_RISE_PER_MIN, REM_SHARE_BY_CYCLE,
    SLEEP_CYCLE_MIN, WORKDAY_MID_SLEEP_H, deep_sleep_age_factor, sleep_stage_hr_offset_bpm,
};
use crate::rng::{Draw, Purpose, stream};
use crate::signals::{Device, Signal, SleepStage};
use crate::wear::wear_plan;

/// Mid-sleep is kept between 01:00 and 07:30 and time in bed between 4.5 and
/// 11 hours, so a night always starts after 19:30 and ends before 13:00 and
/// two nights can never overlap.
const MID_SLEEP_BOUNDS_H: (f64, f64) = (1.0, 7.5);
const TIME_IN_BED_BOUNDS_H: (f64, f64) = (4.5, 11.0);
/// Extra time in bed before free days: people sleep in (Wittmann et al. 2006).
const FREE_DAY_EXTRA_SLEEP_H: f64 = 0.5;
/// Interval of skin temperature and ring heart-rate readings, minutes.
const SKIN_TEMP_EVERY_MIN: i64 = 5;
/// Interval of SpO2 and respiratory-rate readings, minutes.
const SPO2_EVERY_MIN: i64 = 10;

/// When a night starts and ends and its stages.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NightPlan {
    /// Into bed (the first stage point, awake).
    pub bed_ns: i64,
    /// Final awakening (the last stage point, awake).
    pub wake_ns: i64,
    /// Stage changes from `bed_ns` to `wake_ns`, whole minutes, in time order.
    pub stages: Vec<(i64, SleepStage)>,
}

impl NightPlan {
    /// The stage at `t_ns`, or `None` outside `[bed, wake)`.
    pub fn stage_at(&self, t_ns: i64) -> Option<SleepStage> {
        if t_ns < self.bed_ns || t_ns >= self.wake_ns {
            return None;
        }
        let after = self.stages.partition_point(|(start, _)| *start <= t_ns);
        self.stages.get(after.checked_sub(1)?).map(|(_, stage)| *stage)
    }

    /// Hours asleep (in bed and not awake).
    pub fn asleep_h(&self) -> f64 {
        let mut asleep_ns = 0;
        for pair in self.stages.windows(2) {
            if pair[0].1 != SleepStage::Awake {
                asleep_ns += pair[1].0 - pair[0].0;
            }
        }
        asleep_ns as f64 / (60.0 * NS_PER_MIN as f64)
    }
}

/// Plans night `day` (the one starting on the evening of `day`).
pub(crate) fn plan_night(person: &Person, day: i64) -> NightPlan {
    let mut rng = stream(person.seed, person.index, day, Purpose::Night);
    let next_midnight = person.day_start_ns(day + 1);
    let free_next_day = is_weekend(next_midnight);
    let profile = &person.profile;
    let illness = person.illness_at(next_midnight);

    let jet_lag = if free_next_day { person.social_jet_lag_h } else { 0.0 };
    let mid_sleep_h = (WORKDAY_MID_SLEEP_H + profile.chronotype_h + jet_lag + rng.normal(0.0, 0.35))
        .clamp(MID_SLEEP_BOUNDS_H.0, MID_SLEEP_BOUNDS_H.1);
    let in_bed_h = (profile.sleep_need_h
        + if free_next_day { FREE_DAY_EXTRA_SLEEP_H } else { 0.0 }
        + ILLNESS_EXTRA_SLEEP_H * illness.severity
        + rng.normal(0.0, 0.5))
    .clamp(TIME_IN_BED_BOUNDS_H.0, TIME_IN_BED_BOUNDS_H.1);
    let bed_ns = next_midnight + hours_to_ns(mid_sleep_h - in_bed_h / 2.0);
    let wake_ns = bed_ns + hours_to_ns(in_bed_h);
    let stages = sleep_stages(&mut rng, person.age_years, bed_ns, wake_ns);
    NightPlan { bed_ns, wake_ns, stages }
}

/// Builds the stage sequence: a few minutes awake falling asleep, then
/// ~90-minute cycles of light → deep → light → REM with deep sleep early
/// and REM late (shares in [`DEEP_SHARE_BY_CYCLE`], [`REM_SHARE_BY_CYCLE`]),
/// brief awakenings between cycles becoming likelier with age.
fn sleep_stages(rng: &mut impl Rng, age_years: f64, bed_ns: i64, wake_ns: i64) -> Vec<(i64, SleepStage)> {
    let mut stages = vec![(bed_ns, SleepStage::Awake)];
    let push = |stages: &mut Vec<(i64, SleepStage)>, t_ns: i64, stage: SleepStage| {
        if t_ns >= wake_ns {
            return;
        }
        match stages.last_mut() {
            Some(last) if last.0 == t_ns => last.1 = stage,
            Some(last) if last.1 == stage => {}
            _ => stages.push((t_ns, stage)),
        }
    };
    let deep_factor = deep_sleep_age_factor(age_years);
    let awakening_chance = (0.2 + 0.006 * (age_years - 30.0)).clamp(0.1, 0.5);
    let mut t_ns = bed_ns + minutes_to_ns(rng.uniform(5.0, 25.0));
    let mut cycle = 0;
    while t_ns < wake_ns - 10 * NS_PER_MIN {
        let length_min = rng.normal_within(SLEEP_CYCLE_MIN, 10.0, 70.0, 115.0);
        let k = cycle.min(REM_SHARE_BY_CYCLE.len() - 1);
        let rem_min = length_min * REM_SHARE_BY_CYCLE[k];
        let deep_min = length_min * DEEP_SHARE_BY_CYCLE[k] * deep_factor;
        let light_min = (length_min - rem_min - deep_min).max(0.0);
        for (stage, minutes) in [
            (SleepStage::Light, light_min * 0.6),
            (SleepStage::Deep, deep_min),
            (SleepStage::Light, light_min * 0.4),
            (SleepStage::Rem, rem_min),
        ] {
            let step = minutes_to_ns(minutes);
            if step > 0 {
                push(&mut stages, t_ns, stage);
                t_ns += step;
            }
        }
        if rng.chance(awakening_chance) {
            push(&mut stages, t_ns, SleepStage::Awake);
            t_ns += minutes_to_ns(rng.uniform(1.0, 6.0));
        }
        cycle += 1;
    }
    stages.push((wake_ns, SleepStage::Awake));
    stages
}

/// Emits night `day`'s measurements: stages, nightly heart rate (ring),
/// skin temperature, SpO2, respiratory rate, and the morning's resting
/// heart rate and HRV. Nothing when no device is on in bed.
pub(crate) fn emit_night(person: &Person, carry: &Carry, day: i64, night: &NightPlan, out: &mut Vec<Raw>) {
    let devices = person.profile.devices;
    let device = if devices.ring {
        Device::Ring
    } else if devices.watch_in_bed && !wear_plan(person, day).off_all_day {
        Device::Watch
    } else {
        return;
    };
    let source = Source::device(device);
    // A separate stream from the plan's, so the plan never depends on which devices exist.
    let mut rng = stream(person.seed, person.index, day, Purpose::Measure);
    let push = |out: &mut Vec<Raw>, time_ns: i64, signal: Signal, value: f64| {
        out.push(Raw { time_ns, value, signal, source });
    };

    for (t_ns, stage) in &night.stages {
        push(out, *t_ns, Signal::SleepStage, f64::from(stage.index()));
    }

    let mut t_ns = night.bed_ns + SKIN_TEMP_EVERY_MIN * NS_PER_MIN;
    while t_ns < night.wake_ns {
        let illness = person.illness_at(t_ns);
        let since_bed_min = ((t_ns - night.bed_ns) / NS_PER_MIN) as f64;
        // Distal skin warms over the first hour of sleep (Kräuchi et al. 2000, Am J Physiol 278:R741).
        let warming_c = 0.4 * (1.0 - (-since_bed_min / 40.0).exp());
        let skin_c = person.skin_temp_c
            + warming_c
            + illness.skin_temp_rise_c * illness.severity
            + rng.normal(0.0, 0.1);
        push(out, t_ns, Signal::SkinTemp, round_to(skin_c.clamp(28.0, 40.0), 0.01));
        if device == Device::Ring {
            let stage = night.stage_at(t_ns).unwrap_or(SleepStage::Awake);
            let hr = person.resting_hr_bpm(t_ns, carry.acute_load) - 1.0
                + sleep_stage_hr_offset_bpm(stage)
                + person.circadian_hr_bpm(t_ns)
                + rng.normal(0.0, 1.5);
            push(out, t_ns, Signal::HeartRate, hr.clamp(35.0, 200.0).round());
        }
        if (t_ns - night.bed_ns) % (SPO2_EVERY_MIN * NS_PER_MIN) == 0 {
            let dip = if rng.chance(0.02) { rng.uniform(2.0, 4.0) } else { 0.0 };
            let spo2 = person.spo2_percent - 0.8 * illness.severity - dip + rng.normal(0.0, 0.6);
            push(out, t_ns, Signal::Spo2, spo2.clamp(85.0, 100.0).round());
            let breaths = person.respiratory_rate_per_min
                + ILLNESS_RESPIRATORY_RISE_PER_MIN * illness.severity
                + rng.normal(0.0, 0.4);
            push(out, t_ns, Signal::RespiratoryRate, round_to(breaths.clamp(8.0, 30.0), 0.1));
        }
        t_ns += SKIN_TEMP_EVERY_MIN * NS_PER_MIN;
    }

    let wake_ns = night.wake_ns;
    let resting = person.resting_hr_bpm(wake_ns, carry.acute_load) + rng.normal(0.0, 1.2);
    push(out, wake_ns, Signal::RestingHeartRate, resting.clamp(35.0, 120.0).round());
    let rmssd = person.profile.hrv_rmssd_ms
        * (person.log_rmssd_shift(wake_ns, carry.acute_load) + rng.normal(0.0, 0.1)).exp();
    push(out, wake_ns, Signal::HrvRmssd, rmssd.clamp(5.0, 250.0).round());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Population, PopulationConfig};

    fn person(index: usize) -> Person {
        let population =
            Population::generate(&PopulationConfig { people: 20, ..PopulationConfig::default() });
        let profile = &population.people[index];
        Person::new(profile, 42, profile.start.as_nanos())
    }

    #[test]
    fn stages_cover_the_night_in_order_and_start_and_end_awake() {
        let person = person(3);
        for day in 0..14 {
            let night = plan_night(&person, day);
            assert!(night.bed_ns > person.day_start_ns(day) + 19 * 3600 * 1_000_000_000);
            assert!(night.wake_ns < person.day_start_ns(day + 1) + 13 * 3600 * 1_000_000_000);
            assert_eq!(night.stages.first(), Some(&(night.bed_ns, SleepStage::Awake)));
            assert_eq!(night.stages.last(), Some(&(night.wake_ns, SleepStage::Awake)));
            assert!(night.stages.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 != w[1].1));
            assert!((4.0..11.0).contains(&night.asleep_h()), "{}", night.asleep_h());
        }
    }

    #[test]
    fn deep_sleep_comes_early_and_rem_late() {
        let person = person(5);
        let night = plan_night(&person, 2);
        let middle = (night.bed_ns + night.wake_ns) / 2;
        let (mut deep_early, mut deep_late, mut rem_early, mut rem_late) = (0, 0, 0, 0);
        for w in night.stages.windows(2) {
            let length = w[1].0 - w[0].0;
            let early = w[0].0 < middle;
            match (w[0].1, early) {
                (SleepStage::Deep, true) => deep_early += length,
                (SleepStage::Deep, false) => deep_late += length,
                (SleepStage::Rem, true) => rem_early += length,
                (SleepStage::Rem, false) => rem_late += length,
                _ => {}
            }
        }
        assert!(deep_early > deep_late && rem_late > rem_early);
    }

    #[test]
    fn stage_lookup_matches_the_sequence() {
        let person = person(1);
        let night = plan_night(&person, 0);
        assert_eq!(night.stage_at(night.bed_ns - 1), None);
        assert_eq!(night.stage_at(night.bed_ns), Some(SleepStage::Awake));
        assert_eq!(night.stage_at(night.wake_ns), None);
        let (t, stage) = night.stages[2];
        assert_eq!(night.stage_at(t), Some(stage));
    }
}
