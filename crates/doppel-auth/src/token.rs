//! API tokens: `dpl_<id>_<secret>`, shown once, stored as a hash.
//!
//! The text of a token is `dpl_`, a 12-character id (lowercase RFC 4648
//! base32: `a-z`, `2-7`, 60 random bits), `_`, and a secret of 32 random
//! bytes from the operating system in unpadded URL-safe base64 (43
//! characters): 60 characters in all. The prefix lets secret scanners and
//! the server tell it from a JWT; the id is public (it names the token in
//! `doppel token list` and in logs) and lets the server find the record
//! without a scan; the secret never leaves the token's holder.
//!
//! Doppel stores only `SHA-256(id ‖ secret)`. A password needs a slow hash
//! because people choose guessable ones; a 256-bit random secret cannot be
//! guessed, so a fast hash loses nothing and keeps every request cheap.
//! Hashing the id with the secret ties a stored hash to its own record.
//! The comparison is constant-time, so response timing tells an attacker
//! nothing about how much of a forged secret was right.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use doppel_model::Timestamp;
use rand::TryRngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{AuthError, Scope, Scopes, TokenName, UserName};

/// What every API token starts with.
pub const TOKEN_PREFIX: &str = "dpl_";
/// Characters in a token id.
pub const TOKEN_ID_CHARS: usize = 12;
/// Random bytes in a token secret: 256 bits, beyond any guessing.
pub const SECRET_BYTES: usize = 32;
/// Characters of the secret in unpadded base64.
const SECRET_CHARS: usize = 43;
/// Characters in a whole token.
pub const TOKEN_CHARS: usize = TOKEN_PREFIX.len() + TOKEN_ID_CHARS + 1 + SECRET_CHARS;

/// Lowercase RFC 4648 base32: no `_`, so the id never hides the separator,
/// and no case to get wrong when reading an id aloud.
const ID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The public half of a token: 12 characters of `a-z` and `2-7`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenId([u8; TOKEN_ID_CHARS]);

impl TokenId {
    /// Parses a token id as `doppel token revoke` takes it.
    pub fn new(text: &str) -> Result<Self, AuthError> {
        let bytes: [u8; TOKEN_ID_CHARS] = text
            .as_bytes()
            .try_into()
            .map_err(|_| AuthError::InvalidTokenId { id: crate::error::echo(text) })?;
        if !bytes.iter().all(|b| ID_ALPHABET.contains(b)) {
            return Err(AuthError::InvalidTokenId { id: crate::error::echo(text) });
        }
        Ok(TokenId(bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Every byte is from ID_ALPHABET, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    fn random() -> Result<Self, AuthError> {
        let mut bits = u64::from_le_bytes(random_bytes::<8>()?);
        let mut id = [0u8; TOKEN_ID_CHARS];
        for slot in &mut id {
            *slot = ID_ALPHABET[(bits & 31) as usize];
            bits >>= 5;
        }
        Ok(TokenId(id))
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::str::FromStr for TokenId {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for TokenId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TokenId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A token as a client presented it: its id and the secret to check.
/// `Debug` shows the id only.
pub struct TokenRef {
    id: TokenId,
    secret: Zeroizing<[u8; SECRET_BYTES]>,
}

impl TokenRef {
    /// The id, to look the record up.
    pub fn id(&self) -> &TokenId {
        &self.id
    }
}

impl fmt::Debug for TokenRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRef").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Splits token text into id and secret. Never panics and never echoes
/// the text in its errors (it may be a real secret pasted in the wrong
/// place).
pub fn parse_token(text: &str) -> Result<TokenRef, AuthError> {
    let malformed = |reason| AuthError::MalformedToken { reason };
    let rest = text.strip_prefix(TOKEN_PREFIX).ok_or(malformed("it does not start with `dpl_`"))?;
    if text.len() != TOKEN_CHARS {
        return Err(malformed("it is not 60 characters long"));
    }
    // In non-ASCII text these offsets can fall inside a character; `get`
    // then answers `None` where slicing would panic.
    let (id, rest) = (rest.get(..TOKEN_ID_CHARS), rest.get(TOKEN_ID_CHARS..));
    let (Some(id), Some(rest)) = (id, rest) else {
        return Err(malformed("it holds characters outside the token alphabet"));
    };
    let id = TokenId::new(id).map_err(|_| malformed("its id is not 12 characters of a-z and 2-7"))?;
    let secret_text = rest.strip_prefix('_').ok_or(malformed("there is no `_` after its id"))?;
    let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
    match URL_SAFE_NO_PAD.decode_slice(secret_text, &mut secret[..]) {
        Ok(SECRET_BYTES) => Ok(TokenRef { id, secret }),
        _ => Err(malformed("its secret is not 43 characters of URL-safe base64")),
    }
}

/// A freshly made token's full text. It exists once, to be shown to whoever
/// asked for the token; Doppel keeps only its hash. The text is wiped from
/// memory on drop and `Debug` hides the secret.
pub struct SecretToken(Zeroizing<String>);

impl SecretToken {
    /// The token text, to print once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn new(id: &TokenId, secret: &[u8; SECRET_BYTES]) -> Self {
        let mut text = Zeroizing::new(String::with_capacity(TOKEN_CHARS));
        text.push_str(TOKEN_PREFIX);
        text.push_str(id.as_str());
        text.push('_');
        URL_SAFE_NO_PAD.encode_string(secret, &mut text);
        SecretToken(text)
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..TOKEN_PREFIX.len() + TOKEN_ID_CHARS).unwrap_or_default();
        write!(f, "SecretToken({shown}_…)")
    }
}

/// SHA-256 of a token's id and secret: all Doppel stores of a secret.
#[derive(Clone, Copy, PartialEq, Eq)]
struct TokenHash([u8; 32]);

impl TokenHash {
    fn of(id: &TokenId, secret: &[u8; SECRET_BYTES]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(id.0);
        hasher.update(secret);
        TokenHash(hasher.finalize().into())
    }

    fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut hash = [0u8; 32];
        let digit = |byte: u8| char::from(byte).to_digit(16);
        for (slot, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
            *slot = u8::try_from(digit(pair[0])? << 4 | digit(pair[1])?).ok()?;
        }
        Some(TokenHash(hash))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a new token should be: who it acts as, what it may do, until when.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// A label for `doppel token list`.
    pub name: TokenName,
    /// The user the token acts as; the policies decide what that user may do.
    pub user: UserName,
    /// The most the token may do, whatever the user may.
    pub scopes: Scopes,
    /// When the token stops working; `None` for never.
    pub expires: Option<Timestamp>,
}

/// Whether a token still works, for listings.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TokenStatus {
    /// It authenticates.
    Active,
    /// Its expiry has passed.
    Expired,
    /// It was revoked.
    Revoked,
}

impl fmt::Display for TokenStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        })
    }
}

/// Everything Doppel keeps about an API token. Storage persists it as JSON
/// (the hash as hex); nothing in it reveals the secret.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(try_from = "TokenRecordRepr", into = "TokenRecordRepr")]
pub struct TokenRecord {
    /// The public id.
    pub id: TokenId,
    /// The administrator's label.
    pub name: TokenName,
    /// The user the token acts as.
    pub user: UserName,
    /// The most the token may do.
    pub scopes: Scopes,
    /// When it was made.
    pub created: Timestamp,
    /// When it stops working, if ever.
    pub expires: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked: Option<Timestamp>,
    hash: TokenHash,
}

impl TokenRecord {
    fn new(
        id: TokenId,
        secret: &[u8; SECRET_BYTES],
        new: NewToken,
        now: Timestamp,
    ) -> Result<Self, AuthError> {
        if let Some(expires) = new.expires
            && expires <= now
        {
            return Err(AuthError::ExpiryNotInFuture { expires, now });
        }
        Ok(TokenRecord {
            hash: TokenHash::of(&id, secret),
            id,
            name: new.name,
            user: new.user,
            scopes: new.scopes,
            created: now,
            expires: new.expires,
            revoked: None,
        })
    }

    /// A record for a token whose text already exists (the bootstrap
    /// token taken from `DOPPEL_ADMIN_TOKEN`).
    pub fn for_presented(presented: &TokenRef, new: NewToken, now: Timestamp) -> Result<Self, AuthError> {
        Self::new(presented.id, &presented.secret, new, now)
    }

    /// Checks a presented token against this record: the secret first, so
    /// that only the token's holder learns whether it was revoked or
    /// expired.
    pub fn verify(&self, presented: &TokenRef, now: Timestamp) -> Result<(), AuthError> {
        if presented.id != self.id || !self.hash.matches(&TokenHash::of(&presented.id, &presented.secret)) {
            return Err(AuthError::WrongSecret { id: presented.id });
        }
        match self.status(now) {
            TokenStatus::Active => Ok(()),
            TokenStatus::Revoked => {
                Err(AuthError::TokenRevoked { id: self.id, at: self.revoked.unwrap_or(now) })
            }
            TokenStatus::Expired => {
                Err(AuthError::TokenExpired { id: self.id, at: self.expires.unwrap_or(now) })
            }
        }
    }

    /// Whether the token works at `now`.
    pub fn status(&self, now: Timestamp) -> TokenStatus {
        if self.revoked.is_some() {
            TokenStatus::Revoked
        } else if self.expires.is_some_and(|expires| expires <= now) {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }
}

/// Makes a new token: its text, to show once, and the record to store.
/// Fails only if the expiry is not in the future or the operating system
/// has no randomness to give.
pub fn generate(new: NewToken, now: Timestamp) -> Result<(SecretToken, TokenRecord), AuthError> {
    let id = TokenId::random()?;
    let secret = Zeroizing::new(random_bytes::<SECRET_BYTES>()?);
    let record = TokenRecord::new(id, &secret, new, now)?;
    Ok((SecretToken::new(&id, &secret), record))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut bytes = [0u8; N];
    OsRng.try_fill_bytes(&mut bytes).map_err(|e| AuthError::Entropy(e.to_string()))?;
    Ok(bytes)
}

/// The stored form: scopes spelled out beside the other fields.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRecordRepr {
    id: TokenId,
    name: TokenName,
    user: UserName,
    scopes: Vec<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    twins: Option<std::collections::BTreeSet<doppel_model::TwinId>>,
    created: Timestamp,
    expires: Option<Timestamp>,
    revoked: Option<Timestamp>,
    sha256: String,
}

impl TryFrom<TokenRecordRepr> for TokenRecord {
    type Error = AuthError;
    fn try_from(repr: TokenRecordRepr) -> Result<Self, Self::Error> {
        let hash = TokenHash::from_hex(&repr.sha256).ok_or_else(|| AuthError::CorruptTokens {
            reason: format!("token {}: sha256 is not 64 hex digits", repr.id),
        })?;
        Ok(TokenRecord {
            id: repr.id,
            name: repr.name,
            user: repr.user,
            scopes: Scopes::new(repr.scopes, repr.twins)?,
            created: repr.created,
            expires: repr.expires,
            revoked: repr.revoked,
            hash,
        })
    }
}

impl From<TokenRecord> for TokenRecordRepr {
    fn from(record: TokenRecord) -> Self {
        let (scopes, twins) = record.scopes.to_parts();
        TokenRecordRepr {
            id: record.id,
            name: record.name,
            user: record.user,
            scopes,
            twins,
            created: record.created,
            expires: record.expires,
            revoked: record.revoked,
            sha256: record.hash.to_hex(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn new_token(expires: Option<Timestamp>) -> NewToken {
        NewToken {
            name: TokenName::new("phone").unwrap(),
            user: UserName::new("alice").unwrap(),
            scopes: Scopes::standard(),
            expires,
        }
    }

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let (secret, record) = generate(new_token(None), Timestamp::from_secs(100)).unwrap();
        let text = secret.expose();
        assert_eq!(text.len(), TOKEN_CHARS);
        assert!(text.starts_with(&format!("dpl_{}_", record.id)));
        assert_eq!(parse_token(text).unwrap().id(), &record.id);
    }

    #[test]
    fn a_generated_token_verifies_against_its_record_only() {
        let now = Timestamp::from_secs(100);
        let (secret, record) = generate(new_token(None), now).unwrap();
        let (other_secret, _) = generate(new_token(None), now).unwrap();
        assert!(record.verify(&parse_token(secret.expose()).unwrap(), now).is_ok());
        let err = record.verify(&parse_token(other_secret.expose()).unwrap(), now).unwrap_err();
        assert!(matches!(err, AuthError::WrongSecret { .. }), "{err}");
    }

    #[test]
    fn a_forged_secret_for_a_real_id_is_refused() {
        let now = Timestamp::from_secs(100);
        let (_, record) = generate(new_token(None), now).unwrap();
        let forged = format!("dpl_{}_{}", record.id, "A".repeat(42) + "A");
        let presented = parse_token(&forged).unwrap();
        assert!(matches!(record.verify(&presented, now), Err(AuthError::WrongSecret { .. })));
    }

    #[test]
    fn expired_and_revoked_tokens_are_refused_with_their_reason() {
        let now = Timestamp::from_secs(100);
        let (secret, mut record) = generate(new_token(Some(Timestamp::from_secs(200))), now).unwrap();
        let presented = parse_token(secret.expose()).unwrap();
        assert!(record.verify(&presented, Timestamp::from_secs(199)).is_ok());
        let err = record.verify(&presented, Timestamp::from_secs(200)).unwrap_err();
        assert!(matches!(err, AuthError::TokenExpired { .. }), "{err}");
        record.revoked = Some(Timestamp::from_secs(150));
        let err = record.verify(&presented, Timestamp::from_secs(160)).unwrap_err();
        assert!(matches!(err, AuthError::TokenRevoked { .. }), "{err}");
    }

    #[test]
    fn an_expiry_in_the_past_is_refused() {
        let err = generate(new_token(Some(Timestamp::from_secs(50))), Timestamp::from_secs(100)).unwrap_err();
        assert!(matches!(err, AuthError::ExpiryNotInFuture { .. }), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let (secret, record) = generate(new_token(None), Timestamp::from_secs(1)).unwrap();
        let secret_part = &secret.expose()[TOKEN_CHARS - SECRET_CHARS..];
        let presented = parse_token(secret.expose()).unwrap();
        for shown in [format!("{secret:?}"), format!("{presented:?}"), format!("{record:?}")] {
            assert!(!shown.contains(secret_part), "{shown}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused_without_echoing_them() {
        let good = generate(new_token(None), Timestamp::from_secs(1)).unwrap().0;
        let good = good.expose();
        let (id, secret) = (&good[4..16], &good[17..]);
        let cases = [
            String::new(),
            "dpl_".into(),
            format!("dpx_{id}_{secret}"),
            format!("dpl_{id}-{secret}"),
            format!("dpl_{id}_{}", &secret[1..]),
            format!("dpl_{id}_{secret}A"),
            format!("dpl_{}_{secret}", id.to_uppercase()),
            format!("dpl_{id}_{}!", &secret[1..]),
            format!("dpl_{id}_{}é", &secret[2..]),
            format!("dpl_é{}_{secret}", &id[2..]),
        ];
        for bad in cases {
            let err = parse_token(&bad).unwrap_err();
            assert!(matches!(err, AuthError::MalformedToken { .. }), "{bad:?}: {err}");
            if let Some(tail) = bad.get(8..).filter(|tail| !tail.is_empty()) {
                assert!(!err.to_string().contains(tail), "{err}");
            }
        }
    }

    #[test]
    fn records_round_trip_through_json_with_the_hash_as_hex() {
        let (_, record) =
            generate(new_token(Some(Timestamp::from_secs(500))), Timestamp::from_secs(1)).unwrap();
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains("\"sha256\":\""), "{json}");
        assert_eq!(serde_json::from_str::<TokenRecord>(&json).unwrap(), record);
        let broken = json.replace("\"sha256\":\"", "\"sha256\":\"zz");
        assert!(serde_json::from_str::<TokenRecord>(&broken).is_err());
    }

    #[test]
    fn token_ids_accept_only_base32_lowercase() {
        assert!(TokenId::new("abcdefgh2345").is_ok());
        for bad in ["abcdefgh234", "abcdefgh23456", "ABCDEFGH2345", "abcdefgh2301", "abcdefgh234_"] {
            assert!(TokenId::new(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    fn token_text() -> impl Strategy<Value = String> {
        (
            prop::array::uniform12(prop::sample::select(ID_ALPHABET.to_vec())),
            prop::array::uniform32(any::<u8>()),
        )
            .prop_map(|(id, secret)| {
                let id = TokenId(id);
                SecretToken::new(&id, &secret).expose().to_owned()
            })
    }

    proptest! {
        #[test]
        fn token_text_round_trips_through_parse(text in token_text()) {
            let presented = parse_token(&text).unwrap();
            let again = SecretToken::new(presented.id(), &presented.secret);
            prop_assert_eq!(again.expose(), text.as_str());
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC*") {
            let _ = parse_token(&text);
        }

        #[test]
        fn parsing_near_miss_tokens_never_panics(text in token_text(), at in 0usize..60, byte in any::<u8>()) {
            let mut bytes = text.into_bytes();
            bytes[at] = byte;
            if let Ok(mutated) = String::from_utf8(bytes) {
                let _ = parse_token(&mutated);
            }
        }
    }
}
