//! Encryption at rest inside the store: which key seals what, and the
//! associated data that binds a sealed frame to its place.
//!
//! With a keyring configured, everything the store writes is sealed with
//! XChaCha20-Poly1305 (`doppel-crypto`):
//!
//! * under the twin's own data key (number from the catalog): the twin's
//!   groups of a WAL point batch, its WAL upsert records, its catalog
//!   record in a snapshot and every block of its series in segments —
//!   destroying that key (crypto-shredding) makes all of it unreadable;
//! * under the store key ([`STORE_KEY`]): what mixes twins or outlives one
//!   — index pages, page directories, the catalog snapshot as a whole and
//!   the twin id inside a delete record.
//!
//! The inner layers keep their crc seals (a block or page is sealed whole,
//! crc included), so a frame that opens is checked exactly as a plain one.
//! A frame that does not open under a key that exists is damage or
//! tampering, reported as corruption; a frame whose twin key is gone is
//! shredded data, which readers treat as absent.

use std::path::Path;
use std::sync::Arc;

use doppel_crypto::{DataKey, KeyId, Keyring, STORE_KEY};

use crate::StoreError;
use crate::codec::DecodeError;

/// What a sealed frame is, bound into its associated data so that a frame
/// moved to another role or twin does not open there.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Role {
    /// One twin's group of a WAL point batch.
    WalPoints,
    /// A WAL twin upsert.
    WalTwin,
    /// The twin id of a WAL delete record (store key).
    WalDelete,
    /// A segment block.
    Block,
    /// A segment index page (store key).
    IndexPage,
    /// A segment's page directory (store key).
    Directory,
    /// One twin record in a catalog snapshot.
    CatalogTwin,
    /// A whole catalog snapshot (store key).
    Catalog,
    /// The marker proving which keyring a store was sealed with.
    Marker,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::WalPoints => b"doppel wal points",
            Role::WalTwin => b"doppel wal twin",
            Role::WalDelete => b"doppel wal delete",
            Role::Block => b"doppel block",
            Role::IndexPage => b"doppel index page",
            Role::Directory => b"doppel directory",
            Role::CatalogTwin => b"doppel catalog twin",
            Role::Catalog => b"doppel catalog",
            Role::Marker => b"doppel store marker",
        }
    }

    fn aad(self, number: u64) -> Vec<u8> {
        let mut aad = self.label().to_vec();
        aad.extend_from_slice(&number.to_le_bytes());
        aad
    }
}

/// The store's keys: the keyring of twin keys and the store key.
pub struct Sealing {
    keyring: Arc<Keyring>,
    store_key: DataKey,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealing(master key {})", self.keyring.master_id())
    }
}

impl Sealing {
    /// Seals with the keys of `keyring`, creating the store key on first
    /// use.
    pub fn new(keyring: Arc<Keyring>) -> Result<Self, StoreError> {
        let store_key = keyring.get_or_create(STORE_KEY).map_err(StoreError::Keyring)?;
        Ok(Self { keyring, store_key })
    }

    /// The keyring, for creating and destroying twin keys.
    pub(crate) fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The id of the master key the keyring is sealed under.
    pub(crate) fn master_id(&self) -> KeyId {
        self.keyring.master_id()
    }

    /// The data key of twin `number`, `None` once destroyed.
    pub(crate) fn twin_key(&self, number: u64) -> Option<TwinKey> {
        self.keyring.get(number).map(|key| TwinKey { number, key })
    }

    /// Seals `body` under the store key.
    pub(crate) fn seal_store(&self, role: Role, body: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.store_key.seal(&role.aad(STORE_KEY), body).map_err(StoreError::Keyring)
    }

    /// Opens a frame sealed under the store key; failure is damage.
    pub(crate) fn open_store(&self, role: Role, sealed: &[u8]) -> Result<Vec<u8>, DecodeError> {
        self.store_key.open(&role.aad(STORE_KEY), sealed).map_err(|_| not_authentic(role))
    }
}

/// One twin's number and data key, looked up once per read or write.
#[derive(Clone, Debug)]
pub(crate) struct TwinKey {
    pub number: u64,
    key: DataKey,
}

impl TwinKey {
    /// Seals `body` under this twin's key.
    pub(crate) fn seal(&self, role: Role, body: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.key.seal(&role.aad(self.number), body).map_err(StoreError::Keyring)
    }

    /// Opens a frame sealed under this twin's key; failure is damage.
    pub(crate) fn open(&self, role: Role, sealed: &[u8]) -> Result<Vec<u8>, DecodeError> {
        self.key.open(&role.aad(self.number), sealed).map_err(|_| not_authentic(role))
    }
}

/// The file that marks a sealed store and proves which keyring sealed it.
const MARKER_FILE: &str = "SEALED";
const MARKER_TEXT: &[u8] = b"doppel sealed store";

/// Checks that a store in `dir` is opened with the keys it needs: a sealed
/// store (one with a marker) needs `sealing`, and the same keyring that
/// sealed it; a store opened with `sealing` for the first time gets its
/// marker, durably, before anything sealed is written.
pub(crate) fn check_marker(dir: &Path, sealing: Option<&Sealing>) -> Result<(), StoreError> {
    let path = dir.join(MARKER_FILE);
    let marker = match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(StoreError::Io { op: "read", path, source: e }),
    };
    match (marker, sealing) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(StoreError::KeyringRequired { path }),
        (Some(bytes), Some(sealing)) => match sealing.open_store(Role::Marker, &bytes) {
            Ok(text) if text == MARKER_TEXT => Ok(()),
            _ => Err(StoreError::WrongKeyring { path, found: sealing.master_id().to_string() }),
        },
        (None, Some(sealing)) => {
            let tmp = path.with_extension("tmp");
            let bytes = sealing.seal_store(Role::Marker, MARKER_TEXT)?;
            StoreError::write_atomic(&path, &tmp, &bytes)
        }
    }
}

fn not_authentic(role: Role) -> DecodeError {
    let what = String::from_utf8_lossy(role.label()).into_owned();
    DecodeError { offset: 0, reason: format!("{what} does not open under its key (damaged or altered)") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_crypto::MasterKey;

    fn sealing(dir: &std::path::Path) -> Sealing {
        let keyring = Keyring::open(dir, MasterKey::generate().unwrap(), Vec::new()).unwrap();
        Sealing::new(Arc::new(keyring)).unwrap()
    }

    #[test]
    fn a_frame_opens_only_in_its_role_and_under_its_twin() {
        let dir = tempfile::tempdir().unwrap();
        let sealing = sealing(dir.path());
        sealing.keyring().create_many(&[20, 21]).unwrap();
        let (a, b) = (sealing.twin_key(20).unwrap(), sealing.twin_key(21).unwrap());
        let frame = a.seal(Role::Block, b"glucose 7.2").unwrap();
        assert_eq!(a.open(Role::Block, &frame).unwrap(), b"glucose 7.2");
        assert!(a.open(Role::WalPoints, &frame).is_err());
        assert!(b.open(Role::Block, &frame).is_err());
        let page = sealing.seal_store(Role::IndexPage, b"page").unwrap();
        assert_eq!(sealing.open_store(Role::IndexPage, &page).unwrap(), b"page");
        assert!(sealing.open_store(Role::Directory, &page).is_err());
    }

    #[test]
    fn a_destroyed_twin_key_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let sealing = sealing(dir.path());
        sealing.keyring().create(30).unwrap();
        assert!(sealing.twin_key(30).is_some());
        sealing.keyring().destroy(30).unwrap();
        assert!(sealing.twin_key(30).is_none());
    }
}
