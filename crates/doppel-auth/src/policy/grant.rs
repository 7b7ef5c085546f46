//! Grants: a subject may do these things with this part of a twin, maybe
//! until some time.

use std::fmt;

use doppel_model::{Timestamp, TwinId};
use serde::{Deserialize, Serialize};

use super::{Resource, Subject};
use crate::Permissions;

/// Names one grant among all twins' grants, for `revoke` and the audit log.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GrantId(pub u64);

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One entry of a twin's policy. Made only by [`Policies::grant`], which
/// checks that the granter may give it.
///
/// [`Policies::grant`]: crate::Policies::grant
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Its id.
    pub id: GrantId,
    /// The twin it is about.
    pub twin: TwinId,
    /// Who receives it.
    pub subject: Subject,
    /// What part of the twin it covers.
    pub resource: Resource,
    /// What the subject may do there.
    pub permissions: Permissions,
    /// When it stops counting; `None` for never.
    pub expires: Option<Timestamp>,
    /// Who gave it.
    pub granted_by: Subject,
    /// When it was given.
    pub created: Timestamp,
    /// The granter's grants it was derived from (none when the granter
    /// owns the twin or is an administrator): revoking any of them revokes
    /// this one too, so no grant outlives what it was shared from. Absent
    /// in state saved before derivation was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived_from: Vec<GrantId>,
}

impl Grant {
    /// Whether the grant still counts at `now`; expired grants are ignored
    /// by every decision, before and after they are pruned.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }
}

/// What someone asks to grant on a twin.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// Who receives it.
    pub subject: Subject,
    /// What part of the twin it covers.
    pub resource: Resource,
    /// What the subject may do there (at least one, all applicable to the resource).
    pub permissions: Permissions,
    /// When it stops counting; `None` for never.
    #[serde(default)]
    pub expires: Option<Timestamp>,
}
