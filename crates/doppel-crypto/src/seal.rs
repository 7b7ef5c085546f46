//! Sealing: XChaCha20-Poly1305 with a random 24-byte nonce per frame.
//!
//! The extended nonce makes random nonces safe for any number of frames
//! under one key, so nothing about nonces needs to survive a crash. A
//! sealed frame is `nonce (24) ‖ ciphertext ‖ tag (16)`; the associated
//! data (which file, which twin, which role) is authenticated but not
//! stored, so a frame moved to another place fails to open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::TryRngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::key::KEY_BYTES;

const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// Bytes a sealed frame adds to its plaintext: nonce and tag.
pub const SEAL_OVERHEAD: usize = NONCE_BYTES + TAG_BYTES;

pub(crate) fn seal_with(key: &[u8; KEY_BYTES], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_BYTES];
    // ThreadRng is a cryptographically secure generator reseeded from the
    // OS; it saves a system call per frame on the ingest path.
    rand::rng().fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .map_err(|_| CryptoError::Unauthentic)?;
    let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

pub(crate) fn open_with(key: &[u8; KEY_BYTES], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(CryptoError::Unauthentic);
    }
    let (nonce, body) = sealed.split_at(NONCE_BYTES);
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
        .map_err(|_| CryptoError::Unauthentic)
}

/// One twin's data key. Cloning copies the key; every copy is wiped from
/// memory when dropped.
#[derive(Clone)]
pub struct DataKey {
    bytes: Zeroizing<[u8; KEY_BYTES]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        OsRng.try_fill_bytes(bytes.as_mut()).map_err(|e| CryptoError::Entropy(e.to_string()))?;
        Ok(Self { bytes })
    }

    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; KEY_BYTES]>) -> Self {
        Self { bytes }
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.bytes
    }

    /// Seals `plaintext`, binding `aad` (which must be given again to open).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.bytes, aad, plaintext)
    }

    /// A 32-byte secret derived from this key for one purpose named by
    /// `label` (SHA-256 over a fixed prefix, the label and the key), so a
    /// secret another component needs (the pseudonym secret, say) lives
    /// sealed in the keyring instead of in a file of its own.
    pub fn derive(&self, label: &[u8]) -> Zeroizing<[u8; KEY_BYTES]> {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"doppel derived secret\0")
            .chain_update(label)
            .chain_update([0u8])
            .chain_update(self.bytes.as_ref())
            .finalize();
        let mut out = Zeroizing::new([0u8; KEY_BYTES]);
        out.copy_from_slice(&digest);
        out
    }

    /// Opens a frame made by [`DataKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open_with(&self.bytes, aad, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn derived_secrets_are_stable_per_key_and_label_and_differ_otherwise() {
        let (a, b) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
        assert_eq!(*a.derive(b"pseudonyms"), *a.clone().derive(b"pseudonyms"));
        assert_ne!(*a.derive(b"pseudonyms"), *a.derive(b"other"));
        assert_ne!(*a.derive(b"pseudonyms"), *b.derive(b"pseudonyms"));
        assert_ne!(&*a.derive(b"pseudonyms"), a.bytes());
    }

    #[test]
    fn frames_carry_nonce_and_tag_and_differ_each_time() {
        let key = DataKey::generate().unwrap();
        let a = key.seal(b"x", b"glucose 140").unwrap();
        let b = key.seal(b"x", b"glucose 140").unwrap();
        assert_eq!(a.len(), b"glucose 140".len() + SEAL_OVERHEAD);
        assert_ne!(a, b, "random nonces make equal plaintexts look different");
    }

    #[test]
    fn another_key_or_other_associated_data_cannot_open() {
        let key = DataKey::generate().unwrap();
        let sealed = key.seal(b"twin 1", b"weight 72.5").unwrap();
        assert!(matches!(key.open(b"twin 2", &sealed), Err(CryptoError::Unauthentic)));
        assert!(matches!(
            DataKey::generate().unwrap().open(b"twin 1", &sealed),
            Err(CryptoError::Unauthentic)
        ));
        assert!(matches!(key.open(b"twin 1", &sealed[..10]), Err(CryptoError::Unauthentic)));
    }

    proptest! {
        #[test]
        fn any_plaintext_round_trips(aad in proptest::collection::vec(any::<u8>(), 0..64),
                                     msg in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let key = DataKey::generate().unwrap();
            let sealed = key.seal(&aad, &msg).unwrap();
            prop_assert_eq!(key.open(&aad, &sealed).unwrap(), msg);
        }

        #[test]
        fn any_single_bit_flip_is_detected(msg in proptest::collection::vec(any::<u8>(), 1..256), at in any::<usize>(), bit in 0u8..8) {
            let key = DataKey::generate().unwrap();
            let mut sealed = key.seal(b"aad", &msg).unwrap();
            let i = at % sealed.len();
            sealed[i] ^= 1 << bit;
            prop_assert!(key.open(b"aad", &sealed).is_err());
        }
    }
}
