//! The master key: where it comes from and how it is named.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::CryptoError;

/// Bytes in every key Doppel uses (XChaCha20-Poly1305 keys).
pub(crate) const KEY_BYTES: usize = 32;

/// A short public name for a master key, recorded beside what it seals so
/// that a wrong or missing key is reported as such rather than as damage.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct KeyId(pub(crate) [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The key that seals the keyring. Doppel never writes it anywhere; it is
/// read at start from a file, an environment variable or a command (a
/// secrets manager's CLI, say).
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_BYTES]>,
    id: KeyId,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// Where the master key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterKeySource {
    /// A file holding the key as base64 text or as 32 raw bytes.
    File(PathBuf),
    /// An environment variable holding the key as base64.
    Env(String),
    /// A shell command whose standard output is the key as base64.
    Command(String),
}

impl MasterKeySource {
    /// Reads the key.
    pub fn load(&self) -> Result<MasterKey, CryptoError> {
        match self {
            Self::File(path) => {
                let bytes = std::fs::read(path).map_err(CryptoError::io("read", path))?;
                let name = path.display().to_string();
                if bytes.len() == KEY_BYTES {
                    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
                    key.copy_from_slice(&bytes);
                    return Ok(MasterKey::from_bytes(key));
                }
                MasterKey::from_base64(&name, &Zeroizing::new(bytes))
            }
            Self::Env(var) => {
                let name = format!("environment variable {var}");
                let text = std::env::var(var).map_err(|e| bad(&name, &e.to_string()))?;
                MasterKey::from_base64(&name, &Zeroizing::new(text.into_bytes()))
            }
            Self::Command(command) => {
                let name = format!("command `{command}`");
                let output = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| bad(&name, &format!("cannot run it: {e}")))?;
                if !output.status.success() {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    let excerpt: String = stderr.trim().chars().take(200).collect();
                    return Err(bad(&name, &format!("it failed ({}): {excerpt}", output.status)));
                }
                MasterKey::from_base64(&name, &Zeroizing::new(output.stdout))
            }
        }
    }
}

fn bad(source_name: &str, reason: &str) -> CryptoError {
    CryptoError::BadMasterKey { source_name: source_name.to_owned(), reason: reason.to_owned() }
}

impl MasterKey {
    /// A fresh random key, for `doppel key generate` and tests.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        OsRng.try_fill_bytes(key.as_mut()).map_err(|e| CryptoError::Entropy(e.to_string()))?;
        Ok(Self::from_bytes(key))
    }

    /// Parses base64 text (surrounding whitespace ignored) of 32 bytes.
    /// `source_name` names where the text came from, for the error.
    pub fn from_base64(source_name: &str, text: &[u8]) -> Result<Self, CryptoError> {
        let trimmed = text.trim_ascii();
        let decoded = Zeroizing::new(
            STANDARD
                .decode(trimmed)
                .map_err(|_| bad(source_name, "not base64 text (expected 44 characters)"))?,
        );
        if decoded.len() != KEY_BYTES {
            return Err(bad(source_name, &format!("{} bytes, expected {KEY_BYTES}", decoded.len())));
        }
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        key.copy_from_slice(&decoded);
        Ok(Self::from_bytes(key))
    }

    fn from_bytes(bytes: Zeroizing<[u8; KEY_BYTES]>) -> Self {
        let digest =
            Sha256::new().chain_update(b"doppel master key id\0").chain_update(bytes.as_ref()).finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self { bytes, id: KeyId(id) }
    }

    /// The key as base64 text, for printing a generated key once.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes.as_ref()))
    }

    /// The key's public name.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_keys_round_trip_and_ids_are_stable() {
        let key = MasterKey::generate().unwrap();
        let again = MasterKey::from_base64("test", key.to_base64().as_bytes()).unwrap();
        assert_eq!(key.id(), again.id());
        assert_ne!(key.id(), MasterKey::generate().unwrap().id());
        assert_eq!(key.id().to_string().len(), 16);
    }

    #[test]
    fn wrong_lengths_and_bad_text_are_refused_by_name() {
        let err = MasterKey::from_base64("DOPPEL_MASTER_KEY", b"c2hvcnQ=").unwrap_err();
        assert!(
            err.to_string().contains("DOPPEL_MASTER_KEY") && err.to_string().contains("5 bytes"),
            "{err}"
        );
        let err = MasterKey::from_base64("file k", b"not base64!").unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
    }

    #[test]
    fn files_hold_base64_or_raw_bytes_and_commands_print_base64() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate().unwrap();
        let text = dir.path().join("master.key");
        std::fs::write(&text, format!("{}\n", key.to_base64().as_str())).unwrap();
        assert_eq!(MasterKeySource::File(text.clone()).load().unwrap().id(), key.id());
        let raw = dir.path().join("master.raw");
        std::fs::write(&raw, key.bytes()).unwrap();
        assert_eq!(MasterKeySource::File(raw).load().unwrap().id(), key.id());
        let command = format!("cat {}", text.display());
        assert_eq!(MasterKeySource::Command(command).load().unwrap().id(), key.id());
        let err = MasterKeySource::Command("echo nope >&2; exit 3".into()).load().unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn debug_output_shows_the_id_only() {
        let key = MasterKey::generate().unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(key.to_base64().as_str()));
        assert!(shown.contains(&key.id().to_string()));
    }
}
