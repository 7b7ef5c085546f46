//! Scopes: the most a credential may do, whatever the policies say.
//!
//! A policy says what a *person* may do with a twin; scopes say what one
//! *credential* of that person may be used for. A phone's upload token needs
//! `write` on one twin, not the owner's right to share it. The effective
//! permission of a request is the policy's answer intersected with the
//! scopes, so scopes can only take permissions away.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use doppel_model::TwinId;
use serde::{Deserialize, Serialize};

use crate::{AuthError, Permission, Permissions};

/// One scope as a token lists it: `admin` or one permission.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything on every twin, token management and the audit log included.
    Admin,
    /// The `read` permission.
    Read,
    /// The `write` permission (ingest).
    Write,
    /// The `simulate` permission.
    Simulate,
    /// The `manage` permission.
    Manage,
    /// The `share` permission.
    Share,
}

impl Scope {
    /// Every scope, in display order.
    pub const ALL: [Scope; 6] =
        [Scope::Admin, Scope::Read, Scope::Write, Scope::Simulate, Scope::Manage, Scope::Share];

    /// The lowercase name used in token records, the API and the CLI.
    pub const fn name(self) -> &'static str {
        match self.permission() {
            Some(permission) => permission.name(),
            None => "admin",
        }
    }

    /// The permission this scope lets through; `None` for `admin`, which is
    /// more than any set of permissions.
    pub const fn permission(self) -> Option<Permission> {
        match self {
            Scope::Admin => None,
            Scope::Read => Some(Permission::Read),
            Scope::Write => Some(Permission::Write),
            Scope::Simulate => Some(Permission::Simulate),
            Scope::Manage => Some(Permission::Manage),
            Scope::Share => Some(Permission::Share),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scope {
    type Err = AuthError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .ok_or_else(|| AuthError::UnknownScope(crate::error::echo(text)))
    }
}

/// The twins a credential may touch.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TwinSet {
    /// Any twin.
    Any,
    /// Only these (possibly none, after narrowing).
    Only(BTreeSet<TwinId>),
}

impl TwinSet {
    /// Whether `twin` is in the set.
    pub fn contains(&self, twin: &TwinId) -> bool {
        match self {
            TwinSet::Any => true,
            TwinSet::Only(twins) => twins.contains(twin),
        }
    }

    fn intersect(&self, other: &TwinSet) -> TwinSet {
        match (self, other) {
            (TwinSet::Any, set) | (set, TwinSet::Any) => set.clone(),
            (TwinSet::Only(a), TwinSet::Only(b)) => TwinSet::Only(a.intersection(b).cloned().collect()),
        }
    }
}

/// What a credential may do at most. `Admin` cannot be limited to some
/// twins: administration (tokens, the audit log) is not per twin, and a
/// half-admin would be a state nobody could explain.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "ScopesRepr", into = "ScopesRepr")]
pub enum Scopes {
    /// Everything, regardless of policies.
    Admin,
    /// At most `permissions`, and only on `twins`; the policies decide the rest.
    Limited {
        /// The permissions that may pass.
        permissions: Permissions,
        /// The twins that may be touched.
        twins: TwinSet,
    },
}

impl Scopes {
    /// Every permission on any twin, but not administration: what a
    /// credential holds when nothing narrows it.
    pub const fn standard() -> Self {
        Scopes::Limited { permissions: Permissions::ALL, twins: TwinSet::Any }
    }

    /// Nothing at all (the anonymous principal).
    pub const fn none() -> Self {
        Scopes::Limited { permissions: Permissions::NONE, twins: TwinSet::Any }
    }

    /// Builds scopes from a list (`admin`, `read`, ...) and an optional twin
    /// restriction. `admin` in the list wins over the rest and refuses a
    /// twin restriction.
    pub fn new(
        scopes: impl IntoIterator<Item = Scope>,
        twins: Option<BTreeSet<TwinId>>,
    ) -> Result<Self, AuthError> {
        let mut admin = false;
        let mut permissions = Permissions::NONE;
        for scope in scopes {
            match scope.permission() {
                Some(permission) => permissions = permissions.with(permission),
                None => admin = true,
            }
        }
        match (admin, twins) {
            (true, Some(_)) => Err(AuthError::AdminLimitedToTwins),
            (true, None) => Ok(Scopes::Admin),
            (false, twins) => {
                Ok(Scopes::Limited { permissions, twins: twins.map_or(TwinSet::Any, TwinSet::Only) })
            }
        }
    }

    /// The scope list and twin restriction these scopes are written as: the
    /// inverse of [`Scopes::new`], for storage and listings.
    pub fn to_parts(&self) -> (Vec<Scope>, Option<BTreeSet<TwinId>>) {
        match self {
            Scopes::Admin => (vec![Scope::Admin], None),
            Scopes::Limited { permissions, twins } => (
                Scope::ALL
                    .into_iter()
                    .filter(|s| s.permission().is_some_and(|p| permissions.contains(p)))
                    .collect(),
                match twins {
                    TwinSet::Any => None,
                    TwinSet::Only(twins) => Some(twins.clone()),
                },
            ),
        }
    }

    /// Whether these are administrator scopes.
    pub fn is_admin(&self) -> bool {
        matches!(self, Scopes::Admin)
    }

    /// Whether `permission` on `twin` may pass.
    pub fn permits(&self, permission: Permission, twin: &TwinId) -> bool {
        match self {
            Scopes::Admin => true,
            Scopes::Limited { permissions, twins } => {
                permissions.contains(permission) && twins.contains(twin)
            }
        }
    }

    /// The permissions that may pass on `twin` (all of them for `Admin`).
    pub fn permissions_on(&self, twin: &TwinId) -> Permissions {
        match self {
            Scopes::Admin => Permissions::ALL,
            Scopes::Limited { permissions, twins } if twins.contains(twin) => *permissions,
            Scopes::Limited { .. } => Permissions::NONE,
        }
    }

    /// What both allow: the intersection. Narrowing never adds anything.
    pub fn narrow(&self, other: &Scopes) -> Scopes {
        match (self, other) {
            (Scopes::Admin, other) | (other, Scopes::Admin) => other.clone(),
            (
                Scopes::Limited { permissions: a, twins: twins_a },
                Scopes::Limited { permissions: b, twins: twins_b },
            ) => Scopes::Limited { permissions: *a & *b, twins: twins_a.intersect(twins_b) },
        }
    }
}

/// `admin`, or `read, write` with ` on alice, bob` when limited to twins.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scopes::Admin => f.write_str("admin"),
            Scopes::Limited { permissions, twins: TwinSet::Any } => write!(f, "{permissions}"),
            Scopes::Limited { permissions, twins: TwinSet::Only(twins) } => {
                write!(f, "{permissions} on ")?;
                if twins.is_empty() {
                    return f.write_str("no twin");
                }
                for (i, twin) in twins.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{twin}")?;
                }
                Ok(())
            }
        }
    }
}

/// The stored and API form: `{"scopes": ["read", "write"], "twins": ["alice"]}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopesRepr {
    scopes: Vec<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    twins: Option<BTreeSet<TwinId>>,
}

impl TryFrom<ScopesRepr> for Scopes {
    type Error = AuthError;
    fn try_from(repr: ScopesRepr) -> Result<Self, Self::Error> {
        Scopes::new(repr.scopes, repr.twins)
    }
}

impl From<Scopes> for ScopesRepr {
    fn from(scopes: Scopes) -> Self {
        let (scopes, twins) = scopes.to_parts();
        ScopesRepr { scopes, twins }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn twin(name: &str) -> TwinId {
        TwinId::new(name).unwrap()
    }

    #[test]
    fn admin_refuses_a_twin_restriction() {
        let twins = BTreeSet::from([twin("alice")]);
        assert!(matches!(Scopes::new([Scope::Admin], Some(twins)), Err(AuthError::AdminLimitedToTwins)));
        assert_eq!(Scopes::new([Scope::Read, Scope::Admin], None).unwrap(), Scopes::Admin);
    }

    #[test]
    fn limited_scopes_pass_only_listed_permissions_on_listed_twins() {
        let scopes = Scopes::new([Scope::Write], Some(BTreeSet::from([twin("alice")]))).unwrap();
        assert!(scopes.permits(Permission::Write, &twin("alice")));
        assert!(!scopes.permits(Permission::Read, &twin("alice")));
        assert!(!scopes.permits(Permission::Write, &twin("bob")));
        assert_eq!(scopes.to_string(), "write on alice");
    }

    #[test]
    fn scopes_round_trip_through_json() {
        let scopes = Scopes::new([Scope::Read, Scope::Share], Some(BTreeSet::from([twin("alice")]))).unwrap();
        let json = serde_json::to_string(&scopes).unwrap();
        assert_eq!(json, r#"{"scopes":["read","share"],"twins":["alice"]}"#);
        assert_eq!(serde_json::from_str::<Scopes>(&json).unwrap(), scopes);
        assert_eq!(serde_json::to_string(&Scopes::Admin).unwrap(), r#"{"scopes":["admin"]}"#);
        assert!(serde_json::from_str::<Scopes>(r#"{"scopes":["admin"],"twins":["alice"]}"#).is_err());
        assert!(serde_json::from_str::<Scopes>(r#"{"scopes":["sudo"]}"#).is_err());
    }

    fn any_scopes() -> impl Strategy<Value = Scopes> {
        let twins =
            prop::option::of(prop::collection::btree_set(prop::sample::select(vec!["a", "b", "c"]), 0..3));
        prop_oneof![
            Just(Scopes::Admin),
            (0u8..32, twins).prop_map(|(bits, twins)| Scopes::Limited {
                permissions: Permission::ALL.into_iter().filter(|p| bits & (1 << *p as u8) != 0).collect(),
                twins: twins.map_or(TwinSet::Any, |t| TwinSet::Only(t.into_iter().map(twin).collect())),
            }),
        ]
    }

    proptest! {
        #[test]
        fn narrowing_only_takes_permissions_away(
            a in any_scopes(),
            b in any_scopes(),
            permission in prop::sample::select(Permission::ALL.to_vec()),
            name in prop::sample::select(vec!["a", "b", "c", "d"]),
        ) {
            let twin = twin(name);
            let narrowed = a.narrow(&b);
            prop_assert_eq!(narrowed.permits(permission, &twin), a.permits(permission, &twin) && b.permits(permission, &twin));
            prop_assert_eq!(narrowed.is_admin(), a.is_admin() && b.is_admin());
        }
    }
}
