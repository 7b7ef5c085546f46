//! A whole synthetic population: who is in it and what is planted.

use doppel_model::Timestamp;
use rand::seq::SliceRandom;

use crate::SynthError;
use crate::clock::{ANCHOR_MARGIN_DAYS, NS_PER_DAY, safe_anchor};
use crate::episode::{plant_illness, plant_training_block};
use crate::profile::{Profile, Roles, draw_profile};
use crate::rng::{Purpose, stream};

/// Most people one population holds: ids stay short and a population's
/// profiles stay well under a gigabyte.
pub const MAX_PEOPLE: usize = 1_000_000;
/// Longest history, days (ten years); the live stream may run past it.
pub const MAX_HISTORY_DAYS: u32 = 3_660;

/// What population to generate. `Default` is the demo's: 1,000 people, 30
/// days from 2024-01-01.
#[derive(Clone, PartialEq, Debug)]
pub struct PopulationConfig {
    /// How many people.
    pub people: usize,
    /// Days of history; episodes are planted inside it.
    pub days: u32,
    /// Seed of every random choice: equal configs give equal populations and points.
    pub seed: u64,
    /// Start of the history; days run from the midnight (UTC) at or before it.
    pub start: Timestamp,
    /// Share of people with type 1 diabetes and a CGM.
    pub cgm_fraction: f64,
    /// Share of people with a planted illness.
    pub illness_fraction: f64,
    /// Share of people with a planted training block (never the same people as illness).
    pub training_fraction: f64,
}

impl Default for PopulationConfig {
    fn default() -> Self {
        Self {
            people: 1_000,
            days: 30,
            seed: 42,
            start: Timestamp::from_secs(1_704_067_200), // 2024-01-01T00:00:00Z, a Monday
            cgm_fraction: 0.1,
            illness_fraction: 0.05,
            training_fraction: 0.1,
        }
    }
}

impl PopulationConfig {
    /// The end of the history: the midnight `days` days after the first one.
    pub fn history_end(&self) -> Timestamp {
        let days = i64::from(self.days.min(MAX_HISTORY_DAYS));
        Timestamp::from_nanos(safe_anchor(self.start.as_nanos()).saturating_add(days * NS_PER_DAY))
    }

    /// Checks the config, naming the field that is out of bounds.
    /// [`Population::generate`] clamps instead of failing.
    pub fn validate(&self) -> Result<(), SynthError> {
        for (field, value) in [
            ("cgm_fraction", self.cgm_fraction),
            ("illness_fraction", self.illness_fraction),
            ("training_fraction", self.training_fraction),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(SynthError::InvalidFraction { field, value });
            }
        }
        if self.illness_fraction + self.training_fraction > 1.0 {
            return Err(SynthError::EpisodeFractionsExceedOne {
                illness: self.illness_fraction,
                training: self.training_fraction,
            });
        }
        if self.people > MAX_PEOPLE {
            return Err(SynthError::TooManyPeople { people: self.people, max: MAX_PEOPLE });
        }
        if self.days > MAX_HISTORY_DAYS {
            return Err(SynthError::TooManyDays { days: self.days, max: MAX_HISTORY_DAYS });
        }
        Ok(())
    }
}

/// The generated people; their points come from [`crate::PersonSimulator`].
#[derive(Clone, PartialEq, Debug)]
pub struct Population {
    /// Everyone, in index order (`p0001` first).
    pub people: Vec<Profile>,
}

impl Population {
    /// Draws the population for `config`, deterministically for its seed.
    /// Out-of-range fields are clamped (fractions to 0–1, NaN to 0, people
    /// and days to [`MAX_PEOPLE`] and [`MAX_HISTORY_DAYS`]).
    ///
    /// Exactly `round(fraction × people)` people get each role: CGM users
    /// are chosen independently of episodes; illness and training blocks go
    /// to different people.
    pub fn generate(config: &PopulationConfig) -> Population {
        let people = config.people.min(MAX_PEOPLE);
        let anchor_ns = safe_anchor(config.start.as_nanos());
        // Near the end of the timestamp range, plant only in the days that exist.
        let days_left = i64::MAX.saturating_sub(anchor_ns) / NS_PER_DAY - ANCHOR_MARGIN_DAYS;
        let days = i64::from(config.days.min(MAX_HISTORY_DAYS)).min(days_left);
        let count = |fraction: f64| (clamp_fraction(fraction) * people as f64).round() as usize;

        // Roles come from shuffles so their counts are exact, not binomial.
        let mut role_rng = stream(config.seed, u64::MAX, 0, Purpose::Population);
        let mut order: Vec<usize> = (0..people).collect();
        order.shuffle(&mut role_rng);
        let mut is_cgm = vec![false; people];
        for &i in order.iter().take(count(config.cgm_fraction)) {
            is_cgm[i] = true;
        }
        order.shuffle(&mut role_rng);
        let illness_count = count(config.illness_fraction);
        let training_count = count(config.training_fraction).min(people - illness_count);
        let mut episode_role = vec![EpisodeRole::None; people];
        for (rank, &i) in order.iter().enumerate().take(illness_count + training_count) {
            episode_role[i] = if rank < illness_count { EpisodeRole::Illness } else { EpisodeRole::Training };
        }

        let people = (0..people)
            .map(|index| {
                let mut rng = stream(config.seed, index as u64, 0, Purpose::Population);
                let mut profile = draw_profile(&mut rng, index, config.start, Roles { cgm: is_cgm[index] });
                let episode = match episode_role[index] {
                    EpisodeRole::None => None,
                    EpisodeRole::Illness => plant_illness(&mut rng, anchor_ns, days),
                    EpisodeRole::Training => plant_training_block(&mut rng, anchor_ns, days),
                };
                profile.episodes.extend(episode);
                profile
            })
            .collect();
        Population { people }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum EpisodeRole {
    None,
    Illness,
    Training,
}

fn clamp_fraction(fraction: f64) -> f64 {
    if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_counts_are_exact_and_episodes_exclusive() {
        let config = PopulationConfig { people: 200, ..PopulationConfig::default() };
        let population = Population::generate(&config);
        assert_eq!(population.people.len(), 200);
        assert_eq!(population.people.iter().filter(|p| p.devices.cgm).count(), 20);
        assert_eq!(population.people.iter().filter(|p| p.diabetes.is_some()).count(), 20);
        let ill = population.people.iter().filter(|p| p.episodes.iter().any(|e| e.is_illness())).count();
        let training =
            population.people.iter().filter(|p| p.episodes.iter().any(|e| !e.is_illness())).count();
        assert_eq!((ill, training), (10, 20));
        assert!(population.people.iter().all(|p| p.episodes.len() <= 1));
    }

    #[test]
    fn nonsense_fractions_are_clamped_and_reported() {
        let config = PopulationConfig {
            people: 10,
            cgm_fraction: f64::NAN,
            illness_fraction: 2.0,
            training_fraction: -1.0,
            ..PopulationConfig::default()
        };
        let population = Population::generate(&config);
        assert!(population.people.iter().all(|p| !p.devices.cgm));
        assert!(population.people.iter().all(|p| p.episodes.iter().all(|e| e.is_illness())));
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("cgm_fraction"), "{err}");
        let too_many =
            PopulationConfig { illness_fraction: 0.6, training_fraction: 0.6, ..PopulationConfig::default() };
        assert!(matches!(too_many.validate(), Err(SynthError::EpisodeFractionsExceedOne { .. })));
        assert!(PopulationConfig::default().validate().is_ok());
        let long = PopulationConfig { days: MAX_HISTORY_DAYS + 1, ..PopulationConfig::default() };
        assert!(long.validate().unwrap_err().to_string().contains("`days`"));
    }

    #[test]
    fn history_end_is_days_after_the_first_midnight() {
        let config = PopulationConfig {
            start: Timestamp::from_secs(1_704_067_200 + 3600),
            days: 2,
            ..Default::default()
        };
        assert_eq!(config.history_end(), Timestamp::from_secs(1_704_067_200 + 2 * 86_400));
    }
}
