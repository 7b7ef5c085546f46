//! Synthetic people whose signals follow published physiology, for the
//! demo and the benchmarks.
//!
//! [`Population::generate`] draws people ([`Profile`]: age, sex, body,
//! fitness, chronotype, resting heart rate, HRV, devices, therapy settings)
//! and plants ground-truth [`Episode`]s (illness, training blocks) in their
//! history. A [`PersonSimulator`] then turns one profile into that person's
//! points, with the `person` model's signal names and a `device` provenance
//! tag, in time order: one call for the history, repeated small calls for a
//! live stream. People are independent, so callers can simulate them in
//! parallel; everything is deterministic for a seed.
//!
//! ```
//! use doppel_synth::{PersonSimulator, Population, PopulationConfig};
//!
//! let config = PopulationConfig { people: 2, days: 1, ..PopulationConfig::default() };
//! let population = Population::generate(&config);
//! let mut simulator = PersonSimulator::new(&population.people[0], config.seed);
//! let mut points = Vec::new();
//! simulator.advance(config.history_end(), &mut points);
//! assert!(points.iter().any(|p| p.signal.as_str() == "sleep_stage" || p.signal.as_str() == "steps"));
//! assert!(points.windows(2).all(|w| w[0].time <= w[1].time));
//! ```
//!
//! Category signals carry their category index as the value (sleep stage:
//! awake 0, light 1, deep 2, rem 3; see [`SleepStage`], [`WorkoutKind`],
//! [`Symptom`]). Every relation used and its source is listed in
//! `docs/synthetic-population.md` and beside the constant in
//! [`physiology`].
//!
//! This crate does no I/O and knows nothing of storage or HTTP.

#![warn(missing_docs)]

mod clock;
mod day;
mod episode;
mod error;
pub mod glucose;
mod night;
mod person;
pub mod physiology;
mod population;
mod profile;
mod rng;
mod signals;
mod simulator;
mod wear;

pub use episode::{Episode, EpisodeKind};
pub use error::SynthError;
pub use population::{MAX_HISTORY_DAYS, MAX_PEOPLE, Population, PopulationConfig};
pub use profile::{
    DAILY_MEDICATIONS, Devices, DiabetesProfile, ILLNESS_MEDICATION, Medication, Profile, PropertyValue, Sex,
    TIMEZONE, twin_id,
};
pub use signals::{Device, Signal, SleepStage, Symptom, WorkoutKind};
pub use simulator::{MAX_SIMULATED_DAYS, PersonSimulator};
