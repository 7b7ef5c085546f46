//! The built-in `person` model: its names match `docs/design.md`, its ranges have
//! sources, and it resolves and refuses values the way users will see.

use std::collections::BTreeSet;

use doppel_model::{FieldValue, ModelDef, Rejection, SignalKind, SignalName, Span, Value};
use serde_json::json;

const PERSON_TOML: &str = include_str!("../models/person.toml");

fn signal(name: &str) -> SignalName {
    SignalName::new(name).unwrap()
}

fn number(value: f64) -> FieldValue {
    FieldValue::Number(Value::new(value).unwrap())
}

fn text(label: &str) -> FieldValue {
    FieldValue::Text(label.into())
}

/// The table "The `person` model's signal names" of `docs/design.md`: name,
/// unit, kind.
const DESIGN_SIGNALS: [(&str, &str, SignalKind); 20] = [
    ("heart_rate", "bpm", SignalKind::Gauge),
    ("resting_heart_rate", "bpm", SignalKind::Gauge),
    ("hrv_rmssd", "ms", SignalKind::Gauge),
    ("steps", "count", SignalKind::Counter),
    ("active_energy", "kcal", SignalKind::Counter),
    ("spo2", "%", SignalKind::Gauge),
    ("respiratory_rate", "breaths/min", SignalKind::Gauge),
    ("skin_temp", "°C", SignalKind::Gauge),
    ("sleep_stage", "", SignalKind::Interval),
    ("weight", "kg", SignalKind::Gauge),
    ("blood_pressure.systolic", "mmHg", SignalKind::Gauge),
    ("blood_pressure.diastolic", "mmHg", SignalKind::Gauge),
    ("glucose", "mg/dL", SignalKind::Gauge),
    ("carbs", "g", SignalKind::Event),
    ("insulin_bolus", "U", SignalKind::Event),
    ("insulin_basal", "U/h", SignalKind::Event),
    ("training_load", "TSS", SignalKind::Event),
    ("medication", "mg", SignalKind::Event),
    ("mood", "score", SignalKind::Event),
    ("symptom", "", SignalKind::Category),
];

#[test]
fn person_model_parses_and_is_valid() {
    let parsed = ModelDef::from_toml(PERSON_TOML).unwrap();
    assert_eq!(parsed, ModelDef::person());
    assert_eq!(parsed.name, "person");
    assert!(!parsed.strict);
}

#[test]
fn person_defines_exactly_the_design_signals_plus_workout() {
    let person = ModelDef::person();
    let defined: BTreeSet<&str> = person.signals.keys().map(SignalName::as_str).collect();
    let mut expected: BTreeSet<&str> = DESIGN_SIGNALS.iter().map(|(name, _, _)| *name).collect();
    expected.insert("workout");
    assert_eq!(defined, expected);
    for (name, unit, kind) in DESIGN_SIGNALS {
        let def = person.signal(&signal(name)).unwrap();
        assert_eq!((def.unit.as_str(), def.kind), (unit, kind), "{name}");
    }
    assert_eq!(person.signal(&signal("workout")).unwrap().kind, SignalKind::Interval);
}

#[test]
fn every_person_signal_is_bounded_by_a_range_or_its_categories() {
    for (name, def) in &ModelDef::person().signals {
        assert!(
            def.range.is_some() != def.kind.is_categorical(),
            "{name}: numeric signals need a range, label signals categories"
        );
        assert!(!def.description.is_empty(), "{name} needs a description");
    }
}

/// Each `[signals.x]` table with a range must sit under a comment naming
/// where its bounds come from.
#[test]
fn every_person_range_has_a_source_comment_above_its_table() {
    let lines: Vec<&str> = PERSON_TOML.lines().collect();
    let mut checked = 0;
    for (index, line) in lines.iter().enumerate() {
        if !line.starts_with("[signals.") {
            continue;
        }
        let body = lines[index + 1..].iter().take_while(|line| !line.trim().is_empty());
        if !body.clone().any(|line| line.starts_with("range")) {
            continue;
        }
        assert!(
            index > 0 && lines[index - 1].starts_with('#'),
            "{line} has a range but no source comment above it"
        );
        checked += 1;
    }
    assert_eq!(checked, 18, "every numeric person signal has a range");
}

#[test]
fn out_of_range_messages_name_signal_value_and_range() {
    let person = ModelDef::person();
    for (name, def) in &person.signals {
        let Some(range) = def.range else { continue };
        for outside in [range.min() - 1.0, range.max() + 0.5] {
            let rejection = person.check(name, &number(outside)).unwrap_err();
            assert!(matches!(rejection, Rejection::OutOfRange { .. }), "{rejection:?}");
            let message = rejection.to_string();
            for part in [name.to_string(), outside.to_string(), format!("{}–{}", range.min(), range.max())]
            {
                assert!(message.contains(&part), "{message:?} should name {part:?}");
            }
        }
        assert_eq!(person.check(name, &number(range.min())).unwrap().get(), range.min());
        assert_eq!(person.check(name, &number(range.max())).unwrap().get(), range.max());
    }
}

#[test]
fn out_of_range_message_reads_as_one_actionable_line() {
    let person = ModelDef::person();
    let message = person.check(&signal("heart_rate"), &number(400.0)).unwrap_err().to_string();
    assert_eq!(message, "heart_rate = 400 bpm is outside the valid range 20–250 bpm");
    let message = person.check(&signal("skin_temp"), &number(12.5)).unwrap_err().to_string();
    assert_eq!(message, "skin_temp = 12.5 °C is outside the valid range 20–45 °C");
}

#[test]
fn category_labels_resolve_to_indices_and_back() {
    let person = ModelDef::person();
    for name in ["sleep_stage", "symptom", "workout"] {
        let name = signal(name);
        let categories = person.signal(&name).unwrap().categories.clone();
        for (index, label) in categories.iter().enumerate() {
            let stored = person.check(&name, &text(label)).unwrap();
            assert_eq!(stored.get(), index as f64);
            assert_eq!(person.label(&name, stored), Some(label.as_str()));
            // Case is ignored, and a stored index read back is accepted as is.
            let shouted = person.check(&name, &text(&label.to_ascii_uppercase())).unwrap();
            assert_eq!(shouted, stored);
            assert_eq!(person.check(&name, &number(index as f64)).unwrap(), stored);
        }
        assert_eq!(person.label(&name, Value::new(categories.len() as f64).unwrap()), None);
    }
    let stage = signal("sleep_stage");
    assert_eq!(person.check(&stage, &text("deep")).unwrap().get(), 2.0);
    assert_eq!(person.label(&stage, Value::new(0.5).unwrap()), None);
    assert_eq!(person.label(&signal("heart_rate"), Value::new(1.0).unwrap()), None);
    assert_eq!(person.label(&signal("not_defined"), Value::new(1.0).unwrap()), None);
}

#[test]
fn unknown_labels_and_bad_indices_list_what_is_allowed() {
    let person = ModelDef::person();
    let stage = signal("sleep_stage");
    let message = person.check(&stage, &text("nap")).unwrap_err().to_string();
    assert_eq!(message, "sleep_stage = \"nap\" is not one of its categories: awake, light, deep, rem");
    let negative_zero = person.check(&stage, &number(-0.0)).unwrap();
    assert!(negative_zero.get() == 0.0 && negative_zero.get().is_sign_positive(), "stored as index 0");
    for bad in [4.0, -1.0, 1.5] {
        let rejection = person.check(&stage, &number(bad)).unwrap_err();
        assert!(matches!(rejection, Rejection::NumberForCategorySignal { .. }), "{rejection:?}");
        assert!(rejection.to_string().contains("awake, light, deep, rem (or its index 0–3)"), "{rejection}");
    }
}

#[test]
fn text_for_a_numeric_signal_is_refused_with_its_unit() {
    let person = ModelDef::person();
    let message = person.check(&signal("glucose"), &text("high")).unwrap_err().to_string();
    assert_eq!(message, "glucose takes a number in mg/dL, not text \"high\"");
}

#[test]
fn undefined_signals_are_plain_gauges_in_the_person_model() {
    let person = ModelDef::person();
    let custom = signal("room_co2");
    assert_eq!(person.check(&custom, &number(-12.0)).unwrap().get(), -12.0);
    let message = person.check(&custom, &text("ok")).unwrap_err().to_string();
    assert!(
        message.starts_with("signal room_co2 is not defined by model person, so only numbers are accepted"),
        "{message}"
    );
    assert_eq!(person.windows_for(&custom), person.windows.as_slice());
}

#[test]
fn windows_and_retention_follow_signal_then_model() {
    let person = ModelDef::person();
    let span = |text: &str| text.parse::<Span>().unwrap();
    assert_eq!(person.windows_for(&signal("heart_rate")), [span("5m"), span("1h"), span("24h")]);
    assert_eq!(person.windows_for(&signal("spo2")), [span("1h"), span("24h")]);
    assert_eq!(person.windows_for(&signal("training_load")), [span("7d"), span("42d")]);
    assert!(person.windows_for(&signal("sleep_stage")).is_empty());
    assert!(person.windows_for(&signal("insulin_basal")).is_empty(), "a rate has no meaningful window sum");
    assert_eq!(person.retention_for(&signal("heart_rate")), None);
    assert_eq!(person.signal(&signal("glucose")).unwrap().cadence, Some(span("5m")));
}

#[test]
fn person_properties_are_typed_ranged_and_limited_to_their_choices() {
    let person = ModelDef::person();
    let good = json!({
        "birth_year": 1985, "sex": "female", "height_cm": 168.5, "weight_kg": 61.2,
        "timezone": "Europe/Berlin", "goals": "sleep 8 h", "diabetes_type": "type1",
        "insulin_carb_ratio_g_per_u": 10, "insulin_sensitivity_mg_dl_per_u": 45,
        "basal_rate_u_per_h": 0.85, "fitness_level": "moderate",
        "favourite_colour": "green", "cleared": null
    });
    person.check_properties(good.as_object().unwrap()).unwrap();

    let bad = json!({
        "birth_year": 1985.5, "sex": "unknown", "height_cm": 500, "timezone": 1, "weight_kg": "61"
    });
    let problems = person.check_properties(bad.as_object().unwrap()).unwrap_err();
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "property birth_year must be an integer, not a fractional number",
            "property height_cm = 500 is outside the valid range 20–280",
            "property sex = \"unknown\" is not one of: female, male, other",
            "property timezone must be a string, not a number",
            "property weight_kg must be a number, not a string",
        ]
    );
}

#[test]
fn person_relations_link_devices_homes_cohorts_and_clinicians() {
    let person = ModelDef::person();
    let relations: Vec<(&str, &str, bool)> =
        person.relations.iter().map(|r| (r.name.as_str(), r.target_model.as_str(), r.many)).collect();
    assert_eq!(
        relations,
        [
            ("wears", "device", true),
            ("lives_in", "home", false),
            ("member_of", "cohort", true),
            ("cared_by", "clinician", true)
        ]
    );
}
