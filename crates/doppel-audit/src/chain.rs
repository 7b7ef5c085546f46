//! The hash chain: each record's hash covers the previous record's hash
//! and the record's own stored bytes, so changing, removing, inserting or
//! reordering any record changes every hash after it.

use std::fmt;

use sha2::{Digest, Sha256};

/// Bytes in a chain hash (SHA-256).
pub(crate) const HASH_BYTES: usize = 32;

/// Text hashed to make the genesis value, the "previous hash" of record 1.
const GENESIS_LABEL: &[u8] = b"doppel audit log genesis v1";

/// A link of the chain: `SHA-256(previous hash ‖ stored bytes of the
/// record)`. The newest one, the *head*, vouches for the whole log, which
/// is why `doppel audit verify` prints it for safekeeping elsewhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash([u8; HASH_BYTES]);

impl ChainHash {
    /// What record 1 chains from: SHA-256 of a fixed label, so an empty
    /// log has a head too and a log cannot be started from any other
    /// value unnoticed.
    pub fn genesis() -> Self {
        ChainHash(Sha256::digest(GENESIS_LABEL).into())
    }

    /// The hash after `self` of a record stored as `body`.
    pub fn link(&self, body: &[u8]) -> Self {
        ChainHash(Sha256::new().chain_update(self.0).chain_update(body).finalize().into())
    }

    /// The raw bytes, as stored.
    pub fn as_bytes(&self) -> &[u8; HASH_BYTES] {
        &self.0
    }

    pub(crate) fn from_bytes(bytes: [u8; HASH_BYTES]) -> Self {
        ChainHash(bytes)
    }
}

/// Lowercase hex, 64 characters.
impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_depend_on_the_previous_hash_and_every_byte() {
        let genesis = ChainHash::genesis();
        let first = genesis.link(b"record one");
        assert_ne!(first, genesis.link(b"record onf"));
        assert_ne!(first, ChainHash::from_bytes([0; HASH_BYTES]).link(b"record one"));
        assert_eq!(first, ChainHash::genesis().link(b"record one"));
        assert_eq!(first.to_string().len(), 64);
        assert_eq!(
            genesis.to_string(),
            format!("{:x}", Sha256::digest(b"doppel audit log genesis v1")),
            "the genesis value is documented in docs/security.md and must not change"
        );
    }
}
