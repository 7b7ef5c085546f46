//! Cohort output that protects the people in it: pseudonymised exports
//! (`GET /api/v1/cohort/export`, [`export`]) and differentially private
//! statistics (`POST /api/v1/cohort/stats`, [`stats`]).
//!
//! A cohort is every twin the caller may read whose signal it may read
//! ([`members`]), never more. [`Privacy`] holds what both routes need
//! beyond the engine: the pseudonym secret and the analysts' privacy
//! budgets, kept under `<data>/privacy/`. The mathematics is in
//! `doppel-privacy`; guarantees and limits are in `docs/security.md`.

pub(crate) mod export;
pub(crate) mod stats;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use doppel_auth::SignalFilter;
use doppel_engine::{Engine, EngineError};
use doppel_model::{Provenance, SignalName, Span, Timestamp, TwinId};
use doppel_privacy::{
    AnalystKey, BudgetStatus, BudgetStore, DEFAULT_EPSILON_BUDGET, Epsilon, Ledger, PSEUDONYM_KEY_FILE,
    PrivacyError, PseudonymKey,
};
use doppel_store::{Aggregate, Bucket, RangeQuery};
use parking_lot::Mutex;

use crate::auth::Caller;
use crate::problem::{ApiError, BudgetDoc};

/// Twins read per page while a cohort is gathered.
const MEMBER_PAGE: usize = 1_000;

/// How the server keeps pseudonyms and privacy budgets: `[privacy]` in the
/// configuration file.
#[derive(Clone, Debug)]
pub struct PrivacyConfig {
    /// Total ε each analyst may spend on differentially private answers.
    pub epsilon_budget: Epsilon,
    /// The file holding the pseudonym secret; `<privacy dir>/pseudonym.key`
    /// when absent. Made, with a fresh secret, when it does not exist.
    pub pseudonym_key_file: Option<PathBuf>,
}

impl Default for PrivacyConfig {
    /// [`DEFAULT_EPSILON_BUDGET`] per analyst, the secret in the privacy
    /// directory.
    fn default() -> Self {
        PrivacyConfig { epsilon_budget: DEFAULT_EPSILON_BUDGET, pseudonym_key_file: None }
    }
}

/// The pseudonym secret and the privacy budgets of one server. Cheap to
/// clone.
#[derive(Clone)]
pub struct Privacy {
    inner: Arc<Inner>,
}

struct Inner {
    key: PseudonymKey,
    total: Epsilon,
    /// Where charges are saved; `None` keeps them in memory only.
    store: Option<BudgetStore>,
    ledger: Mutex<Ledger>,
}

impl Privacy {
    /// A random secret and budgets kept in memory: pseudonyms change and
    /// budgets reset with every start. For embedding and tests; `doppel
    /// serve` uses [`Privacy::open`].
    pub fn ephemeral(config: &PrivacyConfig) -> Self {
        Self::build(PseudonymKey::generate(), config.epsilon_budget, None, Ledger::default())
    }

    /// The secret and budgets kept in `dir` (or the configured key file):
    /// the secret is made there on the first start, and every charge is
    /// saved before its answer is released.
    pub fn open(dir: &Path, config: &PrivacyConfig) -> Result<Self, PrivacyError> {
        let key_file = config.pseudonym_key_file.clone().unwrap_or_else(|| dir.join(PSEUDONYM_KEY_FILE));
        Self::open_with_key(dir, config, PseudonymKey::open(&key_file)?)
    }

    /// Like [`Privacy::open`], with a pseudonym secret kept elsewhere (in
    /// the keyring, when encryption at rest is on) instead of in a file.
    pub fn open_with_key(
        dir: &Path,
        config: &PrivacyConfig,
        key: PseudonymKey,
    ) -> Result<Self, PrivacyError> {
        let store = BudgetStore::new(dir);
        let ledger = store.load()?;
        Ok(Self::build(key, config.epsilon_budget, Some(store), ledger))
    }

    fn build(key: PseudonymKey, total: Epsilon, store: Option<BudgetStore>, ledger: Ledger) -> Self {
        Privacy { inner: Arc::new(Inner { key, total, store, ledger: Mutex::new(ledger) }) }
    }

    /// The pseudonym key of `analyst`.
    pub(crate) fn analyst_key(&self, analyst: &str) -> AnalystKey {
        self.inner.key.for_analyst(analyst)
    }

    /// `analyst`'s budget now.
    pub(crate) fn status(&self, analyst: &str) -> BudgetStatus {
        self.inner.ledger.lock().status(analyst, self.inner.total)
    }

    /// Charges `epsilon` to `analyst`, durably, or refuses with what was
    /// spent and what is left. The charge is saved before it counts, so an
    /// answer is never released on a charge a crash could undo. Blocks on
    /// fsync: call it from a blocking thread.
    pub(crate) fn charge(&self, analyst: &str, epsilon: Epsilon) -> Result<BudgetStatus, ApiError> {
        let mut ledger = self.inner.ledger.lock();
        let mut next = ledger.clone();
        let status = next
            .charge(analyst, epsilon, self.inner.total)
            .map_err(|error| refusal(analyst, epsilon, error))?;
        if let Some(store) = &self.inner.store {
            store.save(&next).map_err(|error| {
                tracing::error!(%error, "the privacy budget was not saved");
                ApiError::StorageWriteFailed(match error {
                    doppel_privacy::PrivacyError::File { action, source, .. } => format!(
                        "the privacy budget was not saved (cannot {action} its file: {source}); nothing was charged"
                    ),
                    _ => "the privacy budget was not saved; nothing was charged".to_owned(),
                })
            })?;
        }
        *ledger = next;
        Ok(status)
    }

    /// Refuses early, before any data is read, when `epsilon` is more than
    /// `analyst` has left.
    pub(crate) fn check_affordable(&self, analyst: &str, epsilon: Epsilon) -> Result<(), ApiError> {
        let status = self.status(analyst);
        if epsilon.get() > status.remaining() {
            return Err(exhausted(analyst, epsilon, status));
        }
        Ok(())
    }
}

fn exhausted(analyst: &str, epsilon: Epsilon, status: BudgetStatus) -> ApiError {
    ApiError::BudgetExhausted {
        analyst: analyst.to_owned(),
        budget: BudgetDoc {
            total: status.total(),
            spent: status.spent(),
            remaining: status.remaining(),
            requested: epsilon.get(),
        },
    }
}

fn refusal(analyst: &str, epsilon: Epsilon, error: PrivacyError) -> ApiError {
    match error {
        PrivacyError::BudgetExceeded { total, spent, remaining, .. } => ApiError::BudgetExhausted {
            analyst: analyst.to_owned(),
            budget: BudgetDoc { total, spent, remaining, requested: epsilon.get() },
        },
        other => ApiError::Internal(other.to_string()),
    }
}

impl Default for Privacy {
    fn default() -> Self {
        Privacy::ephemeral(&PrivacyConfig::default())
    }
}

impl fmt::Debug for Privacy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Privacy")
            .field("epsilon_budget", &self.inner.total)
            .field("store", &self.inner.store.as_ref().map(BudgetStore::path))
            .finish_non_exhaustive()
    }
}

/// One aggregate of `signal` of `twin` over `[from, to)` per bucket of
/// `every` (one bucket over the range when `None`), or `None` when the
/// twin was deleted since its cohort was gathered.
pub(crate) fn twin_buckets(
    engine: &Engine,
    twin: &TwinId,
    signal: &SignalName,
    (from, to): (Timestamp, Timestamp),
    every: Option<Span>,
    aggregate: Aggregate,
) -> Result<Option<Vec<Bucket>>, ApiError> {
    let query =
        RangeQuery { twin: twin.clone(), signal: signal.clone(), provenance: Provenance::none(), from, to };
    match engine.aggregate(&query, every, &[aggregate]) {
        Err(EngineError::UnknownTwin(_)) => Ok(None),
        other => Ok(Some(other?)),
    }
}

/// Whom budgets and pseudonyms belong to: the caller's user, whatever
/// credential it uses (a new token must not bring a new budget), or
/// `anonymous` when authentication is off.
pub(crate) fn analyst(caller: &Caller) -> String {
    caller.principal().user().map_or_else(|| "anonymous".to_owned(), |user| format!("user:{user}"))
}

/// The cohort of `signal`: every twin the caller may read, of `model` if
/// given, whose `signal` it may read now, in id order.
pub(crate) fn members(
    caller: &Caller,
    engine: &Engine,
    signal: &SignalName,
    model: Option<&str>,
) -> Vec<TwinId> {
    let mut readable = Vec::new();
    let mut after: Option<TwinId> = None;
    loop {
        let page = crate::auth::twins::readable_twins(caller, engine, after.as_ref(), MEMBER_PAGE, model);
        let full = page.len() == MEMBER_PAGE;
        after = page.last().map(|twin| twin.id.clone());
        readable.extend(page.into_iter().map(|twin| twin.id));
        if !full {
            break;
        }
    }
    let state = caller.auth().state();
    let now = Timestamp::now();
    readable.retain(|twin| match caller.signal_filter(&state, twin, now) {
        SignalFilter::Nothing => false,
        filter => filter.allows(signal),
    });
    readable
}
