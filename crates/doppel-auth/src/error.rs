//! The crate's one error type, and how much of an input it may repeat.

use std::path::PathBuf;

use doppel_model::{Timestamp, TwinId};
use thiserror::Error;

use crate::{Denial, GrantId, JwtAlgorithm, Permissions, TokenId};

/// Why a credential, a policy change or a configuration was refused. The
/// messages name what was wrong (and the token id, key or claim) but never
/// a secret: no token text, no JWT, no key material.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The `Authorization` value is not `<scheme> <credential>`.
    #[error("Authorization header is not `<scheme> <credential>`")]
    MalformedAuthorization,
    /// A scheme other than `Bearer` or `Token`.
    #[error("Authorization scheme {scheme:?} is not supported (use Bearer or Token)")]
    UnsupportedScheme { scheme: String },
    /// A credential too long to be either kind.
    #[error("credential is {bytes} bytes, more than the {max} accepted")]
    CredentialTooLong { bytes: usize, max: usize },
    /// Neither `dpl_…` nor three dot-separated base64url parts.
    #[error("credential is neither a Doppel API token (dpl_…) nor a JWT")]
    UnrecognizedCredential,

    /// Text starting like an API token that is not one.
    #[error("malformed API token: {reason}")]
    MalformedToken { reason: &'static str },
    /// A token id that is not 12 characters of `a-z`, `2-7`.
    #[error("invalid token id {id:?}: expected 12 characters of a-z and 2-7")]
    InvalidTokenId { id: String },
    /// No record has this id.
    #[error("unknown API token {id}")]
    UnknownToken { id: TokenId },
    /// The id is known but the secret is not the one it was made with.
    #[error("API token {id}: the secret does not match")]
    WrongSecret { id: TokenId },
    /// The token was revoked.
    #[error("API token {id} was revoked at {at}")]
    TokenRevoked { id: TokenId, at: Timestamp },
    /// The token's expiry has passed.
    #[error("API token {id} expired at {at}")]
    TokenExpired { id: TokenId, at: Timestamp },
    /// An expiry that has already passed, for a new token or grant.
    #[error("expiry {expires} is not after the current time {now}")]
    ExpiryNotInFuture { expires: Timestamp, now: Timestamp },
    /// The operating system's random source failed.
    #[error("the random source failed: {0}")]
    Entropy(String),
    /// `DOPPEL_ADMIN_TOKEN` is set but unusable.
    #[error("DOPPEL_ADMIN_TOKEN: {0}")]
    AdminTokenVariable(Box<AuthError>),
    /// Stored tokens contradict each other.
    #[error("stored API tokens are inconsistent: {reason}")]
    CorruptTokens { reason: String },

    /// A user, group or token name breaking the naming rules.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName { what: &'static str, name: String, reason: &'static str },
    /// A scope name other than admin or a permission.
    #[error("unknown scope {0:?} (expected admin, read, write, simulate, manage or share)")]
    UnknownScope(String),
    /// A permission name other than the five.
    #[error("unknown permission {0:?} (expected read, write, simulate, manage or share)")]
    UnknownPermission(String),
    /// `admin` together with a twin restriction.
    #[error("the admin scope covers every twin and cannot be limited to some")]
    AdminLimitedToTwins,
    /// The operation needs the admin scope.
    #[error("{principal} lacks the admin scope this needs")]
    AdminRequired { principal: String },

    /// JWTs arrive but no provider is configured.
    #[error("JWT authentication is not configured on this server")]
    JwtNotConfigured,
    /// A JWT whose header or payload cannot be decoded.
    #[error("malformed JWT: {reason}")]
    MalformedJwt { reason: String },
    /// A JWT signed with an algorithm Doppel does not accept.
    #[error("JWT algorithm {alg} is not accepted (RS256, ES256 or EdDSA)")]
    JwtAlgorithmNotAccepted { alg: String },
    /// The JWT's `kid` names no configured key.
    #[error("JWT key id {kid:?} is not among the configured keys")]
    UnknownKeyId { kid: String },
    /// The key the `kid` names is for another algorithm.
    #[error("JWT key {kid:?} is an {key} key but the token says {token}")]
    KeyAlgorithmMismatch { kid: String, key: JwtAlgorithm, token: JwtAlgorithm },
    /// No configured key is for the JWT's algorithm.
    #[error("no configured key verifies {alg} JWTs")]
    NoKeyForAlgorithm { alg: JwtAlgorithm },
    /// No configured key verifies the signature.
    #[error("JWT signature does not verify with the configured keys")]
    BadSignature,
    /// `exp` has passed (leeway included).
    #[error("JWT expired at {at}")]
    JwtExpired { at: Timestamp },
    /// `nbf` is still ahead (leeway included).
    #[error("JWT is not valid before {at}")]
    JwtNotYetValid { at: Timestamp },
    /// `iss` is not the configured issuer.
    #[error("JWT issuer is not the configured issuer")]
    WrongIssuer,
    /// `aud` does not include the configured audience.
    #[error("JWT audience does not include the configured audience")]
    WrongAudience,
    /// A required claim is absent.
    #[error("JWT lacks the required claim {claim:?}")]
    MissingClaim { claim: String },
    /// A claim is present but unusable.
    #[error("JWT claim {claim:?} {reason}")]
    InvalidClaim { claim: String, reason: String },
    /// A key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A configured key is malformed, too weak or for another algorithm.
    #[error("key {key} is unusable: {reason}")]
    UnusableKey { key: String, reason: String },
    /// The JWT settings are incomplete.
    #[error("JWT configuration: {reason}")]
    InvalidJwtConfig { reason: &'static str },

    /// Text that is not `user:…`, `group:…` or `token:…`.
    #[error("invalid subject {text:?}: expected user:<name>, group:<name> or token:<id>")]
    InvalidSubject { text: String },
    /// Text that is not a resource.
    #[error("invalid resource {text:?}: expected twin, signals:<pattern>, scenarios, alerts or policy")]
    InvalidResource { text: String },
    /// A signal pattern breaking its rules.
    #[error("invalid signal pattern {pattern:?}: {reason}")]
    InvalidSignalPattern { pattern: String, reason: &'static str },
    /// A grant with no permission in it.
    #[error("a grant needs at least one permission")]
    NoPermissions,
    /// Permissions that mean nothing on the resource.
    #[error("cannot grant {permissions} on {resource}: it takes only {applicable}")]
    PermissionNotApplicable { permissions: Permissions, resource: String, applicable: Permissions },
    /// A delegated grant that would outlast the granter's own.
    #[error("the grant would outlive the granter's own access, which ends at {limit}")]
    GrantOutlivesGranter { limit: Timestamp },
    /// No such grant on the twin.
    #[error("twin {twin} has no grant {grant}")]
    UnknownGrant { twin: TwinId, grant: GrantId },
    /// The policy does not let the caller do this.
    #[error("{principal} may not {action} on twin {twin}: {denial}")]
    Forbidden { principal: String, action: String, twin: TwinId, denial: Denial },
    /// Stored policies contradict themselves.
    #[error("stored policies are inconsistent: {reason}")]
    CorruptPolicies { reason: String },

    /// The state file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    StateFile {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The state file is not one Doppel wrote, or no longer holds together.
    #[error("authentication state {path} is unreadable: {reason}")]
    CorruptState { path: PathBuf, reason: String },
}

/// Keeps error messages bounded when the offending input is huge, and cuts
/// anything that looks like an API token after its public id, so that a
/// token pasted into the wrong field is not echoed back with its secret.
pub(crate) fn echo(text: &str) -> String {
    const SHOWN: usize = 64;
    let token_id_end = text
        .find(crate::token::TOKEN_PREFIX)
        .map(|start| start + crate::token::TOKEN_PREFIX.len() + crate::token::TOKEN_ID_CHARS);
    let limit = token_id_end.map_or(SHOWN, |end| end.min(SHOWN));
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_input_stops_after_the_id_of_anything_like_a_token() {
        let token = "dpl_abcdefgh2345_SECRETSECRETSECRETSECRETSECRETSECRETSECRETSE";
        assert_eq!(echo(token), "dpl_abcdefgh2345…");
        assert_eq!(echo(&format!("token:{token}")), "token:dpl_abcdefgh2345…");
        assert_eq!(echo(&"é".repeat(40)).chars().count(), 33);
    }
}
