//! Encryption at rest for Doppel: a master key, one data key per twin, AEAD
//! sealing, and a [`Keyring`] that can forget a twin's key for good.
//!
//! Everything a twin has on disk is sealed under its own data key; the data
//! keys are kept in a keyring sealed under the master key. Deleting a twin
//! destroys its data key first ("crypto-shredding"): its data in the WAL,
//! in old segments and in any copy of the data directory becomes
//! unreadable at once, long before the space is reclaimed. For that to hold
//! the keyring must live outside the data directory (a copy taken before a
//! deletion would otherwise carry the key along); see `docs/security.md`.
//!
//! ```
//! use doppel_crypto::{Keyring, MasterKey};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let master = MasterKey::generate().unwrap();
//! let keyring = Keyring::open(dir.path(), master, Vec::new()).unwrap();
//! let key = keyring.create(7).unwrap();
//! let sealed = key.seal(b"wal:7", b"heart_rate 62").unwrap();
//! assert_eq!(key.open(b"wal:7", &sealed).unwrap(), b"heart_rate 62");
//! keyring.destroy(7).unwrap();
//! assert!(keyring.get(7).is_none());
//! ```
//!
//! This crate knows nothing of twins, files other than its own keyring, or
//! HTTP: callers decide what to seal and under which number.

mod error;
mod key;
mod keyring;
mod seal;

pub use error::CryptoError;
pub use key::{KeyId, MasterKey, MasterKeySource};
pub use keyring::Keyring;
pub use seal::{DataKey, SEAL_OVERHEAD};

/// Shard files of a keyring: a key's shard is its number modulo this, so
/// keys whose numbers are this far apart are created or destroyed with one
/// shard rewrite.
pub const KEYRING_SHARDS: u64 = 256;

/// Keyring numbers below this are Doppel's own keys, never a twin's: what
/// belongs to no single twin (the store's index pages and catalog, the
/// auth state, the audit log) is sealed under one of them, so it is as
/// unreadable without the master key as twin data, while destroying a
/// twin's key never touches them. Twins are numbered from here up.
pub const RESERVED_NUMBERS: u64 = 16;

/// The key of the store's own structures (index pages, page directories,
/// the catalog snapshot, tombstones).
pub const STORE_KEY: u64 = 0;

/// The key of the tokens and policies file.
pub const AUTH_KEY: u64 = 1;

/// The key of the audit log.
pub const AUDIT_KEY: u64 = 2;

/// The key of privacy state (pseudonym secrets, privacy budgets).
pub const PRIVACY_KEY: u64 = 3;
