//! Keeping the API tokens and policies on disk between runs.
//!
//! A snapshot, `<dir>/state.json`, and a log of the changes made since,
//! `<dir>/state.log`:
//!
//! ```json
//! {"version": 1, "generation": 4, "tokens": [...], "policies": {"owners": {...}, "grants": [...], "last_grant_id": 3}}
//! ```
//!
//! Token records hold hashes only (see [`crate::token`]). Frequent changes
//! (owners of twins created by first writes, tokens made and revoked: an
//! [`AuthChange`]) are appended to the log, one fsynced record per call,
//! so that they cost the same with a million twins as with one. Other
//! changes, and files holding more superseded entries (twins released,
//! tokens revoked) than live ones (so compaction costs O(1) per change,
//! amortised, and creating alone never forces it), replace the snapshot
//! atomically (the new
//! text goes to `state.json.tmp`, which is fsynced, renamed over
//! `state.json`, and the directory fsynced) under the next generation,
//! and then start an empty log of that generation.
//!
//! The log is a `doppel_fs::log`: a 16-byte header (`"DPLALOG1"` plain or
//! `"DPLALOG2"` sealed, then the generation as u64 LE) and framed,
//! checksummed records, each a JSON array of changes. A log of an older
//! generation than the snapshot was folded into it already (a crash came
//! between the snapshot and the new log) and is ignored. A torn last
//! record (a crash during an append, never acknowledged) is cut off and
//! reported; a record in the middle that does not verify is an error
//! naming the file and offset.
//!
//! With encryption at rest on, the snapshot holds `[magic "DPLAUTH1"]`
//! and the JSON sealed (XChaCha20-Poly1305) under the auth key from the
//! keyring, and each log record is sealed under the same key, bound to
//! its generation and offset, so that who may see whose twin is
//! unreadable without the master key. A plain state found by a store that
//! has a key is read once and rewritten sealed.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use doppel_crypto::DataKey;
use doppel_fs::log::Appender;
use serde::{Deserialize, Serialize};

use crate::{AuthChange, AuthError, Policies, Tokens};

/// Name of the state file (the snapshot) inside the store's directory.
pub const STATE_FILE: &str = "state.json";
/// Name of the change log inside the store's directory.
pub const LOG_FILE: &str = "state.log";
/// What a log of plain records starts with.
const LOG_MAGIC_PLAIN: &[u8; 8] = b"DPLALOG1";
/// What a log of sealed records starts with.
const LOG_MAGIC_SEALED: &[u8; 8] = b"DPLALOG2";
/// Magic and generation.
const LOG_HEADER_BYTES: usize = 16;
/// Associated data of a sealed log record, before its generation and
/// offset: a record moved elsewhere, or replayed into another generation,
/// does not open.
const LOG_AAD: &[u8] = b"doppel auth log";
/// Superseded entries tolerated beyond the live ones before the log is
/// folded into a new snapshot: replaying a few thousand at start costs
/// less than a rewrite.
const MIN_SUPERSEDED_ENTRIES: u64 = 4096;
/// The format version this code writes and reads.
const STATE_VERSION: u32 = 1;
/// What a sealed state file starts with.
const SEALED_MAGIC: &[u8; 8] = b"DPLAUTH1";
/// Associated data of the sealed state: a frame from elsewhere does not
/// open as one.
const SEALED_AAD: &[u8] = b"doppel auth state";
/// Largest state file read, in bytes: a million grants fit; anything
/// larger is not a file Doppel wrote.
pub const MAX_STATE_BYTES: u64 = 512 * 1024 * 1024;

/// The API tokens and policies of one server: everything about who may do
/// what that must outlive a restart.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct AuthState {
    /// Every API token record (hashes only).
    pub tokens: Tokens,
    /// Every twin's owner and grants.
    pub policies: Policies,
}

/// The on-disk form, as written.
#[derive(Serialize)]
struct StateFileOut<'a> {
    version: u32,
    generation: u64,
    tokens: &'a Tokens,
    policies: &'a Policies,
}

/// The on-disk form, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFileIn {
    version: u32,
    /// Absent in files written before the log existed.
    #[serde(default)]
    generation: u64,
    tokens: Tokens,
    policies: Policies,
}

/// What [`AuthStore::load`] read.
#[derive(Debug)]
pub struct Loaded {
    /// The snapshot with the log's changes applied.
    pub state: AuthState,
    /// The offset of a torn last log record that was cut off: a change
    /// never acknowledged, lost to a crash during its append. The caller
    /// reports it.
    pub torn_log_at: Option<u64>,
}

/// Where a server's [`AuthState`] is kept: a directory holding
/// [`STATE_FILE`] and [`LOG_FILE`]. Clones share the open log.
#[derive(Clone, Debug)]
pub struct AuthStore {
    dir: PathBuf,
    key: Option<DataKey>,
    log: Arc<Mutex<LogState>>,
}

/// The log being appended to, and what decides when to fold it.
#[derive(Debug, Default)]
struct LogState {
    /// The generation of the snapshot, which the log continues.
    generation: u64,
    /// Entries (twins, tokens) the snapshot and the log hold, superseded
    /// ones included.
    entries: u64,
    /// The log continuing the snapshot; `None` until the first append
    /// creates it when none was loaded.
    appender: Option<Appender>,
}

impl AuthStore {
    /// A store in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        AuthStore { dir: dir.into(), key: None, log: Arc::default() }
    }

    /// The same store, its file sealed under `key` (encryption at rest).
    pub fn sealed(self, key: DataKey) -> Self {
        AuthStore { key: Some(key), ..self }
    }

    /// The state file's path, for messages.
    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The change log's path, for messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// The saved state: the snapshot and the changes logged since; an
    /// empty one when nothing was saved yet. A file that exists but cannot
    /// be read or parsed is an error naming it, never an empty state:
    /// starting without the tokens and policies would lock every user out,
    /// or worse, let a new bootstrap token in.
    pub fn load(&self) -> Result<Loaded, AuthError> {
        let (mut state, generation, snapshot_plain) = self.load_snapshot()?;
        let mut log = self.lock_log();
        *log = LogState { generation, entries: live_entries(&state), appender: None };
        let (torn_log_at, log_plain) = self.replay_log(&mut state, &mut log)?;
        drop(log);
        if self.key.is_some() && (snapshot_plain || log_plain) {
            self.save(&state)?;
        }
        Ok(Loaded { state, torn_log_at })
    }

    /// The snapshot, its generation, and whether it was plain text.
    fn load_snapshot(&self) -> Result<(AuthState, u64, bool), AuthError> {
        let path = self.path();
        let Some(stored) = self.read_bytes()? else {
            return Ok((AuthState::default(), 0, false));
        };
        let corrupt = |reason: String| AuthError::CorruptState { path: path.clone(), reason };
        let was_plain = !stored.starts_with(SEALED_MAGIC);
        let bytes = match (stored.strip_prefix(SEALED_MAGIC), &self.key) {
            (Some(sealed), Some(key)) => key.open(SEALED_AAD, sealed).map_err(|_| {
                corrupt("it does not open under the auth key (another keyring, or altered)".into())
            })?,
            (Some(_), None) => {
                return Err(corrupt(
                    "it is sealed; start with the keyring and master key that sealed it".into(),
                ));
            }
            (None, _) => stored,
        };
        let file: StateFileIn = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.version != STATE_VERSION {
            return Err(corrupt(format!(
                "format version {} is not the supported version {STATE_VERSION}",
                file.version
            )));
        }
        let state = AuthState { tokens: file.tokens, policies: file.policies };
        Ok((state, file.generation, was_plain))
    }

    /// Applies the log's changes to `state` when the log continues the
    /// snapshot, cutting off a torn last record; answers where that record
    /// was and whether the log was plain text.
    fn replay_log(
        &self,
        state: &mut AuthState,
        log: &mut LogState,
    ) -> Result<(Option<u64>, bool), AuthError> {
        let path = self.log_path();
        let corrupt = |reason: String| AuthError::CorruptState { path: path.clone(), reason };
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((None, false)),
            Err(source) => return Err(AuthError::StateFile { path: path.clone(), action: "read", source }),
        };
        let Some((sealed, generation)) = read_log_header(&bytes) else {
            return Err(corrupt("it does not start with an auth log header".into()));
        };
        if generation < log.generation {
            // Folded into the snapshot already; the first append replaces it.
            return Ok((None, false));
        }
        if generation > log.generation {
            return Err(corrupt(format!(
                "it continues generation {generation}, but {} holds generation {} (an older copy?)",
                STATE_FILE, log.generation
            )));
        }
        let records = doppel_fs::log::read(&bytes, LOG_HEADER_BYTES)
            .map_err(|damaged| corrupt(format!("the record at byte {} does not verify", damaged.offset)))?;
        for record in &records.records {
            let at = |reason: String| corrupt(format!("the record at byte {}: {reason}", record.offset));
            let json = match (sealed, &self.key) {
                (false, _) => record.payload.to_vec(),
                (true, Some(key)) => key
                    .open(&log_aad(generation, record.offset), record.payload)
                    .map_err(|_| at("it does not open under the auth key".into()))?,
                (true, None) => {
                    return Err(corrupt(
                        "it is sealed; start with the keyring and master key that sealed it".into(),
                    ));
                }
            };
            let changes: Vec<AuthChange> = serde_json::from_slice(&json).map_err(|e| at(e.to_string()))?;
            for change in &changes {
                change.apply(state).map_err(|e| at(e.to_string()))?;
                log.entries += change.entries();
            }
        }
        // Opening after the whole records cuts a torn one off, durably.
        log.appender = Some(Appender::open(&path, records.end).map_err(fs_error)?);
        Ok((records.torn_at, !sealed))
    }

    /// Appends `changes` to the log as one record, durably: when this
    /// returns, a restart finds them. The caller applies them to its state
    /// afterwards, so that memory never holds a change the disk does not.
    pub fn append(&self, changes: &[AuthChange]) -> Result<(), AuthError> {
        let path = self.log_path();
        let json = serde_json::to_vec(changes).map_err(|e| AuthError::CorruptState {
            path: path.clone(),
            reason: format!("cannot be encoded: {e}"),
        })?;
        let mut log = self.lock_log();
        let generation = log.generation;
        let appender = match &mut log.appender {
            Some(appender) => appender,
            empty => empty.insert(self.create_log(generation).map_err(fs_error)?),
        };
        let payload = match &self.key {
            None => json,
            Some(key) => key.seal(&log_aad(generation, appender.bytes()), &json).map_err(|e| {
                AuthError::CorruptState { path: path.clone(), reason: format!("cannot be sealed: {e}") }
            })?,
        };
        appender.append(&payload).map_err(fs_error)?;
        log.entries += changes.iter().map(AuthChange::entries).sum::<u64>();
        Ok(())
    }

    /// True when a failed fsync stopped the log: what it holds can no
    /// longer be vouched for, so the next change must be saved as a whole
    /// snapshot ([`AuthStore::save`]), which also starts a new log.
    pub fn log_stopped(&self) -> bool {
        self.lock_log().appender.as_ref().is_some_and(Appender::is_stopped)
    }

    /// True when the files hold more superseded entries than `state` has
    /// live ones (and a few thousand), so that folding the log into a new
    /// snapshot ([`AuthStore::save`]) costs O(1) per change it drops.
    pub fn wants_snapshot(&self, state: &AuthState) -> bool {
        let live = live_entries(state);
        self.lock_log().entries.saturating_sub(live) > live + MIN_SUPERSEDED_ENTRIES
    }

    fn lock_log(&self) -> MutexGuard<'_, LogState> {
        // The log state is replaced whole or appended to by one call; a
        // panic elsewhere leaves it consistent.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts an empty log of `generation`, replacing any other.
    fn create_log(&self, generation: u64) -> Result<Appender, doppel_fs::Error> {
        let magic = if self.key.is_some() { LOG_MAGIC_SEALED } else { LOG_MAGIC_PLAIN };
        let mut header = magic.to_vec();
        header.extend_from_slice(&generation.to_le_bytes());
        doppel_fs::create_dir_all(&self.dir, Some(&private_dir_builder())).map_err(|source| {
            doppel_fs::Error { op: doppel_fs::Op::CreateDir, path: self.dir.clone(), source }
        })?;
        doppel_fs::log::create(&self.log_path(), &private_file_options(), &header)
    }

    /// Replaces the saved state with `state`, durably and atomically, as
    /// the snapshot of the next generation, and empties the log.
    pub fn save(&self, state: &AuthState) -> Result<(), AuthError> {
        let mut log = self.lock_log();
        let generation = log.generation + 1;
        let file = StateFileOut {
            version: STATE_VERSION,
            generation,
            tokens: &state.tokens,
            policies: &state.policies,
        };
        let json = serde_json::to_vec(&file).map_err(|e| AuthError::CorruptState {
            path: self.path(),
            reason: format!("cannot be encoded: {e}"),
        })?;
        let bytes = match &self.key {
            None => json,
            Some(key) => {
                let sealed = key.seal(SEALED_AAD, &json).map_err(|e| AuthError::CorruptState {
                    path: self.path(),
                    reason: format!("cannot be sealed: {e}"),
                })?;
                [SEALED_MAGIC.as_slice(), &sealed].concat()
            }
        };
        self.write_bytes(&bytes)?;
        // The snapshot holds everything: the old log is stale from here
        // on, whether or not the new one is made now (the next append
        // retries).
        *log = LogState { generation, entries: live_entries(state), appender: None };
        log.appender = self.create_log(generation).ok();
        Ok(())
    }

    /// The file's bytes, `None` when it does not exist.
    fn read_bytes(&self) -> Result<Option<Vec<u8>>, AuthError> {
        let path = self.path();
        let io = |action, source| AuthError::StateFile { path: path.clone(), action, source };
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io("open", error)),
        };
        let length = file.metadata().map_err(|e| io("inspect", e))?.len();
        if length > MAX_STATE_BYTES {
            return Err(AuthError::CorruptState {
                path: path.clone(),
                reason: format!(
                    "it is {length} bytes, more than the {MAX_STATE_BYTES} a state file may hold"
                ),
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
        std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(|e| io("read", e))?;
        Ok(Some(bytes))
    }

    /// Writes the file's bytes: temporary file, fsync, rename, fsync of
    /// the directory. The directory and file are readable by their owner
    /// only: hashes are not secrets, but the list of who may see whose
    /// twin is nobody else's business.
    fn write_bytes(&self, bytes: &[u8]) -> Result<(), AuthError> {
        let path = self.path();
        let temporary = self.dir.join(format!("{STATE_FILE}.tmp"));
        let io = |action, source| AuthError::StateFile { path: path.clone(), action, source };
        doppel_fs::create_dir_all(&self.dir, Some(&private_dir_builder()))
            .map_err(|e| io("create the directory of", e))?;
        // A temporary file left by a crash may have other permissions.
        let _ = doppel_fs::remove_file(&temporary);
        doppel_fs::write_atomic(&path, &temporary, &private_file_options(), bytes).map_err(|e| {
            let action = match e.op {
                doppel_fs::Op::Open => "create the temporary file of",
                doppel_fs::Op::Rename => "rename the temporary file to",
                doppel_fs::Op::SyncDir => "fsync the directory of",
                other => other.as_str(),
            };
            io(action, e.source)
        })
    }
}

/// Whether a log's records are sealed, and its generation.
fn read_log_header(bytes: &[u8]) -> Option<(bool, u64)> {
    let header = bytes.get(..LOG_HEADER_BYTES)?;
    let sealed = match &header[..8] {
        magic if magic == LOG_MAGIC_PLAIN => false,
        magic if magic == LOG_MAGIC_SEALED => true,
        _ => return None,
    };
    let mut generation = [0u8; 8];
    generation.copy_from_slice(&header[8..]);
    Some((sealed, u64::from_le_bytes(generation)))
}

/// Tokens and twins with a policy: what a snapshot holds.
fn live_entries(state: &AuthState) -> u64 {
    (state.tokens.len() + state.policies.len()) as u64
}

fn fs_error(error: doppel_fs::Error) -> AuthError {
    AuthError::StateFile { path: error.path, action: error.op.as_str(), source: error.source }
}

fn log_aad(generation: u64, offset: u64) -> Vec<u8> {
    [LOG_AAD, &generation.to_le_bytes(), &offset.to_le_bytes()].concat()
}

fn private_dir_builder() -> fs::DirBuilder {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}

fn private_file_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewToken, Scopes, Subject, TokenName, UserName};
    use doppel_model::{Timestamp, TwinId};

    fn state() -> AuthState {
        let now = Timestamp::from_secs(1_700_000_000);
        let mut state = AuthState::default();
        let new = NewToken {
            name: TokenName::new("phone").unwrap(),
            user: UserName::new("alice").unwrap(),
            scopes: Scopes::standard(),
            expires: None,
        };
        state.tokens.create(new, now).unwrap();
        state.policies.claim(&TwinId::new("alice").unwrap(), Subject::User(UserName::new("alice").unwrap()));
        state
    }

    #[test]
    fn a_sealed_state_holds_no_user_in_plaintext_and_needs_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = DataKey::generate().unwrap();
        let plain = AuthStore::new(dir.path().join("auth"));
        let state = state();
        plain.save(&state).unwrap();
        let sealed = plain.clone().sealed(key);
        assert_eq!(sealed.load().unwrap().state, state);
        let bytes = std::fs::read(sealed.path()).unwrap();
        assert!(bytes.starts_with(SEALED_MAGIC), "a plain file is resealed when first loaded with a key");
        assert!(!bytes.windows(5).any(|w| w == b"alice"));
        let error = plain.load().unwrap_err().to_string();
        assert!(error.contains("sealed"), "{error}");
        let other = plain.sealed(DataKey::generate().unwrap()).load().unwrap_err().to_string();
        assert!(other.contains("does not open"), "{other}");
    }

    #[test]
    fn a_saved_state_loads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path().join("auth"));
        assert_eq!(store.load().unwrap().state, AuthState::default());
        let state = state();
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap().state, state);
        assert!(!dir.path().join("auth").join("state.json.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the state file must be private: {mode:o}");
        }
    }

    #[test]
    fn the_file_holds_no_secret_only_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path());
        let mut state = AuthState::default();
        let new = NewToken {
            name: TokenName::new("phone").unwrap(),
            user: UserName::new("alice").unwrap(),
            scopes: Scopes::standard(),
            expires: None,
        };
        let (secret, _) = state.tokens.create(new, Timestamp::from_secs(1)).unwrap();
        store.save(&state).unwrap();
        let text = fs::read_to_string(store.path()).unwrap();
        let secret_part = &secret.expose()[17..];
        assert!(!text.contains(secret_part), "{text}");
        assert!(text.contains("\"sha256\""), "{text}");
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_an_error_naming_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path());
        for text in ["{not json", r#"{"version": 2, "tokens": [], "policies": {"last_grant_id": 0}}"#] {
            fs::write(store.path(), text).unwrap();
            let error = store.load().unwrap_err();
            assert!(matches!(error, AuthError::CorruptState { .. }), "{error}");
            assert!(error.to_string().contains("state.json"), "{error}");
        }
    }

    fn claim(twins: &[&str], owner: &str) -> AuthChange {
        AuthChange::Claim {
            owner: Subject::User(UserName::new(owner).unwrap()),
            twins: twins.iter().map(|t| TwinId::new(t).unwrap()).collect(),
        }
    }

    /// Appends `change` and applies it, as the server does.
    fn record(store: &AuthStore, state: &mut AuthState, change: AuthChange) {
        store.append(std::slice::from_ref(&change)).unwrap();
        change.apply(state).unwrap();
    }

    #[test]
    fn logged_changes_survive_a_restart_on_top_of_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let key = DataKey::generate().unwrap();
        let store = AuthStore::new(dir.path()).sealed(key.clone());
        let mut state = state();
        store.save(&state).unwrap();
        record(&store, &mut state, claim(&["carol-1", "carol-2"], "carol"));
        record(&store, &mut state, AuthChange::Release { twins: vec![TwinId::new("carol-2").unwrap()] });
        let (_, token) = state
            .tokens
            .mint(
                NewToken {
                    name: TokenName::new("watch").unwrap(),
                    user: UserName::new("carol").unwrap(),
                    scopes: Scopes::standard(),
                    expires: None,
                },
                Timestamp::from_secs(5),
            )
            .unwrap();
        let id = token.id;
        record(&store, &mut state, AuthChange::TokenCreated(token));
        record(&store, &mut state, AuthChange::TokenRevoked { id, at: Timestamp::from_secs(9) });
        let reopened = AuthStore::new(dir.path()).sealed(key);
        let loaded = reopened.load().unwrap();
        assert_eq!(loaded.state, state);
        assert_eq!(loaded.torn_log_at, None);
        let log = fs::read(reopened.log_path()).unwrap();
        assert!(!log.windows(5).any(|w| w == b"carol"), "log records are sealed");
        // Appending after a reopen continues the same log.
        record(&reopened, &mut state, claim(&["dave"], "dave"));
        let error = AuthStore::new(dir.path()).sealed(DataKey::generate().unwrap()).load().unwrap_err();
        assert!(error.to_string().contains("does not open"), "{error}");
    }

    #[test]
    fn a_torn_last_record_is_cut_and_reported_and_damage_before_the_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path());
        let mut state = state();
        store.save(&state).unwrap();
        record(&store, &mut state, claim(&["kept"], "alice"));
        let kept = fs::metadata(store.log_path()).unwrap().len();
        store.append(&[claim(&["torn"], "alice")]).unwrap();
        let whole = fs::read(store.log_path()).unwrap();
        fs::write(store.log_path(), &whole[..whole.len() - 3]).unwrap();
        let loaded = AuthStore::new(dir.path()).load().unwrap();
        assert_eq!(loaded.state, state);
        assert_eq!(loaded.torn_log_at, Some(kept));
        assert_eq!(fs::metadata(store.log_path()).unwrap().len(), kept, "the torn record is cut off");

        let mut damaged = whole.clone();
        damaged[LOG_HEADER_BYTES + 10] ^= 1;
        fs::write(store.log_path(), &damaged).unwrap();
        let error = AuthStore::new(dir.path()).load().unwrap_err().to_string();
        assert!(error.contains("state.log") && error.contains("byte 16"), "{error}");
    }

    #[test]
    fn a_snapshot_folds_the_log_and_a_stale_log_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path());
        let mut state = state();
        store.save(&state).unwrap();
        record(&store, &mut state, claim(&["erin"], "erin"));
        let stale = fs::read(store.log_path()).unwrap();
        store.save(&state).unwrap();
        assert_eq!(fs::metadata(store.log_path()).unwrap().len(), LOG_HEADER_BYTES as u64);
        // A crash between the snapshot and the new log leaves the old one.
        fs::write(store.log_path(), &stale).unwrap();
        let reopened = AuthStore::new(dir.path());
        assert_eq!(reopened.load().unwrap().state, state);
        record(&reopened, &mut state, claim(&["frank"], "frank"));
        assert_eq!(AuthStore::new(dir.path()).load().unwrap().state, state);
    }
}
