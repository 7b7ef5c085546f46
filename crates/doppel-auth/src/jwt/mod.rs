//! Bearer JWTs from an existing identity provider (Keycloak, Auth0, Entra
//! ID, Dex, ...), so that it can front Doppel.
//!
//! A token is accepted when it is signed (RS256, ES256 or EdDSA) by one of
//! the configured keys, names the configured issuer and audience, and is
//! within `exp`/`nbf` give or take [`JWT_LEEWAY_SECONDS`]. Its `sub` becomes
//! the user, the configured groups claim the groups, and a `scope` claim
//! narrows the scopes (see [`JwtConfig`]). Keys come from PEM files or a
//! JWKS document; a token's `kid` picks the key, and without one every key
//! of the token's algorithm is tried.
//!
//! Signatures are checked by the `jsonwebtoken` crate on its RustCrypto
//! backend; `exp` and `nbf` are checked here against the caller's clock, so
//! that tests (and replays of the audit log) can say what time it is.

mod claims;
mod config;
mod keys;

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde_json::{Map, Value};

use doppel_model::Timestamp;

pub use claims::{JWT_LEEWAY_SECONDS, MAX_GROUPS};
pub use config::{JwtAlgorithm, JwtConfig, PemKeyConfig};
pub use keys::{JwtKeys, MAX_KEYS, MAX_RSA_BITS, MIN_RSA_BITS};

use crate::{AuthError, GroupName, Jwt, Principal};
use keys::VerificationKey;

/// Checks JWTs against one identity provider's keys and rules.
#[derive(Debug)]
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    keys: JwtKeys,
    groups_claim: String,
    admin_group: Option<GroupName>,
    scope_prefix: String,
}

impl JwtVerifier {
    /// A verifier with `config`'s rules and the given keys (the key files
    /// named in `config` are not read; see [`from_config`](Self::from_config)).
    pub fn new(config: &JwtConfig, keys: JwtKeys) -> Result<Self, AuthError> {
        let invalid = |reason| AuthError::InvalidJwtConfig { reason };
        if config.issuer.is_empty() {
            return Err(invalid("issuer must not be empty"));
        }
        if config.audience.is_empty() {
            return Err(invalid("audience must not be empty"));
        }
        if config.groups_claim.is_empty() {
            return Err(invalid("groups_claim must not be empty"));
        }
        if keys.is_empty() {
            return Err(invalid("no keys: set jwks_file or pem_keys"));
        }
        // jsonwebtoken picks its backend from its features; should another
        // crate in the build enable a second one, it would panic instead of
        // choosing. Installing ours first settles it; an earlier install by
        // someone else is fine too.
        let _ = CryptoProvider::install_default(&DEFAULT_PROVIDER);
        Ok(JwtVerifier {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            keys,
            groups_claim: config.groups_claim.clone(),
            admin_group: config.admin_group.clone(),
            scope_prefix: config.scope_prefix.clone(),
        })
    }

    /// A verifier with the keys `config` names, read from their files.
    pub fn from_config(config: &JwtConfig) -> Result<Self, AuthError> {
        let mut keys = JwtKeys::new();
        if let Some(path) = &config.jwks_file {
            keys.add_jwks_file(path)?;
        }
        for pem in &config.pem_keys {
            keys.add_pem_file(&pem.path, pem.algorithm, pem.kid.clone())?;
        }
        Self::new(config, keys)
    }

    /// The principal a JWT speaks for, if it verifies at `now`.
    pub fn verify(&self, jwt: &Jwt, now: Timestamp) -> Result<Principal, AuthError> {
        let header = decode_header(jwt.as_str()).map_err(map_error)?;
        if header.crit.is_some() {
            return Err(AuthError::MalformedJwt {
                reason: "critical header extensions are not supported".to_owned(),
            });
        }
        let algorithm = JwtAlgorithm::from_jsonwebtoken(header.alg)
            .ok_or_else(|| AuthError::JwtAlgorithmNotAccepted { alg: format!("{:?}", header.alg) })?;
        let candidates: Vec<&VerificationKey> = match &header.kid {
            Some(kid) => {
                let key = self
                    .keys
                    .keys
                    .iter()
                    .find(|key| key.kid.as_deref() == Some(kid))
                    .ok_or_else(|| AuthError::UnknownKeyId { kid: crate::error::echo(kid) })?;
                if key.algorithm != algorithm {
                    return Err(AuthError::KeyAlgorithmMismatch {
                        kid: crate::error::echo(kid),
                        key: key.algorithm,
                        token: algorithm,
                    });
                }
                vec![key]
            }
            None => self.keys.keys.iter().filter(|key| key.algorithm == algorithm).collect(),
        };
        if candidates.is_empty() {
            return Err(AuthError::NoKeyForAlgorithm { alg: algorithm });
        }
        let validation = self.validation(algorithm);
        for key in candidates {
            match decode::<Map<String, Value>>(jwt.as_str(), &key.key, &validation) {
                Ok(data) => {
                    let rules = claims::ClaimRules {
                        groups_claim: &self.groups_claim,
                        admin_group: self.admin_group.as_ref(),
                        scope_prefix: &self.scope_prefix,
                    };
                    return claims::principal(&data.claims, &rules, now);
                }
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) => return Err(map_error(e)),
            }
        }
        Err(AuthError::BadSignature)
    }

    /// Signature, issuer, audience and presence of the required claims;
    /// `exp` and `nbf` values are left to [`claims`], which knows `now`.
    fn validation(&self, algorithm: JwtAlgorithm) -> Validation {
        let mut validation = Validation::new(algorithm.to_jsonwebtoken());
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation
    }
}

fn map_error(error: jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim { claim: claim.clone() },
        ErrorKind::InvalidClaimFormat(claim) => {
            AuthError::InvalidClaim { claim: claim.clone(), reason: "has the wrong type".to_owned() }
        }
        _ => AuthError::MalformedJwt { reason: error.to_string() },
    }
}
