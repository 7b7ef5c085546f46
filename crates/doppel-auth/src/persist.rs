//! Keeping the API tokens and policies on disk between runs.
//!
//! Everything lives in one small JSON file, `<dir>/state.json`:
//!
//! ```json
//! {"version": 1, "tokens": [...], "policies": {"owners": {...}, "grants": [...], "last_grant_id": 3}}
//! ```
//!
//! Token records hold hashes only (see [`crate::token`]). The file is
//! rewritten whole after every change, atomically: the new text goes to
//! `state.json.tmp`, which is fsynced, renamed over `state.json`, and the
//! directory fsynced, so a crash leaves either the old file or the new one.
//!
//! With encryption at rest on, the file holds `[magic "DPLAUTH1"]` and the
//! JSON sealed (XChaCha20-Poly1305) under the auth key from the keyring, so
//! that who may see whose twin is unreadable without the master key. A
//! plain file found by a store that has a key is read once and rewritten
//! sealed.

use std::fs::{self, File};
use std::path::PathBuf;

use doppel_crypto::DataKey;
use serde::{Deserialize, Serialize};

use crate::{AuthError, Policies, Tokens};

/// Name of the state file inside the store's directory.
pub const STATE_FILE: &str = "state.json";
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
    tokens: &'a Tokens,
    policies: &'a Policies,
}

/// The on-disk form, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFileIn {
    version: u32,
    tokens: Tokens,
    policies: Policies,
}

/// Where a server's [`AuthState`] is kept: a directory holding
/// [`STATE_FILE`]. Loads and saves whole states; holds no state itself.
#[derive(Clone, Debug)]
pub struct AuthStore {
    dir: PathBuf,
    key: Option<DataKey>,
}

impl AuthStore {
    /// A store in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        AuthStore { dir: dir.into(), key: None }
    }

    /// The same store, its file sealed under `key` (encryption at rest).
    pub fn sealed(self, key: DataKey) -> Self {
        AuthStore { key: Some(key), ..self }
    }

    /// The state file's path, for messages.
    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The saved state; an empty one when nothing was saved yet. A file
    /// that exists but cannot be read or parsed is an error naming it,
    /// never an empty state: starting without the tokens and policies
    /// would lock every user out, or worse, let a new bootstrap token in.
    pub fn load(&self) -> Result<AuthState, AuthError> {
        let path = self.path();
        let Some(stored) = self.read_bytes()? else {
            return Ok(AuthState::default());
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
        if self.key.is_some() && was_plain {
            self.save(&state)?;
        }
        Ok(state)
    }

    /// Replaces the saved state with `state`, durably and atomically.
    pub fn save(&self, state: &AuthState) -> Result<(), AuthError> {
        let file = StateFileOut { version: STATE_VERSION, tokens: &state.tokens, policies: &state.policies };
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
        self.write_bytes(&bytes)
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
        assert_eq!(sealed.load().unwrap(), state);
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
        assert_eq!(store.load().unwrap(), AuthState::default());
        let state = state();
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap(), state);
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
}
