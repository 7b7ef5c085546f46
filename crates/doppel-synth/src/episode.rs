//! Planted episodes: the ground truth later detectors are validated against.

use doppel_model::Timestamp;
use rand::Rng;

use crate::clock::{NS_PER_DAY, NS_PER_HOUR};
use crate::physiology::illness_time_course;
use crate::rng::Draw;

/// Planted illness lasts 3–10 days (Mishra et al. 2020 saw resting-heart-rate
/// rises of about that length around COVID-19 and other infections).
pub const ILLNESS_DAYS: (i64, i64) = (3, 10);
/// Planted illness raises nightly resting heart rate by 3–10 bpm (Mishra et al. 2020).
pub const ILLNESS_RHR_RISE_BPM: (f64, f64) = (3.0, 10.0);
/// Planted illness raises nightly skin temperature by 0.3–1.0 °C (Smarr et al.
/// 2020, Sci Rep 10:21640).
pub const ILLNESS_SKIN_TEMP_RISE_C: (f64, f64) = (0.3, 1.0);
/// Symptoms begin 1–3 days after the physiological rise (Mishra et al. 2020:
/// the heart-rate signal led symptom onset by days in most cases).
pub const SYMPTOM_LEAD_DAYS: (f64, f64) = (1.0, 3.0);
/// Days of history kept clean before an illness where the history allows:
/// detectors compare against the prior two weeks.
pub const ILLNESS_BASELINE_DAYS: i64 = 14;
/// Training blocks last 2–4 weeks.
pub const TRAINING_BLOCK_DAYS: (i64, i64) = (14, 28);
/// Mean TSS on a block's workout days.
pub const TRAINING_DAILY_LOAD: (f64, f64) = (60.0, 150.0);

/// What was planted.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum EpisodeKind {
    /// An infection: physiology changes from `start`, symptoms are logged from
    /// `symptom_onset` until `end`.
    Illness {
        /// Nightly resting heart rate rise at the episode's plateau, bpm.
        rhr_rise_bpm: f64,
        /// Nightly skin temperature rise at the plateau, °C.
        skin_temp_rise_c: f64,
        /// When symptoms start being logged.
        symptom_onset: Timestamp,
    },
    /// A block of harder endurance training ramping from 80 % to 120 % of
    /// `daily_load`.
    TrainingBlock {
        /// Mean TSS on the block's workout days.
        daily_load: f64,
    },
}

/// A planted episode with its time span `[start, end)`.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Episode {
    /// What was planted.
    pub kind: EpisodeKind,
    /// First instant of the episode.
    pub start: Timestamp,
    /// First instant after it.
    pub end: Timestamp,
}

impl Episode {
    /// True when `time` lies in `[start, end)`.
    pub fn contains(&self, time: Timestamp) -> bool {
        self.start <= time && time < self.end
    }

    /// How much of the planted effect is present at `time`, 0–1. Illness
    /// rises over the first fifth, plateaus and falls over the last third;
    /// a training block is 1 throughout. Detectors can weight their scoring
    /// by it.
    pub fn intensity_at(&self, time: Timestamp) -> f64 {
        if !self.contains(time) {
            return 0.0;
        }
        match self.kind {
            EpisodeKind::Illness { .. } => illness_time_course(self.progress(time)),
            EpisodeKind::TrainingBlock { .. } => 1.0,
        }
    }

    /// Where `time` lies in the episode, 0 at start and 1 at end.
    pub fn progress(&self, time: Timestamp) -> f64 {
        let length = (self.end.as_nanos() - self.start.as_nanos()) as f64;
        if length <= 0.0 { 0.0 } else { (time.as_nanos() - self.start.as_nanos()) as f64 / length }
    }

    /// True for illness episodes.
    pub fn is_illness(&self) -> bool {
        matches!(self.kind, EpisodeKind::Illness { .. })
    }
}

/// Plants an illness in a history of `days` days from midnight
/// `anchor_ns`, keeping [`ILLNESS_BASELINE_DAYS`] clean before it where the
/// history is long enough. `None` when the history is too short to hold one.
pub(crate) fn plant_illness(rng: &mut impl Rng, anchor_ns: i64, days: i64) -> Option<Episode> {
    if days < ILLNESS_DAYS.0 + 1 {
        return None;
    }
    let length_days = rng.int_between(ILLNESS_DAYS.0, ILLNESS_DAYS.1.min(days - 1));
    // The start day leaves room for the whole episode, starting mid-day.
    let last_start_day = days - length_days - 1;
    let first_start_day = ILLNESS_BASELINE_DAYS.min(last_start_day);
    let start_day = rng.int_between(first_start_day, last_start_day);
    let start_ns = anchor_ns + start_day * NS_PER_DAY + rng.int_between(0, 23) * NS_PER_HOUR;
    let end_ns = start_ns + length_days * NS_PER_DAY;
    let lead_days = rng.uniform(SYMPTOM_LEAD_DAYS.0, SYMPTOM_LEAD_DAYS.1).min(length_days as f64 - 1.0);
    let symptom_onset = Timestamp::from_nanos(start_ns + (lead_days * NS_PER_DAY as f64) as i64);
    Some(Episode {
        kind: EpisodeKind::Illness {
            rhr_rise_bpm: round_to(rng.uniform(ILLNESS_RHR_RISE_BPM.0, ILLNESS_RHR_RISE_BPM.1), 0.1),
            skin_temp_rise_c: round_to(
                rng.uniform(ILLNESS_SKIN_TEMP_RISE_C.0, ILLNESS_SKIN_TEMP_RISE_C.1),
                0.01,
            ),
            symptom_onset,
        },
        start: Timestamp::from_nanos(start_ns),
        end: Timestamp::from_nanos(end_ns),
    })
}

/// Plants a training block in a history of `days` days from midnight
/// `anchor_ns`; shorter histories get a block as long as the history.
pub(crate) fn plant_training_block(rng: &mut impl Rng, anchor_ns: i64, days: i64) -> Option<Episode> {
    if days < 1 {
        return None;
    }
    let length_days = rng.int_between(TRAINING_BLOCK_DAYS.0, TRAINING_BLOCK_DAYS.1).min(days);
    let start_day = rng.int_between(0, days - length_days);
    let start_ns = anchor_ns + start_day * NS_PER_DAY;
    Some(Episode {
        kind: EpisodeKind::TrainingBlock {
            daily_load: rng.uniform(TRAINING_DAILY_LOAD.0, TRAINING_DAILY_LOAD.1).round(),
        },
        start: Timestamp::from_nanos(start_ns),
        end: Timestamp::from_nanos(start_ns + length_days * NS_PER_DAY),
    })
}

/// Rounds to a multiple of `step`, the way devices report values.
pub(crate) fn round_to(value: f64, step: f64) -> f64 {
    (value / step).round() * step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, stream};

    #[test]
    fn illness_fits_in_history_after_a_clean_baseline() {
        for person in 0..200 {
            let mut rng = stream(1, person, 0, Purpose::Population);
            let episode = plant_illness(&mut rng, 0, 30).unwrap();
            assert!(episode.start.as_nanos() >= ILLNESS_BASELINE_DAYS * NS_PER_DAY);
            assert!(episode.end.as_nanos() <= 30 * NS_PER_DAY);
            let EpisodeKind::Illness { rhr_rise_bpm, skin_temp_rise_c, symptom_onset } = episode.kind else {
                panic!("not an illness");
            };
            assert!((3.0..=10.0).contains(&rhr_rise_bpm));
            assert!((0.3..=1.0).contains(&skin_temp_rise_c));
            assert!(episode.start < symptom_onset && symptom_onset < episode.end);
        }
    }

    #[test]
    fn short_histories_get_no_illness_but_a_short_block() {
        let mut rng = stream(1, 0, 0, Purpose::Population);
        assert!(plant_illness(&mut rng, 0, 3).is_none());
        assert!(plant_illness(&mut rng, 0, 4).is_some());
        let block = plant_training_block(&mut rng, 0, 5).unwrap();
        assert_eq!(block.end.as_nanos() - block.start.as_nanos(), 5 * NS_PER_DAY);
        assert!(plant_training_block(&mut rng, 0, 0).is_none());
    }

    #[test]
    fn intensity_is_zero_outside_and_peaks_inside() {
        let episode = Episode {
            kind: EpisodeKind::Illness {
                rhr_rise_bpm: 5.0,
                skin_temp_rise_c: 0.5,
                symptom_onset: Timestamp::from_nanos(NS_PER_DAY),
            },
            start: Timestamp::from_nanos(0),
            end: Timestamp::from_nanos(10 * NS_PER_DAY),
        };
        assert_eq!(episode.intensity_at(Timestamp::from_nanos(-1)), 0.0);
        assert_eq!(episode.intensity_at(Timestamp::from_nanos(5 * NS_PER_DAY)), 1.0);
        assert_eq!(episode.intensity_at(Timestamp::from_nanos(10 * NS_PER_DAY)), 0.0);
    }
}
