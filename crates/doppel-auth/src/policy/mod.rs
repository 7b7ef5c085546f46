//! Per-twin policies: owners, grants, and the decisions drawn from them.
//!
//! Every twin has at most one owner, who holds every permission on it, and
//! any number of grants: a [`Subject`] may use some [`Permissions`] on a
//! [`Resource`] of the twin, perhaps until some time. A caller's effective
//! permission is what ownership or an active grant gives its user, groups or
//! token, intersected with its credential's [`Scopes`](crate::Scopes); the
//! `admin` scope allows everything. Expired grants are ignored at once and
//! removed by [`Policies::prune`].
//!
//! Sharing passes on only what one holds: a non-owner may grant a
//! permission only if it holds that permission and `share` on a resource
//! that includes the one shared, and the new grant may not outlive the
//! grants it was derived from. Each grant records those grants (for each
//! permission shared, and `share` itself, the granter's longest-lasting
//! one), and revoking a grant revokes every grant derived from it, down
//! the whole tree. Revoking needs ownership, the admin scope, or `share` on
//! a resource including the grant's.

mod decision;
mod grant;
mod pattern;
mod resource;
mod subject;

use std::collections::BTreeMap;

use doppel_model::{Timestamp, TwinId};
use serde::{Deserialize, Serialize};

pub use decision::{Allowance, Decision, Denial, SignalFilter};
pub use grant::{Grant, GrantId, NewGrant};
pub use pattern::SignalPattern;
pub use resource::{Action, Resource, Target};
pub use subject::Subject;

use crate::{AuthError, Permission, Permissions, Principal, PrincipalKind, Scopes};

/// One twin's owner and grants.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
struct TwinPolicy {
    owner: Option<Subject>,
    grants: BTreeMap<GrantId, Grant>,
}

/// The policies of every twin, in memory. Small (a few entries per twin),
/// read on every request, changed rarely: storage persists the whole set as
/// JSON after each change and loads it at start.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "PoliciesRepr", into = "PoliciesRepr")]
pub struct Policies {
    twins: BTreeMap<TwinId, TwinPolicy>,
    last_grant_id: u64,
}

impl Policies {
    /// No twins, no grants.
    pub fn new() -> Self {
        Self::default()
    }

    /// The owner of `twin`, if it has one.
    pub fn owner(&self, twin: &TwinId) -> Option<&Subject> {
        self.twins.get(twin).and_then(|policy| policy.owner.as_ref())
    }

    /// Makes `owner` the owner of `twin` if it has none yet, as when a
    /// user's first write creates the twin. Answers whether it did.
    pub fn claim(&mut self, twin: &TwinId, owner: Subject) -> bool {
        let policy = self.twins.entry(twin.clone()).or_default();
        if policy.owner.is_some() {
            return false;
        }
        policy.owner = Some(owner);
        true
    }

    /// Makes `owner` the owner of `twin`, replacing any earlier owner (an
    /// administrator assigning a twin to its person). Grants stay. Answers
    /// the previous owner.
    pub fn set_owner(&mut self, twin: &TwinId, owner: Subject) -> Option<Subject> {
        self.twins.entry(twin.clone()).or_default().owner.replace(owner)
    }

    /// Every twin with an owner or a grant, in id order: the only twins a
    /// principal without the admin scope can read, so listings for such a
    /// principal walk these rather than every twin there is.
    pub fn twins(&self) -> impl Iterator<Item = &TwinId> {
        self.twins.keys()
    }

    /// How many twins have an owner or a grant.
    pub fn len(&self) -> usize {
        self.twins.len()
    }

    /// True when no twin has an owner or a grant.
    pub fn is_empty(&self) -> bool {
        self.twins.is_empty()
    }

    /// Forgets a deleted twin's owner and grants. Answers whether there
    /// were any.
    pub fn remove_twin(&mut self, twin: &TwinId) -> bool {
        self.twins.remove(twin).is_some()
    }

    /// The grants on `twin`, expired ones included until pruned.
    pub fn grants(&self, twin: &TwinId) -> impl Iterator<Item = &Grant> {
        self.twins.get(twin).into_iter().flat_map(|policy| policy.grants.values())
    }

    /// Whether `principal` may do `action` on `twin` at `now`, and why.
    pub fn authorize(
        &self,
        principal: &Principal,
        twin: &TwinId,
        action: &Action,
        now: Timestamp,
    ) -> Decision {
        match scope_gate(principal, twin, action.permission) {
            Err(denial) => Decision::Deny(denial),
            Ok(Gate::Admin) => Decision::Allow(Allowance::Admin),
            Ok(Gate::Policy) => self
                .held(principal, twin, action.permission, now, |resource| resource.covers(&action.target))
                .map_or(Decision::Deny(Denial::NoGrant), Decision::Allow),
        }
    }

    /// [`authorize`](Self::authorize) as a `Result`, for handlers that stop
    /// at the first denial with `?`.
    pub fn check(
        &self,
        principal: &Principal,
        twin: &TwinId,
        action: &Action,
        now: Timestamp,
    ) -> Result<Allowance, AuthError> {
        match self.authorize(principal, twin, action, now) {
            Decision::Allow(allowance) => Ok(allowance),
            Decision::Deny(denial) => Err(forbidden(principal, twin, action.to_string(), denial)),
        }
    }

    /// Which signals of `twin` `principal` may read at `now`: for streams,
    /// exports and cohort runs, which filter every point or event by it.
    pub fn signal_filter(&self, principal: &Principal, twin: &TwinId, now: Timestamp) -> SignalFilter {
        match scope_gate(principal, twin, Permission::Read) {
            Err(_) => return SignalFilter::Nothing,
            Ok(Gate::Admin) => return SignalFilter::All,
            Ok(Gate::Policy) => {}
        }
        let Some(policy) = self.twins.get(twin) else {
            return SignalFilter::Nothing;
        };
        if policy.owner.as_ref().is_some_and(|owner| principal.is(owner)) {
            return SignalFilter::All;
        }
        let mut patterns = Vec::new();
        for grant in policy.grants.values() {
            if !(grant.is_active(now)
                && principal.is(&grant.subject)
                && grant.permissions.contains(Permission::Read))
            {
                continue;
            }
            match &grant.resource {
                Resource::Twin => return SignalFilter::All,
                Resource::Signals(pattern) if pattern.matches_everything() => return SignalFilter::All,
                Resource::Signals(pattern) => patterns.push(pattern.clone()),
                Resource::Scenarios | Resource::Alerts | Resource::Policy => {}
            }
        }
        if patterns.is_empty() { SignalFilter::Nothing } else { SignalFilter::Matching(patterns) }
    }

    /// Whether `principal` may read anything of `twin` at `now`: whether the
    /// twin shows in its listings and cohort queries. A cohort run still
    /// filters each twin's signals with [`signal_filter`](Self::signal_filter).
    pub fn readable(&self, principal: &Principal, twin: &TwinId, now: Timestamp) -> bool {
        match scope_gate(principal, twin, Permission::Read) {
            Err(_) => false,
            Ok(Gate::Admin) => true,
            Ok(Gate::Policy) => self.held(principal, twin, Permission::Read, now, |_| true).is_some(),
        }
    }

    /// Adds a grant on `twin` given by `by`, if `by` may give it (see the
    /// module documentation), and returns it.
    pub fn grant(
        &mut self,
        by: &Principal,
        twin: &TwinId,
        new: NewGrant,
        now: Timestamp,
    ) -> Result<&Grant, AuthError> {
        if new.permissions.is_empty() {
            return Err(AuthError::NoPermissions);
        }
        let applicable = new.resource.applicable();
        if !applicable.contains_all(new.permissions) {
            return Err(AuthError::PermissionNotApplicable {
                permissions: new.permissions,
                resource: new.resource.to_string(),
                applicable,
            });
        }
        if let Some(expires) = new.expires
            && expires <= now
        {
            return Err(AuthError::ExpiryNotInFuture { expires, now });
        }
        let action = || format!("grant {} on {}", new.permissions, new.resource);
        let Sharing { limit, derived_from } = self
            .sharing_limit(by, twin, &new.resource, new.permissions, now)
            .map_err(|denial| forbidden(by, twin, action(), denial))?;
        if let Some(limit) = limit
            && new.expires.is_none_or(|expires| expires > limit)
        {
            return Err(AuthError::GrantOutlivesGranter { limit });
        }
        let granted_by = match by.user() {
            Some(user) => Subject::User(user.clone()),
            None => return Err(forbidden(by, twin, action(), Denial::Unauthenticated)),
        };
        self.last_grant_id += 1;
        let id = GrantId(self.last_grant_id);
        let grant = Grant {
            id,
            twin: twin.clone(),
            subject: new.subject,
            resource: new.resource,
            permissions: new.permissions,
            expires: new.expires,
            granted_by,
            created: now,
            derived_from,
        };
        let grants = &mut self.twins.entry(twin.clone()).or_default().grants;
        Ok(grants.entry(id).or_insert(grant))
    }

    /// Removes grant `id` from `twin` if `by` may (ownership, the admin
    /// scope, or `share` on a resource including the grant's), and every
    /// grant derived from it, directly or not. Answers the removed grants,
    /// `id` first, then the derived ones in id order.
    pub fn revoke(
        &mut self,
        by: &Principal,
        twin: &TwinId,
        id: GrantId,
        now: Timestamp,
    ) -> Result<Vec<Grant>, AuthError> {
        let resource = match self.twins.get(twin).and_then(|policy| policy.grants.get(&id)) {
            Some(grant) => grant.resource.clone(),
            None => return Err(AuthError::UnknownGrant { twin: twin.clone(), grant: id }),
        };
        self.sharing_limit(by, twin, &resource, Permissions::NONE, now)
            .map_err(|denial| forbidden(by, twin, format!("revoke grant {id}"), denial))?;
        let policy = self
            .twins
            .get_mut(twin)
            .ok_or_else(|| AuthError::UnknownGrant { twin: twin.clone(), grant: id })?;
        let revoked =
            policy.grants.remove(&id).ok_or(AuthError::UnknownGrant { twin: twin.clone(), grant: id })?;
        let mut removed = vec![revoked];
        removed.extend(policy.remove_orphans());
        Ok(removed)
    }

    /// Drops grants that expired by `now` and every grant derived from
    /// them, and twins left with neither owner nor grants. Answers how many
    /// grants went.
    pub fn prune(&mut self, now: Timestamp) -> usize {
        let mut pruned = 0;
        for policy in self.twins.values_mut() {
            let before = policy.grants.len();
            policy.grants.retain(|_, grant| grant.is_active(now));
            policy.remove_orphans();
            pruned += before - policy.grants.len();
        }
        self.twins.retain(|_, policy| policy.owner.is_some() || !policy.grants.is_empty());
        pruned
    }

    /// Ownership or the first active grant giving `principal` `permission`
    /// on a resource accepted by `covers`. Scopes are the caller's business.
    fn held(
        &self,
        principal: &Principal,
        twin: &TwinId,
        permission: Permission,
        now: Timestamp,
        covers: impl Fn(&Resource) -> bool,
    ) -> Option<Allowance> {
        let policy = self.twins.get(twin)?;
        if policy.owner.as_ref().is_some_and(|owner| principal.is(owner)) {
            return Some(Allowance::Owner);
        }
        policy
            .grants
            .values()
            .find(|grant| {
                grant.is_active(now)
                    && principal.is(&grant.subject)
                    && grant.permissions.contains(permission)
                    && covers(&grant.resource)
            })
            .map(|grant| Allowance::Grant(grant.id))
    }

    /// Whether `by` may share `permissions` (and hold `share`) on `resource`
    /// of `twin`, until when, and from which of its grants.
    fn sharing_limit(
        &self,
        by: &Principal,
        twin: &TwinId,
        resource: &Resource,
        permissions: Permissions,
        now: Timestamp,
    ) -> Result<Sharing, Denial> {
        let unlimited = Sharing { limit: None, derived_from: Vec::new() };
        let needed = permissions.with(Permission::Share);
        for permission in needed.iter() {
            if scope_gate(by, twin, permission)? == Gate::Admin {
                return Ok(unlimited);
            }
        }
        let Some(policy) = self.twins.get(twin) else {
            return Err(Denial::NoGrant);
        };
        if policy.owner.as_ref().is_some_and(|owner| by.is(owner)) {
            return Ok(unlimited);
        }
        let mut limit = Expiry::Never;
        let mut derived_from = Vec::new();
        for permission in needed.iter() {
            let (latest, id) = policy
                .grants
                .values()
                .filter(|grant| {
                    grant.is_active(now)
                        && by.is(&grant.subject)
                        && grant.permissions.contains(permission)
                        && grant.resource.includes(resource)
                })
                .map(|grant| (grant.expires.map_or(Expiry::Never, Expiry::At), grant.id))
                .max()
                .ok_or(Denial::NoGrant)?;
            limit = limit.min(latest);
            derived_from.push(id);
        }
        derived_from.sort_unstable();
        derived_from.dedup();
        let limit = match limit {
            Expiry::At(at) => Some(at),
            Expiry::Never => None,
        };
        Ok(Sharing { limit, derived_from })
    }
}

impl TwinPolicy {
    /// Removes every grant derived from a grant that is gone, until none
    /// is left, and answers them in id order.
    fn remove_orphans(&mut self) -> Vec<Grant> {
        let mut removed = Vec::new();
        loop {
            let orphans: Vec<GrantId> = self
                .grants
                .values()
                .filter(|grant| grant.derived_from.iter().any(|parent| !self.grants.contains_key(parent)))
                .map(|grant| grant.id)
                .collect();
            if orphans.is_empty() {
                break;
            }
            removed.extend(orphans.iter().filter_map(|id| self.grants.remove(id)));
        }
        removed.sort_by_key(|grant| grant.id);
        removed
    }
}

/// What a granter may pass on: until when (`None` for without limit), and
/// the grants of its own that the new grant derives from.
struct Sharing {
    limit: Option<Timestamp>,
    derived_from: Vec<GrantId>,
}

/// An end time ordered so that "never" is the latest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Expiry {
    At(Timestamp),
    Never,
}

/// What the credential alone says about one permission on one twin.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Gate {
    /// Admin scope: allowed whatever the policy says.
    Admin,
    /// The scopes let it through; the policy decides.
    Policy,
}

fn scope_gate(principal: &Principal, twin: &TwinId, permission: Permission) -> Result<Gate, Denial> {
    if *principal.kind() == PrincipalKind::Anonymous {
        return Err(Denial::Unauthenticated);
    }
    match principal.scopes() {
        Scopes::Admin => Ok(Gate::Admin),
        Scopes::Limited { twins, .. } if !twins.contains(twin) => Err(Denial::TwinOutOfScope),
        Scopes::Limited { permissions, .. } if !permissions.contains(permission) => {
            Err(Denial::ScopeMissing(permission))
        }
        Scopes::Limited { .. } => Ok(Gate::Policy),
    }
}

fn forbidden(principal: &Principal, twin: &TwinId, action: String, denial: Denial) -> AuthError {
    AuthError::Forbidden { principal: principal.to_string(), action, twin: twin.clone(), denial }
}

/// The stored form: owners by twin, then every grant, then the last id
/// handed out (so ids are never reused, even after pruning).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoliciesRepr {
    #[serde(default)]
    owners: BTreeMap<TwinId, Subject>,
    #[serde(default)]
    grants: Vec<Grant>,
    last_grant_id: u64,
}

impl TryFrom<PoliciesRepr> for Policies {
    type Error = AuthError;
    fn try_from(repr: PoliciesRepr) -> Result<Self, Self::Error> {
        let corrupt = |reason: String| AuthError::CorruptPolicies { reason };
        let mut policies = Policies { twins: BTreeMap::new(), last_grant_id: repr.last_grant_id };
        for (twin, owner) in repr.owners {
            policies.twins.entry(twin).or_default().owner = Some(owner);
        }
        let mut seen = std::collections::BTreeSet::new();
        for grant in repr.grants {
            if grant.id.0 == 0 || grant.id.0 > repr.last_grant_id {
                return Err(corrupt(format!("grant {} is outside 1..={}", grant.id, repr.last_grant_id)));
            }
            if !seen.insert(grant.id) {
                return Err(corrupt(format!("grant {} appears twice", grant.id)));
            }
            policies.twins.entry(grant.twin.clone()).or_default().grants.insert(grant.id, grant);
        }
        // A grant derives only from older grants of its own twin, and
        // revoking cascades, so a parent that is missing or newer means
        // the file was not written by Doppel.
        for policy in policies.twins.values() {
            for grant in policy.grants.values() {
                if let Some(parent) = grant
                    .derived_from
                    .iter()
                    .find(|parent| **parent >= grant.id || !policy.grants.contains_key(parent))
                {
                    return Err(corrupt(format!(
                        "grant {} derives from grant {parent}, which is not an older grant of twin {}",
                        grant.id, grant.twin
                    )));
                }
            }
        }
        Ok(policies)
    }
}

impl From<Policies> for PoliciesRepr {
    fn from(policies: Policies) -> Self {
        let mut owners = BTreeMap::new();
        let mut grants = Vec::new();
        for (twin, policy) in policies.twins {
            if let Some(owner) = policy.owner {
                owners.insert(twin, owner);
            }
            grants.extend(policy.grants.into_values());
        }
        PoliciesRepr { owners, grants, last_grant_id: policies.last_grant_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserName;

    fn grant(id: u64, derived_from: &[u64]) -> Grant {
        let user = Subject::User(UserName::new("u").unwrap());
        Grant {
            id: GrantId(id),
            twin: TwinId::new("t").unwrap(),
            subject: user.clone(),
            resource: Resource::Twin,
            permissions: Permissions::of(Permission::Read),
            expires: None,
            granted_by: user,
            created: Timestamp::from_secs(0),
            derived_from: derived_from.iter().copied().map(GrantId).collect(),
        }
    }

    #[test]
    fn orphans_go_down_the_whole_tree_and_diamonds_with_them() {
        // 1 → 2 → 4, 1 → 3, {2, 3} → 5, and 6 from nothing.
        let mut policy = TwinPolicy::default();
        for (id, from) in [(2, &[1][..]), (3, &[1]), (4, &[2]), (5, &[2, 3]), (6, &[])] {
            policy.grants.insert(GrantId(id), grant(id, from));
        }
        let removed: Vec<u64> = policy.remove_orphans().iter().map(|grant| grant.id.0).collect();
        assert_eq!(removed, [2, 3, 4, 5]);
        assert_eq!(policy.grants.keys().copied().collect::<Vec<_>>(), [GrantId(6)]);
        assert!(policy.remove_orphans().is_empty());
    }
}
