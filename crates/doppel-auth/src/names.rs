//! Names of users, groups and tokens.
//!
//! Users and groups usually come from an identity provider (`sub` and the
//! groups claim of a JWT), whose naming rules Doppel does not control:
//! e-mail addresses, `auth0|5f3c…`, `/care-team/clinicians` and names with
//! spaces are all common. So a name is any text that prints on one line:
//! 1–256 bytes, no control characters, no leading or trailing whitespace.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::AuthError;

/// Longest user, group or token name, in bytes: room for e-mail addresses
/// and group paths, small enough to keep records and logs tidy.
pub const MAX_NAME_BYTES: usize = 256;

/// Checks the rules every name shares, naming `what` kind of name failed.
fn check(what: &'static str, name: &str) -> Result<(), AuthError> {
    let invalid = |reason| AuthError::InvalidName { what, name: crate::error::echo(name), reason };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid("longer than 256 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    if name.trim() != name {
        return Err(invalid("must not start or end with whitespace"));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(Arc<str>);

        impl $ty {
            /// Parses a name, saying what is wrong with it when it is not one.
            pub fn new(name: &str) -> Result<Self, AuthError> {
                check($what, name)?;
                Ok(Self(Arc::from(name)))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = AuthError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A user: the `sub` of a JWT, or the user an API token acts as. Both
    /// name the same person when the text is equal, so a deployment that
    /// mixes tokens and an identity provider should create tokens for the
    /// provider's subject names.
    UserName,
    "user name"
);

name_type!(
    /// A group a user belongs to, from the identity provider's groups claim;
    /// grants to a group reach every member.
    GroupName,
    "group name"
);

name_type!(
    /// The label an administrator gives an API token (`ci-upload`,
    /// `alice's phone`), shown by `doppel token list`.
    TokenName,
    "token name"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_provider_subjects_and_group_paths() {
        for good in ["alice", "auth0|5f3c9a", "alice@example.org", "/care team/clinicians", "Zoë"] {
            assert!(UserName::new(good).is_ok(), "{good:?} must be accepted");
            assert!(GroupName::new(good).is_ok(), "{good:?} must be accepted");
        }
    }

    #[test]
    fn names_reject_empty_control_and_padded_text() {
        for bad in ["", "a\nb", "tab\there", " alice", "alice ", &"x".repeat(257)] {
            assert!(UserName::new(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn name_errors_say_which_kind_of_name_failed() {
        let err = TokenName::new("").unwrap_err().to_string();
        assert!(err.contains("token name"), "{err}");
    }

    #[test]
    fn names_refuse_invalid_text_when_deserialized() {
        assert!(serde_json::from_str::<GroupName>("\"clinicians\"").is_ok());
        assert!(serde_json::from_str::<GroupName>("\"\"").is_err());
    }
}
