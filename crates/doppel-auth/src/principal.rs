//! Who is asking: the outcome of authentication, the input of every
//! policy decision.

use std::collections::BTreeSet;
use std::fmt;

use doppel_model::Timestamp;

use crate::{AuthError, GroupName, Scopes, Subject, TokenId, TokenRecord, UserName};

/// How a principal proved who it is.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PrincipalKind {
    /// An API token, named by its id.
    Token(TokenId),
    /// A JWT from the configured identity provider.
    Jwt,
    /// No credential at all.
    Anonymous,
}

/// An authenticated caller (or the anonymous one): the user it acts as, the
/// groups the identity provider puts it in, and the scopes its credential
/// is limited to. Built only by authentication (or [`Principal::from_jwt`]
/// for identity sources yet to come), so a user is present exactly when the
/// caller is not anonymous.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Principal {
    kind: PrincipalKind,
    user: Option<UserName>,
    groups: BTreeSet<GroupName>,
    scopes: Scopes,
    /// When a JWT stops counting; API tokens are looked up afresh instead.
    expires: Option<Timestamp>,
}

impl Principal {
    /// The caller who presented no credential: no user, no groups, no scopes,
    /// so every decision denies it.
    pub fn anonymous() -> Self {
        Principal {
            kind: PrincipalKind::Anonymous,
            user: None,
            groups: BTreeSet::new(),
            scopes: Scopes::none(),
            expires: None,
        }
    }

    /// The caller behind a verified API token: the token's user, no groups
    /// (Doppel keeps no group directory; groups come from JWTs), the token's
    /// scopes.
    pub fn from_token(record: &TokenRecord) -> Self {
        Principal {
            kind: PrincipalKind::Token(record.id),
            user: Some(record.user.clone()),
            groups: BTreeSet::new(),
            scopes: record.scopes.clone(),
            expires: None,
        }
    }

    /// The caller behind a verified JWT.
    pub fn from_jwt(user: UserName, groups: BTreeSet<GroupName>, scopes: Scopes) -> Self {
        Principal { kind: PrincipalKind::Jwt, user: Some(user), groups, scopes, expires: None }
    }

    /// The same principal, its credential counting only before `at` (a
    /// JWT's `exp`, leeway included), so that what outlives the request,
    /// such as a stream, can end when the credential does.
    pub fn until(self, at: Timestamp) -> Self {
        Principal { expires: Some(at), ..self }
    }

    /// When the credential stops counting, if it carries its own end (a
    /// JWT). An API token's end is in its record, which may change.
    pub fn expires(&self) -> Option<Timestamp> {
        self.expires
    }

    /// How the caller authenticated.
    pub fn kind(&self) -> &PrincipalKind {
        &self.kind
    }

    /// The user the caller acts as; `None` only when anonymous.
    pub fn user(&self) -> Option<&UserName> {
        self.user.as_ref()
    }

    /// The groups the identity provider says the user is in.
    pub fn groups(&self) -> &BTreeSet<GroupName> {
        &self.groups
    }

    /// The most the caller's credential may do.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// Whether the caller holds the `admin` scope.
    pub fn is_admin(&self) -> bool {
        self.scopes.is_admin()
    }

    /// For operations that are not about one twin (token management, the
    /// audit log): succeeds only for administrators.
    pub fn require_admin(&self) -> Result<(), AuthError> {
        if self.is_admin() { Ok(()) } else { Err(AuthError::AdminRequired { principal: self.to_string() }) }
    }

    /// Whether a policy entry naming `subject` speaks of this caller: its
    /// user, one of its groups, or the very token it used.
    pub fn is(&self, subject: &Subject) -> bool {
        match subject {
            Subject::User(user) => self.user.as_ref() == Some(user),
            Subject::Group(group) => self.groups.contains(group),
            Subject::Token(id) => self.kind == PrincipalKind::Token(*id),
        }
    }
}

/// `user alice (token abcdefgh2345)`, `user alice (JWT)`, `anonymous`: for
/// error messages and the audit log.
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.user, &self.kind) {
            (Some(user), PrincipalKind::Token(id)) => write!(f, "user {user} (token {id})"),
            (Some(user), _) => write!(f, "user {user} (JWT)"),
            (None, _) => f.write_str("anonymous"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_is_its_user_its_groups_and_nothing_else() {
        let principal = Principal::from_jwt(
            UserName::new("carol").unwrap(),
            BTreeSet::from([GroupName::new("clinicians").unwrap()]),
            Scopes::standard(),
        );
        assert!(principal.is(&Subject::User(UserName::new("carol").unwrap())));
        assert!(principal.is(&Subject::Group(GroupName::new("clinicians").unwrap())));
        assert!(!principal.is(&Subject::User(UserName::new("dave").unwrap())));
        assert!(!principal.is(&Subject::Group(GroupName::new("coaches").unwrap())));
        assert!(!principal.is(&Subject::Token(TokenId::new("abcdefgh2345").unwrap())));
    }

    #[test]
    fn the_anonymous_principal_is_nobody_and_not_admin() {
        let anonymous = Principal::anonymous();
        assert_eq!(anonymous.user(), None);
        assert!(anonymous.require_admin().is_err());
        assert_eq!(anonymous.to_string(), "anonymous");
    }
}
