//! Model definitions: what a kind of twin is made of.
//!
//! A model names a twin's signals (with unit, kind, valid range, expected
//! cadence, live windows and retention), its properties and its relations.
//! Models are written in TOML by people and sent as JSON by programs; both
//! map onto [`ModelDef`]. The built-in [`ModelDef::person`] ships in the
//! binary; [`ModelRegistry`] holds it beside the models users load.
//!
//! A model gives incoming values their meaning: [`ModelDef::check`] turns a
//! wire value into the number that is stored (a category label into its
//! index) or a [`Rejection`] that says, in one line, what is wrong.
//!
//! ```
//! use doppel_model::{FieldValue, ModelDef, SignalName, Value};
//!
//! let person = ModelDef::person();
//! let heart_rate = SignalName::new("heart_rate").unwrap();
//! let too_fast = FieldValue::Number(Value::new(400.0).unwrap());
//! let reason = person.check(&heart_rate, &too_fast).unwrap_err().to_string();
//! assert_eq!(reason, "heart_rate = 400 bpm is outside the valid range 20–250 bpm");
//!
//! let stage = SignalName::new("sleep_stage").unwrap();
//! let deep = person.check(&stage, &FieldValue::Text("deep".into())).unwrap();
//! assert_eq!(person.label(&stage, deep), Some("deep"));
//! ```

mod check;
mod error;
mod locate;
mod registry;
mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{SignalName, Span};

pub use check::{PropertyRejection, Rejection};
pub use error::{DefinitionError, FieldPath, Format, Location, PathSegment};
pub use registry::ModelRegistry;
pub use validate::{
    MAX_CATEGORIES, MAX_DEFINITION_BYTES, MAX_DESCRIPTION_BYTES, MAX_LABEL_BYTES, MAX_PROPERTIES,
    MAX_RELATIONS, MAX_SIGNALS, MAX_UNIT_BYTES, MAX_WINDOWS,
};

/// A kind of twin: its signals, properties, relations and the defaults for
/// live windows and retention. Built by [`ModelDef::from_toml`],
/// [`ModelDef::from_json`] or [`ModelDef::person`], which check it;
/// [`ModelRegistry::insert`] checks a hand-built one again.
///
/// Deserializing it with serde (from a config file, say) also checks it;
/// serializing it gives the same format back.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct ModelDef {
    /// The model's name, which twins refer to (`person`).
    pub name: String,
    /// What this kind of twin is, for people browsing models.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// When true, signals the model does not define are rejected by name;
    /// when false they are accepted as plain gauges.
    #[serde(default)]
    pub strict: bool,
    /// How long points are kept unless a signal says otherwise; `None`
    /// leaves it to the deployment's store settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Span>,
    /// Rolling windows kept live for numeric signals that name none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Span>,
    /// Slow facts about the twin (birth year, therapy settings), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, PropertyDef>,
    /// The time series the model defines, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signals: BTreeMap<SignalName, SignalDef>,
    /// Kinds of links to other twins (`wears` → device).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<RelationDef>,
}

/// One signal of a model: what its numbers mean and which are plausible.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalDef {
    /// The unit values are in (`bpm`, `mg/dL`); empty for labels.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// How values relate over time, which decides how they aggregate.
    pub kind: SignalKind,
    /// Inclusive plausible range; values outside are rejected. Numeric kinds only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ValueRange>,
    /// How often a device reports it, used to notice missing data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<Span>,
    /// The labels of a category or interval signal; a value is stored as
    /// its label's index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// What the signal measures, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Live windows for this signal, replacing the model's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<Span>>,
    /// Retention for this signal, replacing the model's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Span>,
}

/// How a signal's values relate over time.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalKind {
    /// A level sampled now and then (heart rate); aggregates by mean, min, max.
    Gauge,
    /// An amount accrued since the previous point (steps); aggregates by sum.
    Counter,
    /// Something that happened at an instant with a size (a meal's carbs).
    Event,
    /// A label observed at an instant (a symptom); stored as the label's index.
    Category,
    /// A state that starts at the point and lasts until the signal's next
    /// point (a sleep stage); stored as the label's index.
    Interval,
}

impl SignalKind {
    /// Whether values are labels (category or interval) rather than quantities.
    pub fn is_categorical(self) -> bool {
        matches!(self, Self::Category | Self::Interval)
    }
}

/// An inclusive range of plausible values, `[min, max]` in TOML and JSON.
/// Both ends are finite and `min <= max`.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct ValueRange {
    min: f64,
    max: f64,
}

impl ValueRange {
    /// A range from `min` to `max` inclusive; `None` unless both are finite
    /// and `min <= max`.
    pub fn new(min: f64, max: f64) -> Option<Self> {
        (min.is_finite() && max.is_finite() && min <= max).then_some(Self { min, max })
    }

    /// The smallest plausible value.
    pub fn min(self) -> f64 {
        self.min
    }

    /// The largest plausible value.
    pub fn max(self) -> f64 {
        self.max
    }

    /// Whether `value` lies inside, ends included.
    pub fn contains(self, value: f64) -> bool {
        self.min <= value && value <= self.max
    }
}

impl Serialize for ValueRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        [self.min, self.max].serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ValueRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A Vec rather than [f64; 2]: not every format's array access
        // reports elements left over after the second.
        let ends = Vec::<f64>::deserialize(deserializer)?;
        let [min, max] = ends[..] else {
            return Err(serde::de::Error::custom(format!(
                "range must be [min, max], two numbers, not {} of them",
                ends.len()
            )));
        };
        Self::new(min, max).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "range [{min}, {max}] must be two finite numbers, the smaller first"
            ))
        })
    }
}

/// One property of a model: a slow fact with a type and, for numbers, a
/// plausible range.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyDef {
    /// The JSON type a value must have (`type` in TOML and JSON).
    #[serde(rename = "type")]
    pub kind: PropertyType,
    /// What the property means, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Inclusive plausible range; integer and number properties only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ValueRange>,
    /// The only values a string property may take; empty allows any string.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

/// The type of a property's value.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    /// A whole number (a JSON number without a fractional part).
    Integer,
    /// Any finite number.
    Number,
    /// Text.
    String,
    /// `true` or `false`.
    Boolean,
}

impl PropertyType {
    /// Its name as the definition format writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::Number => "number",
            Self::String => "string",
            Self::Boolean => "boolean",
        }
    }

    /// Whether a range may be given for it.
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Integer | Self::Number)
    }
}

/// A kind of link from a twin of this model to other twins.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationDef {
    /// The relation's name (`wears`).
    pub name: String,
    /// The model of the twins it points to (`device`); it need not be
    /// registered yet.
    pub target_model: String,
    /// Whether a twin may have many such links or at most one.
    #[serde(default)]
    pub many: bool,
    /// What the relation means, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl Serialize for ModelDef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ModelDef::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for ModelDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let def = ModelDef::deserialize(deserializer)?;
        validate::validate(&def)
            .map_err(|invalid| serde::de::Error::custom(invalid.into_error(&def, None)))?;
        Ok(def)
    }
}

/// A `ModelDef` deserialized without the rule checks, so the parsers can
/// run them separately and attach a location to what they find.
struct Unchecked(ModelDef);

impl<'de> Deserialize<'de> for Unchecked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ModelDef::deserialize(deserializer).map(Unchecked)
    }
}

/// The built-in `person` model's definition, compiled into the binary.
const PERSON_TOML: &str = include_str!("../../models/person.toml");

impl ModelDef {
    /// Parses and checks a TOML definition. Errors name the field and the
    /// line and column.
    pub fn from_toml(text: &str) -> Result<ModelDef, DefinitionError> {
        check_size(text)?;
        let syntax = |field: FieldPath, error: toml::de::Error| DefinitionError::Syntax {
            format: Format::Toml,
            location: error.span().map(|span| Location::of_offset(text, span.start)),
            field,
            message: error.message().trim_end().to_owned(),
        };
        let deserializer =
            toml::Deserializer::parse(text).map_err(|error| syntax(FieldPath::root(), error))?;
        let Unchecked(def) = serde_path_to_error::deserialize(deserializer)
            .map_err(|error| syntax(FieldPath::from_serde(error.path()), error.into_inner()))?;
        validate::validate(&def).map_err(|invalid| {
            let location = locate::toml_field(text, &invalid.field);
            invalid.into_error(&def, location)
        })?;
        Ok(def)
    }

    /// Parses and checks a JSON definition (the same fields as TOML).
    /// Errors name the field, and the line and column where JSON gives one.
    pub fn from_json(text: &str) -> Result<ModelDef, DefinitionError> {
        check_size(text)?;
        let syntax = |field: FieldPath, error: serde_json::Error| DefinitionError::Syntax {
            format: Format::Json,
            field,
            location: (error.line() > 0).then(|| Location { line: error.line(), column: error.column() }),
            message: json_message(&error),
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let Unchecked(def) = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| syntax(FieldPath::from_serde(error.path()), error.into_inner()))?;
        deserializer.end().map_err(|error| syntax(FieldPath::root(), error))?;
        validate::validate(&def).map_err(|invalid| invalid.into_error(&def, None))?;
        Ok(def)
    }

    /// The built-in `person` model (see `models/person.toml`), parsed once.
    pub fn person() -> ModelDef {
        ModelDef::clone(&person_arc())
    }

    /// The definition of `name`, if the model defines it.
    pub fn signal(&self, name: &SignalName) -> Option<&SignalDef> {
        self.signals.get(name)
    }

    /// The live windows kept for `signal`: its own list, else the model's
    /// default for numeric signals. Labels get none unless they name some,
    /// and a strict model keeps none for signals it would reject.
    pub fn windows_for(&self, signal: &SignalName) -> &[Span] {
        match self.signals.get(signal) {
            Some(def) => match &def.windows {
                Some(windows) => windows,
                None if def.kind.is_categorical() => &[],
                None => &self.windows,
            },
            None if self.strict => &[],
            None => &self.windows,
        }
    }

    /// How long `signal`'s points are kept: its own retention, else the
    /// model's; `None` leaves it to the store's settings.
    pub fn retention_for(&self, signal: &SignalName) -> Option<Span> {
        self.signals.get(signal).and_then(|def| def.retention).or(self.retention)
    }
}

/// The shared, parsed built-in `person` model.
pub(crate) fn person_arc() -> Arc<ModelDef> {
    static PERSON: OnceLock<Arc<ModelDef>> = OnceLock::new();
    PERSON
        .get_or_init(|| match ModelDef::from_toml(PERSON_TOML) {
            Ok(def) => Arc::new(def),
            // Not input: the file is compiled in, and the test
            // `person_model_parses_and_is_valid` fails before any release could.
            Err(error) => panic!("built-in models/person.toml is invalid: {error}"),
        })
        .clone()
}

fn check_size(text: &str) -> Result<(), DefinitionError> {
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(DefinitionError::TooLarge {
            bytes: text.len() as u64,
            limit_bytes: MAX_DEFINITION_BYTES,
        });
    }
    Ok(())
}

/// serde_json appends " at line L column C" to its messages; the location
/// is reported separately, so drop it from the text.
fn json_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    message.strip_suffix(&suffix).unwrap_or(&message).to_owned()
}
