//! One call from an `Authorization` header to a principal.

use doppel_model::Timestamp;

use crate::{AuthError, Credential, JwtVerifier, Principal, Tokens, parse_authorization};

/// What a server needs to authenticate a request: the API tokens are
/// passed per call (they change while the server runs), the JWT verifier
/// is fixed at start.
#[derive(Debug, Default)]
pub struct Authenticator {
    jwt: Option<JwtVerifier>,
}

impl Authenticator {
    /// An authenticator accepting API tokens, and JWTs when a verifier is
    /// given.
    pub fn new(jwt: Option<JwtVerifier>) -> Self {
        Authenticator { jwt }
    }

    /// The principal behind a request's `Authorization` header; the
    /// anonymous principal when there is none. A header that is present but
    /// wrong is an error, never anonymous, so a client with a broken token
    /// hears about it instead of getting an empty answer.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        tokens: &Tokens,
        now: Timestamp,
    ) -> Result<Principal, AuthError> {
        let Some(header) = authorization else {
            return Ok(Principal::anonymous());
        };
        match parse_authorization(header)? {
            Credential::ApiToken(presented) => tokens.authenticate(&presented, now),
            Credential::Jwt(jwt) => match &self.jwt {
                Some(verifier) => verifier.verify(&jwt, now),
                None => Err(AuthError::JwtNotConfigured),
            },
        }
    }
}
