//! The `person` model's signal names, the category indices this crate
//! emits for its category and interval signals, and the devices that report
//! them.
//!
//! Category signals travel as numbers: the index of the label in the
//! model's category list. The indices here are part of this crate's
//! contract and are listed in `docs/synthetic-population.md`.

use std::sync::LazyLock;

use doppel_model::SignalName;

/// One signal of the `person` model (`docs/design.md`, "The
/// `person` model's signal names"), plus `workout`. A small copyable tag keeps buffered points at 24
/// bytes; [`Signal::name`] gives the wire name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Signal {
    /// Heart rate, bpm, every minute while the watch is worn.
    HeartRate,
    /// Nightly resting heart rate, bpm, reported once each morning.
    RestingHeartRate,
    /// Nightly HRV (RMSSD), ms, reported once each morning.
    HrvRmssd,
    /// Steps per minute; emitted for minutes with steps and the first still minute after them.
    Steps,
    /// Active energy, kcal per 15 minutes, stamped at the interval's start.
    ActiveEnergy,
    /// Blood oxygen saturation, %, every 10 minutes asleep.
    Spo2,
    /// Breaths per minute, every 10 minutes asleep.
    RespiratoryRate,
    /// Skin temperature, °C, every 5 minutes asleep.
    SkinTemp,
    /// Sleep stage interval: one point per stage change ([`SleepStage`] index).
    SleepStage,
    /// Body weight, kg, some mornings.
    Weight,
    /// Systolic blood pressure, mmHg.
    BloodPressureSystolic,
    /// Diastolic blood pressure, mmHg.
    BloodPressureDiastolic,
    /// CGM glucose, mg/dL, every 5 minutes.
    Glucose,
    /// Carbohydrates eaten, g.
    Carbs,
    /// Bolus insulin, U.
    InsulinBolus,
    /// Basal insulin rate, U/h, at each change of the programmed rate.
    InsulinBasal,
    /// Training load of a finished workout, TSS-like.
    TrainingLoad,
    /// Workout interval: one point at the start (its [`WorkoutKind`] index) and a 0 at the end.
    Workout,
    /// Self-reported mood, 1–10.
    Mood,
    /// Self-reported symptom ([`Symptom`] index).
    Symptom,
    /// A dose taken, mg; the drug is the provenance tag `drug`.
    Medication,
}

impl Signal {
    /// Every signal this crate emits, in the order used to break ties
    /// between points with the same timestamp.
    pub const ALL: [Signal; 21] = [
        Signal::HeartRate,
        Signal::RestingHeartRate,
        Signal::HrvRmssd,
        Signal::Steps,
        Signal::ActiveEnergy,
        Signal::Spo2,
        Signal::RespiratoryRate,
        Signal::SkinTemp,
        Signal::SleepStage,
        Signal::Weight,
        Signal::BloodPressureSystolic,
        Signal::BloodPressureDiastolic,
        Signal::Glucose,
        Signal::Carbs,
        Signal::InsulinBolus,
        Signal::InsulinBasal,
        Signal::TrainingLoad,
        Signal::Workout,
        Signal::Mood,
        Signal::Symptom,
        Signal::Medication,
    ];

    /// The signal's name in the `person` model.
    pub const fn name(self) -> &'static str {
        match self {
            Signal::HeartRate => "heart_rate",
            Signal::RestingHeartRate => "resting_heart_rate",
            Signal::HrvRmssd => "hrv_rmssd",
            Signal::Steps => "steps",
            Signal::ActiveEnergy => "active_energy",
            Signal::Spo2 => "spo2",
            Signal::RespiratoryRate => "respiratory_rate",
            Signal::SkinTemp => "skin_temp",
            Signal::SleepStage => "sleep_stage",
            Signal::Weight => "weight",
            Signal::BloodPressureSystolic => "blood_pressure.systolic",
            Signal::BloodPressureDiastolic => "blood_pressure.diastolic",
            Signal::Glucose => "glucose",
            Signal::Carbs => "carbs",
            Signal::InsulinBolus => "insulin_bolus",
            Signal::InsulinBasal => "insulin_basal",
            Signal::TrainingLoad => "training_load",
            Signal::Workout => "workout",
            Signal::Mood => "mood",
            Signal::Symptom => "symptom",
            Signal::Medication => "medication",
        }
    }

    /// The signal's name as a [`SignalName`], shared so emitting a point
    /// clones an `Arc` instead of allocating.
    pub fn signal_name(self) -> SignalName {
        SIGNAL_NAMES[self as usize].clone()
    }

    /// The signal with this `person`-model name, if this crate emits it.
    pub fn from_name(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|signal| signal.name() == name)
    }
}

/// Parsed once: every name in [`Signal::ALL`] is a valid constant.
static SIGNAL_NAMES: LazyLock<Vec<SignalName>> = LazyLock::new(|| {
    Signal::ALL
        .iter()
        .map(|signal| SignalName::new(signal.name()).expect("the person model's signal names are valid"))
        .collect()
});

/// A sleep stage as wearables report it (N1 and N2 merged into "light").
/// The value emitted for `sleep_stage` is [`SleepStage::index`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum SleepStage {
    /// Awake (in bed or up); 0.
    Awake,
    /// N1 + N2; 1.
    Light,
    /// N3, slow-wave sleep; 2.
    Deep,
    /// REM; 3.
    Rem,
}

impl SleepStage {
    /// The category index: awake = 0, light = 1, deep = 2, rem = 3.
    pub const fn index(self) -> u8 {
        match self {
            SleepStage::Awake => 0,
            SleepStage::Light => 1,
            SleepStage::Deep => 2,
            SleepStage::Rem => 3,
        }
    }

    /// The label in the `person` model's category list.
    pub const fn label(self) -> &'static str {
        match self {
            SleepStage::Awake => "awake",
            SleepStage::Light => "light",
            SleepStage::Deep => "deep",
            SleepStage::Rem => "rem",
        }
    }

    /// The stage with this index, if any.
    pub const fn from_index(index: u8) -> Option<SleepStage> {
        match index {
            0 => Some(SleepStage::Awake),
            1 => Some(SleepStage::Light),
            2 => Some(SleepStage::Deep),
            3 => Some(SleepStage::Rem),
            _ => None,
        }
    }
}

/// What a workout is. The value emitted for `workout` is
/// [`WorkoutKind::index`]; `None` (0) closes the interval.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum WorkoutKind {
    /// No workout; 0.
    None,
    /// Brisk walk; 1.
    Walk,
    /// Run; 2.
    Run,
    /// Cycling; 3.
    Cycle,
    /// Swimming; 4.
    Swim,
    /// Strength training; 5.
    Strength,
    /// Anything else (classes, team sports); 6.
    Other,
}

impl WorkoutKind {
    /// The category index: none = 0, walk = 1, run = 2, cycle = 3, swim = 4, strength = 5, other = 6.
    pub const fn index(self) -> u8 {
        match self {
            WorkoutKind::None => 0,
            WorkoutKind::Walk => 1,
            WorkoutKind::Run => 2,
            WorkoutKind::Cycle => 3,
            WorkoutKind::Swim => 4,
            WorkoutKind::Strength => 5,
            WorkoutKind::Other => 6,
        }
    }

    /// The label in the `person` model's category list.
    pub const fn label(self) -> &'static str {
        match self {
            WorkoutKind::None => "none",
            WorkoutKind::Walk => "walk",
            WorkoutKind::Run => "run",
            WorkoutKind::Cycle => "cycle",
            WorkoutKind::Swim => "swim",
            WorkoutKind::Strength => "strength",
            WorkoutKind::Other => "other",
        }
    }

    /// True for the endurance kinds a training block is built from.
    pub const fn is_endurance(self) -> bool {
        matches!(self, WorkoutKind::Run | WorkoutKind::Cycle | WorkoutKind::Swim)
    }
}

/// A self-reported symptom. The value emitted for `symptom` is
/// [`Symptom::index`], the position in the `person` model's list.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Symptom {
    /// No symptoms (logged once after an illness ends); 0.
    None,
    /// 1.
    Cough,
    /// 2.
    Fever,
    /// 3.
    Fatigue,
    /// 4.
    Headache,
    /// 5.
    SoreThroat,
    /// 6.
    ShortnessOfBreath,
    /// 7.
    LossOfSmell,
    /// 8.
    MuscleAche,
    /// 9.
    Nausea,
    /// 10.
    Diarrhea,
    /// 11.
    Chills,
    /// 12.
    Other,
}

impl Symptom {
    /// Every symptom in index order.
    pub const ALL: [Symptom; 13] = [
        Symptom::None,
        Symptom::Cough,
        Symptom::Fever,
        Symptom::Fatigue,
        Symptom::Headache,
        Symptom::SoreThroat,
        Symptom::ShortnessOfBreath,
        Symptom::LossOfSmell,
        Symptom::MuscleAche,
        Symptom::Nausea,
        Symptom::Diarrhea,
        Symptom::Chills,
        Symptom::Other,
    ];

    /// The category index (none = 0 … other = 12).
    pub fn index(self) -> u8 {
        Symptom::ALL.iter().position(|s| *s == self).map_or(0, |i| i as u8)
    }

    /// The label in the `person` model's category list.
    pub const fn label(self) -> &'static str {
        match self {
            Symptom::None => "none",
            Symptom::Cough => "cough",
            Symptom::Fever => "fever",
            Symptom::Fatigue => "fatigue",
            Symptom::Headache => "headache",
            Symptom::SoreThroat => "sore_throat",
            Symptom::ShortnessOfBreath => "shortness_of_breath",
            Symptom::LossOfSmell => "loss_of_smell",
            Symptom::MuscleAche => "muscle_ache",
            Symptom::Nausea => "nausea",
            Symptom::Diarrhea => "diarrhea",
            Symptom::Chills => "chills",
            Symptom::Other => "other",
        }
    }
}

/// Which device reports a point: the provenance tag `device`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Device {
    /// Wrist wearable: heart rate, steps, energy, workouts; sleep when worn in bed.
    Watch,
    /// Smart ring: sleep, nightly heart rate, HRV, SpO2, respiration, skin temperature.
    Ring,
    /// Continuous glucose monitor.
    Cgm,
    /// Bathroom scale.
    Scale,
    /// Blood-pressure cuff.
    BpCuff,
    /// Phone step counter, for people without a watch.
    Phone,
    /// Self-reports and logs: meals, insulin, mood, symptoms, medication.
    App,
}

impl Device {
    /// Every device, in provenance-table order.
    pub const ALL: [Device; 7] =
        [Device::Watch, Device::Ring, Device::Cgm, Device::Scale, Device::BpCuff, Device::Phone, Device::App];

    /// The value of the `device` provenance tag.
    pub const fn tag(self) -> &'static str {
        match self {
            Device::Watch => "watch",
            Device::Ring => "ring",
            Device::Cgm => "cgm",
            Device::Scale => "scale",
            Device::BpCuff => "bp_cuff",
            Device::Phone => "phone",
            Device::App => "app",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_name_parses_and_round_trips() {
        for signal in Signal::ALL {
            assert_eq!(signal.signal_name().as_str(), signal.name());
            assert_eq!(Signal::from_name(signal.name()), Some(signal));
        }
        assert_eq!(Signal::from_name("heartrate"), None);
    }

    #[test]
    fn signal_table_order_matches_discriminants() {
        for (i, signal) in Signal::ALL.iter().enumerate() {
            assert_eq!(*signal as usize, i);
        }
    }

    #[test]
    fn category_indices_follow_the_documented_mapping() {
        let stages: Vec<_> = (0..4).filter_map(SleepStage::from_index).map(SleepStage::label).collect();
        assert_eq!(stages, ["awake", "light", "deep", "rem"]);
        assert_eq!(SleepStage::from_index(4), None);
        assert_eq!(WorkoutKind::Strength.index(), 5);
        assert_eq!(Symptom::SoreThroat.index(), 5);
        assert_eq!(Symptom::Other.index(), 12);
        assert_eq!(Symptom::Chills.label(), "chills");
    }
}
