//! Property tests: range checks accept exactly the inside of a range, label
//! resolution round-trips, and no definition text makes the parsers panic.

use doppel_model::{FieldValue, ModelDef, Rejection, SignalName, Value};
use proptest::prelude::*;

fn number(value: f64) -> FieldValue {
    FieldValue::Number(Value::new(value).unwrap())
}

/// A one-signal model with the given range, written as TOML.
fn gauge_model(min: f64, max: f64) -> ModelDef {
    ModelDef::from_toml(&format!(
        "name = \"m\"\n[signals.x]\nunit = \"u\"\nkind = \"gauge\"\nrange = [{min:?}, {max:?}]\n"
    ))
    .unwrap()
}

fn finite() -> impl Strategy<Value = f64> {
    prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO
}

proptest! {
    #[test]
    fn values_inside_any_range_are_accepted_unchanged(
        a in finite(), b in finite(), t in 0.0f64..=1.0,
    ) {
        let (min, max) = if a <= b { (a, b) } else { (b, a) };
        let model = gauge_model(min, max);
        let x = SignalName::new("x").unwrap();
        // A point between the ends, clamped because rounding may step outside.
        let inside = (min + (max - min) * t).clamp(min, max);
        let inside = if inside.is_finite() { inside } else { min };
        for value in [min, max, inside] {
            prop_assert_eq!(model.check(&x, &number(value)).unwrap().get(), value);
        }
    }

    #[test]
    fn values_outside_any_range_are_rejected_with_its_bounds(
        a in finite(), b in finite(), value in finite(),
    ) {
        let (min, max) = if a <= b { (a, b) } else { (b, a) };
        prop_assume!(value < min || value > max);
        let model = gauge_model(min, max);
        let x = SignalName::new("x").unwrap();
        let rejection = model.check(&x, &number(value)).unwrap_err();
        prop_assert_eq!(
            rejection,
            Rejection::OutOfRange { signal: x, value, min, max, unit: "u".to_owned() }
        );
    }

    #[test]
    fn person_signals_accept_exactly_their_range(
        index in 0usize..20, value in -1.0e6f64..1.0e6,
    ) {
        let person = ModelDef::person();
        let numeric: Vec<_> = person.signals.iter().filter(|(_, def)| def.range.is_some()).collect();
        let (name, def) = numeric[index % numeric.len()];
        let range = def.range.unwrap();
        let result = person.check(name, &number(value));
        prop_assert_eq!(result.is_ok(), range.contains(value), "{} = {}: {:?}", name, value, result);
    }

    #[test]
    fn category_numbers_are_accepted_only_as_whole_indices(value in -10.0f64..10.0) {
        let person = ModelDef::person();
        let stage = SignalName::new("sleep_stage").unwrap();
        let accepted = person.check(&stage, &number(value)).is_ok();
        prop_assert_eq!(accepted, value.fract() == 0.0 && (0.0..4.0).contains(&value));
        prop_assert_eq!(person.label(&stage, Value::new(value).unwrap()).is_some(), accepted);
    }

    #[test]
    fn labels_resolve_to_their_index_and_back(
        labels in prop::collection::btree_set("[a-z][a-z0-9_]{0,15}", 1..20), pick in any::<prop::sample::Index>(),
    ) {
        let labels: Vec<String> = labels.into_iter().collect();
        let quoted: Vec<String> = labels.iter().map(|label| format!("{label:?}")).collect();
        let model = ModelDef::from_toml(&format!(
            "name = \"m\"\n[signals.s]\nkind = \"interval\"\ncategories = [{}]\n",
            quoted.join(", ")
        ))
        .unwrap();
        let s = SignalName::new("s").unwrap();
        let index = pick.index(labels.len());
        let stored = model.check(&s, &FieldValue::Text(labels[index].as_str().into())).unwrap();
        prop_assert_eq!(stored.get(), index as f64);
        prop_assert_eq!(model.label(&s, stored), Some(labels[index].as_str()));
    }

    #[test]
    fn arbitrary_text_never_panics_the_parsers(text in "\\PC{0,200}") {
        let _ = ModelDef::from_toml(&text);
        let _ = ModelDef::from_json(&text);
    }

    #[test]
    fn mutated_person_definitions_never_panic_the_parser(
        position in any::<prop::sample::Index>(), replacement in "[\\[\\]\"=.,a-z0-9 \n-]{0,4}",
    ) {
        let text = include_str!("../models/person.toml");
        let mut at = position.index(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let mutated = format!("{}{}{}", &text[..at], replacement, &text[at..]);
        if let Err(error) = ModelDef::from_toml(&mutated) {
            prop_assert!(!error.to_string().is_empty());
        }
    }
}
