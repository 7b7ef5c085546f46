//! Giving incoming values their meaning: resolving labels, refusing what a
//! model says is implausible.

use std::fmt::Write as _;

use serde_json::{Map, Value as Json};
use thiserror::Error;

use super::{ModelDef, PropertyDef, PropertyType, SignalDef};
use crate::ids::truncate;
use crate::{FieldValue, SignalName, Value};

/// Why one incoming value was refused. The message is one line a user can
/// act on, naming the signal, the value and what would have been accepted.
#[derive(Clone, PartialEq, Debug, Error)]
pub enum Rejection {
    /// The model is strict and does not define the signal.
    #[error(
        "signal {signal} is not defined by model {model}, which is strict and accepts only the signals it defines"
    )]
    UnknownSignal {
        /// The signal as sent.
        signal: SignalName,
        /// The twin's model.
        model: String,
    },
    /// The model does not define the signal, so it is a plain gauge, and a
    /// plain gauge has no labels to turn text into a number.
    #[error("signal {signal} is not defined by model {model}, so only numbers are accepted, not {text:?}")]
    TextForUndefinedSignal {
        /// The signal as sent.
        signal: SignalName,
        /// The twin's model.
        model: String,
        /// The text sent (shortened when long).
        text: String,
    },
    /// A number outside the signal's valid range.
    #[error(
        "{signal} = {} is outside the valid range {}–{}",
        with_unit(*.value, unit),
        .min,
        with_unit(*.max, unit)
    )]
    OutOfRange {
        /// The signal.
        signal: SignalName,
        /// The value sent.
        value: f64,
        /// The smallest accepted value.
        min: f64,
        /// The largest accepted value.
        max: f64,
        /// The signal's unit, possibly empty.
        unit: String,
    },
    /// A label that is not one of the signal's categories.
    #[error("{signal} = {label:?} is not one of its categories: {}", .allowed.join(", "))]
    UnknownCategory {
        /// The signal.
        signal: SignalName,
        /// The label sent (shortened when long).
        label: String,
        /// The signal's categories.
        allowed: Vec<String>,
    },
    /// Text sent for a signal that holds quantities.
    #[error("{signal} takes a number{}, not text {text:?}", in_unit(unit))]
    TextForNumericSignal {
        /// The signal.
        signal: SignalName,
        /// The text sent (shortened when long).
        text: String,
        /// The signal's unit, possibly empty.
        unit: String,
    },
    /// A number sent for a label signal that is not the index of one of its
    /// labels. Whole numbers `0..n` are accepted as indices, because that
    /// is how values are stored and read back, and importers that have
    /// already resolved labels send them.
    #[error(
        "{signal} takes one of {} (or its index 0–{}), not {value}",
        .allowed.join(", "),
        .allowed.len().saturating_sub(1)
    )]
    NumberForCategorySignal {
        /// The signal.
        signal: SignalName,
        /// The number sent.
        value: f64,
        /// The signal's categories.
        allowed: Vec<String>,
    },
}

/// Why one property value was refused.
#[derive(Clone, PartialEq, Debug, Error)]
pub enum PropertyRejection {
    /// The model is strict and does not define the property.
    #[error("property {property} is not defined by model {model}, which is strict")]
    Unknown {
        /// The property as sent (shortened when long).
        property: String,
        /// The twin's model.
        model: String,
    },
    /// A value of the wrong JSON type.
    #[error("property {property} must be {} {}, not {found}", article(*.expected), .expected.as_str())]
    WrongType {
        /// The property.
        property: String,
        /// The type the model gives it.
        expected: PropertyType,
        /// What was sent: `a string`, `a fractional number`, ...
        found: &'static str,
    },
    /// A number outside the property's valid range.
    #[error("property {property} = {value} is outside the valid range {min}–{max}")]
    OutOfRange {
        /// The property.
        property: String,
        /// The value sent.
        value: f64,
        /// The smallest accepted value.
        min: f64,
        /// The largest accepted value.
        max: f64,
    },
    /// A string that is not one of the property's choices.
    #[error("property {property} = {value:?} is not one of: {}", .allowed.join(", "))]
    NotAChoice {
        /// The property.
        property: String,
        /// The value sent (shortened when long).
        value: String,
        /// The accepted values.
        allowed: Vec<String>,
    },
}

fn with_unit(value: f64, unit: &str) -> String {
    let mut text = value.to_string();
    if !unit.is_empty() {
        let _ = write!(text, " {unit}");
    }
    text
}

fn in_unit(unit: &str) -> String {
    if unit.is_empty() { String::new() } else { format!(" in {unit}") }
}

fn article(kind: PropertyType) -> &'static str {
    match kind {
        PropertyType::Integer => "an",
        PropertyType::Number | PropertyType::String | PropertyType::Boolean => "a",
    }
}

impl ModelDef {
    /// Resolves and checks one incoming value of `signal`: a number must lie
    /// in the signal's range; a label becomes its category's index (labels
    /// match ignoring ASCII case); a signal the model does not define is a
    /// plain gauge unless the model is strict. Returns the value to store.
    pub fn check(&self, signal: &SignalName, value: &FieldValue) -> Result<Value, Rejection> {
        let Some(def) = self.signals.get(signal) else {
            return match value {
                _ if self.strict => {
                    Err(Rejection::UnknownSignal { signal: signal.clone(), model: self.name.clone() })
                }
                FieldValue::Number(number) => Ok(*number),
                FieldValue::Text(text) => Err(Rejection::TextForUndefinedSignal {
                    signal: signal.clone(),
                    model: self.name.clone(),
                    text: truncate(text),
                }),
            };
        };
        if def.kind.is_categorical() {
            check_label(signal, def, value)
        } else {
            check_quantity(signal, def, value)
        }
    }

    /// The label a stored category index stands for, for answers; `None`
    /// when the signal has no categories or the value is not one of their
    /// indices.
    pub fn label(&self, signal: &SignalName, value: Value) -> Option<&str> {
        let def = self.signals.get(signal)?;
        category_index(value.get(), def.categories.len()).map(|index| def.categories[index].as_str())
    }

    /// Checks property values against their definitions: in a strict model
    /// every property must be defined; a defined one must have its type,
    /// lie in its range and be one of its choices. `null` is accepted for
    /// any property the model allows, as the way to clear it. Returns every
    /// problem, not just the first, so a form can mark them all.
    pub fn check_properties(&self, props: &Map<String, Json>) -> Result<(), Vec<PropertyRejection>> {
        let problems: Vec<PropertyRejection> = props
            .iter()
            .filter_map(|(name, value)| match self.properties.get(name) {
                None if self.strict => {
                    Some(PropertyRejection::Unknown { property: truncate(name), model: self.name.clone() })
                }
                None => None,
                Some(def) => check_property(name, def, value).err(),
            })
            .collect();
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

fn check_quantity(signal: &SignalName, def: &SignalDef, value: &FieldValue) -> Result<Value, Rejection> {
    match value {
        FieldValue::Text(text) => Err(Rejection::TextForNumericSignal {
            signal: signal.clone(),
            text: truncate(text),
            unit: def.unit.clone(),
        }),
        FieldValue::Number(number) => match def.range {
            Some(range) if !range.contains(number.get()) => Err(Rejection::OutOfRange {
                signal: signal.clone(),
                value: number.get(),
                min: range.min(),
                max: range.max(),
                unit: def.unit.clone(),
            }),
            _ => Ok(*number),
        },
    }
}

fn check_label(signal: &SignalName, def: &SignalDef, value: &FieldValue) -> Result<Value, Rejection> {
    match value {
        FieldValue::Text(label) => def
            .categories
            .iter()
            .position(|category| category.eq_ignore_ascii_case(label))
            .and_then(|index| Value::new(index as f64).ok())
            .ok_or_else(|| Rejection::UnknownCategory {
                signal: signal.clone(),
                label: truncate(label),
                allowed: def.categories.clone(),
            }),
        // Normalised through the index, so -0.0 is stored as 0.
        FieldValue::Number(number) => category_index(number.get(), def.categories.len())
            .and_then(|index| Value::new(index as f64).ok())
            .ok_or_else(|| Rejection::NumberForCategorySignal {
                signal: signal.clone(),
                value: number.get(),
                allowed: def.categories.clone(),
            }),
    }
}

/// `value` as an index into `count` labels, when it is a whole number in range.
fn category_index(value: f64, count: usize) -> Option<usize> {
    // `count` is at most MAX_CATEGORIES, so the cast to f64 is exact.
    (value.fract() == 0.0 && value >= 0.0 && value < count as f64).then_some(value as usize)
}

fn check_property(name: &str, def: &PropertyDef, value: &Json) -> Result<(), PropertyRejection> {
    let wrong_type =
        |found| PropertyRejection::WrongType { property: truncate(name), expected: def.kind, found };
    match (def.kind, value) {
        (_, Json::Null) => Ok(()),
        (PropertyType::Boolean, Json::Bool(_)) => Ok(()),
        (PropertyType::String, Json::String(text)) => {
            if def.choices.is_empty() || def.choices.iter().any(|choice| choice == text) {
                Ok(())
            } else {
                Err(PropertyRejection::NotAChoice {
                    property: truncate(name),
                    value: truncate(text),
                    allowed: def.choices.clone(),
                })
            }
        }
        (PropertyType::Integer | PropertyType::Number, Json::Number(number)) => {
            // serde_json numbers are finite; a u64/i64 beyond 2^53 rounds, which no range cares about.
            let number = number.as_f64().unwrap_or(f64::NAN);
            if def.kind == PropertyType::Integer && number.fract() != 0.0 {
                return Err(wrong_type("a fractional number"));
            }
            match def.range {
                Some(range) if !range.contains(number) => Err(PropertyRejection::OutOfRange {
                    property: truncate(name),
                    value: number,
                    min: range.min(),
                    max: range.max(),
                }),
                _ => Ok(()),
            }
        }
        (_, other) => Err(wrong_type(json_type(other))),
    }
}

fn json_type(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_indices_are_whole_numbers_below_the_count() {
        assert_eq!(category_index(0.0, 4), Some(0));
        assert_eq!(category_index(3.0, 4), Some(3));
        assert_eq!(category_index(4.0, 4), None);
        assert_eq!(category_index(-1.0, 4), None);
        assert_eq!(category_index(1.5, 4), None);
        assert_eq!(category_index(-0.0, 4), Some(0));
    }

    #[test]
    fn units_are_left_out_of_messages_when_empty() {
        assert_eq!(with_unit(36.6, "°C"), "36.6 °C");
        assert_eq!(with_unit(3.0, ""), "3");
        assert_eq!(in_unit(""), "");
        assert_eq!(in_unit("bpm"), " in bpm");
    }
}
