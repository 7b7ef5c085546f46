//! Why a privacy operation failed.

use std::path::PathBuf;

/// Every failure of this crate: bad parameters name the parameter, a
/// refused charge names what was spent and what is left, file failures
/// name the file.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// ε is not a finite number in the accepted range.
    #[error("epsilon {value} is not allowed: {reason}")]
    InvalidEpsilon {
        /// The value given.
        value: f64,
        /// What is wrong with it.
        reason: String,
    },
    /// A clamping range is not two finite numbers, the smaller first.
    #[error("clamping range [{lo}, {hi}] must be two finite numbers with lo <= hi")]
    InvalidClamp {
        /// Lower end given.
        lo: f64,
        /// Upper end given.
        hi: f64,
    },
    /// A statistic that needs a clamping range was asked without one.
    #[error("{statistic} needs a clamping range [lo, hi]: its sensitivity is unbounded without one")]
    ClampRequired {
        /// The statistic's name.
        statistic: &'static str,
    },
    /// A histogram with too few or too many bins.
    #[error("a histogram needs 1 to {max} bins, not {bins}")]
    InvalidBins {
        /// Bins asked for.
        bins: u32,
        /// The most allowed.
        max: u32,
    },
    /// A value to aggregate is NaN or infinite.
    #[error("value {value} at position {index} is not a finite number")]
    NonFiniteValue {
        /// Where in the input.
        index: usize,
        /// The value.
        value: f64,
    },
    /// Answering would spend more than the analyst has left.
    #[error(
        "{analyst} asked for epsilon {requested} but has {remaining} left of {total} (spent {spent}); \
         the budget does not renew"
    )]
    BudgetExceeded {
        /// Whose budget.
        analyst: String,
        /// ε asked for.
        requested: f64,
        /// ε spent before this request.
        spent: f64,
        /// ε left before this request.
        remaining: f64,
        /// The analyst's total.
        total: f64,
    },
    /// A key or budget file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A key or budget file exists but does not hold what Doppel writes.
    #[error("{} is not a valid {what}: {reason}", path.display())]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
}
