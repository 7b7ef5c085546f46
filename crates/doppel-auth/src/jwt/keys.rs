//! The identity provider's public keys, checked when they are loaded so
//! that a bad key is a startup error, not a stream of 401s.

use std::path::Path;

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{AlgorithmFamily, DecodingKey};

use super::JwtAlgorithm;
use crate::AuthError;

/// Shortest RSA modulus accepted, in bits: NIST SP 800-131A disallows
/// shorter keys for signatures.
pub const MIN_RSA_BITS: usize = 2048;
/// Longest RSA modulus accepted, in bits: the `rsa` crate's own limit, which
/// also bounds the work one forged token can cause.
pub const MAX_RSA_BITS: usize = 4096;
/// Most keys one verifier holds: providers publish two or three (current
/// and next); a longer list is a misconfiguration, and a token without a
/// `kid` makes every key of its algorithm be tried.
pub const MAX_KEYS: usize = 32;

/// One trusted public key.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) kid: Option<String>,
    pub(crate) algorithm: JwtAlgorithm,
    pub(crate) key: DecodingKey,
}

/// The keys a [`JwtVerifier`](crate::JwtVerifier) trusts, each checked to be
/// a well-formed RS256, ES256 or EdDSA public key.
#[derive(Clone, Default)]
pub struct JwtKeys {
    pub(crate) keys: Vec<VerificationKey>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|k| (k.algorithm, k.kid.as_deref()))).finish()
    }
}

impl JwtKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds a public key from PEM text; `origin` names it in errors (a path).
    pub fn add_pem(
        &mut self,
        pem: &[u8],
        algorithm: JwtAlgorithm,
        kid: Option<String>,
        origin: &str,
    ) -> Result<(), AuthError> {
        let unusable = |reason: String| AuthError::UnusableKey { key: origin.to_owned(), reason };
        let key = match algorithm {
            JwtAlgorithm::RS256 => DecodingKey::from_rsa_pem(pem),
            JwtAlgorithm::ES256 => DecodingKey::from_ec_pem(pem),
            JwtAlgorithm::EdDSA => DecodingKey::from_ed_pem(pem),
        }
        .map_err(|e| unusable(format!("not a {algorithm} public key in PEM: {e}")))?;
        self.push(VerificationKey { kid, algorithm, key }, origin)
    }

    /// Reads a PEM file with [`add_pem`](Self::add_pem).
    pub fn add_pem_file(
        &mut self,
        path: &Path,
        algorithm: JwtAlgorithm,
        kid: Option<String>,
    ) -> Result<(), AuthError> {
        let pem =
            std::fs::read(path).map_err(|source| AuthError::KeyFile { path: path.to_owned(), source })?;
        self.add_pem(&pem, algorithm, kid, &path.display().to_string())
    }

    /// Adds the signing keys of a JWKS document; `origin` names it in errors.
    /// Keys for encryption or for other algorithms are skipped (providers
    /// publish those too); a document with no usable key is an error.
    pub fn add_jwks(&mut self, json: &str, origin: &str) -> Result<(), AuthError> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| AuthError::UnusableKey {
            key: origin.to_owned(),
            reason: format!("not a JWKS document: {e}"),
        })?;
        let before = self.keys.len();
        for (index, jwk) in set.keys.iter().enumerate() {
            let name = match &jwk.common.key_id {
                Some(kid) => format!("{origin} key {index} (kid {kid:?})"),
                None => format!("{origin} key {index}"),
            };
            if let Some(key) = from_jwk(jwk, &name)? {
                self.push(key, &name)?;
            }
        }
        if self.keys.len() == before {
            return Err(AuthError::UnusableKey {
                key: origin.to_owned(),
                reason: "it holds no RS256, ES256 or EdDSA signing key".to_owned(),
            });
        }
        Ok(())
    }

    /// Reads a JWKS file with [`add_jwks`](Self::add_jwks).
    pub fn add_jwks_file(&mut self, path: &Path) -> Result<(), AuthError> {
        let json = std::fs::read_to_string(path)
            .map_err(|source| AuthError::KeyFile { path: path.to_owned(), source })?;
        self.add_jwks(&json, &path.display().to_string())
    }

    fn push(&mut self, key: VerificationKey, origin: &str) -> Result<(), AuthError> {
        check_key(&key).map_err(|reason| AuthError::UnusableKey { key: origin.to_owned(), reason })?;
        if self.keys.len() >= MAX_KEYS {
            return Err(AuthError::UnusableKey {
                key: origin.to_owned(),
                reason: format!("more than {MAX_KEYS} keys"),
            });
        }
        if key.kid.is_some() && self.keys.iter().any(|k| k.kid == key.kid) {
            return Err(AuthError::UnusableKey {
                key: origin.to_owned(),
                reason: "its kid is already taken".to_owned(),
            });
        }
        self.keys.push(key);
        Ok(())
    }
}

/// The key a JWK describes, `None` for one Doppel does not verify with.
fn from_jwk(jwk: &Jwk, name: &str) -> Result<Option<VerificationKey>, AuthError> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Ok(None);
    }
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => JwtAlgorithm::RS256,
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
            if p.curve == EllipticCurve::P256 =>
        {
            JwtAlgorithm::ES256
        }
        (AlgorithmParameters::OctetKeyPair(p), None | Some(KeyAlgorithm::EdDSA))
            if p.curve == EllipticCurve::Ed25519 =>
        {
            JwtAlgorithm::EdDSA
        }
        _ => return Ok(None),
    };
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|e| AuthError::UnusableKey { key: name.to_owned(), reason: e.to_string() })?;
    Ok(Some(VerificationKey { kid: jwk.common.key_id.clone(), algorithm, key }))
}

/// Checks what the crypto backend would only find out per request, and
/// what would make it panic: RSA modulus size and exponent, EC points on
/// the curve, Ed25519 keys of exactly 32 bytes.
fn check_key(key: &VerificationKey) -> Result<(), String> {
    let family = key.key.family();
    let expected = key.algorithm.to_jsonwebtoken().family();
    if family != expected {
        return Err(format!("it is a {family:?} key, not one for {}", key.algorithm));
    }
    match family {
        AlgorithmFamily::Rsa => {
            let (modulus, exponent) = rsa_components(&key.key)?;
            check_rsa(&modulus, &exponent)?;
        }
        AlgorithmFamily::Ed => {
            let bytes = key.key.try_get_as_bytes().map_err(|e| e.to_string())?;
            if bytes.len() != 32 {
                return Err(format!("an Ed25519 public key is 32 bytes, not {}", bytes.len()));
            }
        }
        AlgorithmFamily::Ec | AlgorithmFamily::Hmac => {}
    }
    (DEFAULT_PROVIDER.verifier_factory)(&key.algorithm.to_jsonwebtoken(), &key.key)
        .map(drop)
        .map_err(|e| format!("the crypto backend refuses it: {e}"))
}

fn rsa_components(key: &DecodingKey) -> Result<(Vec<u8>, Vec<u8>), String> {
    match key.kind() {
        jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, e } => Ok((n.clone(), e.clone())),
        jsonwebtoken::DecodingKeyKind::SecretOrDer(der) => {
            (DEFAULT_PROVIDER.key_utils.rsa_pub_components_from_public_key)(der).map_err(|e| e.to_string())
        }
    }
}

fn check_rsa(modulus: &[u8], exponent: &[u8]) -> Result<(), String> {
    let bits = bit_length(modulus);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(format!("its RSA modulus has {bits} bits, outside {MIN_RSA_BITS}..={MAX_RSA_BITS}"));
    }
    let exponent_bits = bit_length(exponent);
    let odd = exponent.last().is_some_and(|b| b & 1 == 1);
    if !(2..=33).contains(&exponent_bits) || !odd {
        return Err("its RSA public exponent is not an odd number from 3 to 2^33".to_owned());
    }
    Ok(())
}

/// Bits of a big-endian unsigned integer, leading zeros not counted.
fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.iter().position(|&b| b != 0) {
        Some(first) => (big_endian.len() - first - 1) * 8 + (8 - big_endian[first].leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    const RSA_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/rsa-public.pem");
    const RSA_1024_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/rsa-1024-public.pem");
    const EC_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/ec-p256-public.pem");
    const ED_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/ed25519-public.pem");

    #[test]
    fn pem_keys_load_for_their_own_algorithm_only() {
        let mut keys = JwtKeys::new();
        keys.add_pem(RSA_PUBLIC, JwtAlgorithm::RS256, None, "rsa.pem").unwrap();
        keys.add_pem(EC_PUBLIC, JwtAlgorithm::ES256, None, "ec.pem").unwrap();
        keys.add_pem(ED_PUBLIC, JwtAlgorithm::EdDSA, None, "ed.pem").unwrap();
        assert_eq!(keys.len(), 3);
        let err = keys.add_pem(EC_PUBLIC, JwtAlgorithm::RS256, None, "ec.pem").unwrap_err();
        assert!(err.to_string().contains("ec.pem"), "{err}");
        assert!(keys.add_pem(RSA_PUBLIC, JwtAlgorithm::EdDSA, None, "rsa.pem").is_err());
        assert!(keys.add_pem(b"not pem", JwtAlgorithm::ES256, None, "junk").is_err());
    }

    #[test]
    fn short_rsa_keys_are_refused() {
        let err = JwtKeys::new().add_pem(RSA_1024_PUBLIC, JwtAlgorithm::RS256, None, "weak.pem").unwrap_err();
        assert!(err.to_string().contains("1024 bits"), "{err}");
    }

    #[test]
    fn short_ed25519_keys_in_a_jwks_are_refused_not_panicked_on() {
        let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}"#;
        let err = JwtKeys::new().add_jwks(jwks, "jwks.json").unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }

    #[test]
    fn jwks_skips_encryption_and_foreign_keys_but_needs_one_usable() {
        let only_foreign = r#"{"keys":[
            {"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},
            {"kty":"RSA","alg":"PS256","n":"AQAB","e":"AQAB"},
            {"kty":"oct","k":"c2VjcmV0"},
            {"kty":"EC","crv":"P-384","x":"AA","y":"AA"}
        ]}"#;
        let err = JwtKeys::new().add_jwks(only_foreign, "idp.json").unwrap_err();
        assert!(err.to_string().contains("no RS256, ES256 or EdDSA"), "{err}");
        assert!(JwtKeys::new().add_jwks("{", "idp.json").is_err());
    }

    #[test]
    fn duplicate_key_ids_are_refused() {
        let mut keys = JwtKeys::new();
        keys.add_pem(EC_PUBLIC, JwtAlgorithm::ES256, Some("k1".into()), "a.pem").unwrap();
        assert!(keys.add_pem(ED_PUBLIC, JwtAlgorithm::EdDSA, Some("k1".into()), "b.pem").is_err());
    }

    #[test]
    fn rsa_checks_count_bits_and_need_an_odd_exponent() {
        assert_eq!(bit_length(&[0, 0, 1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[]), 0);
        let modulus = [0xffu8; 256];
        assert!(check_rsa(&modulus, &b64("AQAB")).is_ok());
        assert!(check_rsa(&modulus, &[2]).is_err());
        assert!(check_rsa(&modulus, &[1]).is_err());
        assert!(check_rsa(&modulus[..128], &b64("AQAB")).is_err());
    }

    #[test]
    fn a_missing_key_file_is_named() {
        let err = JwtKeys::new().add_jwks_file(Path::new("/nonexistent/jwks.json")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/jwks.json"), "{err}");
    }
}
