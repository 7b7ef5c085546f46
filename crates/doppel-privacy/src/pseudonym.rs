//! Keyed pseudonyms for cohort exports.
//!
//! A twin's pseudonym for one analyst is
//!
//! ```text
//! analyst key = HMAC-SHA-256(secret, "doppel-pseudonym-v1" ‖ 0x00 ‖ analyst)
//! pseudonym   = hex(first 12 bytes of HMAC-SHA-256(analyst key, twin id))
//! ```
//!
//! HMAC is a pseudorandom function: without the secret, nobody can compute
//! a pseudonym from an id, nor tell which id a pseudonym belongs to, short
//! of the server answering for them. Keying by analyst means the same twin
//! has unrelated pseudonyms for two analysts, so their exports cannot be
//! joined on the pseudonym; one analyst's pseudonyms are stable, so its
//! exports over time can. 96 bits keep collisions improbable (about one
//! chance in 10¹⁶ among a million twins) while staying short.
//!
//! A pseudonym hides the id, not the person: the values themselves can
//! identify someone (`docs/security.md` lists the limits).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use ring::hmac;
use zeroize::Zeroizing;

use crate::PrivacyError;
use crate::budget::write_private_file;

/// Bytes of the server's pseudonym secret.
pub const PSEUDONYM_KEY_BYTES: usize = 32;
/// Default name of the file holding the secret, in its directory.
pub const PSEUDONYM_KEY_FILE: &str = "pseudonym.key";
/// Separates the derivation of analyst keys from any other use of the
/// secret, and names the scheme's version.
const ANALYST_LABEL: &[u8] = b"doppel-pseudonym-v1";
/// Bytes of the HMAC kept in a pseudonym.
const PSEUDONYM_BYTES: usize = 12;

/// The server's pseudonym secret. Never printed: `Debug` shows nothing of
/// it, and its bytes are wiped when it is dropped.
pub struct PseudonymKey {
    secret: Zeroizing<[u8; PSEUDONYM_KEY_BYTES]>,
}

impl PseudonymKey {
    /// A key from its bytes (tests, and secrets kept elsewhere).
    pub fn from_bytes(bytes: [u8; PSEUDONYM_KEY_BYTES]) -> Self {
        PseudonymKey { secret: Zeroizing::new(bytes) }
    }

    /// A fresh random key, from `rand::rng()`: ChaCha12 seeded and
    /// periodically reseeded from the operating system, a cryptographically
    /// secure generator. For servers that keep no key on disk (embedding,
    /// tests); [`open`](Self::open) keeps one.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; PSEUDONYM_KEY_BYTES]);
        rand::rng().fill_bytes(&mut bytes[..]);
        PseudonymKey { secret: bytes }
    }

    /// The key in `path` (base64 text of [`PSEUDONYM_KEY_BYTES`] bytes);
    /// when the file does not exist, a new key is generated and written
    /// there first (mode 0600, atomically), so pseudonyms stay the same
    /// across restarts. A file that exists but holds no valid key is an
    /// error: replacing it would silently change every pseudonym.
    pub fn open(path: &Path) -> Result<Self, PrivacyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let encoded = Zeroizing::new(format!("{}\n", STANDARD.encode(&key.secret[..])));
                let (dir, name) = split_path(path)?;
                write_private_file(dir, name, encoded.as_bytes())?;
                Ok(key)
            }
            Err(source) => Err(PrivacyError::File { path: path.to_owned(), action: "read", source }),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Self, PrivacyError> {
        let corrupt = |reason: String| PrivacyError::CorruptFile {
            path: path.to_owned(),
            what: "pseudonym key file",
            reason,
        };
        let bytes = Zeroizing::new(
            STANDARD.decode(text.trim()).map_err(|error| corrupt(format!("not base64: {error}")))?,
        );
        let secret: [u8; PSEUDONYM_KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| corrupt(format!("it holds {} bytes, not {PSEUDONYM_KEY_BYTES}", bytes.len())))?;
        Ok(Self::from_bytes(secret))
    }

    /// The key of one analyst's pseudonyms. `analyst` names the principal
    /// (`user:ana`); any text works, the same text gives the same key.
    pub fn for_analyst(&self, analyst: &str) -> AnalystKey {
        let secret = hmac::Key::new(hmac::HMAC_SHA256, &self.secret[..]);
        let mut context = hmac::Context::with_key(&secret);
        context.update(ANALYST_LABEL);
        context.update(&[0]);
        context.update(analyst.as_bytes());
        AnalystKey { key: hmac::Key::new(hmac::HMAC_SHA256, context.sign().as_ref()) }
    }
}

fn split_path(path: &Path) -> Result<(&Path, &str), PrivacyError> {
    let name = path.file_name().and_then(|name| name.to_str());
    match (path.parent(), name) {
        (Some(dir), Some(name)) => Ok((dir, name)),
        _ => Err(PrivacyError::CorruptFile {
            path: path.to_owned(),
            what: "pseudonym key file",
            reason: "the path names no file".to_owned(),
        }),
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

/// One analyst's pseudonym key: derived from the secret, so it need not
/// be stored.
pub struct AnalystKey {
    key: hmac::Key,
}

impl AnalystKey {
    /// The pseudonym of `twin` (its id) for this analyst: 24 lowercase hex
    /// digits.
    pub fn pseudonym(&self, twin: &str) -> String {
        let tag = hmac::sign(&self.key, twin.as_bytes());
        let mut text = String::with_capacity(2 * PSEUDONYM_BYTES);
        for byte in &tag.as_ref()[..PSEUDONYM_BYTES] {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        text
    }
}

impl fmt::Debug for AnalystKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnalystKey(..)")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn pseudonyms_are_stable_per_analyst_and_differ_between_analysts() {
        let key = PseudonymKey::from_bytes([1; 32]);
        let ana = key.for_analyst("user:ana");
        let bob = key.for_analyst("user:bob");
        let alice = ana.pseudonym("alice");
        assert_eq!(alice.len(), 24);
        assert!(alice.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{alice}");
        assert_eq!(alice, key.for_analyst("user:ana").pseudonym("alice"));
        assert_ne!(alice, bob.pseudonym("alice"));
        assert_ne!(alice, ana.pseudonym("alicf"));
        // A different secret gives unrelated pseudonyms.
        assert_ne!(alice, PseudonymKey::from_bytes([2; 32]).for_analyst("user:ana").pseudonym("alice"));
        let many: BTreeSet<String> = (0..10_000).map(|i| ana.pseudonym(&format!("twin-{i}"))).collect();
        assert_eq!(many.len(), 10_000);
    }

    #[test]
    fn the_pseudonym_is_the_documented_hmac() {
        // Independently of `for_analyst`: HMAC(HMAC(secret, label ‖ 0 ‖
        // analyst), id), first 12 bytes in hex.
        let secret = [9u8; 32];
        let message = b"doppel-pseudonym-v1\0user:ana";
        let analyst = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), message);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, analyst.as_ref()), b"alice");
        let expected: String = tag.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(PseudonymKey::from_bytes(secret).for_analyst("user:ana").pseudonym("alice"), expected);
    }

    #[test]
    fn a_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("privacy").join(PSEUDONYM_KEY_FILE);
        let first = PseudonymKey::open(&path).unwrap().for_analyst("a").pseudonym("t");
        let again = PseudonymKey::open(&path).unwrap().for_analyst("a").pseudonym("t");
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key file must be private: {mode:o}");
        }
        assert_eq!(format!("{:?}", PseudonymKey::open(&path).unwrap()), "PseudonymKey(..)");
        for bad in ["not base64!", "AAAA"] {
            std::fs::write(&path, bad).unwrap();
            let error = PseudonymKey::open(&path).unwrap_err();
            assert!(matches!(error, PrivacyError::CorruptFile { .. }), "{error}");
        }
    }
}
