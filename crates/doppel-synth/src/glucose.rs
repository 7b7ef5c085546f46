//! CGM users with type 1 diabetes: meals, insulin and a simple, documented
//! glucose response. This is deliberately not the UVA/Padova simulator
//! (that is the `sim` part's work); it is an effect-curve model of the kind
//! bolus calculators use:
//!
//! glucose(t) = baseline + slow wander + dawn rise + overnight drift
//!            + exercise drop + Σ carbs·CSF·A(τ)·f(τ) − Σ units·ISF·I(τ)·f(τ)
//!
//! where CSF = ISF / carb ratio is the glucose rise per gram (Walsh and
//! Roberts, *Pumping Insulin*), A and I are gamma(2) cumulative curves with
//! peaks [`CARB_PEAK_MIN`] and [`INSULIN_PEAK_MIN`], and f(τ) = e^(−τ/[`EFFECT_FADE_MIN`])
//! fades every input out so the long-run mean stays at the baseline instead
//! of wandering like an open-loop integrator. A bolus that matches the carbs
//! leaves a rise of about 30–80 mg/dL peaking about an hour after eating.
//! The sensor adds AR(1) noise with lag-1 correlation 0.7 (the Dexcom noise
//! model in simglucose's `sensor_params.csv`) and reports 40–400 mg/dL.

use std::collections::VecDeque;

use rand::Rng;

use crate::clock::{NS_PER_HOUR, NS_PER_MIN, minutes_to_ns};
use crate::episode::round_to;
use crate::person::{Person, Raw, Source};
use crate::profile::DiabetesProfile;
use crate::rng::Draw;
use crate::signals::{Device, Signal};

/// Peak of carbohydrate appearance, minutes after eating (mixed meals).
pub const CARB_PEAK_MIN: f64 = 25.0;
/// Peak of rapid-acting insulin action, minutes: the OpenAPS exponential
/// insulin curves use 55 (ultra-rapid) to 75 (rapid-acting).
pub const INSULIN_PEAK_MIN: f64 = 55.0;
/// Time constant over which every input's effect fades, minutes.
pub const EFFECT_FADE_MIN: f64 = 240.0;
/// Inputs older than this are dropped; their faded effect is under 2 %.
const EFFECT_HORIZON_MIN: f64 = 960.0;
/// CGM sample interval, minutes.
pub const CGM_EVERY_MIN: i64 = 5;
/// The range a CGM reports (Dexcom G6: 40–400 mg/dL).
pub const CGM_RANGE_MG_DL: (f64, f64) = (40.0, 400.0);
/// Hypoglycaemia threshold that prompts rescue carbs, mg/dL (ADA level 1).
const LOW_MG_DL: f64 = 70.0;
/// Rescue carbs, g: the "rule of 15" (15–20 g of fast carbohydrate).
const RESCUE_CARBS_G: (f64, f64) = (15.0, 20.0);
/// Above this a correction bolus may be given, mg/dL.
const CORRECTION_ABOVE_MG_DL: f64 = 250.0;
/// Corrections aim for this glucose, mg/dL.
const CORRECTION_TARGET_MG_DL: f64 = 130.0;
/// No correction within this long of another bolus (insulin stacking).
const CORRECTION_GAP_MIN: i64 = 180;
/// Dawn phenomenon: glucose rises over the last hours of the night (Porcellati et al. 2013, Diabetes Care 36:3860).
const DAWN_RISE_MG_DL: f64 = 18.0;
/// Sensors are replaced every 10 days and need 2 h to warm up (Dexcom G6).
const SENSOR_DAYS: i64 = 10;
const SENSOR_WARMUP_START_H: i64 = 9;
const SENSOR_WARMUP_H: i64 = 2;

/// Fraction of an input's full effect present `minutes` after it, for a
/// gamma(2) curve peaking at `peak_min`, including the homeostatic fade.
pub fn effect_fraction(minutes: f64, peak_min: f64) -> f64 {
    if minutes <= 0.0 {
        return 0.0;
    }
    let x = minutes / peak_min;
    (1.0 - (1.0 + x) * (-x).exp()) * (-minutes / EFFECT_FADE_MIN).exp()
}

#[derive(Clone, Copy, Debug)]
struct Effect {
    time_ns: i64,
    /// Full effect, mg/dL: positive for carbs, negative for insulin.
    full_mg_dl: f64,
    peak_min: f64,
}

/// The glucose state carried across days.
#[derive(Clone, Debug, Default)]
pub(crate) struct GlucoseState {
    effects: VecDeque<Effect>,
    wander_mg_dl: f64,
    night_drift_mg_dl: f64,
    exercise_mg_dl: f64,
    sensor_noise_mg_dl: f64,
    last_bolus_ns: Option<i64>,
    last_carbs_ns: Option<i64>,
}

/// What the rest of the day looks like to the glucose model.
pub(crate) struct GlucoseDay<'a> {
    pub day: i64,
    pub day_start_ns: i64,
    pub day_end_ns: i64,
    /// Waking window of the day, for meals.
    pub wake_ns: i64,
    pub bed_ns: i64,
    /// Both nights touching the day: (bed, wake).
    pub nights: [(i64, i64); 2],
    /// The workout, as (start, end, fraction of heart-rate reserve).
    pub workout: Option<(i64, i64, f64)>,
    pub diabetes: &'a DiabetesProfile,
}

struct Meal {
    time_ns: i64,
    carbs_g: f64,
    bolus_u: f64,
}

/// Simulates one day of a CGM user: meal and insulin events and the 5-minute glucose trace.
pub(crate) fn simulate_day(
    person: &Person,
    state: &mut GlucoseState,
    day: &GlucoseDay<'_>,
    rng: &mut impl Rng,
    out: &mut Vec<Raw>,
) {
    let therapy = day.diabetes;
    let csf = therapy.sensitivity_mg_dl_per_u / therapy.carb_ratio_g_per_u;
    let app = Source::device(Device::App);
    let cgm = Source::device(Device::Cgm);

    // Programmed basal: raised by a fifth 03:00–08:00 against the dawn phenomenon.
    for (hour, factor) in [(0, 1.0), (3, 1.2), (8, 1.0)] {
        let rate = round_to(therapy.basal_u_per_h * factor, 0.05);
        out.push(Raw {
            time_ns: day.day_start_ns + hour * NS_PER_HOUR,
            value: rate,
            signal: Signal::InsulinBasal,
            source: app,
        });
    }

    let mut meals = plan_meals(day, therapy, rng);
    meals.sort_by_key(|meal| meal.time_ns);
    let mut next_meal = 0;
    let night_slope_mg_dl_per_h = rng.normal(3.0, 8.0);
    let phi = (-(CGM_EVERY_MIN as f64) / 180.0).exp(); // slow wander, 3 h time constant
    let wander_step_sd = 18.0 * (1.0 - phi * phi).sqrt(); // stationary sd 18 mg/dL
    let warmup = (day.day - person.cgm_change_day).rem_euclid(SENSOR_DAYS) == 0;

    let mut t_ns = day.day_start_ns;
    while t_ns < day.day_end_ns {
        while let Some(meal) = meals.get(next_meal).filter(|meal| meal.time_ns <= t_ns) {
            state.effects.push_back(Effect {
                time_ns: meal.time_ns,
                full_mg_dl: meal.carbs_g * csf,
                peak_min: CARB_PEAK_MIN,
            });
            state.last_carbs_ns = Some(meal.time_ns);
            out.push(Raw { time_ns: meal.time_ns, value: meal.carbs_g, signal: Signal::Carbs, source: app });
            if meal.bolus_u > 0.0 {
                add_bolus(state, therapy, meal.time_ns, meal.bolus_u, out);
            }
            next_meal += 1;
        }
        let step_min = CGM_EVERY_MIN as f64;
        let in_bed = day.nights.iter().any(|(bed, wake)| (*bed..*wake).contains(&t_ns));
        state.night_drift_mg_dl = if in_bed {
            state.night_drift_mg_dl + night_slope_mg_dl_per_h * step_min / 60.0
        } else {
            state.night_drift_mg_dl * (-step_min / 90.0).exp()
        };
        state.exercise_mg_dl *= (-step_min / 120.0).exp();
        if let Some((start, end, reserve)) = day.workout
            && (start..end).contains(&t_ns)
        {
            // Exercise lowers glucose by insulin-independent uptake, ~0.8 mg/dL/min at full effort.
            state.exercise_mg_dl -= 0.8 * reserve * step_min;
        }
        state.wander_mg_dl = phi * state.wander_mg_dl + rng.normal(0.0, wander_step_sd);
        let dawn = day.nights.iter().map(|(_, wake)| dawn_rise(t_ns, *wake)).fold(0.0, f64::max);

        state.effects.retain(|e| (t_ns - e.time_ns) as f64 / NS_PER_MIN as f64 <= EFFECT_HORIZON_MIN);
        let inputs: f64 = state
            .effects
            .iter()
            .map(|e| {
                e.full_mg_dl * effect_fraction((t_ns - e.time_ns) as f64 / NS_PER_MIN as f64, e.peak_min)
            })
            .sum();
        let glucose = therapy.baseline_glucose_mg_dl
            + state.wander_mg_dl
            + dawn
            + state.night_drift_mg_dl
            + state.exercise_mg_dl
            + inputs;

        let minutes_since = |last: Option<i64>| last.map_or(i64::MAX, |l| (t_ns - l) / NS_PER_MIN);
        if glucose < LOW_MG_DL && minutes_since(state.last_carbs_ns) >= 30 && rng.chance(0.85) {
            let carbs_g = rng.uniform(RESCUE_CARBS_G.0, RESCUE_CARBS_G.1).round();
            state.effects.push_back(Effect {
                time_ns: t_ns,
                full_mg_dl: carbs_g * csf,
                peak_min: CARB_PEAK_MIN * 0.6,
            });
            state.last_carbs_ns = Some(t_ns);
            out.push(Raw { time_ns: t_ns, value: carbs_g, signal: Signal::Carbs, source: app });
        } else if glucose > CORRECTION_ABOVE_MG_DL
            && minutes_since(state.last_bolus_ns) >= CORRECTION_GAP_MIN
            && rng.chance(0.4)
        {
            let units = round_to((glucose - CORRECTION_TARGET_MG_DL) / therapy.sensitivity_mg_dl_per_u, 0.5);
            if units > 0.0 {
                add_bolus(state, therapy, t_ns, units, out);
            }
        }

        state.sensor_noise_mg_dl = 0.7 * state.sensor_noise_mg_dl + rng.normal(0.0, 3.6);
        let warming_up = warmup
            && (SENSOR_WARMUP_START_H * NS_PER_HOUR..(SENSOR_WARMUP_START_H + SENSOR_WARMUP_H) * NS_PER_HOUR)
                .contains(&(t_ns - day.day_start_ns));
        if !warming_up {
            let reading =
                (glucose + state.sensor_noise_mg_dl).clamp(CGM_RANGE_MG_DL.0, CGM_RANGE_MG_DL.1).round();
            out.push(Raw { time_ns: t_ns, value: reading, signal: Signal::Glucose, source: cgm });
        }
        t_ns += CGM_EVERY_MIN * NS_PER_MIN;
    }
}

fn add_bolus(
    state: &mut GlucoseState,
    therapy: &DiabetesProfile,
    time_ns: i64,
    units: f64,
    out: &mut Vec<Raw>,
) {
    state.effects.push_back(Effect {
        time_ns,
        full_mg_dl: -units * therapy.sensitivity_mg_dl_per_u,
        peak_min: INSULIN_PEAK_MIN,
    });
    state.last_bolus_ns = Some(time_ns);
    out.push(Raw {
        time_ns,
        value: units,
        signal: Signal::InsulinBolus,
        source: Source::device(Device::App),
    });
}

/// Rises over the 3 h before waking and settles over the 2 h after.
fn dawn_rise(t_ns: i64, wake_ns: i64) -> f64 {
    let hours = (t_ns - wake_ns) as f64 / NS_PER_HOUR as f64;
    if (-3.0..=0.0).contains(&hours) {
        DAWN_RISE_MG_DL * (1.0 + hours / 3.0)
    } else if (0.0..=2.0).contains(&hours) {
        DAWN_RISE_MG_DL * (1.0 - hours / 2.0)
    } else {
        0.0
    }
}

/// Three meals (30–90 g) and up to two snacks (10–30 g) at minutes inside
/// the waking day. Boluses are carbs / carb ratio with a carb-counting
/// error of about 20 % (Brazeau et al. 2013, Diabetes Res Clin Pract 99:19);
/// about one meal in twenty and half the snacks go unbolused.
fn plan_meals(day: &GlucoseDay<'_>, therapy: &DiabetesProfile, rng: &mut impl Rng) -> Vec<Meal> {
    let first = day.wake_ns.max(day.day_start_ns) + 10 * NS_PER_MIN;
    let last = day.bed_ns.min(day.day_end_ns) - 30 * NS_PER_MIN;
    let at = |hour: f64| day.day_start_ns + minutes_to_ns(hour * 60.0);
    let mut wanted: Vec<(i64, f64, f64)> = Vec::new(); // (time, carbs, chance of bolus)
    if rng.chance(0.85) {
        wanted.push((day.wake_ns + minutes_to_ns(rng.uniform(20.0, 60.0)), rng.uniform(30.0, 60.0), 0.95));
    }
    wanted.push((at(rng.uniform(12.0, 13.5)), rng.uniform(40.0, 80.0), 0.95));
    wanted.push((at(rng.uniform(18.5, 20.5)), rng.uniform(45.0, 90.0), 0.95));
    for _ in 0..rng.int_between(0, 2) {
        let time = first + minutes_to_ns(rng.uniform(0.0, ((last - first) / NS_PER_MIN).max(0) as f64));
        wanted.push((time, rng.uniform(10.0, 30.0), 0.5));
    }
    let mut meals: Vec<Meal> = Vec::new();
    for (time_ns, carbs, bolus_chance) in wanted {
        let carbs_g = carbs.round();
        let bolus_u = if rng.chance(bolus_chance) {
            round_to(carbs_g / therapy.carb_ratio_g_per_u * rng.log_normal_factor(0.2), 0.1)
        } else {
            0.0
        };
        // Meals that fall outside the waking day, or on a minute already eaten in, are skipped.
        if (first..last).contains(&time_ns) && meals.iter().all(|m| m.time_ns != time_ns) {
            meals.push(Meal { time_ns, carbs_g, bolus_u });
        }
    }
    meals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_rise_from_zero_and_fade_out() {
        assert_eq!(effect_fraction(0.0, CARB_PEAK_MIN), 0.0);
        assert!(effect_fraction(60.0, CARB_PEAK_MIN) > effect_fraction(60.0, INSULIN_PEAK_MIN));
        assert!(effect_fraction(EFFECT_HORIZON_MIN, INSULIN_PEAK_MIN) < 0.02);
    }

    #[test]
    fn matched_bolus_gives_a_30_to_80_mg_dl_rise_about_an_hour_after_eating() {
        // A 70 kg adult at 0.55 U/kg/day: carb ratio 13, sensitivity 47.
        let (carb_ratio, sensitivity) = (500.0 / 38.5, 1800.0 / 38.5);
        let carbs_g = 60.0;
        let net = |minutes: f64| {
            carbs_g * sensitivity / carb_ratio * effect_fraction(minutes, CARB_PEAK_MIN)
                - carbs_g / carb_ratio * sensitivity * effect_fraction(minutes, INSULIN_PEAK_MIN)
        };
        let (peak_min, peak) = (0..600)
            .map(|m| (m, net(f64::from(m))))
            .fold((0, f64::MIN), |best, x| if x.1 > best.1 { x } else { best });
        assert!((30.0..=80.0).contains(&peak), "peak rise {peak}");
        assert!((30..=90).contains(&peak_min), "peak at {peak_min} min");
        assert!(net(480.0).abs() < 10.0, "settles: {}", net(480.0));
    }

    #[test]
    fn dawn_rise_peaks_at_waking() {
        assert_eq!(dawn_rise(0, 0), DAWN_RISE_MG_DL);
        assert_eq!(dawn_rise(-4 * NS_PER_HOUR, 0), 0.0);
        assert!(dawn_rise(NS_PER_HOUR, 0) > 0.0);
    }
}
