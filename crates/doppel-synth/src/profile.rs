//! Who a synthetic person is: the slow facts drawn once per person, from
//! which every signal follows.

use doppel_model::{Timestamp, TwinId};
use rand::Rng;

use crate::WorkoutKind;
use crate::clock::approximate_year;
use crate::episode::{Episode, round_to};
use crate::physiology::{
    self, DAILY_STEPS_MEDIAN, RESTING_HR_FEMALE_EXTRA_BPM, RESTING_HR_FITNESS_SPAN_BPM, RESTING_HR_MEAN_BPM,
};
use crate::rng::Draw;

/// Sex, as the physiology norms this crate follows are split by it. The
/// `person` model also allows "other"; the generator draws only these two
/// because its sources report only these two.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
}

impl Sex {
    /// The value of the `sex` twin property.
    pub const fn label(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
        }
    }
}

/// Which devices a person owns. A phone and a logging app are assumed for
/// everyone.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Devices {
    /// A wrist wearable: minute heart rate, steps, energy, workouts.
    pub watch: bool,
    /// Whether the watch stays on in bed, so it also reports sleep.
    pub watch_in_bed: bool,
    /// A smart ring: sleep and nightly measurements.
    pub ring: bool,
    /// A continuous glucose monitor (people with type 1 diabetes).
    pub cgm: bool,
    /// A bathroom scale.
    pub scale: bool,
    /// A blood-pressure cuff.
    pub bp_cuff: bool,
}

/// Therapy settings of a person with type 1 diabetes. Derived from total
/// daily insulin dose (TDD) with the clinical rules of thumb: carb ratio =
/// 500 / TDD, sensitivity = 1800 / TDD, basal ≈ 45 % of TDD spread over 24 h
/// (Walsh and Roberts, *Pumping Insulin*; Davidson et al. 2008, Endocr Pract
/// 14:1095).
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct DiabetesProfile {
    /// Grams of carbohydrate covered by one unit of insulin.
    pub carb_ratio_g_per_u: f64,
    /// Glucose drop per unit of insulin, mg/dL.
    pub sensitivity_mg_dl_per_u: f64,
    /// Programmed basal rate, U/h (raised by a fifth from 03:00 to 08:00 for the dawn phenomenon).
    pub basal_u_per_h: f64,
    /// Glucose the person's day settles around between meals, mg/dL.
    pub baseline_glucose_mg_dl: f64,
}

/// A daily medicine taken each morning; reported as `medication` with
/// provenance tag `drug`.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Medication {
    /// The generic name, used as the `drug` tag.
    pub drug: &'static str,
    /// The dose, mg.
    pub dose_mg: f64,
}

/// Daily medicines given to a few people: common generics at usual doses.
pub const DAILY_MEDICATIONS: [Medication; 6] = [
    Medication { drug: "atorvastatin", dose_mg: 20.0 },
    Medication { drug: "lisinopril", dose_mg: 10.0 },
    Medication { drug: "levothyroxine", dose_mg: 0.1 },
    Medication { drug: "sertraline", dose_mg: 50.0 },
    Medication { drug: "amlodipine", dose_mg: 5.0 },
    Medication { drug: "metformin", dose_mg: 500.0 },
];
/// Taken on symptomatic illness days.
pub const ILLNESS_MEDICATION: Medication = Medication { drug: "paracetamol", dose_mg: 1000.0 };

/// One synthetic person: the slow facts every signal is generated from,
/// and the episodes planted in their history.
#[derive(Clone, PartialEq, Debug)]
pub struct Profile {
    /// Position in the population, 0-based; with the seed it keys the person's random streams.
    pub index: usize,
    /// The twin id, `p0001` for index 0.
    pub id: TwinId,
    /// Start of the history: the first instant [`crate::PersonSimulator`] emits.
    pub start: Timestamp,
    /// Birth year.
    pub birth_year: i32,
    /// Sex.
    pub sex: Sex,
    /// Height, cm.
    pub height_cm: f64,
    /// Usual weight, kg; daily weighings wander around it.
    pub weight_kg: f64,
    /// Cardiorespiratory fitness on a 0–1 scale; lowers resting heart rate, raises steps and workouts.
    pub fitness: f64,
    /// Chronotype: mid-sleep shift from the population's, hours (positive = later).
    pub chronotype_h: f64,
    /// Usual sleep on work nights, hours in bed.
    pub sleep_need_h: f64,
    /// Usual nightly resting heart rate, bpm.
    pub resting_hr_bpm: f64,
    /// Usual nightly RMSSD, ms.
    pub hrv_rmssd_ms: f64,
    /// Usual steps on a weekday.
    pub daily_steps_target: f64,
    /// Usual workouts per week outside training blocks.
    pub workouts_per_week: f64,
    /// The workout kind chosen most often.
    pub favourite_workout: WorkoutKind,
    /// Walks to and from work on weekdays (the morning and evening step peaks).
    pub commuter: bool,
    /// Logs mood most evenings.
    pub logs_mood: bool,
    /// Usual systolic pressure, mmHg.
    pub systolic_mm_hg: f64,
    /// Usual diastolic pressure, mmHg.
    pub diastolic_mm_hg: f64,
    /// Devices owned.
    pub devices: Devices,
    /// Therapy settings for CGM users (type 1 diabetes).
    pub diabetes: Option<DiabetesProfile>,
    /// Daily medicines.
    pub medications: Vec<Medication>,
    /// Planted ground truth.
    pub episodes: Vec<Episode>,
}

/// A twin property value, kept free of any JSON library; convert with
/// `serde_json::Value::from`.
#[derive(Clone, PartialEq, Debug)]
pub enum PropertyValue {
    /// A whole number.
    Integer(i64),
    /// A real number.
    Number(f64),
    /// Text.
    Text(String),
}

impl From<PropertyValue> for serde_json::Value {
    fn from(value: PropertyValue) -> Self {
        match value {
            PropertyValue::Integer(i) => serde_json::Value::from(i),
            // Non-finite numbers cannot occur (profiles are clamped); null is the JSON fallback.
            PropertyValue::Number(x) => {
                serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
            }
            PropertyValue::Text(s) => serde_json::Value::String(s),
        }
    }
}

/// The time zone every synthetic person lives in; their clock is UTC.
pub const TIMEZONE: &str = "Etc/UTC";

impl Profile {
    /// The `person` model's `fitness_level` choice for this person's 0–1
    /// fitness, in equal fifths of the scale.
    pub fn fitness_level(&self) -> &'static str {
        match self.fitness {
            f if f < 0.2 => "sedentary",
            f if f < 0.4 => "low",
            f if f < 0.6 => "moderate",
            f if f < 0.8 => "high",
            _ => "athlete",
        }
    }

    /// Age at the start of the history, years (birth assumed mid-year).
    pub fn age_years(&self) -> f64 {
        f64::from(approximate_year(self.start.as_nanos()) - self.birth_year) + 0.5
    }

    /// Body-mass index, kg/m².
    pub fn bmi(&self) -> f64 {
        self.weight_kg / (self.height_cm / 100.0).powi(2)
    }

    /// The twin properties to store for this person, named as in the
    /// `person` model: birth_year, sex, height_cm, weight_kg, timezone,
    /// fitness_level and, for CGM users, diabetes_type,
    /// insulin_carb_ratio_g_per_u, insulin_sensitivity_mg_dl_per_u and
    /// basal_rate_u_per_h.
    pub fn properties(&self) -> Vec<(&'static str, PropertyValue)> {
        let mut properties = vec![
            ("birth_year", PropertyValue::Integer(i64::from(self.birth_year))),
            ("sex", PropertyValue::Text(self.sex.label().to_owned())),
            ("height_cm", PropertyValue::Number(self.height_cm)),
            ("weight_kg", PropertyValue::Number(self.weight_kg)),
            ("timezone", PropertyValue::Text(TIMEZONE.to_owned())),
            ("fitness_level", PropertyValue::Text(self.fitness_level().to_owned())),
        ];
        if let Some(diabetes) = &self.diabetes {
            properties.extend([
                ("diabetes_type", PropertyValue::Text("type1".to_owned())),
                ("insulin_carb_ratio_g_per_u", PropertyValue::Number(diabetes.carb_ratio_g_per_u)),
                ("insulin_sensitivity_mg_dl_per_u", PropertyValue::Number(diabetes.sensitivity_mg_dl_per_u)),
                ("basal_rate_u_per_h", PropertyValue::Number(diabetes.basal_u_per_h)),
            ]);
        }
        properties
    }

    /// The properties as a JSON object, ready to PUT.
    pub fn properties_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.properties().into_iter().map(|(name, value)| (name.to_owned(), value.into())).collect()
    }
}

/// Roles the population assigns before a profile is drawn.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Roles {
    pub cgm: bool,
}

/// Draws one person's slow facts (episodes are planted by the caller).
pub(crate) fn draw_profile(rng: &mut impl Rng, index: usize, start: Timestamp, roles: Roles) -> Profile {
    let sex = if rng.chance(0.5) { Sex::Female } else { Sex::Male };
    let male = sex == Sex::Male;
    // Wearable users skew towards working age; a third are drawn across all adult ages.
    let age = if rng.chance(0.7) { rng.uniform(22.0, 58.0) } else { rng.uniform(18.0, 80.0) };
    let birth_year = approximate_year(start.as_nanos()) - age.floor() as i32;

    let (height_mean, height_sd) = physiology::height_cm_mean_sd(male);
    let height_cm = round_to(
        rng.normal_within(
            height_mean,
            height_sd,
            height_mean - 3.0 * height_sd,
            height_mean + 3.0 * height_sd,
        ),
        0.5,
    );
    let fitness = ((rng.random::<f64>() + rng.random::<f64>()) / 2.0 - 0.004 * (age - 40.0)).clamp(0.0, 1.0);
    let bmi = rng.normal_within(26.5 - 4.0 * (fitness - 0.5), 4.0, 17.5, 45.0);
    let weight_kg = round_to(bmi * (height_cm / 100.0).powi(2), 0.1);

    let sex_extra = if male { 0.0 } else { RESTING_HR_FEMALE_EXTRA_BPM };
    let resting_hr_bpm = round_to(
        (RESTING_HR_MEAN_BPM + sex_extra - RESTING_HR_FITNESS_SPAN_BPM * (fitness - 0.5)
            + 0.25 * (bmi - 26.5)
            + rng.normal(0.0, 4.5))
        .clamp(42.0, 95.0),
        0.1,
    );
    let hrv_rmssd_ms = round_to(
        (physiology::typical_rmssd_ms(age, resting_hr_bpm) * rng.log_normal_factor(0.25)).clamp(10.0, 150.0),
        0.1,
    );

    let age_steps = if age > 65.0 { 0.8 } else { 1.0 };
    let daily_steps_target =
        (DAILY_STEPS_MEDIAN * (0.8 * (fitness - 0.5)).exp() * age_steps * rng.log_normal_factor(0.25))
            .clamp(2_500.0, 18_000.0)
            .round();
    // Chronotype drifts earlier with age after young adulthood (Roenneberg et al. 2007).
    let chronotype_h = round_to(rng.normal_within(-0.02 * (age - 35.0), 0.8, -2.0, 2.5), 0.01);
    let sleep_need_h = round_to(rng.normal_within(7.5, 0.45, 6.0, 9.0), 0.01);
    let workouts_per_week = round_to((5.0 * fitness * rng.uniform(0.5, 1.2)).clamp(0.0, 6.0), 0.1);
    let favourite_workout = [
        WorkoutKind::Walk,
        WorkoutKind::Run,
        WorkoutKind::Cycle,
        WorkoutKind::Swim,
        WorkoutKind::Strength,
        WorkoutKind::Other,
    ][rng.weighted_index(&[0.25, 0.25, 0.2, 0.08, 0.12, 0.1])];

    let (systolic, diastolic) = physiology::typical_blood_pressure_mm_hg(age, male, bmi);
    let systolic_mm_hg = round_to(rng.normal_within(systolic, 8.0, 92.0, 175.0), 1.0);
    let diastolic_mm_hg =
        round_to(rng.normal_within(diastolic, 6.0, 55.0, 105.0).min(systolic_mm_hg - 25.0), 1.0);

    let watch = rng.chance(0.72);
    let devices = Devices {
        watch,
        watch_in_bed: watch && rng.chance(0.7),
        ring: rng.chance(if watch { 0.2 } else { 0.4 }),
        cgm: roles.cgm,
        scale: rng.chance(0.35),
        bp_cuff: rng.chance(if age > 50.0 { 0.35 } else { 0.1 }),
    };
    let diabetes = roles.cgm.then(|| draw_diabetes(rng, weight_kg));
    let medications = if !roles.cgm && rng.chance(0.12) {
        vec![DAILY_MEDICATIONS[rng.random_range(0..DAILY_MEDICATIONS.len())]]
    } else {
        Vec::new()
    };

    Profile {
        index,
        id: twin_id(index),
        start,
        birth_year,
        sex,
        height_cm,
        weight_kg,
        fitness: round_to(fitness, 0.001),
        chronotype_h,
        sleep_need_h,
        resting_hr_bpm,
        hrv_rmssd_ms,
        daily_steps_target,
        workouts_per_week,
        favourite_workout,
        commuter: rng.chance(if age < 66.0 { 0.6 } else { 0.1 }),
        logs_mood: rng.chance(0.4),
        systolic_mm_hg,
        diastolic_mm_hg,
        devices,
        diabetes,
        medications,
        episodes: Vec::new(),
    }
}

/// Therapy settings from a total daily dose of 0.4–0.8 U/kg, the usual range
/// in adults with type 1 diabetes (American Diabetes Association Standards
/// of Care, pharmacologic approaches).
fn draw_diabetes(rng: &mut impl Rng, weight_kg: f64) -> DiabetesProfile {
    let total_daily_dose_u = weight_kg * rng.normal_within(0.55, 0.1, 0.35, 0.85);
    DiabetesProfile {
        carb_ratio_g_per_u: round_to(500.0 / total_daily_dose_u, 0.5),
        sensitivity_mg_dl_per_u: round_to(1800.0 / total_daily_dose_u, 1.0),
        basal_u_per_h: round_to(0.45 * total_daily_dose_u / 24.0, 0.05).max(0.1),
        baseline_glucose_mg_dl: round_to(rng.normal_within(128.0, 12.0, 105.0, 165.0), 1.0),
    }
}

/// The twin id of the person at `index`: `p0001`, `p0002`, … (wider past 9999).
pub fn twin_id(index: usize) -> TwinId {
    TwinId::new(&format!("p{:04}", index.saturating_add(1))).expect("p followed by digits is a valid twin id")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, stream};

    fn someone(index: usize, cgm: bool) -> Profile {
        let mut rng = stream(3, index as u64, 0, Purpose::Population);
        draw_profile(&mut rng, index, Timestamp::from_secs(1_704_067_200), Roles { cgm })
    }

    #[test]
    fn properties_satisfy_the_person_model() {
        let person = doppel_model::ModelDef::person();
        for index in 0..200 {
            let profile = someone(index, index % 3 == 0);
            assert_eq!(person.check_properties(&profile.properties_json()), Ok(()), "{}", profile.id);
        }
    }

    #[test]
    fn twin_ids_are_zero_padded_and_one_based() {
        assert_eq!(twin_id(0).as_str(), "p0001");
        assert_eq!(twin_id(998).as_str(), "p0999");
        assert_eq!(twin_id(12_344).as_str(), "p12345");
    }

    #[test]
    fn properties_include_therapy_settings_only_for_cgm_users() {
        let plain = someone(1, false).properties();
        let names: Vec<_> = plain.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["birth_year", "sex", "height_cm", "weight_kg", "timezone", "fitness_level"]);
        let cgm = someone(1, true);
        let json = cgm.properties_json();
        assert!(json["insulin_carb_ratio_g_per_u"].as_f64().unwrap() > 3.0);
        assert_eq!(json["diabetes_type"], "type1");
        assert!(json["birth_year"].is_i64());
    }

    #[test]
    fn drawn_people_are_adults_with_plausible_bodies() {
        for index in 0..300 {
            let p = someone(index, index % 10 == 0);
            assert!((18.0..=81.0).contains(&p.age_years()), "{}", p.age_years());
            assert!((140.0..=200.0).contains(&p.height_cm));
            assert!((17.0..=46.0).contains(&p.bmi()), "{}", p.bmi());
            assert!((42.0..=95.0).contains(&p.resting_hr_bpm));
            assert!(p.diastolic_mm_hg < p.systolic_mm_hg);
            if let Some(d) = p.diabetes {
                assert!((4.0..=30.0).contains(&d.carb_ratio_g_per_u), "{d:?}");
                assert!(d.sensitivity_mg_dl_per_u > d.carb_ratio_g_per_u);
            }
        }
    }
}
