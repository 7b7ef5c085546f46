//! Injected faults at every write, fsync and rename of the persisted auth
//! state: saving fails with an error naming the call, the previous state
//! file stays whole and loads as before, and saving succeeds once the
//! fault clears.

use doppel_auth::{AuthError, AuthState, AuthStore, NewToken, Scopes, TokenName, UserName};
use doppel_fs::Op;
use doppel_fs::failpoint::{Fault, Trigger, arm};
use doppel_model::Timestamp;

fn with_token(state: &mut AuthState, user: &str) {
    let new = NewToken {
        name: TokenName::new(&format!("{user}-token")).unwrap(),
        user: UserName::new(user).unwrap(),
        scopes: Scopes::Admin,
        expires: None,
    };
    state.tokens.create(new, Timestamp::from_nanos(0)).unwrap();
}

fn token_count(store: &AuthStore) -> usize {
    store.load().unwrap().state.tokens.len()
}

#[test]
fn a_save_that_meets_a_fault_fails_cleanly_and_keeps_the_previous_state() {
    let cases: [(Op, Fault, &str); 6] = [
        (Op::Open, Fault::Eio, "create the temporary file of"),
        (Op::Write, Fault::Enospc, "write"),
        (Op::Write, Fault::ShortWrite, "write"),
        (Op::Sync, Fault::Eio, "fsync"),
        (Op::Rename, Fault::Eio, "rename the temporary file to"),
        (Op::SyncDir, Fault::Eio, "fsync the directory of"),
    ];
    for (op, fault, action) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path().join("auth"));
        let mut state = AuthState::default();
        with_token(&mut state, "alice");
        store.save(&state).unwrap();
        let before = std::fs::read(store.path()).unwrap();
        with_token(&mut state, "bob");
        let armed = arm(dir.path(), op, fault, Trigger::Always);
        let error = store.save(&state).unwrap_err();
        assert_eq!(armed.fired(), 1, "{op:?}");
        armed.clear();
        let AuthError::StateFile { action: failed, .. } = &error else { panic!("{op:?}: {error}") };
        assert_eq!(*failed, action, "{error}");
        assert!(error.to_string().contains("state.json"), "{error}");
        if !matches!(op, Op::SyncDir) {
            assert_eq!(std::fs::read(store.path()).unwrap(), before, "{op:?}: the previous file is whole");
            assert_eq!(token_count(&store), 1, "{op:?}");
            assert!(!dir.path().join("auth/state.json.tmp").exists(), "{op:?}");
        }
        store.save(&state).unwrap();
        assert_eq!(token_count(&store), 2, "{op:?}");
    }
}

#[test]
fn a_state_directory_that_cannot_be_created_fails_the_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = AuthStore::new(dir.path().join("auth"));
    let armed = arm(dir.path(), Op::CreateDir, Fault::Enospc, Trigger::Nth(1));
    let error = store.save(&AuthState::default()).unwrap_err();
    assert!(error.to_string().contains("create the directory of"), "{error}");
    drop(armed);
    store.save(&AuthState::default()).unwrap();
}

fn claim(twin: &str) -> doppel_auth::AuthChange {
    doppel_auth::AuthChange::Claim {
        owner: "user:alice".parse().unwrap(),
        twins: vec![doppel_model::TwinId::new(twin).unwrap()],
    }
}

fn owned(store: &AuthStore) -> Vec<String> {
    store.load().unwrap().state.policies.twins().map(ToString::to_string).collect()
}

#[test]
fn a_log_append_that_meets_a_fault_is_refused_and_cut_and_the_next_one_lands() {
    for fault in [Fault::Enospc, Fault::ShortWrite] {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path().join("auth"));
        store.save(&AuthState::default()).unwrap();
        store.append(&[claim("kept")]).unwrap();
        let armed = arm(&store.log_path(), Op::Write, fault, Trigger::Nth(1));
        let error = store.append(&[claim("refused")]).unwrap_err();
        assert!(error.to_string().contains("state.log"), "{error}");
        drop(armed);
        store.append(&[claim("after")]).unwrap();
        assert_eq!(owned(&AuthStore::new(dir.path().join("auth"))), ["after", "kept"], "{fault:?}");
    }
}

#[test]
fn after_a_failed_log_fsync_every_append_is_refused_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = AuthStore::new(dir.path().join("auth"));
    store.save(&AuthState::default()).unwrap();
    store.append(&[claim("kept")]).unwrap();
    let armed = arm(&store.log_path(), Op::Sync, Fault::Eio, Trigger::Nth(1));
    assert!(store.append(&[claim("unsure")]).is_err());
    drop(armed);
    let error = store.append(&[claim("later")]).unwrap_err();
    assert!(error.to_string().contains("earlier fsync"), "{error}");
    let reloaded = owned(&AuthStore::new(dir.path().join("auth")));
    assert!(reloaded.contains(&"kept".to_owned()) && !reloaded.contains(&"later".to_owned()), "{reloaded:?}");
}
