//! What a subscriber asks for ([`Subscription`]: twins, signals, event
//! kinds) and the parsed [`Filter`] that decides, per event, whether it is
//! sent and trimmed to which signals. Access control is applied after it,
//! by the caller's view of each event.

use std::collections::HashSet;
use std::sync::Arc;

use doppel_engine::{Event, EventBody, EventKind};
use doppel_model::{SignalName, TwinId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::limits::MAX_SUBSCRIPTION_ITEMS;

/// Which events a subscriber wants; an absent (null) member means "all".
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Subscription {
    /// Twin ids; null = every twin.
    #[serde(default)]
    pub(crate) twins: Option<Vec<String>>,
    /// Signal names; null = every signal. Applies to `points` events, whose
    /// points are trimmed to these signals; other kinds pass.
    #[serde(default)]
    pub(crate) signals: Option<Vec<String>>,
    /// Event kinds (`points`, `twin_created`, `twin_updated`, `twin_deleted`); null = every kind.
    #[serde(default)]
    pub(crate) kinds: Option<Vec<String>>,
}

/// A subscription, parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    twins: Option<HashSet<TwinId>>,
    signals: Option<HashSet<SignalName>>,
    kinds: Option<Vec<EventKind>>,
}

/// Why a subscription was refused: the member at fault and the reason.
#[derive(Debug)]
pub(crate) struct FilterError {
    pub(crate) member: &'static str,
    pub(crate) reason: String,
}

fn parse_list<T>(
    member: &'static str,
    items: Option<Vec<String>>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<Vec<T>>, FilterError> {
    let Some(items) = items else { return Ok(None) };
    if items.len() > MAX_SUBSCRIPTION_ITEMS {
        return Err(FilterError { member, reason: format!("more than {MAX_SUBSCRIPTION_ITEMS} entries") });
    }
    items
        .iter()
        .map(|item| parse(item))
        .collect::<Result<Vec<T>, String>>()
        .map(Some)
        .map_err(|reason| FilterError { member, reason })
}

impl Filter {
    pub(crate) fn new(subscription: Subscription) -> Result<Self, FilterError> {
        let twins = parse_list("twins", subscription.twins, |t| TwinId::new(t).map_err(|e| e.to_string()))?;
        let signals =
            parse_list("signals", subscription.signals, |s| SignalName::new(s).map_err(|e| e.to_string()))?;
        let kinds = parse_list("kinds", subscription.kinds, |k| {
            k.parse::<EventKind>().map_err(|_| {
                format!(
                    "{k:?} is not an event kind (expected points, twin_created, twin_updated or twin_deleted)"
                )
            })
        })?;
        Ok(Self {
            twins: twins.map(|t| t.into_iter().collect()),
            signals: signals.map(|s| s.into_iter().collect()),
            kinds,
        })
    }

    /// The event as this subscriber should see it, or `None` to skip it.
    pub(crate) fn apply(&self, event: &Arc<Event>) -> Option<Arc<Event>> {
        if let Some(twins) = &self.twins
            && !twins.contains(&event.twin)
        {
            return None;
        }
        if let Some(kinds) = &self.kinds
            && !kinds.contains(&event.kind)
        {
            return None;
        }
        let (Some(signals), EventBody::Points { points }) = (&self.signals, &event.body) else {
            return Some(event.clone());
        };
        if points.iter().all(|p| signals.contains(&p.signal)) {
            return Some(event.clone());
        }
        let kept: Vec<_> = points.iter().filter(|p| signals.contains(&p.signal)).cloned().collect();
        if kept.is_empty() {
            return None;
        }
        Some(Arc::new(Event {
            seq: event.seq,
            twin: event.twin.clone(),
            kind: event.kind,
            time: event.time,
            body: EventBody::Points { points: kept },
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use doppel_engine::PointUpdate;
    use doppel_model::{Provenance, Timestamp};

    pub(crate) fn points_event(twin: &str, signals: &[&str]) -> Arc<Event> {
        Arc::new(Event {
            seq: 7,
            twin: TwinId::new(twin).unwrap(),
            kind: EventKind::Points,
            time: Timestamp::from_secs(1),
            body: EventBody::Points {
                points: signals
                    .iter()
                    .map(|s| PointUpdate {
                        signal: SignalName::new(s).unwrap(),
                        provenance: Provenance::none(),
                        time: Timestamp::from_secs(1),
                        value: 60.0,
                        label: None,
                    })
                    .collect(),
            },
        })
    }

    fn filter(json: &str) -> Filter {
        Filter::new(serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn twin_filter_drops_other_twins() {
        let only_a = filter(r#"{"twins": ["a"]}"#);
        assert!(only_a.apply(&points_event("a", &["heart_rate"])).is_some());
        assert!(only_a.apply(&points_event("b", &["heart_rate"])).is_none());
        assert!(filter("{}").apply(&points_event("b", &["heart_rate"])).is_some());
    }

    #[test]
    fn signal_filter_trims_points_and_drops_events_left_empty() {
        let hr = filter(r#"{"signals": ["heart_rate"]}"#);
        let trimmed = hr.apply(&points_event("a", &["heart_rate", "steps"])).unwrap();
        let EventBody::Points { points } = &trimmed.body else { panic!("points event expected") };
        assert_eq!(points.len(), 1);
        assert_eq!(trimmed.seq, 7);
        assert!(hr.apply(&points_event("a", &["steps"])).is_none());
    }

    #[test]
    fn kind_filter_and_bad_members_are_named() {
        let deletions = filter(r#"{"kinds": ["twin_deleted"]}"#);
        assert!(deletions.apply(&points_event("a", &["heart_rate"])).is_none());
        let error = Filter::new(serde_json::from_str(r#"{"kinds": ["everything"]}"#).unwrap()).unwrap_err();
        assert_eq!(error.member, "kinds");
        let error = Filter::new(serde_json::from_str(r#"{"twins": ["a b"]}"#).unwrap()).unwrap_err();
        assert_eq!(error.member, "twins");
    }
}
