//! One waking day: activity, minute heart rate, steps, energy, workouts,
//! the morning and evening logs, and (for CGM users) glucose.

use rand::Rng;

use crate::clock::{MIN_PER_DAY, NS_PER_DAY, NS_PER_HOUR, NS_PER_MIN, is_weekend, minutes_to_ns};
use crate::episode::round_to;
use crate::glucose::{GlucoseDay, simulate_day};
use crate::night::{NightPlan, emit_night, plan_night};
use crate::person::{Carry, Person, Raw, Source};
use crate::physiology::{
    self, ACUTE_LOAD_TIME_CONSTANT_DAYS, AWAKE_SEDENTARY_ABOVE_RESTING_BPM, AWAKE_SEDENTARY_METS,
    ILLNESS_STEPS_LOSS, WEEKEND_STEPS_FACTOR,
};
use crate::profile::ILLNESS_MEDICATION;
use crate::rng::{Draw, Purpose, stream};
use crate::signals::{Device, Signal, Symptom, WorkoutKind};
use crate::wear::wear_plan;

/// Most steps counted in one minute (a fast run is 180–190 steps/min).
const MAX_STEPS_PER_MIN: u16 = 200;
/// Bound on walking bouts drawn per day, so a huge step target cannot loop long.
const MAX_BOUTS_PER_DAY: usize = 400;
/// Active energy is reported per 15 minutes.
const ENERGY_INTERVAL_MIN: usize = 15;
/// Usual workouts never end closer to bedtime than this.
const WORKOUT_BEFORE_BED_MIN: f64 = 45.0;

/// A planned workout.
#[derive(Clone, Copy, Debug)]
struct Workout {
    kind: WorkoutKind,
    start_ns: i64,
    end_ns: i64,
    /// Fraction of heart-rate reserve it is done at.
    hr_reserve: f64,
    mets: f64,
    cadence_spm: f64,
    tss: f64,
}

impl Workout {
    fn contains(&self, t_ns: i64) -> bool {
        (self.start_ns..self.end_ns).contains(&t_ns)
    }
}

/// Generates everything of `day` into `out` and moves `carry` on to the next day.
pub(crate) fn generate_day(person: &Person, carry: &mut Carry, day: i64, out: &mut Vec<Raw>) {
    let day_start = person.day_start_ns(day);
    let night = plan_night(person, day);
    emit_night(person, carry, day, &night, out);

    let mut rng = stream(person.seed, person.index, day, Purpose::Day);
    let wake = carry.prev_night.wake_ns;
    let bed = night.bed_ns;
    let workout = plan_workout(person, day, wake, bed, &mut rng);
    let steps = plan_steps(person, day, wake, bed, workout.as_ref(), &mut rng);

    minute_loop(person, carry, day, &night, workout.as_ref(), &steps, out);
    if let Some(w) = &workout {
        let source = Source::device(if person.profile.devices.watch { Device::Watch } else { Device::App });
        out.push(Raw {
            time_ns: w.start_ns,
            value: f64::from(w.kind.index()),
            signal: Signal::Workout,
            source,
        });
        out.push(Raw {
            time_ns: w.end_ns,
            value: f64::from(WorkoutKind::None.index()),
            signal: Signal::Workout,
            source,
        });
        out.push(Raw { time_ns: w.end_ns, value: w.tss, signal: Signal::TrainingLoad, source });
    }
    daily_logs(person, carry, day, &night, &mut rng, out);

    if let (Some(diabetes), Some(state)) = (&person.profile.diabetes, carry.glucose.as_mut()) {
        let mut glucose_rng = stream(person.seed, person.index, day, Purpose::Glucose);
        let glucose_day = GlucoseDay {
            day,
            day_start_ns: day_start,
            day_end_ns: day_start + NS_PER_DAY,
            wake_ns: wake,
            bed_ns: bed,
            nights: [(carry.prev_night.bed_ns, wake), (bed, night.wake_ns)],
            workout: workout.map(|w| (w.start_ns, w.end_ns, w.hr_reserve)),
            diabetes,
        };
        simulate_day(person, state, &glucose_day, &mut glucose_rng, out);
    }

    let tss = workout.map_or(0.0, |w| w.tss);
    carry.acute_load += (tss - carry.acute_load) * (1.0 - (-1.0 / ACUTE_LOAD_TIME_CONSTANT_DAYS).exp());
    carry.weight_drift_kg = 0.97 * carry.weight_drift_kg + rng.normal(0.0, 0.08);
    carry.prev_day_wake_ns = wake;
    carry.prev_night = night;
}

/// Decides today's workout, if any: in a training block 5 days in 7 at the
/// block's load (ramping from 80 % to 120 % across the block), otherwise at
/// the person's usual weekly rate; none on days of real illness.
fn plan_workout(person: &Person, day: i64, wake: i64, bed: i64, rng: &mut impl Rng) -> Option<Workout> {
    let profile = &person.profile;
    let day_start = person.day_start_ns(day);
    let noon = day_start + 12 * NS_PER_HOUR;
    if person.illness_at(noon).severity > 0.3 {
        return None;
    }
    let (kind, duration_min, intensity_factor) = if let Some((daily_load, progress)) =
        person.training_at(noon)
    {
        if !rng.chance(5.0 / 7.0) {
            return None;
        }
        let tss = daily_load * (0.8 + 0.4 * progress) * rng.log_normal_factor(0.15);
        let kind = if profile.favourite_workout.is_endurance() {
            profile.favourite_workout
        } else if rng.chance(0.5) {
            WorkoutKind::Run
        } else {
            WorkoutKind::Cycle
        };
        let intensity_factor = rng.uniform(0.7, 0.88);
        let duration_min = (tss / (intensity_factor * intensity_factor * 100.0) * 60.0).clamp(30.0, 240.0);
        (kind, duration_min, intensity_factor)
    } else {
        if !rng.chance(profile.workouts_per_week / 7.0) {
            return None;
        }
        const KINDS: [WorkoutKind; 6] = [
            WorkoutKind::Walk,
            WorkoutKind::Run,
            WorkoutKind::Cycle,
            WorkoutKind::Swim,
            WorkoutKind::Strength,
            WorkoutKind::Other,
        ];
        let kind =
            if rng.chance(0.7) { profile.favourite_workout } else { KINDS[rng.random_range(0..KINDS.len())] };
        (kind, rng.uniform(20.0, 75.0), rng.uniform(0.55, 0.75) + 0.1 * profile.fitness)
    };

    let duration_ns = minutes_to_ns(duration_min);
    let preferred = if is_weekend(day_start) {
        wake + minutes_to_ns(rng.uniform(90.0, 240.0))
    } else if rng.chance(0.35) {
        wake + minutes_to_ns(rng.uniform(30.0, 60.0))
    } else {
        day_start + minutes_to_ns(rng.uniform(17.5 * 60.0, 19.5 * 60.0))
    };
    let earliest = wake.max(day_start) + 15 * NS_PER_MIN;
    let latest_end = (bed - minutes_to_ns(WORKOUT_BEFORE_BED_MIN)).min(day_start + NS_PER_DAY);
    let fallback = wake + 60 * NS_PER_MIN;
    let start_ns = [preferred, fallback]
        .into_iter()
        .find(|start| *start >= earliest && start + duration_ns <= latest_end)?;

    let (typical_mets, typical_reserve) = physiology::workout_mets_and_hr_reserve(kind);
    let scale = intensity_factor / 0.75;
    let cadence_spm = match kind {
        WorkoutKind::Walk => rng.uniform(105.0, 120.0),
        WorkoutKind::Run => rng.uniform(150.0, 175.0),
        _ => 0.0,
    };
    Some(Workout {
        kind,
        start_ns,
        end_ns: start_ns + duration_ns,
        hr_reserve: (typical_reserve * scale).min(0.95),
        mets: 1.0 + (typical_mets - 1.0) * scale,
        cadence_spm,
        tss: physiology::training_stress_score(duration_ns as f64 / NS_PER_MIN as f64, intensity_factor)
            .round(),
    })
}

/// Steps per minute of the day: weekday commute walks, then walking bouts
/// and incidental steps scattered over the waking day (fewer late in the
/// evening) until the day's total is reached, then the workout's own steps.
fn plan_steps(
    person: &Person,
    day: i64,
    wake: i64,
    bed: i64,
    workout: Option<&Workout>,
    rng: &mut impl Rng,
) -> Vec<u16> {
    let profile = &person.profile;
    let day_start = person.day_start_ns(day);
    let weekend = is_weekend(day_start);
    let severity = person.illness_at(day_start + 12 * NS_PER_HOUR).severity;
    let target = profile.daily_steps_target
        * if weekend { WEEKEND_STEPS_FACTOR } else { 1.0 }
        * rng.log_normal_factor(0.25)
        * (1.0 - ILLNESS_STEPS_LOSS * severity);

    let mut steps = vec![0u16; MIN_PER_DAY];
    let minute_of = |t_ns: i64| ((t_ns - day_start) / NS_PER_MIN).clamp(0, MIN_PER_DAY as i64) as usize;
    let first = minute_of(wake);
    let last = minute_of(bed);
    let mut remaining = target;
    let add_bout =
        |steps: &mut [u16], start: usize, minutes: usize, cadence: f64, rng: &mut dyn rand::RngCore| {
            let end = (start + minutes).min(last);
            let mut added = 0.0;
            for slot in steps.get_mut(start..end).unwrap_or_default() {
                let count = (cadence + rng.normal(0.0, 5.0)).clamp(1.0, f64::from(MAX_STEPS_PER_MIN)) as u16;
                let before = *slot;
                *slot = slot.saturating_add(count).min(MAX_STEPS_PER_MIN);
                added += f64::from(*slot - before);
            }
            added
        };
    if first >= last {
        return steps;
    }
    if profile.commuter && !weekend && severity < 0.5 {
        let morning = first + rng.int_between(40, 80) as usize;
        let evening = 17 * 60 + rng.int_between(0, 90) as usize;
        for start in [morning, evening] {
            let minutes = rng.int_between(8, 20) as usize;
            let cadence = rng.uniform(95.0, 120.0);
            remaining -= add_bout(&mut steps, start, minutes, cadence, rng);
        }
    }
    for _ in 0..MAX_BOUTS_PER_DAY {
        if remaining <= 0.0 {
            break;
        }
        let (minutes, cadence) = if rng.chance(0.3) {
            (rng.int_between(4, 25) as usize, rng.uniform(85.0, 120.0))
        } else {
            (rng.int_between(1, 3) as usize, rng.uniform(15.0, 70.0))
        };
        let Some(start) = (0..10).find_map(|_| {
            let minute = rng.int_between(first as i64, last as i64 - 1) as usize;
            rng.chance(activity_weight(minute / 60)).then_some(minute)
        }) else {
            continue;
        };
        remaining -= add_bout(&mut steps, start, minutes, cadence, rng);
    }
    if let Some(w) = workout.filter(|w| w.cadence_spm > 0.0) {
        let (from, to) = (minute_of(w.start_ns), minute_of(w.end_ns));
        for slot in steps.get_mut(from..to).unwrap_or_default() {
            *slot = (w.cadence_spm + rng.normal(0.0, 4.0)).clamp(1.0, f64::from(MAX_STEPS_PER_MIN)) as u16;
        }
    }
    steps
}

/// Relative chance of walking at each hour: most in the working day, less
/// early and in the evening, little at night.
fn activity_weight(hour: usize) -> f64 {
    match hour {
        6..=8 => 0.6,
        9..=18 => 1.0,
        19..=21 => 0.6,
        _ => 0.25,
    }
}

/// Minute heart rate, steps and 15-minute active energy from the watch (or
/// phone steps for people without one).
fn minute_loop(
    person: &Person,
    carry: &mut Carry,
    day: i64,
    night: &NightPlan,
    workout: Option<&Workout>,
    steps: &[u16],
    out: &mut Vec<Raw>,
) {
    let profile = &person.profile;
    let devices = profile.devices;
    let day_start = person.day_start_ns(day);
    let prev = &carry.prev_night;
    let wake = prev.wake_ns;
    let wear_yesterday = wear_plan(person, day - 1);
    let wear_today = wear_plan(person, day);
    let charging = [
        wear_yesterday.charge.window(carry.prev_day_wake_ns, prev.bed_ns),
        wear_today.charge.window(wake, night.bed_ns),
    ];
    let watch = Source::device(Device::Watch);
    let step_source = if devices.watch { watch } else { Source::device(Device::Phone) };
    let mut noise = stream(person.seed, person.index, day, Purpose::Noise);
    let down_rate = 0.25 + 0.2 * profile.fitness; // fitter people recover faster
    let (mut kcal, mut awake_worn_minutes) = (0.0, 0);

    for (minute, &minute_steps) in steps.iter().enumerate().take(MIN_PER_DAY) {
        let t = day_start + minute as i64 * NS_PER_MIN;
        let stage = prev.stage_at(t).or_else(|| night.stage_at(t));
        let off_all_day = if t < wake { wear_yesterday.off_all_day } else { wear_today.off_all_day };
        let on_charger = charging.iter().flatten().any(|(from, to)| (*from..*to).contains(&t));
        let worn = devices.watch && !off_all_day && !on_charger && (stage.is_none() || devices.watch_in_bed);
        let step_count = if stage.is_some() { 0 } else { minute_steps };
        let exercising = workout.filter(|w| w.contains(t));

        let resting = person.resting_hr_bpm(t, carry.acute_load);
        let reserve = person.max_hr_bpm - resting;
        let above_resting = match stage {
            Some(stage) => physiology::sleep_stage_hr_offset_bpm(stage) - 1.0,
            None => {
                let walking = reserve * physiology::walking_hr_reserve_fraction(f64::from(step_count));
                let training = exercising.map_or(0.0, |w| reserve * w.hr_reserve);
                AWAKE_SEDENTARY_ABOVE_RESTING_BPM.max(walking).max(training)
            }
        };
        let target = resting + above_resting + person.circadian_hr_bpm(t);
        let rate = if target > carry.hr_bpm { 0.55 } else { down_rate };
        carry.hr_bpm += (target - carry.hr_bpm) * rate;
        carry.hr_noise_bpm = 0.8 * carry.hr_noise_bpm + noise.normal(0.0, 1.2);

        if worn {
            let hr = (carry.hr_bpm + carry.hr_noise_bpm + noise.normal(0.0, 0.8)).clamp(35.0, 215.0).round();
            out.push(Raw { time_ns: t, value: hr, signal: Signal::HeartRate, source: watch });
        }

        let counted = if devices.watch { worn } else { stage.is_none() };
        if counted && step_count > 0 {
            out.push(Raw {
                time_ns: t,
                value: f64::from(step_count),
                signal: Signal::Steps,
                source: step_source,
            });
            carry.stepping = true;
        } else {
            if counted && carry.stepping {
                out.push(Raw { time_ns: t, value: 0.0, signal: Signal::Steps, source: step_source });
            }
            carry.stepping = false;
        }

        if worn && stage.is_none() {
            let mets = match exercising {
                Some(w) => w.mets,
                None if step_count > 0 => physiology::walking_mets(f64::from(step_count)),
                None => AWAKE_SEDENTARY_METS,
            };
            kcal += physiology::active_kcal_per_min(mets, profile.weight_kg);
            awake_worn_minutes += 1;
        }
        if minute % ENERGY_INTERVAL_MIN == ENERGY_INTERVAL_MIN - 1 {
            if awake_worn_minutes > 0 {
                let interval_start = t - (ENERGY_INTERVAL_MIN as i64 - 1) * NS_PER_MIN;
                out.push(Raw {
                    time_ns: interval_start,
                    value: round_to(kcal, 0.1),
                    signal: Signal::ActiveEnergy,
                    source: watch,
                });
            }
            kcal = 0.0;
            awake_worn_minutes = 0;
        }
    }
}

/// Morning weighing and blood pressure, medicines, symptoms, and the
/// evening mood score.
fn daily_logs(
    person: &Person,
    carry: &Carry,
    day: i64,
    night: &NightPlan,
    rng: &mut impl Rng,
    out: &mut Vec<Raw>,
) {
    let profile = &person.profile;
    let devices = profile.devices;
    let day_start = person.day_start_ns(day);
    let wake = carry.prev_night.wake_ns;
    let after_wake = |rng: &mut dyn rand::RngCore, from_min: f64, to_min: f64| {
        wake + minutes_to_ns(rng.uniform(from_min, to_min))
    };
    let app = Source::device(Device::App);
    let morning_illness = person.illness_at(wake + NS_PER_HOUR);

    if devices.scale && rng.chance(0.5) {
        let t = after_wake(rng, 5.0, 30.0);
        let kg =
            profile.weight_kg + carry.weight_drift_kg - 0.5 * morning_illness.severity + rng.normal(0.0, 0.3);
        out.push(Raw {
            time_ns: t,
            value: round_to(kg.max(30.0), 0.1),
            signal: Signal::Weight,
            source: Source::device(Device::Scale),
        });
    }
    if devices.bp_cuff && rng.chance(0.35) {
        let t = after_wake(rng, 35.0, 60.0);
        let systolic = rng.normal_within(profile.systolic_mm_hg, 6.0, 80.0, 220.0).round();
        let diastolic =
            rng.normal_within(profile.diastolic_mm_hg, 4.0, 45.0, 130.0).min(systolic - 20.0).round();
        let source = Source::device(Device::BpCuff);
        out.push(Raw { time_ns: t, value: systolic, signal: Signal::BloodPressureSystolic, source });
        out.push(Raw { time_ns: t, value: diastolic, signal: Signal::BloodPressureDiastolic, source });
    }
    for (i, medication) in profile.medications.iter().enumerate() {
        // Adherence to daily medicines is commonly about 80–90 %.
        if rng.chance(0.9) {
            let t = after_wake(rng, 10.0, 30.0) + i as i64 * NS_PER_MIN;
            out.push(Raw {
                time_ns: t,
                value: medication.dose_mg,
                signal: Signal::Medication,
                source: Source::medication(i),
            });
        }
    }

    let first = after_wake(rng, 60.0, 150.0);
    // Symptoms are logged only while the whole run of entries lies inside the symptomatic phase.
    if person.illness_at(first).symptomatic && person.illness_at(first + 3 * NS_PER_MIN).symptomatic {
        let count = 1
            + usize::from(morning_illness.severity > 0.5)
            + usize::from(rng.chance(0.5 * morning_illness.severity));
        // Relative frequency of self-reported symptoms in respiratory infections, fatigue and cough most common.
        const WEIGHTS: [f64; 13] =
            [0.0, 0.15, 0.1, 0.2, 0.12, 0.12, 0.03, 0.04, 0.08, 0.03, 0.03, 0.06, 0.04];
        let mut logged: Vec<Symptom> = Vec::new();
        for _ in 0..count * 4 {
            let symptom = Symptom::ALL[rng.weighted_index(&WEIGHTS)];
            if logged.len() < count && !logged.contains(&symptom) {
                logged.push(symptom);
            }
        }
        for (i, symptom) in logged.iter().enumerate() {
            let t = first + i as i64 * NS_PER_MIN;
            out.push(Raw {
                time_ns: t,
                value: f64::from(symptom.index()),
                signal: Signal::Symptom,
                source: app,
            });
        }
        let paracetamol = Source::medication(profile.medications.len());
        let first_dose = first + minutes_to_ns(rng.uniform(15.0, 45.0));
        let second_dose = first_dose + minutes_to_ns(rng.uniform(6.0 * 60.0, 9.0 * 60.0));
        let doses = [(first_dose, 0.6), (second_dose, 0.3)];
        for (t, chance) in doses {
            if rng.chance(chance) && t < night.bed_ns && person.illness_at(t).symptomatic {
                out.push(Raw {
                    time_ns: t,
                    value: ILLNESS_MEDICATION.dose_mg,
                    signal: Signal::Medication,
                    source: paracetamol,
                });
            }
        }
    }
    let recovered_yesterday = profile
        .episodes
        .iter()
        .any(|e| e.is_illness() && (day_start - NS_PER_DAY..day_start).contains(&e.end.as_nanos()));
    if recovered_yesterday {
        let t = after_wake(rng, 60.0, 150.0);
        out.push(Raw {
            time_ns: t,
            value: f64::from(Symptom::None.index()),
            signal: Signal::Symptom,
            source: app,
        });
    }

    if profile.logs_mood && rng.chance(0.8) {
        let t = night.bed_ns - minutes_to_ns(rng.uniform(20.0, 90.0));
        let illness = person.illness_at(t);
        let slept_h = carry.prev_night.asleep_h();
        let mood = person.mood_score + 0.5 * (slept_h - 7.0)
            - 3.0 * illness.severity
            - 0.01 * person.excess_load(carry.acute_load)
            + rng.normal(0.0, 1.0);
        out.push(Raw { time_ns: t, value: mood.clamp(1.0, 10.0).round(), signal: Signal::Mood, source: app });
    }
}
