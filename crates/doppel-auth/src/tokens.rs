//! The set of API tokens a server knows, and the bootstrap admin token.

use std::collections::BTreeMap;

use doppel_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    AuthError, NewToken, Principal, Scopes, SecretToken, TokenId, TokenName, TokenRecord, TokenRef, UserName,
    generate, parse_token,
};

/// The user the bootstrap admin token acts as.
pub const BOOTSTRAP_USER: &str = "admin";
/// The name the bootstrap admin token is listed under.
pub const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap-admin";

/// How many fresh ids `create` tries before giving up: 60-bit ids collide
/// so rarely that a second clash means the random source is broken.
const ID_ATTEMPTS: usize = 2;

/// Every API token record, by id. Small (one per device or script) and
/// changed rarely: storage persists the whole set as JSON after each change.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<TokenRecord>", into = "Vec<TokenRecord>")]
pub struct Tokens {
    records: BTreeMap<TokenId, TokenRecord>,
}

/// What [`Tokens::bootstrap_admin`] did.
#[derive(Debug)]
pub enum Bootstrap {
    /// The set was empty and no token came from the environment: here is a
    /// new admin token, to print once.
    Generated(SecretToken),
    /// The token from the environment was added.
    FromEnvironment(TokenId),
    /// Nothing was needed: tokens exist, or the one from the environment is
    /// already known.
    NotNeeded,
}

impl Tokens {
    /// No tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes a token and keeps its record; the returned text is the only
    /// copy of its secret.
    pub fn create(
        &mut self,
        new: NewToken,
        now: Timestamp,
    ) -> Result<(SecretToken, &TokenRecord), AuthError> {
        let (secret, record) = self.mint(new, now)?;
        Ok((secret, self.records.entry(record.id).or_insert(record)))
    }

    /// Makes a token whose id no record holds, without keeping it: the
    /// caller makes the record durable first, then [`Tokens::insert`]s it.
    pub fn mint(&self, new: NewToken, now: Timestamp) -> Result<(SecretToken, TokenRecord), AuthError> {
        for _ in 0..ID_ATTEMPTS {
            let (secret, record) = generate(new.clone(), now)?;
            if !self.records.contains_key(&record.id) {
                return Ok((secret, record));
            }
        }
        Err(AuthError::Entropy("token ids keep colliding".to_owned()))
    }

    /// Keeps `record` (minted, or read back from the change log), replacing
    /// any record of its id.
    pub fn insert(&mut self, record: TokenRecord) {
        self.records.insert(record.id, record);
    }

    /// The record of token `id`.
    pub fn get(&self, id: &TokenId) -> Option<&TokenRecord> {
        self.records.get(id)
    }

    /// Every record, by id, revoked and expired ones included.
    pub fn iter(&self) -> impl Iterator<Item = &TokenRecord> {
        self.records.values()
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Marks token `id` revoked from `now` on; revoking twice keeps the
    /// first time. Revoked records stay listed so that `token list` and the
    /// audit log can still name them.
    pub fn revoke(&mut self, id: &TokenId, now: Timestamp) -> Result<&TokenRecord, AuthError> {
        let record = self.records.get_mut(id).ok_or(AuthError::UnknownToken { id: *id })?;
        record.revoked.get_or_insert(now);
        Ok(record)
    }

    /// The principal behind a presented token, if it is known, its secret
    /// matches, and it is neither revoked nor expired.
    pub fn authenticate(&self, presented: &TokenRef, now: Timestamp) -> Result<Principal, AuthError> {
        let record =
            self.records.get(presented.id()).ok_or(AuthError::UnknownToken { id: *presented.id() })?;
        record.verify(presented, now)?;
        Ok(Principal::from_token(record))
    }

    /// Makes sure an administrator can get in on first start. With the text
    /// of `DOPPEL_ADMIN_TOKEN` (a `dpl_` token made earlier, e.g. by
    /// `doppel token create` elsewhere), adds it as an admin token unless it
    /// is already known; a known id with another secret, or a revoked or
    /// expired token, is an error. Without it, generates an admin token
    /// when the set is empty (an empty variable counts as unset). The
    /// variable also recovers a server whose admin tokens were all revoked.
    pub fn bootstrap_admin(
        &mut self,
        from_environment: Option<&str>,
        now: Timestamp,
    ) -> Result<Bootstrap, AuthError> {
        let in_variable = |err| AuthError::AdminTokenVariable(Box::new(err));
        let new = NewToken {
            name: TokenName::new(BOOTSTRAP_TOKEN_NAME)?,
            user: UserName::new(BOOTSTRAP_USER)?,
            scopes: Scopes::Admin,
            expires: None,
        };
        let Some(text) = from_environment.map(str::trim).filter(|text| !text.is_empty()) else {
            if !self.is_empty() {
                return Ok(Bootstrap::NotNeeded);
            }
            return Ok(Bootstrap::Generated(self.create(new, now)?.0));
        };
        let presented = parse_token(text).map_err(in_variable)?;
        if let Some(record) = self.records.get(presented.id()) {
            record.verify(&presented, now).map_err(in_variable)?;
            if !record.scopes.is_admin() {
                return Err(in_variable(AuthError::AdminRequired {
                    principal: format!("token {}", record.id),
                }));
            }
            return Ok(Bootstrap::NotNeeded);
        }
        let record = TokenRecord::for_presented(&presented, new, now)?;
        let id = record.id;
        self.records.insert(id, record);
        Ok(Bootstrap::FromEnvironment(id))
    }
}

impl TryFrom<Vec<TokenRecord>> for Tokens {
    type Error = AuthError;
    fn try_from(records: Vec<TokenRecord>) -> Result<Self, Self::Error> {
        let mut tokens = Tokens::new();
        for record in records {
            let id = record.id;
            if tokens.records.insert(id, record).is_some() {
                return Err(AuthError::CorruptTokens { reason: format!("token {id} appears twice") });
            }
        }
        Ok(tokens)
    }
}

impl From<Tokens> for Vec<TokenRecord> {
    fn from(tokens: Tokens) -> Self {
        tokens.records.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PrincipalKind, Scope};

    fn now() -> Timestamp {
        Timestamp::from_secs(1_700_000_000)
    }

    fn phone_token() -> NewToken {
        NewToken {
            name: TokenName::new("phone").unwrap(),
            user: UserName::new("alice").unwrap(),
            scopes: Scopes::new([Scope::Write], None).unwrap(),
            expires: None,
        }
    }

    #[test]
    fn a_created_token_authenticates_as_its_user_with_its_scopes() {
        let mut tokens = Tokens::new();
        let (secret, record) = tokens.create(phone_token(), now()).unwrap();
        let id = record.id;
        let principal = tokens.authenticate(&parse_token(secret.expose()).unwrap(), now()).unwrap();
        assert_eq!(principal.user().map(UserName::as_str), Some("alice"));
        assert_eq!(principal.kind(), &PrincipalKind::Token(id));
        assert_eq!(principal.scopes(), &Scopes::new([Scope::Write], None).unwrap());
    }

    #[test]
    fn a_revoked_token_no_longer_authenticates_but_stays_listed() {
        let mut tokens = Tokens::new();
        let (secret, record) = tokens.create(phone_token(), now()).unwrap();
        let id = record.id;
        tokens.revoke(&id, now()).unwrap();
        tokens.revoke(&id, now().add_nanos(5)).unwrap();
        assert_eq!(tokens.get(&id).unwrap().revoked, Some(now()));
        let err = tokens.authenticate(&parse_token(secret.expose()).unwrap(), now()).unwrap_err();
        assert!(matches!(err, AuthError::TokenRevoked { .. }), "{err}");
        assert_eq!(tokens.len(), 1);
    }

    #[test]
    fn an_unknown_token_is_named_in_the_error() {
        let tokens = Tokens::new();
        let presented = parse_token("dpl_abcdefgh2345_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let err = tokens.authenticate(&presented, now()).unwrap_err();
        assert_eq!(err.to_string(), "unknown API token abcdefgh2345");
    }

    #[test]
    fn first_start_generates_an_admin_token_once() {
        let mut tokens = Tokens::new();
        let Bootstrap::Generated(secret) = tokens.bootstrap_admin(None, now()).unwrap() else {
            panic!("an empty set needs an admin token");
        };
        let principal = tokens.authenticate(&parse_token(secret.expose()).unwrap(), now()).unwrap();
        assert!(principal.is_admin());
        assert!(matches!(tokens.bootstrap_admin(None, now()).unwrap(), Bootstrap::NotNeeded));
    }

    #[test]
    fn the_environment_token_is_added_once_and_checked_after() {
        let text = "dpl_abcdefgh2345_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let mut tokens = Tokens::new();
        assert!(matches!(tokens.bootstrap_admin(Some(text), now()).unwrap(), Bootstrap::FromEnvironment(_)));
        assert!(matches!(tokens.bootstrap_admin(Some(text), now()).unwrap(), Bootstrap::NotNeeded));
        assert!(tokens.authenticate(&parse_token(text).unwrap(), now()).unwrap().is_admin());

        let same_id_other_secret = "dpl_abcdefgh2345_BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let err = tokens.bootstrap_admin(Some(same_id_other_secret), now()).unwrap_err();
        assert!(err.to_string().starts_with("DOPPEL_ADMIN_TOKEN"), "{err}");
        assert!(!err.to_string().contains("BAAAA"), "{err}");

        assert!(matches!(
            tokens.bootstrap_admin(Some("hunter2"), now()),
            Err(AuthError::AdminTokenVariable(_))
        ));
    }

    #[test]
    fn the_set_round_trips_through_json_and_refuses_duplicates() {
        let mut tokens = Tokens::new();
        tokens.create(phone_token(), now()).unwrap();
        tokens.create(phone_token(), now()).unwrap();
        let json = serde_json::to_string(&tokens).unwrap();
        assert_eq!(serde_json::from_str::<Tokens>(&json).unwrap(), tokens);
        let record = serde_json::to_string(tokens.iter().next().unwrap()).unwrap();
        assert!(serde_json::from_str::<Tokens>(&format!("[{record},{record}]")).is_err());
    }
}
