//! Per-analyst privacy budgets: how much ε each analyst has spent, and
//! the file that keeps it.
//!
//! Differential privacy composes: k releases at ε₁ … ε_k about the same
//! people are together (ε₁ + … + ε_k)-differentially private (Dwork and
//! Roth 2014, theorem 3.14). An analyst who could ask without limit could
//! average the noise away, so each analyst has a total; every release is
//! charged against it *before* the answer leaves, and the charge is on
//! disk first, so that neither a crash nor a restart hands the budget back.
//! The budget never renews.
//!
//! The file, `<dir>/budget.json`, holds what each analyst has spent, in
//! whole millionths of ε:
//!
//! ```json
//! {"version": 1, "spent_micros": {"user:ana": 1500000, "user:bob": 250000}}
//! ```
//!
//! The total is configuration, not state: raising it gives every analyst
//! more, lowering it can leave some with nothing. The file is rewritten
//! whole after each charge (temporary file, fsync, rename, fsync of the
//! directory), readable by its owner only.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::epsilon::micros_to_f64;
use crate::{Epsilon, PrivacyError};

/// Name of the budget file inside its directory.
pub const BUDGET_FILE: &str = "budget.json";
/// The file format this code writes and reads.
const BUDGET_VERSION: u32 = 1;
/// Largest budget file read: a million analysts fit; anything larger is not
/// a file Doppel wrote.
const MAX_BUDGET_BYTES: u64 = 128 * 1024 * 1024;

/// What every analyst has spent. A value type: charge a copy, save it,
/// then keep it, so memory never holds a charge the disk does not.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Ledger {
    spent_micros: BTreeMap<String, u64>,
}

/// An analyst's budget at one moment.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct BudgetStatus {
    spent_micros: u64,
    total: Epsilon,
}

impl BudgetStatus {
    /// ε spent so far.
    pub fn spent(self) -> f64 {
        micros_to_f64(self.spent_micros)
    }

    /// ε left; zero once the total is reached (or lowered below what was
    /// spent).
    pub fn remaining(self) -> f64 {
        micros_to_f64(self.remaining_micros())
    }

    /// The analyst's total.
    pub fn total(self) -> f64 {
        self.total.get()
    }

    fn remaining_micros(self) -> u64 {
        self.total.micros().saturating_sub(self.spent_micros)
    }
}

impl Ledger {
    /// `analyst`'s budget under `total`.
    pub fn status(&self, analyst: &str, total: Epsilon) -> BudgetStatus {
        BudgetStatus { spent_micros: self.spent_micros.get(analyst).copied().unwrap_or(0), total }
    }

    /// Charges `epsilon` to `analyst` if it fits in what is left of
    /// `total`, and answers the budget after the charge; otherwise changes
    /// nothing and names what was spent and what is left.
    pub fn charge(
        &mut self,
        analyst: &str,
        epsilon: Epsilon,
        total: Epsilon,
    ) -> Result<BudgetStatus, PrivacyError> {
        let before = self.status(analyst, total);
        if epsilon.micros() > before.remaining_micros() {
            return Err(PrivacyError::BudgetExceeded {
                analyst: analyst.to_owned(),
                requested: epsilon.get(),
                spent: before.spent(),
                remaining: before.remaining(),
                total: total.get(),
            });
        }
        let spent = before.spent_micros + epsilon.micros();
        self.spent_micros.insert(analyst.to_owned(), spent);
        Ok(BudgetStatus { spent_micros: spent, total })
    }
}

#[derive(Serialize)]
struct BudgetFileOut<'a> {
    version: u32,
    spent_micros: &'a BTreeMap<String, u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetFileIn {
    version: u32,
    spent_micros: BTreeMap<String, u64>,
}

/// Where the [`Ledger`] is kept: a directory holding [`BUDGET_FILE`].
#[derive(Clone, Debug)]
pub struct BudgetStore {
    dir: PathBuf,
}

impl BudgetStore {
    /// A store in `dir`, created on the first save.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BudgetStore { dir: dir.into() }
    }

    /// The budget file, for messages.
    pub fn path(&self) -> PathBuf {
        self.dir.join(BUDGET_FILE)
    }

    /// The saved ledger; an empty one when nothing was saved yet. A file
    /// that cannot be read or parsed is an error, never an empty ledger:
    /// starting from zero would hand every analyst its budget again.
    pub fn load(&self) -> Result<Ledger, PrivacyError> {
        let path = self.path();
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Ledger::default()),
            Err(source) => return Err(PrivacyError::File { path, action: "open", source }),
        };
        let mut bytes = Vec::new();
        file.take(MAX_BUDGET_BYTES + 1).read_to_end(&mut bytes).map_err(|source| PrivacyError::File {
            path: path.clone(),
            action: "read",
            source,
        })?;
        let corrupt =
            |reason: String| PrivacyError::CorruptFile { path: path.clone(), what: "budget file", reason };
        if bytes.len() as u64 > MAX_BUDGET_BYTES {
            return Err(corrupt(format!("it is larger than {MAX_BUDGET_BYTES} bytes")));
        }
        let file: BudgetFileIn =
            serde_json::from_slice(&bytes).map_err(|error| corrupt(error.to_string()))?;
        if file.version != BUDGET_VERSION {
            return Err(corrupt(format!("format version {} is not {BUDGET_VERSION}", file.version)));
        }
        Ok(Ledger { spent_micros: file.spent_micros })
    }

    /// Replaces the saved ledger with `ledger`, durably and atomically.
    pub fn save(&self, ledger: &Ledger) -> Result<(), PrivacyError> {
        let file = BudgetFileOut { version: BUDGET_VERSION, spent_micros: &ledger.spent_micros };
        let bytes = serde_json::to_vec(&file).map_err(|error| PrivacyError::CorruptFile {
            path: self.path(),
            what: "budget file",
            reason: format!("cannot be encoded: {error}"),
        })?;
        write_private_file(&self.dir, BUDGET_FILE, &bytes)
    }
}

/// Writes `dir/name` so that a crash leaves the old file or the new one:
/// a temporary file in the same directory, fsynced, renamed over the old
/// one, then the directory fsynced. The directory is 0700 and the file
/// 0600: spent budgets and keys are nobody else's business.
pub(crate) fn write_private_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PrivacyError> {
    let path = dir.join(name);
    let temporary = dir.join(format!("{name}.tmp"));
    let failed = |action: &'static str| {
        let path = path.clone();
        move |source| PrivacyError::File { path, action, source }
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        builder.mode(0o700);
        options.mode(0o600);
    }
    doppel_fs::create_dir_all(dir, Some(&builder)).map_err(failed("create the directory of"))?;
    // A leftover temporary file may have been made with other permissions.
    let _ = doppel_fs::remove_file(&temporary);
    doppel_fs::write_atomic(&path, &temporary, &options, bytes).map_err(|error| {
        let action = match error.op {
            doppel_fs::Op::Open => "create the temporary file of",
            doppel_fs::Op::Rename => "rename the temporary file to",
            doppel_fs::Op::SyncDir => "fsync the directory of",
            other => other.as_str(),
        };
        PrivacyError::File { path: path.clone(), action, source: error.source }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epsilon(value: f64) -> Epsilon {
        Epsilon::new(value).unwrap()
    }

    #[test]
    fn charges_add_up_exactly_until_the_total_and_are_then_refused() {
        let total = epsilon(1.0);
        let mut ledger = Ledger::default();
        for _ in 0..10 {
            ledger.charge("user:ana", epsilon(0.1), total).unwrap();
        }
        let status = ledger.status("user:ana", total);
        assert_eq!((status.spent(), status.remaining()), (1.0, 0.0));
        let before = ledger.clone();
        let refused = ledger.charge("user:ana", epsilon(0.000_001), total).unwrap_err();
        match refused {
            PrivacyError::BudgetExceeded { spent, remaining, requested, total, .. } => {
                assert_eq!((spent, remaining, requested, total), (1.0, 0.0, 0.000_001, 1.0));
            }
            other => panic!("{other}"),
        }
        assert_eq!(ledger, before, "a refused charge changes nothing");
    }

    #[test]
    fn analysts_have_separate_budgets() {
        let total = epsilon(2.0);
        let mut ledger = Ledger::default();
        assert_eq!(ledger.charge("user:ana", epsilon(1.5), total).unwrap().remaining(), 0.5);
        assert!(ledger.charge("user:ana", epsilon(1.0), total).is_err());
        assert_eq!(ledger.charge("user:bob", epsilon(1.0), total).unwrap().remaining(), 1.0);
        // A lowered total leaves nothing, rather than a negative remainder.
        let lowered = ledger.status("user:ana", epsilon(1.0));
        assert_eq!((lowered.spent(), lowered.remaining(), lowered.total()), (1.5, 0.0, 1.0));
    }

    #[test]
    fn a_saved_ledger_loads_back_and_a_corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = BudgetStore::new(dir.path().join("privacy"));
        assert_eq!(store.load().unwrap(), Ledger::default());
        let mut ledger = Ledger::default();
        ledger.charge("user:ana", epsilon(0.25), epsilon(1.0)).unwrap();
        store.save(&ledger).unwrap();
        assert_eq!(store.load().unwrap(), ledger);
        assert!(!dir.path().join("privacy").join("budget.json.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "private: {mode:o}");
        }
        for text in
            ["{", r#"{"version": 2, "spent_micros": {}}"#, r#"{"version": 1, "spent_micros": {"a": -1}}"#]
        {
            fs::write(store.path(), text).unwrap();
            let error = store.load().unwrap_err();
            assert!(matches!(error, PrivacyError::CorruptFile { .. }), "{error}");
            assert!(error.to_string().contains("budget.json"), "{error}");
        }
    }
}
