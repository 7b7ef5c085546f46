//! Reading a credential out of an `Authorization` header.
//!
//! `Authorization: Bearer <credential>` is what OAuth clients send;
//! `Authorization: Token <credential>` is what InfluxDB 2 clients and
//! Telegraf send. Both schemes carry either kind of credential, told apart
//! by shape: an API token starts with `dpl_`, a JWT is three base64url
//! segments joined by dots.

use std::fmt;

use crate::token::TOKEN_PREFIX;
use crate::{AuthError, TokenRef, parse_token};

/// Longest credential accepted, in bytes. JWTs carrying long group lists
/// run to a few kilobytes; anything past this is refused before any
/// decoding, so a huge header costs nothing.
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// A credential as presented, its kind known, not yet verified.
#[derive(Debug)]
pub enum Credential {
    /// A Doppel API token.
    ApiToken(TokenRef),
    /// A JWT for [`JwtVerifier`](crate::JwtVerifier).
    Jwt(Jwt),
}

/// Text with the shape of a compact JWS: `header.payload.signature`, each
/// part non-empty base64url. Only the shape is known; nothing is verified.
/// `Debug` hides the signature.
pub struct Jwt(String);

impl Jwt {
    /// Checks the shape.
    pub fn new(text: &str) -> Result<Self, AuthError> {
        let mut parts = 0;
        for part in text.split('.') {
            parts += 1;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(AuthError::UnrecognizedCredential);
            }
        }
        if parts != 3 {
            return Err(AuthError::UnrecognizedCredential);
        }
        Ok(Jwt(text.to_owned()))
    }

    /// The compact text, for the verifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signed_part = self.0.rsplit_once('.').map_or("", |(signed, _)| signed);
        write!(f, "Jwt({signed_part}.…)")
    }
}

/// Reads the value of an `Authorization` header: scheme `Bearer` or
/// `Token` (any case), one space or more, the credential.
pub fn parse_authorization(header: &str) -> Result<Credential, AuthError> {
    let (scheme, credential) = header.trim().split_once(' ').ok_or(AuthError::MalformedAuthorization)?;
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")) {
        return Err(AuthError::UnsupportedScheme { scheme: crate::error::echo(scheme) });
    }
    parse_credential(credential.trim_start())
}

/// Tells an API token from a JWT by shape, for credentials that arrive
/// without a scheme (a query parameter, an environment variable).
pub fn parse_credential(text: &str) -> Result<Credential, AuthError> {
    if text.len() > MAX_CREDENTIAL_BYTES {
        return Err(AuthError::CredentialTooLong { bytes: text.len(), max: MAX_CREDENTIAL_BYTES });
    }
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err(AuthError::MalformedAuthorization);
    }
    if text.starts_with(TOKEN_PREFIX) {
        return parse_token(text).map(Credential::ApiToken);
    }
    Jwt::new(text).map(Credential::Jwt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "dpl_abcdefgh2345_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

    #[test]
    fn both_schemes_carry_both_kinds_of_credential() {
        for scheme in ["Bearer", "bearer", "Token", "TOKEN"] {
            assert!(matches!(parse_authorization(&format!("{scheme} {TOKEN}")), Ok(Credential::ApiToken(_))));
            assert!(matches!(parse_authorization(&format!("{scheme}  {JWT}")), Ok(Credential::Jwt(_))));
        }
    }

    #[test]
    fn other_schemes_and_shapes_are_refused_by_name() {
        assert!(matches!(
            parse_authorization("Basic YWxpY2U6c2VjcmV0"),
            Err(AuthError::UnsupportedScheme { scheme }) if scheme == "Basic"
        ));
        assert!(matches!(parse_authorization("Bearer"), Err(AuthError::MalformedAuthorization)));
        assert!(matches!(parse_authorization("Bearer a b"), Err(AuthError::MalformedAuthorization)));
        for not_a_jwt in ["abc", "a.b", "a..c", "a.b.c.d", "a.b!.c"] {
            assert!(
                matches!(
                    parse_authorization(&format!("Bearer {not_a_jwt}")),
                    Err(AuthError::UnrecognizedCredential)
                ),
                "{not_a_jwt}"
            );
        }
        assert!(matches!(parse_authorization("Bearer dpl_short"), Err(AuthError::MalformedToken { .. })));
    }

    #[test]
    fn huge_credentials_are_refused_before_decoding() {
        let huge = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_BYTES + 1));
        assert!(matches!(parse_authorization(&huge), Err(AuthError::CredentialTooLong { .. })));
    }

    #[test]
    fn debug_output_hides_the_jwt_signature() {
        let Ok(Credential::Jwt(jwt)) = parse_credential(JWT) else { panic!("a JWT") };
        assert!(!format!("{jwt:?}").contains("c2lnbmF0dXJl"));
    }
}
