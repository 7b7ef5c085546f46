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
//! New keys are not written into their shards at once: each
//! [`Keyring::create_many`] appends one record to `<dir>/keys.log` (a
//! `doppel_fs::log`) with one fsync, so creating a key costs the same with
//! a million keys as with one:
//!
//! ```text
//! header = [magic "DPLKLOG1"][master key id, 8 bytes]
//! record payload = sealed(u32 LE count, then count × (u64 LE twin number, 32-byte key))
//! associated data = magic ‖ master key id ‖ u64 LE record offset
//! ```
//!
//! The log is folded into the shards (every shard holding a logged key is
//! rewritten, then an empty log replaces the old one) by `destroy` of a
//! logged key, so that no file keeps a destroyed key, and by `rotate`.
//! Creating keys alone never folds it: the log holds no superseded entry
//! (a destroyed key is folded out at once), so it is no larger than the
//! shards would be, and replaying it at start costs what reading them
//! does. Opening replays the log after the shards; a torn last
//! record (a crash during its append, never acknowledged) is cut off and
//! reported by [`Keyring::torn_log_at`].
//!
//! A shard is replaced atomically (temporary file, fsync, rename, fsync of
//! the directory) before the call that changed it returns, so a destroyed
//! key is gone from the keyring when `destroy` returns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use doppel_fs::log::Appender;
use parking_lot::{Mutex, MutexGuard, RwLock};
use zeroize::Zeroizing;

use crate::key::KEY_BYTES;
use crate::seal::{open_with, seal_with};
use crate::{CryptoError, DataKey, KeyId, MasterKey};

/// Number of shard files; a power of two so a number's shard is its low byte.
const SHARDS: usize = crate::KEYRING_SHARDS as usize;
const MAGIC: &[u8; 8] = b"DPLKEY01";
const HEADER_BYTES: usize = 16;
const ENTRY_BYTES: usize = 8 + KEY_BYTES;
const LOG_FILE: &str = "keys.log";
const LOG_MAGIC: &[u8; 8] = b"DPLKLOG1";

/// Data keys by twin number, persisted under the master key.
pub struct Keyring {
    dir: PathBuf,
    master: RwLock<MasterKey>,
    shards: Box<[RwLock<BTreeMap<u64, DataKey>>]>,
    /// Serialises every change on disk (log appends, shard rewrites), so
    /// two changes to one file cannot race.
    writing: Mutex<KeyLog>,
    torn_log_at: Option<u64>,
}

/// The key log being appended to.
#[derive(Default)]
struct KeyLog {
    /// `None` until the first append creates it when none was loaded.
    appender: Option<Appender>,
    /// The numbers whose keys the log holds and their shards may not.
    numbers: BTreeSet<u64>,
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
        let mut keyring = Self {
            dir: dir.to_path_buf(),
            master: RwLock::new(master),
            shards: (0..SHARDS).map(|_| RwLock::new(BTreeMap::new())).collect(),
            writing: Mutex::new(KeyLog::default()),
            torn_log_at: None,
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
        let log_current = keyring.replay_log(&previous)?;
        let mut log = keyring.writing.lock();
        if !log_current {
            // Sealed under an earlier master: fold it, under the current one.
            stale.extend(log.numbers.iter().map(|&n| shard_of(n)));
        }
        stale.sort_unstable();
        stale.dedup();
        for shard in stale {
            keyring.persist(&log, shard)?;
        }
        if !log_current {
            keyring.fold(&mut log)?;
        }
        drop(log);
        Ok(keyring)
    }

    /// Adds the keys of the log to the shards; answers whether the log (if
    /// any) is sealed under the current master key.
    fn replay_log(&mut self, previous: &[MasterKey]) -> Result<bool, CryptoError> {
        let path = self.dir.join(LOG_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(CryptoError::Io { op: "read", path, source: e }),
        };
        let corrupt = |reason: String| CryptoError::CorruptShard { path: path.clone(), reason };
        if bytes.len() < HEADER_BYTES || &bytes[..8] != LOG_MAGIC {
            return Err(corrupt("missing key log magic".into()));
        }
        let current = self.master.read();
        let master = find_master(&path, &bytes[8..16], &current, previous)?;
        let records = doppel_fs::log::read(&bytes, HEADER_BYTES)
            .map_err(|damaged| corrupt(format!("the record at byte {} does not verify", damaged.offset)))?;
        let log = self.writing.get_mut();
        for record in &records.records {
            let payload = Zeroizing::new(
                open_with(master.bytes(), &log_aad(master.id(), record.offset), record.payload).map_err(
                    |_| {
                        corrupt(format!(
                            "the record at byte {} does not open under its master key",
                            record.offset
                        ))
                    },
                )?,
            );
            let keys = decode_keys(&payload)
                .map_err(|reason| corrupt(format!("the record at byte {}: {reason}", record.offset)))?;
            for (number, key) in keys {
                self.shards[shard_of(number)].get_mut().insert(number, key);
                log.numbers.insert(number);
            }
        }
        let under_current = master.id() == current.id();
        drop(current);
        // Opening after the whole records cuts a torn one off, durably.
        log.appender = Some(Appender::open(&path, records.end).map_err(fs_error)?);
        self.torn_log_at = records.torn_at;
        Ok(under_current)
    }

    /// The offset of a torn last record of the key log that opening cut
    /// off: keys of a creation that crashed before it returned. The caller
    /// reports it.
    pub fn torn_log_at(&self) -> Option<u64> {
        self.torn_log_at
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

    /// Creates keys for several new numbers, durably, with one appended
    /// record of the key log and one fsync. Fails without creating any
    /// when one of them already has a key.
    pub fn create_many(&self, numbers: &[u64]) -> Result<Vec<DataKey>, CryptoError> {
        let mut log = self.writing.lock();
        if let Some(&taken) = numbers.iter().find(|&&n| self.get(n).is_some()) {
            return Err(CryptoError::KeyExists(taken));
        }
        let keys = numbers.iter().map(|_| DataKey::generate()).collect::<Result<Vec<_>, _>>()?;
        let mut payload = Zeroizing::new(Vec::with_capacity(4 + numbers.len() * ENTRY_BYTES));
        encode_keys(&mut payload, numbers.iter().copied().zip(&keys));
        let path = self.dir.join(LOG_FILE);
        let appender = match &mut log.appender {
            Some(appender) => appender,
            empty => empty.insert(self.create_log()?),
        };
        let master = self.master.read();
        let sealed = seal_with(master.bytes(), &log_aad(master.id(), appender.bytes()), &payload)?;
        drop(master);
        appender.append(&sealed).map_err(|e| CryptoError::Io {
            op: e.op.as_str(),
            path,
            source: e.source,
        })?;
        for (&number, key) in numbers.iter().zip(&keys) {
            self.shards[shard_of(number)].write().insert(number, key.clone());
            log.numbers.insert(number);
        }
        Ok(keys)
    }

    /// Destroys twin `number`'s data key: everything sealed under it is
    /// unreadable from the moment this returns, and no file of the keyring
    /// holds it. True when a key existed.
    pub fn destroy(&self, number: u64) -> Result<bool, CryptoError> {
        let mut log = self.writing.lock();
        let shard = shard_of(number);
        let Some(key) = self.shards[shard].write().remove(&number) else { return Ok(false) };
        let written = if log.numbers.contains(&number) {
            // The log holds the key: every logged key goes to its shard,
            // then the log is emptied.
            self.fold(&mut log)
        } else {
            self.persist(&log, shard)
        };
        if let Err(e) = written {
            // A file on disk still holds the key, so the destruction did
            // not happen: keep using it, as a restart would.
            self.shards[shard].write().insert(number, key);
            return Err(e);
        }
        log.numbers.remove(&number);
        Ok(true)
    }

    /// Reseals every shard, and the key log, under `new_master` while keys
    /// stay usable; the old master key is not needed afterwards.
    pub fn rotate(&self, new_master: MasterKey) -> Result<(), CryptoError> {
        let mut log = self.writing.lock();
        *self.master.write() = new_master;
        (0..SHARDS).try_for_each(|shard| self.persist(&log, shard))?;
        self.start_empty_log(&mut log)
    }

    /// Writes every logged key into its shard, then empties the log.
    fn fold(&self, log: &mut MutexGuard<'_, KeyLog>) -> Result<(), CryptoError> {
        let mut shards: Vec<usize> = log.numbers.iter().map(|&n| shard_of(n)).collect();
        shards.sort_unstable();
        shards.dedup();
        shards.into_iter().try_for_each(|shard| self.persist(log, shard))?;
        self.start_empty_log(log)
    }

    /// Replaces the key log with an empty one under the current master.
    fn start_empty_log(&self, log: &mut MutexGuard<'_, KeyLog>) -> Result<(), CryptoError> {
        log.appender = Some(self.create_log()?);
        log.numbers.clear();
        Ok(())
    }

    fn create_log(&self) -> Result<Appender, CryptoError> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut header = LOG_MAGIC.to_vec();
        header.extend_from_slice(&self.master.read().id().0);
        let mut options = doppel_fs::replace_options();
        options.mode(0o600);
        doppel_fs::log::create(&self.dir.join(LOG_FILE), &options, &header).map_err(fs_error)
    }

    /// Rewrites one shard from memory (or removes it when empty); the
    /// caller holds `writing`, whose content is `_log`.
    fn persist(&self, _log: &KeyLog, shard: usize) -> Result<(), CryptoError> {
        let path = shard_path(&self.dir, shard);
        let payload = {
            let keys = self.shards[shard].read();
            if keys.is_empty() {
                return remove_shard(&self.dir, &path);
            }
            let mut payload = Zeroizing::new(Vec::with_capacity(4 + keys.len() * ENTRY_BYTES));
            encode_keys(&mut payload, keys.iter().map(|(&number, key)| (number, key)));
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
    let master = find_master(path, &bytes[8..16], current, previous)?;
    let found = master.id();
    let payload = Zeroizing::new(
        open_with(master.bytes(), &associated_data(shard, found), &bytes[HEADER_BYTES..])
            .map_err(|_| corrupt("does not authenticate under its master key (altered or truncated)"))?,
    );
    let mut keys = BTreeMap::new();
    for (number, key) in decode_keys(&payload).map_err(|reason| corrupt(&reason))? {
        if shard_of(number) != shard {
            return Err(corrupt(&format!("twin number {number} does not belong in this shard")));
        }
        keys.insert(number, key);
    }
    Ok((keys, master.id() == current.id()))
}

/// The configured master key whose id is `id` (8 bytes from a file's
/// header).
fn find_master<'a>(
    path: &Path,
    id: &[u8],
    current: &'a MasterKey,
    previous: &'a [MasterKey],
) -> Result<&'a MasterKey, CryptoError> {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(id);
    let found = KeyId(bytes);
    std::iter::once(current).chain(previous).find(|m| m.id() == found).ok_or_else(|| {
        let configured: Vec<String> =
            std::iter::once(current).chain(previous).map(|m| m.id().to_string()).collect();
        CryptoError::WrongMasterKey { path: path.to_path_buf(), found, configured: configured.join(", ") }
    })
}

/// `u32 LE count, then count × (u64 LE number, key)`: a shard's payload
/// and a key log record's.
fn encode_keys<'a>(out: &mut Vec<u8>, keys: impl ExactSizeIterator<Item = (u64, &'a DataKey)>) {
    out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
    for (number, key) in keys {
        out.extend_from_slice(&number.to_le_bytes());
        out.extend_from_slice(key.bytes());
    }
}

fn decode_keys(payload: &[u8]) -> Result<Vec<(u64, DataKey)>, String> {
    let count = payload.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let entries = payload.get(4..).unwrap_or_default();
    if count.is_none_or(|count| entries.len() != count * ENTRY_BYTES) {
        return Err("entry count does not match its length".to_owned());
    }
    Ok(entries
        .chunks_exact(ENTRY_BYTES)
        .map(|entry| {
            let mut number = [0u8; 8];
            number.copy_from_slice(&entry[..8]);
            let mut key = Zeroizing::new([0u8; KEY_BYTES]);
            key.copy_from_slice(&entry[8..]);
            (u64::from_le_bytes(number), DataKey::from_bytes(key))
        })
        .collect())
}

fn log_aad(master: KeyId, offset: u64) -> [u8; 24] {
    let mut aad = [0u8; 24];
    aad[..8].copy_from_slice(LOG_MAGIC);
    aad[8..16].copy_from_slice(&master.0);
    aad[16..].copy_from_slice(&offset.to_le_bytes());
    aad
}

fn fs_error(e: doppel_fs::Error) -> CryptoError {
    CryptoError::Io { op: e.op.as_str(), path: e.path, source: e.source }
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
        // The key log held it: it is folded into the shards and emptied.
        let log = std::fs::read(dir.path().join(LOG_FILE)).unwrap();
        assert_eq!(log.len(), HEADER_BYTES, "the key log holds no record after the destroy");
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
        let keyring = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        keyring.create(9).unwrap();
        keyring.create(9 + 256).unwrap();
        // Destroying a logged key writes every logged key to its shard.
        keyring.destroy(9 + 256).unwrap();
        drop(keyring);
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

    #[test]
    fn a_torn_key_log_record_is_cut_and_reported_and_the_keys_before_it_kept() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate().unwrap();
        let keyring = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        let kept = keyring.create_many(&[1, 2]).unwrap();
        let kept_end = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        keyring.create(3).unwrap();
        drop(keyring);
        let log = std::fs::read(dir.path().join(LOG_FILE)).unwrap();
        std::fs::write(dir.path().join(LOG_FILE), &log[..log.len() - 5]).unwrap();
        let reopened = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        assert_eq!(reopened.torn_log_at(), Some(kept_end));
        assert_eq!(reopened.get(2).unwrap().bytes(), kept[1].bytes());
        assert!(reopened.get(3).is_none());
        reopened.create(3).unwrap();
        drop(reopened);
        let again = Keyring::open(dir.path(), master, Vec::new()).unwrap();
        assert_eq!((again.len(), again.torn_log_at()), (3, None));
    }
}
