//! The keyring: every twin's data key, sealed under the master key, in
//! [`SHARDS`] files so that creating or destroying one key rewrites a
//! small file rather than all of them.
//!
//! Shard file `<dir>/<xx>.keys` (`xx` = twin number mod 256, two hex
//! digits):
//!
//! ```text
//! [magic "DPLKEY01"][master key id, 8 bytes][sealed payload]
//! payload = u32 LE count, then count × (u64 LE twin number, 32-byte key)
//! associated data = magic ‖ shard index (u8) ‖ master key id
//! ```
//!
//! A shard is replaced atomically (temporary file, fsync, rename, fsync of
//! the directory) before the call that changed it returns, so a destroyed
//! key is gone from the keyring when `destroy` returns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use zeroize::Zeroizing;

use crate::key::KEY_BYTES;
use crate::seal::{open_with, seal_with};
use crate::{CryptoError, DataKey, KeyId, MasterKey};

/// Number of shard files; a power of two so a number's shard is its low byte.
const SHARDS: usize = crate::KEYRING_SHARDS as usize;
const MAGIC: &[u8; 8] = b"DPLKEY01";
const HEADER_BYTES: usize = 16;
const ENTRY_BYTES: usize = 8 + KEY_BYTES;

/// Data keys by twin number, persisted under the master key.
pub struct Keyring {
    dir: PathBuf,
    master: RwLock<MasterKey>,
    shards: Box<[RwLock<BTreeMap<u64, DataKey>>]>,
    /// Serialises shard rewrites so two changes to one shard cannot race
    /// their renames.
    writing: Mutex<()>,
}

fn shard_of(number: u64) -> usize {
    (number % SHARDS as u64) as usize
}

fn shard_path(dir: &Path, shard: usize) -> PathBuf {
    dir.join(format!("{shard:02x}.keys"))
}

fn associated_data(shard: usize, id: KeyId) -> [u8; 17] {
    let mut aad = [0u8; 17];
    aad[..8].copy_from_slice(MAGIC);
    aad[8] = shard as u8;
    aad[9..].copy_from_slice(&id.0);
    aad
}

impl Keyring {
    /// Opens (or creates) the keyring in `dir` under `master`. Shards
    /// sealed under one of `previous` (an earlier master key) are read and
    /// resealed under `master`, which completes an interrupted rotation.
    pub fn open(dir: &Path, master: MasterKey, previous: Vec<MasterKey>) -> Result<Self, CryptoError> {
        create_private_dir(dir)?;
        let keyring = Self {
            dir: dir.to_path_buf(),
            master: RwLock::new(master),
            shards: (0..SHARDS).map(|_| RwLock::new(BTreeMap::new())).collect(),
            writing: Mutex::new(()),
        };
        let mut stale = Vec::new();
        for shard in 0..SHARDS {
            let path = shard_path(dir, shard);
            let _ = doppel_fs::remove_file(&path.with_extension("keys.tmp"));
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CryptoError::Io { op: "read", path, source: e }),
            };
            let current = keyring.master.read();
            let (keys, under_current) = read_shard(&path, shard, &bytes, &current, &previous)?;
            drop(current);
            *keyring.shards[shard].write() = keys;
            if !under_current {
                stale.push(shard);
            }
        }
        for shard in stale {
            keyring.persist(shard)?;
        }
        Ok(keyring)
    }

    /// The id of the master key new shards are sealed under.
    pub fn master_id(&self) -> KeyId {
        self.master.read().id()
    }

    /// Number of data keys held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// True when no data key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The data key of twin `number`, if it has one (it has none once
    /// destroyed).
    pub fn get(&self, number: u64) -> Option<DataKey> {
        self.shards[shard_of(number)].read().get(&number).cloned()
    }

    /// The key of `number`, created and durably stored first if it has
    /// none: for the keys Doppel itself seals under (see
    /// [`RESERVED_NUMBERS`](crate::RESERVED_NUMBERS)), which exist from the
    /// first start on.
    pub fn get_or_create(&self, number: u64) -> Result<DataKey, CryptoError> {
        match self.get(number) {
            Some(key) => Ok(key),
            None => self.create(number),
        }
    }

    /// The highest number that has a key, so that numbers handed out later
    /// stay above every number ever used (a destroyed key's number is not
    /// reused while the keyring remembers higher ones).
    pub fn max_number(&self) -> Option<u64> {
        self.shards.iter().filter_map(|s| s.read().keys().next_back().copied()).max()
    }

    /// Creates and durably stores a data key for a new twin number.
    pub fn create(&self, number: u64) -> Result<DataKey, CryptoError> {
        let mut created = self.create_many(&[number])?;
        Ok(created.remove(0))
    }

    /// Creates keys for several new numbers, rewriting each affected shard
    /// once. Fails without creating any when one of them already has a key.
    pub fn create_many(&self, numbers: &[u64]) -> Result<Vec<DataKey>, CryptoError> {
        if let Some(&taken) = numbers.iter().find(|&&n| self.get(n).is_some()) {
            return Err(CryptoError::KeyExists(taken));
        }
        let keys = numbers.iter().map(|_| DataKey::generate()).collect::<Result<Vec<_>, _>>()?;
        let mut touched: Vec<usize> = numbers.iter().map(|&n| shard_of(n)).collect();
        touched.sort_unstable();
        touched.dedup();
        for (&number, key) in numbers.iter().zip(&keys) {
            self.shards[shard_of(number)].write().insert(number, key.clone());
        }
        if let Err(e) = touched.into_iter().try_for_each(|shard| self.persist(shard)) {
            // None of the keys is handed out, so none may stay: a retry
            // with the same numbers must not find them taken.
            for &number in numbers {
                self.shards[shard_of(number)].write().remove(&number);
            }
            return Err(e);
        }
        Ok(keys)
    }

    /// Destroys twin `number`'s data key: everything sealed under it is
    /// unreadable from the moment this returns. True when a key existed.
    pub fn destroy(&self, number: u64) -> Result<bool, CryptoError> {
        let shard = shard_of(number);
        let Some(key) = self.shards[shard].write().remove(&number) else { return Ok(false) };
        if let Err(e) = self.persist(shard) {
            // The shard on disk still holds the key, so the destruction did
            // not happen: keep using it, as a restart would.
            self.shards[shard].write().insert(number, key);
            return Err(e);
        }
        Ok(true)
    }

    /// Reseals every shard under `new_master` while keys stay usable; the
    /// old master key is not needed afterwards.
    pub fn rotate(&self, new_master: MasterKey) -> Result<(), CryptoError> {
        *self.master.write() = new_master;
        (0..SHARDS).try_for_each(|shard| self.persist(shard))
    }

    /// Rewrites one shard from memory (or removes it when empty).
    fn persist(&self, shard: usize) -> Result<(), CryptoError> {
        let _writing = self.writing.lock();
        let path = shard_path(&self.dir, shard);
        let payload = {
            let keys = self.shards[shard].read();
            if keys.is_empty() {
                return remove_shard(&self.dir, &path);
            }
            let mut payload = Zeroizing::new(Vec::with_capacity(4 + keys.len() * ENTRY_BYTES));
            payload.extend_from_slice(&(keys.len() as u32).to_le_bytes());
            for (number, key) in keys.iter() {
                payload.extend_from_slice(&number.to_le_bytes());
                payload.extend_from_slice(key.bytes());
            }
            payload
        };
        let master = self.master.read();
        let sealed = seal_with(master.bytes(), &associated_data(shard, master.id()), &payload)?;
        let mut bytes = Vec::with_capacity(HEADER_BYTES + sealed.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&master.id().0);
        bytes.extend_from_slice(&sealed);
        drop(master);
        write_atomically(&path, &bytes)
    }
}

/// Decodes one shard file; the flag says whether it was sealed under the
/// current master key.
fn read_shard(
    path: &Path,
    shard: usize,
    bytes: &[u8],
    current: &MasterKey,
    previous: &[MasterKey],
) -> Result<(BTreeMap<u64, DataKey>, bool), CryptoError> {
    let corrupt =
        |reason: &str| CryptoError::CorruptShard { path: path.to_path_buf(), reason: reason.to_owned() };
    if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
        return Err(corrupt("missing keyring magic"));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[8..16]);
    let found = KeyId(id);
    let master = std::iter::once(current).chain(previous).find(|m| m.id() == found).ok_or_else(|| {
        let configured: Vec<String> =
            std::iter::once(current).chain(previous).map(|m| m.id().to_string()).collect();
        CryptoError::WrongMasterKey { path: path.to_path_buf(), found, configured: configured.join(", ") }
    })?;
    let payload = Zeroizing::new(
        open_with(master.bytes(), &associated_data(shard, found), &bytes[HEADER_BYTES..])
            .map_err(|_| corrupt("does not authenticate under its master key (altered or truncated)"))?,
    );
    let count = payload.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let entries = payload.get(4..).unwrap_or_default();
    if count.is_none_or(|count| entries.len() != count * ENTRY_BYTES) {
        return Err(corrupt("entry count does not match its length"));
    }
    let mut keys = BTreeMap::new();
    for entry in entries.chunks_exact(ENTRY_BYTES) {
        let mut number = [0u8; 8];
        number.copy_from_slice(&entry[..8]);
        let number = u64::from_le_bytes(number);
        if shard_of(number) != shard {
            return Err(corrupt(&format!("twin number {number} does not belong in this shard")));
        }
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        key.copy_from_slice(&entry[8..]);
        keys.insert(number, DataKey::from_bytes(key));
    }
    Ok((keys, master.id() == current.id()))
}

fn create_private_dir(dir: &Path) -> Result<(), CryptoError> {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    doppel_fs::create_dir_all(dir, Some(&builder)).map_err(CryptoError::io("create", dir))
}

/// Replaces a shard file: temporary file, fsync, rename, fsync of the
/// directory, so that a failure leaves the old shard whole.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CryptoError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("keys.tmp");
    let mut options = doppel_fs::replace_options();
    options.mode(0o600);
    doppel_fs::write_atomic(path, &tmp, &options, bytes).map_err(|e| CryptoError::Io {
        op: e.op.as_str(),
        path: e.path,
        source: e.source,
    })
}

fn remove_shard(dir: &Path, path: &Path) -> Result<(), CryptoError> {
    match doppel_fs::remove_file(path) {
        Ok(()) => doppel_fs::sync_dir(dir).map_err(CryptoError::io("fsync", dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CryptoError::Io { op: "remove", path: path.to_path_buf(), source: e }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master_copy(master: &MasterKey) -> MasterKey {
        MasterKey::from_base64("test", master.to_base64().as_bytes()).unwrap()
    }

    #[test]
    fn keys_survive_a_reopen_and_destroyed_keys_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate().unwrap();
        let keyring = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        let keys = keyring.create_many(&[1, 257, 2]).unwrap();
        let sealed = keys[1].seal(b"a", b"spo2 97").unwrap();
        assert!(matches!(keyring.create(2), Err(CryptoError::KeyExists(2))));
        assert!(keyring.destroy(1).unwrap());
        assert!(!keyring.destroy(1).unwrap());
        drop(keyring);

        let keyring = Keyring::open(dir.path(), master, Vec::new()).unwrap();
        assert_eq!(keyring.len(), 2);
        assert!(keyring.get(1).is_none());
        assert_eq!(keyring.get(257).unwrap().open(b"a", &sealed).unwrap(), b"spo2 97");
    }

    #[test]
    fn a_destroyed_key_is_gone_from_the_files_not_just_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate().unwrap();
        let keyring = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        let doomed = keyring.create(42).unwrap();
        keyring.create(42 + 256).unwrap();
        keyring.destroy(42).unwrap();
        // Open the shard with the master key and look for the key bytes.
        let path = shard_path(dir.path(), shard_of(42));
        let bytes = std::fs::read(&path).unwrap();
        let (keys, _) = read_shard(&path, shard_of(42), &bytes, &master, &[]).unwrap();
        assert!(!keys.contains_key(&42));
        assert!(keys.values().all(|k| k.bytes() != doomed.bytes()));
        assert!(!bytes.windows(KEY_BYTES).any(|w| w == doomed.bytes()));
    }

    #[test]
    fn the_wrong_master_key_is_named_not_mistaken_for_damage() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate().unwrap();
        let id = master.id();
        Keyring::open(dir.path(), master, Vec::new()).unwrap().create(5).unwrap();
        let other = MasterKey::generate().unwrap();
        let err = Keyring::open(dir.path(), other, Vec::new()).err().unwrap();
        assert!(matches!(err, CryptoError::WrongMasterKey { found, .. } if found == id), "{err}");
    }

    #[test]
    fn altered_shards_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate().unwrap();
        Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap().create(9).unwrap();
        let path = shard_path(dir.path(), 9);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Keyring::open(dir.path(), master, Vec::new()).err().unwrap();
        assert!(matches!(err, CryptoError::CorruptShard { .. }), "{err}");
    }

    #[test]
    fn rotation_reseals_under_the_new_master_and_retires_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let old = MasterKey::generate().unwrap();
        let new = MasterKey::generate().unwrap();
        let keyring = Keyring::open(dir.path(), master_copy(&old), Vec::new()).unwrap();
        let key = keyring.create(3).unwrap();
        let sealed = key.seal(b"", b"hrv 41").unwrap();
        keyring.rotate(master_copy(&new)).unwrap();
        assert_eq!(keyring.master_id(), new.id());
        assert_eq!(keyring.get(3).unwrap().open(b"", &sealed).unwrap(), b"hrv 41");
        drop(keyring);
        assert!(Keyring::open(dir.path(), master_copy(&old), Vec::new()).is_err());
        let reopened = Keyring::open(dir.path(), new, Vec::new()).unwrap();
        assert_eq!(reopened.get(3).unwrap().open(b"", &sealed).unwrap(), b"hrv 41");
    }

    #[test]
    fn opening_with_the_previous_master_listed_finishes_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let old = MasterKey::generate().unwrap();
        let new = MasterKey::generate().unwrap();
        Keyring::open(dir.path(), master_copy(&old), Vec::new()).unwrap().create(11).unwrap();
        Keyring::open(dir.path(), master_copy(&new), vec![old]).unwrap();
        let reopened = Keyring::open(dir.path(), new, Vec::new()).unwrap();
        assert!(reopened.get(11).is_some());
    }
}
