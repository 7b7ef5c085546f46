//! The answers of the policy engine, with their reasons.

use std::fmt;

use doppel_model::SignalName;

use super::{GrantId, SignalPattern};
use crate::Permission;

/// Whether an action may happen, and why. The reason goes into 403 bodies
/// and the audit log, so it says which rule decided without revealing
/// other people's grants.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Decision {
    /// The action may happen.
    Allow(Allowance),
    /// It may not.
    Deny(Denial),
}

impl Decision {
    /// Whether the action may happen.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow(allowance) => write!(f, "allowed: {allowance}"),
            Decision::Deny(denial) => write!(f, "denied: {denial}"),
        }
    }
}

/// Why an action was allowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Allowance {
    /// The credential holds the `admin` scope.
    Admin,
    /// The caller owns the twin.
    Owner,
    /// This grant covers the action.
    Grant(GrantId),
}

impl fmt::Display for Allowance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowance::Admin => f.write_str("the credential has the admin scope"),
            Allowance::Owner => f.write_str("the caller owns the twin"),
            Allowance::Grant(id) => write!(f, "grant {id} covers it"),
        }
    }
}

/// Why an action was denied.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Denial {
    /// No credential was presented.
    Unauthenticated,
    /// The credential's scopes do not include this permission.
    ScopeMissing(Permission),
    /// The credential is limited to other twins.
    TwinOutOfScope,
    /// Neither ownership nor any active grant covers the action.
    NoGrant,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::Unauthenticated => f.write_str("no credential was presented"),
            Denial::ScopeMissing(permission) => {
                write!(f, "the credential's scopes do not include {permission}")
            }
            Denial::TwinOutOfScope => f.write_str("the credential is limited to other twins"),
            Denial::NoGrant => f.write_str("no ownership or active grant covers it"),
        }
    }
}

/// Which signals of one twin a caller may read, applied to every point of
/// an answer or event of a stream so that nobody receives a value they may
/// not read. Computing it is one map lookup and a scan of the twin's
/// grants, so a stream can ask again for each event, and a revocation or
/// an expiry takes effect on the very next one.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SignalFilter {
    /// Every signal.
    All,
    /// Signals matching any of these patterns (never empty).
    Matching(Vec<SignalPattern>),
    /// No signal at all.
    Nothing,
}

impl SignalFilter {
    /// Whether `signal` may be read.
    pub fn allows(&self, signal: &SignalName) -> bool {
        match self {
            SignalFilter::All => true,
            SignalFilter::Matching(patterns) => patterns.iter().any(|p| p.matches(signal)),
            SignalFilter::Nothing => false,
        }
    }

    /// Whether no signal may be read, so a stream or export can be refused
    /// up front.
    pub fn is_nothing(&self) -> bool {
        matches!(self, SignalFilter::Nothing)
    }
}
