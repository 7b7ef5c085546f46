//! Encryption at rest, end to end through the store's files: nothing a
//! twin holds is on disk in plaintext, a deleted twin's data cannot be read
//! from a copy of the data directory taken before the delete, and a sealed
//! store opens only with its own keyring.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{batch, config, key, pairs};
use doppel_crypto::{Keyring, MasterKey};
use doppel_model::{Timestamp, TwinId};
use doppel_store::{Sealing, Store, StoreError, TwinRecord};

const MASTER: &str = "dGhpcyBpcyBhIHRlc3QgbWFzdGVyIGtleSAzMiBieXQ=";

fn sealing(keys: &Path, master: &str) -> Arc<Sealing> {
    let master = MasterKey::from_base64("test", master.as_bytes()).unwrap();
    let keyring = Keyring::open(keys, master, Vec::new()).unwrap();
    Arc::new(Sealing::new(Arc::new(keyring)).unwrap())
}

fn open(data: &Path, sealing: Option<Arc<Sealing>>) -> Result<Store, StoreError> {
    let mut config = config(data);
    config.sealing = sealing;
    Store::open(config)
}

fn twin(id: &str, secret_property: &str) -> TwinRecord {
    let mut properties = serde_json::Map::new();
    properties.insert("diagnosis".into(), secret_property.into());
    TwinRecord {
        id: TwinId::new(id).unwrap(),
        model: "person".into(),
        properties,
        created: Timestamp::from_secs(1),
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The files under `dir` holding `needle` anywhere.
fn holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|path| std::fs::read(path).unwrap().windows(needle.len()).any(|w| w == needle))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Values whose bytes (as the WAL holds them) and text are unlikely to
/// appear by chance.
const VALUES: [f64; 3] = [123.456_789_012, 98.765_432_1, 7.071_067_811_865];

fn needles() -> Vec<Vec<u8>> {
    let mut needles: Vec<Vec<u8>> =
        ["patient-7f3a9c", "type-1-diabetes-marker", "watch-SN998877"].map(|s| s.as_bytes().to_vec()).into();
    for value in VALUES {
        needles.push(value.to_le_bytes().to_vec());
        needles.push(value.to_string().into_bytes());
    }
    needles
}

#[test]
fn no_identifier_property_device_or_value_is_on_disk_in_plaintext() {
    let (data, keys) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let series = key("patient-7f3a9c", "blood_glucose", Some("watch-SN998877"));
    let samples: Vec<(i64, f64)> =
        VALUES.iter().enumerate().map(|(i, &v)| (i as i64 * 60_000_000_000, v)).collect();
    {
        let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
        store.put_twin(&twin("patient-7f3a9c", "type-1-diabetes-marker")).unwrap();
        store.write(&batch(&series, &samples[..2])).unwrap();
        store.flush().unwrap();
        store.write(&batch(&series, &samples[2..])).unwrap();
        // Both a segment and a WAL record now hold the twin's data.
        assert_eq!(pairs(&store, &series), samples);
    }
    for needle in needles() {
        let found = holding(data.path(), &needle);
        assert!(found.is_empty(), "{:?} is in plaintext in {found:?}", String::from_utf8_lossy(&needle));
    }
    // And it all reads back after a restart (WAL replay, sealed segment,
    // sealed catalog snapshot).
    let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
    assert_eq!(pairs(&store, &series), samples);
    let record = store.twin(&TwinId::new("patient-7f3a9c").unwrap()).unwrap();
    assert_eq!(record.properties["diagnosis"], "type-1-diabetes-marker");
}

#[test]
fn a_deleted_twin_is_unreadable_from_a_copy_of_the_data_taken_before_the_delete() {
    let (data, keys, copy) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (alice, bob) = (key("alice", "heart_rate", None), key("bob", "heart_rate", None));
    {
        let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
        store.put_twins(&[twin("alice", "a"), twin("bob", "b")]).unwrap();
        store.write(&batch(&alice, &[(1, 61.0), (2, 62.0)])).unwrap();
        store.write(&batch(&bob, &[(1, 71.0)])).unwrap();
        store.flush().unwrap();
        store.write(&batch(&alice, &[(3, 63.0)])).unwrap();
        drop(store);
        copy_dir(data.path(), copy.path());
        let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
        assert!(store.delete_twin(&TwinId::new("alice").unwrap()).unwrap());
    }
    // The copy still holds alice's sealed bytes, but her key is gone.
    let store = open(copy.path(), Some(sealing(keys.path(), MASTER))).unwrap();
    assert!(store.twin(&TwinId::new("alice").unwrap()).is_none());
    assert!(pairs(&store, &alice).is_empty());
    assert!(store.series(&TwinId::new("alice").unwrap()).unwrap().is_empty());
    assert_eq!(pairs(&store, &bob), vec![(1, 71.0)]);
    // Compaction reclaims her space in the copy too.
    let report = store.compact().unwrap();
    assert_eq!(report.points_out, 1);
}

#[test]
fn a_sealed_store_opens_only_with_its_own_keyring_and_loses_nothing_meanwhile() {
    let (data, keys, other) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let series = key("alice", "heart_rate", None);
    {
        let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
        store.put_twin(&twin("alice", "a")).unwrap();
        store.write(&batch(&series, &[(1, 61.0)])).unwrap();
    }
    let without = open(data.path(), None).err().unwrap();
    assert!(matches!(without, StoreError::KeyringRequired { .. }), "{without}");
    let other_master = MasterKey::generate().unwrap().to_base64();
    let wrong = open(data.path(), Some(sealing(other.path(), &other_master))).err().unwrap();
    assert!(matches!(wrong, StoreError::WrongKeyring { .. }), "{wrong}");
    let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
    assert_eq!(pairs(&store, &series), vec![(1, 61.0)]);
}

#[test]
fn a_plain_store_opened_with_a_keyring_keeps_its_data_and_is_sealed_after_compaction() {
    let (data, keys) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let series = key("patient-7f3a9c", "heart_rate", None);
    {
        let store = open(data.path(), None).unwrap();
        store.put_twin(&twin("patient-7f3a9c", "type-1-diabetes-marker")).unwrap();
        store.write(&batch(&series, &[(1, VALUES[0])])).unwrap();
        store.flush().unwrap();
        store.write(&batch(&series, &[(2, VALUES[1])])).unwrap();
    }
    let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
    store.write(&batch(&series, &[(3, VALUES[2])])).unwrap();
    assert_eq!(pairs(&store, &series), vec![(1, VALUES[0]), (2, VALUES[1]), (3, VALUES[2])]);
    store.flush().unwrap();
    store.compact().unwrap();
    drop(store);
    for needle in needles() {
        let found = holding(data.path(), &needle);
        assert!(found.is_empty(), "{:?} is in plaintext in {found:?}", String::from_utf8_lossy(&needle));
    }
    let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
    assert_eq!(pairs(&store, &series).len(), 3);
}

#[test]
fn a_write_for_a_twin_never_created_is_refused_in_a_sealed_store() {
    let (data, keys) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
    let err = store.write(&batch(&key("nobody", "heart_rate", None), &[(1, 60.0)])).err().unwrap();
    assert!(matches!(err, StoreError::UnknownTwin { .. }), "{err}");
}

#[test]
fn twins_created_one_by_one_share_keyring_writes_and_numbers_survive_a_restart() {
    let (data, keys) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let key_log_bytes = || std::fs::metadata(keys.path().join("keys.log")).unwrap().len();
    {
        let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
        let before = key_log_bytes();
        for i in 0..10 {
            store.put_twin(&twin(&format!("t{i}"), "x")).unwrap();
            store.write(&batch(&key(&format!("t{i}"), "heart_rate", None), &[(1, f64::from(i))])).unwrap();
        }
        // One record of the key log: frame (8), nonce and tag (40), count
        // (4) and the 64 keys of one reservation (40 bytes each).
        let one_reservation = 8 + 40 + 4 + 64 * 40;
        assert_eq!(
            key_log_bytes(),
            before + one_reservation,
            "ten new twins took their keys from one reservation"
        );
    }
    let store = open(data.path(), Some(sealing(keys.path(), MASTER))).unwrap();
    store.put_twin(&twin("late", "x")).unwrap();
    store.write(&batch(&key("late", "heart_rate", None), &[(1, 99.0)])).unwrap();
    for i in 0..10 {
        assert_eq!(pairs(&store, &key(&format!("t{i}"), "heart_rate", None)), vec![(1, f64::from(i))]);
    }
    assert_eq!(pairs(&store, &key("late", "heart_rate", None)), vec![(1, 99.0)]);
}
