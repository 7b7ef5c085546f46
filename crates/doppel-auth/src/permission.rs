//! What one may do with a resource of a twin, and sets of those.

use std::fmt;
use std::ops::{BitAnd, BitOr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::AuthError;

/// One kind of access. What each means depends on the resource:
///
/// - `read`: see the data (signal values, scenarios, alerts, who has access);
/// - `write`: add or change data (ingest signals, edit scenarios and alerts);
/// - `simulate`: run scenarios against the twin;
/// - `manage`: change configuration (the twin's model, alert rules, deletion);
/// - `share`: give others access to the resource, or take it back.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// See the data.
    Read,
    /// Add or change data.
    Write,
    /// Run scenarios.
    Simulate,
    /// Change configuration.
    Manage,
    /// Grant and revoke access for others.
    Share,
}

impl Permission {
    /// Every permission, in display order.
    pub const ALL: [Permission; 5] =
        [Permission::Read, Permission::Write, Permission::Simulate, Permission::Manage, Permission::Share];

    /// The lowercase name used in configuration, the API and the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Simulate => "simulate",
            Permission::Manage => "manage",
            Permission::Share => "share",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Permission {
    type Err = AuthError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.name() == text)
            .ok_or_else(|| AuthError::UnknownPermission(crate::error::echo(text)))
    }
}

/// A set of [`Permission`]s, as a bit set so that intersecting a grant with
/// a credential's scopes costs one instruction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    /// The empty set.
    pub const NONE: Permissions = Permissions(0);
    /// Every permission.
    pub const ALL: Permissions = Permissions(0b1_1111);

    /// The set holding just `permission`.
    pub const fn of(permission: Permission) -> Self {
        Permissions(permission.bit())
    }

    /// Whether `permission` is in the set.
    pub const fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// Whether every permission of `other` is in this set.
    pub const fn contains_all(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// This set with `permission` added.
    pub const fn with(self, permission: Permission) -> Self {
        Permissions(self.0 | permission.bit())
    }

    /// The permissions in the set, in [`Permission::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl BitOr for Permissions {
    type Output = Permissions;
    fn bitor(self, rhs: Self) -> Self {
        Permissions(self.0 | rhs.0)
    }
}

impl BitAnd for Permissions {
    type Output = Permissions;
    fn bitand(self, rhs: Self) -> Self {
        Permissions(self.0 & rhs.0)
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        iter.into_iter().fold(Permissions::NONE, Permissions::with)
    }
}

impl From<Permission> for Permissions {
    fn from(permission: Permission) -> Self {
        Permissions::of(permission)
    }
}

/// `read, write`; `none` for the empty set.
impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, permission) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(permission.name())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{self}]")
    }
}

/// Parses a comma-separated list (`read,write`), as the CLI takes it.
impl FromStr for Permissions {
    type Err = AuthError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',').map(|part| part.trim().parse::<Permission>()).collect()
    }
}

/// Serialized as a list of names, `["read", "write"]`.
impl Serialize for Permissions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<Permission>::deserialize(deserializer)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_sets_parse_from_comma_lists_and_print_in_order() {
        let set: Permissions = "share, read".parse().unwrap();
        assert!(set.contains(Permission::Read) && set.contains(Permission::Share));
        assert!(!set.contains(Permission::Write));
        assert_eq!(set.to_string(), "read, share");
        assert!("read,delete".parse::<Permissions>().is_err());
    }

    #[test]
    fn permission_sets_serialize_as_name_lists() {
        let set = Permissions::of(Permission::Simulate).with(Permission::Read);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["read","simulate"]"#);
        assert_eq!(serde_json::from_str::<Permissions>(&json).unwrap(), set);
        assert!(serde_json::from_str::<Permissions>(r#"["root"]"#).is_err());
    }

    #[test]
    fn all_holds_every_permission_and_nothing_else() {
        assert_eq!(Permission::ALL.into_iter().collect::<Permissions>(), Permissions::ALL);
        assert_eq!(Permissions::ALL.iter().count(), 5);
    }
}
