//! What of a twin a grant covers ([`Resource`]) and what a request touches
//! ([`Target`], [`Action`]).

use std::fmt;
use std::str::FromStr;

use doppel_model::SignalName;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SignalPattern;
use crate::{AuthError, Permission, Permissions};

/// A part of one twin that a grant can cover. Written `twin`,
/// `signals:<pattern>`, `scenarios`, `alerts`, `policy`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Resource {
    /// The whole twin: every resource below, plus the twin itself
    /// (metadata, model, deletion).
    Twin,
    /// The signals whose names match the pattern.
    Signals(SignalPattern),
    /// The twin's what-if scenarios and their results.
    Scenarios,
    /// The twin's alerts and alert rules.
    Alerts,
    /// The twin's policy: who may do what.
    Policy,
}

impl Resource {
    /// The permissions that mean something on this resource; a grant of
    /// any other is refused rather than kept as a silent no-op.
    pub const fn applicable(&self) -> Permissions {
        let read = Permissions::of(Permission::Read);
        match self {
            Resource::Twin => Permissions::ALL,
            Resource::Signals(_) => read.with(Permission::Write).with(Permission::Share),
            Resource::Scenarios => {
                read.with(Permission::Write).with(Permission::Simulate).with(Permission::Share)
            }
            Resource::Alerts => read.with(Permission::Write).with(Permission::Manage).with(Permission::Share),
            Resource::Policy => read.with(Permission::Share),
        }
    }

    /// Whether a request touching `target` falls under this resource.
    pub fn covers(&self, target: &Target) -> bool {
        match (self, target) {
            (Resource::Twin, _) => true,
            (Resource::Signals(pattern), Target::Signal(signal)) => pattern.matches(signal),
            (Resource::Scenarios, Target::Scenarios)
            | (Resource::Alerts, Target::Alerts)
            | (Resource::Policy, Target::Policy) => true,
            _ => false,
        }
    }

    /// Whether everything `other` covers, this covers too (conservatively
    /// for signal patterns; see [`SignalPattern::covers`]). Sharing is
    /// limited by it: one can pass on only what one holds.
    pub fn includes(&self, other: &Resource) -> bool {
        match (self, other) {
            (Resource::Twin, _) => true,
            (Resource::Signals(outer), Resource::Signals(inner)) => outer.covers(inner),
            _ => self == other,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Twin => f.write_str("twin"),
            Resource::Signals(pattern) => write!(f, "signals:{pattern}"),
            Resource::Scenarios => f.write_str("scenarios"),
            Resource::Alerts => f.write_str("alerts"),
            Resource::Policy => f.write_str("policy"),
        }
    }
}

impl FromStr for Resource {
    type Err = AuthError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "twin" => Ok(Resource::Twin),
            "scenarios" => Ok(Resource::Scenarios),
            "alerts" => Ok(Resource::Alerts),
            "policy" => Ok(Resource::Policy),
            _ => match text.strip_prefix("signals:") {
                Some(pattern) => Ok(Resource::Signals(SignalPattern::new(pattern)?)),
                None => Err(AuthError::InvalidResource { text: crate::error::echo(text) }),
            },
        }
    }
}

impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What one request touches within a twin.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Target {
    /// The twin itself: its metadata, model or existence.
    Twin,
    /// One signal (a read of its history, an ingested point, a stream event).
    Signal(SignalName),
    /// The twin's scenarios.
    Scenarios,
    /// The twin's alerts.
    Alerts,
    /// The twin's policy.
    Policy,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Twin => f.write_str("the twin"),
            Target::Signal(signal) => write!(f, "signal {signal}"),
            Target::Scenarios => f.write_str("scenarios"),
            Target::Alerts => f.write_str("alerts"),
            Target::Policy => f.write_str("the policy"),
        }
    }
}

/// A permission asked for on a target: what [`Policies::authorize`]
/// decides on.
///
/// [`Policies::authorize`]: crate::Policies::authorize
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Action {
    /// The permission needed.
    pub permission: Permission,
    /// What it is needed on.
    pub target: Target,
}

impl Action {
    /// An action on `target` needing `permission`.
    pub const fn new(permission: Permission, target: Target) -> Self {
        Action { permission, target }
    }

    /// `permission` on one signal: reads, ingest, stream events.
    pub fn on_signal(permission: Permission, signal: SignalName) -> Self {
        Action::new(permission, Target::Signal(signal))
    }
}

/// `read signal heart_rate`, `manage the twin`.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.permission, self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(text: &str) -> Resource {
        text.parse().unwrap()
    }

    #[test]
    fn resources_round_trip_through_text() {
        for text in ["twin", "signals:heart_rate", "signals:glucose*", "scenarios", "alerts", "policy"] {
            assert_eq!(resource(text).to_string(), text);
        }
        for bad in ["signals", "signals:", "signal:hr", "everything"] {
            assert!(bad.parse::<Resource>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn the_twin_resource_covers_every_target_and_others_only_their_own() {
        let hr = Target::Signal(SignalName::new("heart_rate").unwrap());
        assert!(resource("twin").covers(&Target::Twin));
        assert!(resource("twin").covers(&hr));
        assert!(resource("signals:heart*").covers(&hr));
        assert!(!resource("signals:glucose*").covers(&hr));
        assert!(!resource("signals:*").covers(&Target::Twin));
        assert!(!resource("scenarios").covers(&Target::Alerts));
        assert!(resource("policy").covers(&Target::Policy));
    }

    #[test]
    fn inclusion_follows_patterns_and_the_twin_includes_all() {
        assert!(resource("twin").includes(&resource("policy")));
        assert!(resource("signals:*").includes(&resource("signals:glucose*")));
        assert!(!resource("signals:glucose*").includes(&resource("signals:*")));
        assert!(!resource("signals:*").includes(&resource("twin")));
        assert!(!resource("alerts").includes(&resource("scenarios")));
    }

    #[test]
    fn simulate_means_nothing_on_signals() {
        assert!(!resource("signals:*").applicable().contains(Permission::Simulate));
        assert!(resource("scenarios").applicable().contains(Permission::Simulate));
        assert_eq!(resource("twin").applicable(), Permissions::ALL);
    }
}
