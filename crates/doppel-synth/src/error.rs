//! The one error type of this crate: a population configuration that asks
//! for something the generator will not do.

use thiserror::Error;

/// Why a [`crate::PopulationConfig`] was refused by
/// [`crate::PopulationConfig::validate`]. [`crate::Population::generate`]
/// never fails; it clamps instead, so callers that want to tell their user
/// call `validate` first.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SynthError {
    /// A fraction field was NaN or outside 0–1.
    #[error("population config field `{field}` = {value} must be a fraction between 0 and 1")]
    InvalidFraction {
        /// The config field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// Illness and training people are drawn from the same pool, so their
    /// fractions cannot add up to more than everybody.
    #[error(
        "population config fields `illness_fraction` ({illness}) and `training_fraction` ({training}) add up to more than 1"
    )]
    EpisodeFractionsExceedOne {
        /// `illness_fraction` as given.
        illness: f64,
        /// `training_fraction` as given.
        training: f64,
    },
    /// More people than [`crate::MAX_PEOPLE`].
    #[error("population config field `people` = {people} exceeds the limit of {max}")]
    TooManyPeople {
        /// The number asked for.
        people: usize,
        /// The limit.
        max: usize,
    },
    /// More history than [`crate::MAX_HISTORY_DAYS`].
    #[error("population config field `days` = {days} exceeds the limit of {max}")]
    TooManyDays {
        /// The number asked for.
        days: u32,
        /// The limit.
        max: u32,
    },
}
