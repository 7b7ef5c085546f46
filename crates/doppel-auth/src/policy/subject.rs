//! Whom a grant or ownership names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{AuthError, GroupName, TokenId, UserName};

/// A user, every member of a group, or one API token. Written
/// `user:alice`, `group:clinicians`, `token:abcdefgh2345` in the API, the
/// CLI and storage.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Subject {
    /// One user, however it authenticates.
    User(UserName),
    /// Every member of a group (JWT users only: groups come from the
    /// identity provider).
    Group(GroupName),
    /// One API token, whatever user it acts as.
    Token(TokenId),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(user) => write!(f, "user:{user}"),
            Subject::Group(group) => write!(f, "group:{group}"),
            Subject::Token(id) => write!(f, "token:{id}"),
        }
    }
}

impl FromStr for Subject {
    type Err = AuthError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || AuthError::InvalidSubject { text: crate::error::echo(text) };
        let (kind, name) = text.split_once(':').ok_or_else(invalid)?;
        match kind {
            "user" => Ok(Subject::User(UserName::new(name)?)),
            "group" => Ok(Subject::Group(GroupName::new(name)?)),
            "token" => Ok(Subject::Token(TokenId::new(name)?)),
            _ => Err(invalid()),
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_through_text() {
        for text in ["user:alice", "group:/care team/clinicians", "token:abcdefgh2345", "user:a:b"] {
            let subject: Subject = text.parse().unwrap();
            assert_eq!(subject.to_string(), text);
        }
    }

    #[test]
    fn subjects_need_a_known_kind_and_a_valid_name() {
        for bad in ["alice", "role:admin", "user:", "token:short", "group: padded"] {
            assert!(bad.parse::<Subject>().is_err(), "{bad:?} must be rejected");
        }
    }
}
