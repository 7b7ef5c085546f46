//! What the day and night generators share: the person's fixed context,
//! the state carried from one day to the next, and the compact buffered
//! point they write.

use crate::clock::{MIN_PER_DAY, NS_PER_DAY, NS_PER_MIN};
use crate::episode::EpisodeKind;
use crate::glucose::GlucoseState;
use crate::night::NightPlan;
use crate::physiology::{
    self, CIRCADIAN_HR_AMPLITUDE_BPM, CIRCADIAN_NADIR_AFTER_MID_SLEEP_H, LOG_RMSSD_DROP_PER_EXCESS_LOAD,
    RHR_RISE_PER_EXCESS_LOAD_BPM, WORKDAY_MID_SLEEP_H,
};
use crate::profile::Profile;
use crate::rng::{Draw, Purpose, stream};
use crate::signals::{Device, Signal};

/// A point waiting to be emitted: 24 bytes instead of a [`doppel_model::Point`]'s 64,
/// because a day of one person is buffered at a time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Raw {
    pub time_ns: i64,
    pub value: f64,
    pub signal: Signal,
    /// Index into the simulator's provenance table; see [`Source`].
    pub source: u8,
}

impl Raw {
    /// The emission order: time, then signal, then source. Two points never
    /// share all three (each series has one generator and one point per instant).
    pub fn sort_key(&self) -> (i64, Signal, u8) {
        (self.time_ns, self.signal, self.source)
    }
}

/// Provenance-table indices: the devices in [`Device::ALL`] order, then one
/// per daily medicine, then the illness medicine.
pub(crate) struct Source;

impl Source {
    pub const fn device(device: Device) -> u8 {
        device as u8
    }

    pub fn medication(index: usize) -> u8 {
        (Device::ALL.len() + index).min(u8::MAX as usize) as u8
    }
}

/// Everything fixed about a person while simulating: the profile plus the
/// hidden traits and derived constants no twin property exposes.
pub(crate) struct Person {
    pub profile: Profile,
    pub seed: u64,
    pub index: u64,
    /// Midnight (UTC) starting day 0.
    pub anchor_ns: i64,
    pub age_years: f64,
    pub max_hr_bpm: f64,
    pub social_jet_lag_h: f64,
    /// Acute training load the person's usual workouts sustain, TSS/day.
    pub habitual_load: f64,
    pub skin_temp_c: f64,
    pub spo2_percent: f64,
    pub respiratory_rate_per_min: f64,
    pub mood_score: f64,
    /// Day (relative to the anchor, modulo 10) on which the CGM sensor is changed.
    pub cgm_change_day: i64,
    /// The circadian heart-rate term for each minute of the day, bpm.
    circadian_by_minute: Vec<f64>,
}

/// Typical TSS of a usual (non-block) workout, used for the habitual load.
const USUAL_WORKOUT_TSS: f64 = 40.0;

impl Person {
    pub fn new(profile: &Profile, seed: u64, anchor_ns: i64) -> Person {
        let index = profile.index as u64;
        // Day 1 of the population stream: day 0 drew the profile itself.
        let mut rng = stream(seed, index, 1, Purpose::Population);
        let age_years = profile.age_years();
        Person {
            seed,
            index,
            anchor_ns,
            age_years,
            max_hr_bpm: physiology::max_heart_rate_bpm(age_years),
            social_jet_lag_h: physiology::social_jet_lag_h(profile.chronotype_h),
            habitual_load: profile.workouts_per_week / 7.0 * USUAL_WORKOUT_TSS,
            // Distal (wrist/finger) skin temperature in sleep sits near 34–35.5 °C.
            skin_temp_c: rng.normal_within(34.8, 0.4, 33.5, 36.0),
            spo2_percent: rng.normal_within(96.8, 0.6, 95.5, 98.5),
            // Adult resting respiratory rate, 12–18 breaths/min.
            respiratory_rate_per_min: rng.normal_within(14.5, 1.2, 12.0, 17.0),
            mood_score: rng.normal_within(6.5, 1.0, 3.5, 9.0),
            cgm_change_day: rng.int_between(0, 9),
            circadian_by_minute: circadian_table(
                WORKDAY_MID_SLEEP_H + profile.chronotype_h + CIRCADIAN_NADIR_AFTER_MID_SLEEP_H,
            ),
            profile: profile.clone(),
        }
    }

    pub fn day_start_ns(&self, day: i64) -> i64 {
        self.anchor_ns.saturating_add(day.saturating_mul(NS_PER_DAY))
    }

    /// Illness severity (0–1) at `t_ns` and the planted rises it scales.
    pub fn illness_at(&self, t_ns: i64) -> Illness {
        let time = doppel_model::Timestamp::from_nanos(t_ns);
        for episode in &self.profile.episodes {
            if let EpisodeKind::Illness { rhr_rise_bpm, skin_temp_rise_c, symptom_onset } = episode.kind
                && episode.contains(time)
            {
                return Illness {
                    severity: episode.intensity_at(time),
                    rhr_rise_bpm,
                    skin_temp_rise_c,
                    symptomatic: time >= symptom_onset,
                };
            }
        }
        Illness::default()
    }

    /// The training block active at `t_ns`: (its mean TSS, progress 0–1).
    pub fn training_at(&self, t_ns: i64) -> Option<(f64, f64)> {
        let time = doppel_model::Timestamp::from_nanos(t_ns);
        self.profile.episodes.iter().find_map(|episode| match episode.kind {
            EpisodeKind::TrainingBlock { daily_load } if episode.contains(time) => {
                Some((daily_load, episode.progress(time)))
            }
            _ => None,
        })
    }

    /// Acute load above what the person's habits sustain, TSS/day.
    pub fn excess_load(&self, acute_load: f64) -> f64 {
        (acute_load - self.habitual_load).max(0.0)
    }

    /// Resting heart rate in effect at `t_ns`: usual + illness + overreaching.
    pub fn resting_hr_bpm(&self, t_ns: i64, acute_load: f64) -> f64 {
        let illness = self.illness_at(t_ns);
        self.profile.resting_hr_bpm
            + illness.rhr_rise_bpm * illness.severity
            + RHR_RISE_PER_EXCESS_LOAD_BPM * self.excess_load(acute_load)
    }

    /// Log-RMSSD shift at `t_ns` from illness and overreaching (≤ 0).
    pub fn log_rmssd_shift(&self, t_ns: i64, acute_load: f64) -> f64 {
        -physiology::ILLNESS_LOG_RMSSD_DROP * self.illness_at(t_ns).severity
            - LOG_RMSSD_DROP_PER_EXCESS_LOAD * self.excess_load(acute_load)
    }

    /// The circadian heart-rate term at `t_ns`, bpm (looked up by minute of day).
    pub fn circadian_hr_bpm(&self, t_ns: i64) -> f64 {
        let minute = (t_ns.rem_euclid(NS_PER_DAY) / NS_PER_MIN) as usize;
        self.circadian_by_minute.get(minute).copied().unwrap_or(0.0)
    }
}

/// A single-harmonic cosinor with its trough `nadir_h` hours after
/// midnight, tabulated per minute because it is read every simulated minute.
fn circadian_table(nadir_h: f64) -> Vec<f64> {
    (0..MIN_PER_DAY)
        .map(|minute| {
            let hour = minute as f64 / 60.0;
            -CIRCADIAN_HR_AMPLITUDE_BPM * (std::f64::consts::TAU * (hour - nadir_h) / 24.0).cos()
        })
        .collect()
}

/// The illness state at one instant.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Illness {
    pub severity: f64,
    pub rhr_rise_bpm: f64,
    pub skin_temp_rise_c: f64,
    pub symptomatic: bool,
}

/// State carried from one simulated day to the next.
pub(crate) struct Carry {
    /// The night that ends on the morning of the next day to generate.
    pub prev_night: NightPlan,
    /// The wake time of the night before `prev_night` (yesterday's morning).
    pub prev_day_wake_ns: i64,
    pub hr_bpm: f64,
    pub hr_noise_bpm: f64,
    /// Whether the last minute of the previous day had steps (so the next
    /// still minute emits a closing 0).
    pub stepping: bool,
    pub weight_drift_kg: f64,
    /// Exponentially weighted training load, TSS/day.
    pub acute_load: f64,
    pub glucose: Option<GlucoseState>,
}
