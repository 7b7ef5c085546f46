//! Values as they arrive on the wire, before a model gives them meaning.

use crate::Value;

/// A field value as a wire format carries it. Numbers (integers, floats,
/// booleans as 1/0) are ready to store; text names a category (a sleep
/// stage, a symptom) that only the twin's model can turn into a number.
#[derive(Clone, PartialEq, Debug)]
pub enum FieldValue {
    /// A finite number.
    Number(Value),
    /// A label, resolved against the signal's categories by the model.
    Text(Box<str>),
}
