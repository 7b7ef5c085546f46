//! When the watch is off the wrist: charging most days, and now and then a
//! whole day left in a drawer. Keyed by day alone so any day's plan can be
//! recomputed when a neighbouring day needs it.

use rand::Rng;

use crate::clock::{NS_PER_MIN, minutes_to_ns};
use crate::person::Person;
use crate::rng::{Draw, Purpose, stream};

/// Chance the watch is not worn from one morning to the next.
pub(crate) const DAY_OFF_CHANCE: f64 = 0.03;
/// Chance of charging after waking (during the morning routine).
pub(crate) const MORNING_CHARGE_CHANCE: f64 = 0.5;
/// Chance of charging in the evening before bed (otherwise no charge that day).
pub(crate) const EVENING_CHARGE_CHANCE: f64 = 0.35;

/// One day's non-wear.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct WearPlan {
    /// Off from this morning's wake to the next morning's wake.
    pub off_all_day: bool,
    pub charge: Charge,
}

/// When the watch charges, relative to the waking day.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Charge {
    None,
    /// Starts `after_wake_ns` after waking.
    Morning {
        after_wake_ns: i64,
        length_ns: i64,
    },
    /// Ends `before_bed_ns` before going to bed.
    Evening {
        before_bed_ns: i64,
        length_ns: i64,
    },
}

impl Charge {
    /// The charging window `[start, end)` given the day's wake and bed times.
    pub fn window(self, wake_ns: i64, bed_ns: i64) -> Option<(i64, i64)> {
        match self {
            Charge::None => None,
            Charge::Morning { after_wake_ns, length_ns } => {
                Some((wake_ns + after_wake_ns, wake_ns + after_wake_ns + length_ns))
            }
            Charge::Evening { before_bed_ns, length_ns } => {
                Some((bed_ns - before_bed_ns - length_ns, bed_ns - before_bed_ns))
            }
        }
    }
}

/// The non-wear plan of `day` (the waking day that starts that morning).
pub(crate) fn wear_plan(person: &Person, day: i64) -> WearPlan {
    let mut rng = stream(person.seed, person.index, day, Purpose::Wear);
    let off_all_day = rng.chance(DAY_OFF_CHANCE);
    // Charging takes about an hour (45–90 min) on current watches.
    let length_ns = minutes_to_ns(rng.uniform(45.0, 90.0));
    let roll = rng.random::<f64>();
    let charge = if roll < MORNING_CHARGE_CHANCE {
        Charge::Morning { after_wake_ns: minutes_to_ns(rng.uniform(5.0, 60.0)), length_ns }
    } else if roll < MORNING_CHARGE_CHANCE + EVENING_CHARGE_CHANCE {
        Charge::Evening { before_bed_ns: minutes_to_ns(rng.uniform(10.0, 120.0)).max(NS_PER_MIN), length_ns }
    } else {
        Charge::None
    };
    WearPlan { off_all_day, charge }
}
