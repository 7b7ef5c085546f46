//! Doppel's privacy-preserving cohort output: what an analyst may learn
//! about many people without learning about one.
//!
//! - **Pseudonyms** ([`PseudonymKey`]): a twin's id in a cohort export is
//!   replaced by a keyed hash (HMAC-SHA-256) under a secret the server
//!   holds, derived per analyst, so that the same analyst sees stable
//!   pseudonyms, two analysts cannot join their exports, and nobody can
//!   compute a pseudonym from an id without the secret.
//! - **Differential privacy** ([`release`]): a cohort statistic (count, sum,
//!   mean, histogram) over one clamped value per twin, with Laplace noise
//!   of scale sensitivity / ε (Dwork, McSherry, Nissim and Smith 2006,
//!   "Calibrating noise to sensitivity in private data analysis"; Dwork and
//!   Roth 2014, "The Algorithmic Foundations of Differential Privacy",
//!   section 3.3).
//! - **Budgets** ([`Ledger`], [`BudgetStore`]): the ε each analyst has
//!   spent, charged before an answer is released and kept on disk, so that
//!   the total stays bounded across requests and restarts.
//!
//! ```
//! use doppel_privacy::{Clamp, Epsilon, Ledger, PseudonymKey, Statistic, release};
//!
//! // Pseudonyms differ per analyst and are stable for one.
//! let key = PseudonymKey::from_bytes([7; 32]);
//! let (ana, bob) = (key.for_analyst("user:ana"), key.for_analyst("user:bob"));
//! assert_eq!(ana.pseudonym("alice"), ana.pseudonym("alice"));
//! assert_ne!(ana.pseudonym("alice"), bob.pseudonym("alice"));
//!
//! // A mean resting heart rate over three people, with ε = 1 charged first.
//! let total = Epsilon::new(3.0).unwrap();
//! let epsilon = Epsilon::new(1.0).unwrap();
//! let mut ledger = Ledger::default();
//! let charge = ledger.charge("user:ana", epsilon, total).unwrap();
//! assert_eq!(charge.remaining(), 2.0);
//! let clamp = Clamp::new(30.0, 120.0).unwrap();
//! let answer = release(Statistic::Mean, &[58.0, 64.0, 71.0], Some(clamp), epsilon, &mut rand::rng()).unwrap();
//! let mean = answer.value.unwrap();
//! assert!((30.0..=120.0).contains(&mean));
//! ```
//!
//! This crate holds the mathematics and the budget's file; it knows
//! nothing of HTTP, policies or the store. Which twins an analyst may
//! read, and which value each contributes, is the server's business.

mod budget;
mod epsilon;
mod error;
mod laplace;
mod mechanism;
mod pseudonym;

pub use budget::{BUDGET_FILE, BudgetStatus, BudgetStore, Ledger};
pub use epsilon::{DEFAULT_EPSILON_BUDGET, Epsilon, MAX_EPSILON};
pub use error::PrivacyError;
pub use laplace::sample_laplace;
pub use mechanism::{Clamp, HistogramBin, MAX_HISTOGRAM_BINS, Release, Statistic, release};
pub use pseudonym::{AnalystKey, PSEUDONYM_KEY_BYTES, PSEUDONYM_KEY_FILE, PseudonymKey};
