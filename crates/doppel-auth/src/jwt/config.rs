//! How the server is told to trust an identity provider.

use std::fmt;
use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

use crate::GroupName;

/// The `[auth.jwt]` section of the server configuration:
///
/// ```toml
/// issuer = "https://id.example.org/realms/doppel"
/// audience = "doppel"
/// jwks_file = "/etc/doppel/jwks.json"   # and/or pem_keys
/// groups_claim = "groups"               # default
/// admin_group = "doppel-admins"         # members get the admin scope
/// scope_prefix = "doppel:"              # default
///
/// [[pem_keys]]
/// path = "/etc/doppel/idp.pem"
/// algorithm = "RS256"
/// kid = "2024-06"                       # optional
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The only accepted `iss`.
    pub issuer: String,
    /// The `aud` a token must include.
    pub audience: String,
    /// A JWKS document holding the provider's public keys.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Public keys in PEM files.
    #[serde(default)]
    pub pem_keys: Vec<PemKeyConfig>,
    /// The claim listing the user's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Members of this group get the `admin` scope; without it no JWT does.
    #[serde(default)]
    pub admin_group: Option<GroupName>,
    /// Only `scope` values with this prefix are Doppel scopes
    /// (`doppel:read`); the rest (`openid`, `email`) are the provider's own.
    #[serde(default = "default_scope_prefix")]
    pub scope_prefix: String,
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

fn default_scope_prefix() -> String {
    "doppel:".to_owned()
}

impl JwtConfig {
    /// A configuration with the defaults and no keys yet.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        JwtConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_file: None,
            pem_keys: Vec::new(),
            groups_claim: default_groups_claim(),
            admin_group: None,
            scope_prefix: default_scope_prefix(),
        }
    }
}

/// One public key in a PEM file (SPKI `PUBLIC KEY`, or `RSA PUBLIC KEY`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemKeyConfig {
    /// The file.
    pub path: PathBuf,
    /// The algorithm tokens signed with it use.
    pub algorithm: JwtAlgorithm,
    /// The `kid` tokens signed with it carry, if the provider sets one.
    #[serde(default)]
    pub kid: Option<String>,
}

/// The signature algorithms Doppel accepts. No HMAC (a shared secret would
/// let Doppel mint tokens for the provider) and no `none`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl JwtAlgorithm {
    pub(crate) fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::ES256 => Algorithm::ES256,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }

    pub(crate) fn from_jsonwebtoken(algorithm: Algorithm) -> Option<Self> {
        match algorithm {
            Algorithm::RS256 => Some(JwtAlgorithm::RS256),
            Algorithm::ES256 => Some(JwtAlgorithm::ES256),
            Algorithm::EdDSA => Some(JwtAlgorithm::EdDSA),
            _ => None,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_from_toml_with_defaults() {
        let config: JwtConfig = toml::from_str(
            r#"
            issuer = "https://id.example.org"
            audience = "doppel"
            [[pem_keys]]
            path = "idp.pem"
            algorithm = "ES256"
            "#,
        )
        .unwrap();
        assert_eq!(config.groups_claim, "groups");
        assert_eq!(config.scope_prefix, "doppel:");
        assert_eq!(config.pem_keys[0].algorithm, JwtAlgorithm::ES256);
    }

    #[test]
    fn config_refuses_unknown_keys_and_algorithms() {
        assert!(toml::from_str::<JwtConfig>("issuer = 'x'\naudience = 'y'\naudiences = ['z']").is_err());
        let hmac = "issuer = 'x'\naudience = 'y'\n[[pem_keys]]\npath = 'k'\nalgorithm = 'HS256'";
        assert!(toml::from_str::<JwtConfig>(hmac).is_err());
    }
}
