//! Injected faults at every write, fsync and rename of the privacy budget
//! file: saving a charge fails with an error naming the call, the previous
//! ledger stays whole (so no ε is forgotten), and saving succeeds once the
//! fault clears.

use doppel_fs::Op;
use doppel_fs::failpoint::{Fault, Trigger, arm};
use doppel_privacy::{BudgetStore, Epsilon, Ledger, PrivacyError};

fn spent(store: &BudgetStore, total: Epsilon) -> f64 {
    store.load().unwrap().status("analyst", total).spent()
}

#[test]
fn a_charge_that_cannot_be_saved_fails_cleanly_and_keeps_the_previous_ledger() {
    let cases: [(Op, Fault, &str); 6] = [
        (Op::Open, Fault::Eio, "create the temporary file of"),
        (Op::Write, Fault::Enospc, "write"),
        (Op::Write, Fault::ShortWrite, "write"),
        (Op::Sync, Fault::Eio, "fsync"),
        (Op::Rename, Fault::Eio, "rename the temporary file to"),
        (Op::SyncDir, Fault::Eio, "fsync the directory of"),
    ];
    let total = Epsilon::new(10.0).unwrap();
    let epsilon = Epsilon::new(1.0).unwrap();
    for (op, fault, action) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = BudgetStore::new(dir.path().join("privacy"));
        let mut ledger = Ledger::default();
        ledger.charge("analyst", epsilon, total).unwrap();
        store.save(&ledger).unwrap();
        ledger.charge("analyst", epsilon, total).unwrap();
        let armed = arm(dir.path(), op, fault, Trigger::Always);
        let error = store.save(&ledger).unwrap_err();
        assert_eq!(armed.fired(), 1, "{op:?}");
        armed.clear();
        let PrivacyError::File { action: failed, .. } = &error else { panic!("{op:?}: {error}") };
        assert_eq!(*failed, action, "{error}");
        if !matches!(op, Op::SyncDir) {
            assert_eq!(spent(&store, total), 1.0, "{op:?}: the previous ledger is whole");
        }
        store.save(&ledger).unwrap();
        assert_eq!(spent(&store, total), 2.0, "{op:?}");
    }
}
