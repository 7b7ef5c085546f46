//! Turns one profile into its stream of points, a day at a time.

use std::collections::VecDeque;

use doppel_model::{Point, Provenance, Timestamp, TwinId, Value};

use crate::clock::{NS_PER_DAY, safe_anchor};
use crate::day::generate_day;
use crate::glucose::GlucoseState;
use crate::night::{emit_night, plan_night};
use crate::person::{Carry, Person, Raw};
use crate::profile::{ILLNESS_MEDICATION, Profile};
use crate::signals::Device;

/// Furthest a simulator runs past its start, days (a century: longer than
/// any person's remaining life and any demo). Asking for more emits nothing
/// further.
pub const MAX_SIMULATED_DAYS: i64 = 36_525;

/// The generator of one person's points. Deterministic from (population
/// seed, person index): the same profile and seed always give the same
/// points, however `advance` is stepped.
///
/// Internally each day is planned whole (its night, activity, logs,
/// glucose) into a small buffer, and points leave the buffer in time order
/// once no later day can produce an earlier point.
pub struct PersonSimulator {
    person: Person,
    carry: Carry,
    twin: TwinId,
    provenances: Vec<Provenance>,
    current_ns: i64,
    next_day: i64,
    pending: VecDeque<Raw>,
}

impl PersonSimulator {
    /// Prepares `profile`'s simulator at `profile.start`; `seed` is the
    /// population seed the profile was generated with.
    pub fn new(profile: &Profile, seed: u64) -> Self {
        let anchor_ns = safe_anchor(profile.start.as_nanos());
        let person = Person::new(profile, seed, anchor_ns);
        // The night before day 0 ends on day 0's morning, so it is generated
        // up front; only its points from `profile.start` on are emitted.
        let night_before = plan_night(&person, -1);
        let carry = Carry {
            prev_day_wake_ns: plan_night(&person, -2).wake_ns,
            prev_night: night_before.clone(),
            hr_bpm: profile.resting_hr_bpm,
            hr_noise_bpm: 0.0,
            stepping: false,
            weight_drift_kg: 0.0,
            acute_load: person.habitual_load,
            glucose: profile.diabetes.map(|_| GlucoseState::default()),
        };
        let mut first = Vec::new();
        emit_night(&person, &carry, -1, &night_before, &mut first);
        let mut simulator = PersonSimulator {
            twin: profile.id.clone(),
            provenances: provenance_table(profile),
            current_ns: profile.start.as_nanos().max(anchor_ns),
            next_day: 0,
            pending: VecDeque::new(),
            person,
            carry,
        };
        simulator.enqueue(first);
        simulator
    }

    /// The profile being simulated.
    pub fn profile(&self) -> &Profile {
        &self.person.profile
    }

    /// Everything before this instant has been emitted.
    pub fn current(&self) -> Timestamp {
        Timestamp::from_nanos(self.current_ns)
    }

    /// Appends to `out` every point with time in `[current, until)`, in time
    /// order (ties by signal, then device), then moves `current` to `until`.
    /// History is one call with the history's end; live streaming is
    /// repeated small calls. An `until` at or before `current` does nothing.
    pub fn advance(&mut self, until: Timestamp, out: &mut Vec<Point>) {
        let until_ns = until.as_nanos();
        if until_ns <= self.current_ns {
            return;
        }
        while let Some(day_start) = self.next_day_start().filter(|start| *start < until_ns) {
            let mut day_points = Vec::with_capacity(2_048);
            generate_day(&self.person, &mut self.carry, self.next_day, &mut day_points);
            self.next_day += 1;
            self.enqueue(day_points);
            // Points before the next day's start are final: no later day emits before its own start.
            let complete_before = self.next_day_start().unwrap_or(i64::MAX).max(day_start);
            self.emit_before(complete_before.min(until_ns), out);
        }
        self.emit_before(until_ns, out);
        self.current_ns = until_ns;
    }

    /// Start of the next day to generate, or `None` past the horizon.
    fn next_day_start(&self) -> Option<i64> {
        if self.next_day >= MAX_SIMULATED_DAYS {
            return None;
        }
        // The day's points reach at most about 1.5 days past its start; keep 3 days of headroom.
        self.person.anchor_ns.checked_add((self.next_day + 3).checked_mul(NS_PER_DAY)?)?;
        Some(self.person.day_start_ns(self.next_day))
    }

    fn enqueue(&mut self, points: Vec<Raw>) {
        self.pending.extend(points);
        // Stable, so equal keys (which the generators never produce) would
        // still come out the same however `advance` is stepped.
        self.pending.make_contiguous().sort_by_key(Raw::sort_key);
    }

    fn emit_before(&mut self, end_ns: i64, out: &mut Vec<Point>) {
        while let Some(raw) = self.pending.front().copied().filter(|raw| raw.time_ns < end_ns) {
            self.pending.pop_front();
            if raw.time_ns < self.current_ns {
                continue; // before the profile's start
            }
            let (Ok(value), Some(provenance)) =
                (Value::new(raw.value), self.provenances.get(usize::from(raw.source)))
            else {
                continue;
            };
            out.push(Point {
                twin: self.twin.clone(),
                signal: raw.signal.signal_name(),
                provenance: provenance.clone(),
                time: Timestamp::from_nanos(raw.time_ns),
                value,
            });
        }
    }
}

/// Provenance per source index: `device=<tag>` for each device, then
/// `device=app,drug=<name>` for each daily medicine and the illness medicine.
fn provenance_table(profile: &Profile) -> Vec<Provenance> {
    let devices = Device::ALL.iter().map(|device| [("device", device.tag())].to_vec());
    let drugs = profile
        .medications
        .iter()
        .chain(std::iter::once(&ILLNESS_MEDICATION))
        .map(|medication| [("device", Device::App.tag()), ("drug", medication.drug)].to_vec());
    devices
        .chain(drugs)
        .map(|tags| {
            Provenance::from_tags(tags)
                .expect("device and drug names are short constants without control characters")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Population, PopulationConfig};

    #[test]
    fn advancing_backwards_or_to_now_emits_nothing() {
        let population = Population::generate(&PopulationConfig { people: 1, days: 1, ..Default::default() });
        let mut simulator = PersonSimulator::new(&population.people[0], 42);
        let start = simulator.current();
        let mut out = Vec::new();
        simulator.advance(start, &mut out);
        simulator.advance(Timestamp::from_nanos(start.as_nanos() - 1), &mut out);
        assert!(out.is_empty());
        assert_eq!(simulator.current(), start);
    }

    #[test]
    fn the_end_of_time_is_reached_without_overflow() {
        for start in [Timestamp::MAX, Timestamp::from_nanos(i64::MAX - 3 * NS_PER_DAY), Timestamp::MIN] {
            let config = PopulationConfig { people: 1, days: 30, start, ..Default::default() };
            let population = Population::generate(&config);
            let mut simulator = PersonSimulator::new(&population.people[0], config.seed);
            let mut out = Vec::new();
            let until = Timestamp::from_nanos(simulator.current().as_nanos().saturating_add(2 * NS_PER_DAY));
            simulator.advance(until, &mut out);
            assert_eq!(simulator.current(), until);
            assert!(out.windows(2).all(|w| w[0].time <= w[1].time));
        }
    }

    #[test]
    fn provenance_names_device_and_drug() {
        let population = Population::generate(&PopulationConfig { people: 1, days: 1, ..Default::default() });
        let table = provenance_table(&population.people[0]);
        assert_eq!(table[0].as_str(), "device=watch");
        assert_eq!(table[4].as_str(), "device=bp_cuff");
        assert_eq!(table.last().map(Provenance::as_str), Some("device=app,drug=paracetamol"));
    }
}
