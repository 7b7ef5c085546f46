//! What is wrong with a store that is still open, for `/health` and
//! `/metrics`: damage found at recovery or on a read, and faults that
//! stopped writes. A store with problems keeps serving what it can; the
//! list says what is affected so that an operator learns of it from the
//! server rather than from a log line.

use std::path::Path;

use parking_lot::Mutex;

use crate::config::RecoveryReport;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Some data is unreadable or was lost; the rest is served and
    /// writes are accepted.
    Degraded,
    /// The store refuses writes until it is restarted.
    Failing,
}

impl Severity {
    /// The word `/health` and `/metrics` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Degraded => "degraded",
            Severity::Failing => "failing",
        }
    }
}

/// One problem of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreProblem {
    /// The part affected: `wal`, `segments`, `writes`, ...
    pub component: &'static str,
    pub severity: Severity,
    /// What happened and what it cost, naming files relative to the data
    /// directory (never an absolute path: `/health` is public).
    pub detail: String,
}

/// The problems of one open store; appended to, never cleared while open.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Mutex<Vec<StoreProblem>>,
}

impl Problems {
    /// The damage recovery found and could not undo.
    pub(crate) fn from_recovery(report: &RecoveryReport) -> Problems {
        let problems = Problems::default();
        for damage in report.wal_damage.iter().filter(|d| !d.truncated) {
            let lost = match damage.records_lost {
                Some(1) => "1 record lost".to_owned(),
                Some(n) => format!("{n} records lost"),
                None => "an unknown number of records lost".to_owned(),
            };
            let kept = match &damage.quarantined {
                Some(copy) => format!("; copied to quarantine/{}", file_name(copy)),
                None => String::new(),
            };
            problems.add(
                "wal",
                Severity::Degraded,
                format!(
                    "{}: bytes {}..{} not replayed ({:?}), {lost}{kept}",
                    file_name(&damage.file),
                    damage.offset,
                    damage.offset + damage.bytes_dropped,
                    damage.reason
                ),
            );
        }
        for segment in &report.segments_discarded {
            problems.add(
                "segments",
                Severity::Degraded,
                format!(
                    "{} moved aside as {}: {}",
                    file_name(&segment.file),
                    file_name(&segment.moved_to),
                    segment.reason
                ),
            );
        }
        problems
    }

    pub(crate) fn add(&self, component: &'static str, severity: Severity, detail: String) {
        self.list.lock().push(StoreProblem { component, severity, detail });
    }

    pub(crate) fn snapshot(&self) -> Vec<StoreProblem> {
        self.list.lock().clone()
    }
}

/// The file name alone, so that no problem text carries the data path.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| "?".to_owned(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{DiscardedSegment, WalDamage};
    use crate::wal::CorruptionKind;

    #[test]
    fn recovery_damage_becomes_degraded_problems_without_paths() {
        let report = RecoveryReport {
            wal_damage: vec![
                WalDamage {
                    file: PathBuf::from("/srv/data/wal/00000003.wal"),
                    offset: 4096,
                    bytes_dropped: 100,
                    records_lost: Some(2),
                    reason: CorruptionKind::BadChecksum,
                    truncated: false,
                    quarantined: Some(PathBuf::from("/srv/data/quarantine/00000003.wal.4096-4196")),
                },
                // A torn tail of the newest file is what a crash leaves: not damage.
                WalDamage {
                    file: PathBuf::from("/srv/data/wal/00000004.wal"),
                    offset: 10,
                    bytes_dropped: 3,
                    records_lost: None,
                    reason: CorruptionKind::ShortRecord,
                    truncated: true,
                    quarantined: None,
                },
            ],
            segments_discarded: vec![DiscardedSegment {
                file: PathBuf::from("/srv/data/segments/7.seg"),
                moved_to: PathBuf::from("/srv/data/segments/7.seg.corrupt"),
                reason: "bad footer".into(),
            }],
            ..RecoveryReport::default()
        };
        let problems = Problems::from_recovery(&report).snapshot();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].component, "wal");
        assert!(
            problems[0].detail
                == "00000003.wal: bytes 4096..4196 not replayed (BadChecksum), 2 records lost; \
                    copied to quarantine/00000003.wal.4096-4196",
            "{}",
            problems[0].detail
        );
        assert_eq!(problems[1].component, "segments");
        assert!(problems.iter().all(|p| p.severity == Severity::Degraded && !p.detail.contains("/srv")));
    }
}
