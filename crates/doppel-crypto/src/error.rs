use std::path::PathBuf;

use thiserror::Error;

use crate::KeyId;

/// Why a key could not be loaded or a sealed frame could not be opened.
/// Messages never include key material.
#[derive(Debug, Error)]
pub enum CryptoError {
    /// The master key text or file is not a 32-byte key.
    #[error("master key from {source_name}: {reason}")]
    BadMasterKey {
        /// Where the key came from (file path, variable or command).
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("cannot draw random bytes: {0}")]
    Entropy(String),
    /// A sealed frame failed authentication: it was altered, truncated,
    /// sealed under another key or with other associated data.
    #[error("sealed data does not authenticate (altered, truncated or under another key)")]
    Unauthentic,
    /// A keyring shard is sealed under a master key that is not configured.
    #[error("keyring shard {path} is sealed under master key {found}; configured: {configured}")]
    WrongMasterKey {
        /// The shard file.
        path: PathBuf,
        /// The id recorded in the shard.
        found: KeyId,
        /// The ids of the configured keys, comma-separated.
        configured: String,
    },
    /// A keyring shard is damaged.
    #[error("keyring shard {path} is damaged: {reason}")]
    CorruptShard {
        /// The shard file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A data key already exists for this number.
    #[error("a data key for twin number {0} already exists")]
    KeyExists(u64),
    /// A file operation on the keyring failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// The operation (read, write, fsync, rename, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl CryptoError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { op, path, source }
    }
}
