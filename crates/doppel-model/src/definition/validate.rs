//! The rules a definition must follow beyond its field types.
//!
//! Types already refuse what they can (a `Span` is positive, a
//! `SignalName` well-formed, a `ValueRange` ordered); what is left here
//! spans several fields (a category signal needs categories) or guards a
//! limit.

use std::collections::BTreeSet;

use super::{DefinitionError, FieldPath, Location, ModelDef, PropertyDef, SignalDef};
use crate::{MAX_NAME_BYTES, Span};

/// Largest definition text accepted, in bytes. A model with a thousand
/// documented signals is under half of this; anything bigger is not a
/// hand-written model, and the limit bounds what an API caller can make us parse.
pub const MAX_DEFINITION_BYTES: usize = 1024 * 1024;

/// Most signals one model may define; each costs a lookup entry on every
/// ingest path, and a thousand covers any device family we know of.
pub const MAX_SIGNALS: usize = 1024;

/// Most properties one model may define; properties are slow facts, not a
/// second set of signals.
pub const MAX_PROPERTIES: usize = 256;

/// Most relations one model may define.
pub const MAX_RELATIONS: usize = 64;

/// Most live windows per signal (or as the model default). Every window is
/// state kept in memory per twin per signal, and the engine's target is a
/// million resident twins in 2 GiB.
pub const MAX_WINDOWS: usize = 8;

/// Most labels a category or interval signal may have. A category is a small
/// closed set; a larger set is an identifier and belongs in a provenance tag.
pub const MAX_CATEGORIES: usize = 256;

/// Longest category label or property choice, in bytes; labels travel in
/// every answer that shows the signal.
pub const MAX_LABEL_BYTES: usize = 64;

/// Longest unit, in bytes (`breaths/min` is 11).
pub const MAX_UNIT_BYTES: usize = 32;

/// Longest description of a model, signal, property or relation, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;

/// A broken rule, before it is given the model's name and a location.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub(crate) field: FieldPath,
    pub(crate) reason: String,
}

impl Invalid {
    fn new(field: FieldPath, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }

    pub(crate) fn into_error(self, def: &ModelDef, location: Option<Location>) -> DefinitionError {
        DefinitionError::Invalid {
            model: crate::ids::truncate(&def.name),
            field: self.field,
            location,
            reason: self.reason,
        }
    }
}

/// Checks every rule; the first broken one is returned.
pub(crate) fn validate(def: &ModelDef) -> Result<(), Invalid> {
    let root = FieldPath::root();
    check_name(&root.key("name"), &def.name)?;
    check_description(&root.key("description"), &def.description)?;
    check_windows(&root.key("windows"), &def.windows)?;
    check_retention_covers(&root.key("retention"), def.retention, &def.windows)?;

    if def.properties.len() > MAX_PROPERTIES {
        return Err(Invalid::new(root.key("properties"), too_many("properties", MAX_PROPERTIES)));
    }
    for (name, property) in &def.properties {
        check_property(&root.key("properties").key(name), name, property)?;
    }

    if def.signals.len() > MAX_SIGNALS {
        return Err(Invalid::new(root.key("signals"), too_many("signals", MAX_SIGNALS)));
    }
    for (name, signal) in &def.signals {
        check_signal(&root.key("signals").key(name.as_str()), signal, def)?;
    }

    if def.relations.len() > MAX_RELATIONS {
        return Err(Invalid::new(root.key("relations"), too_many("relations", MAX_RELATIONS)));
    }
    let mut relation_names = BTreeSet::new();
    for (index, relation) in def.relations.iter().enumerate() {
        let at = root.key("relations").index(index);
        check_name(&at.key("name"), &relation.name)?;
        if !relation_names.insert(relation.name.as_str()) {
            return Err(Invalid::new(
                at.key("name"),
                format!("relation {:?} is defined twice", relation.name),
            ));
        }
        check_name(&at.key("target_model"), &relation.target_model)?;
        check_description(&at.key("description"), &relation.description)?;
    }
    Ok(())
}

fn check_property(at: &FieldPath, name: &str, property: &PropertyDef) -> Result<(), Invalid> {
    check_name(at, name)?;
    check_description(&at.key("description"), &property.description)?;
    if property.range.is_some() && !property.kind.is_numeric() {
        return Err(Invalid::new(
            at.key("range"),
            format!("a range applies to integer and number properties, not to {}", property.kind.as_str()),
        ));
    }
    if !property.choices.is_empty() && property.kind != super::PropertyType::String {
        return Err(Invalid::new(
            at.key("choices"),
            format!("choices apply to string properties, not to {}", property.kind.as_str()),
        ));
    }
    check_labels(&at.key("choices"), &property.choices, "choice")
}

fn check_signal(at: &FieldPath, signal: &SignalDef, def: &ModelDef) -> Result<(), Invalid> {
    check_description(&at.key("description"), &signal.description)?;
    check_unit(&at.key("unit"), &signal.unit)?;
    if signal.kind.is_categorical() {
        if signal.categories.is_empty() {
            return Err(Invalid::new(
                at.key("categories"),
                "a category or interval signal needs a non-empty list of categories",
            ));
        }
        if signal.range.is_some() {
            return Err(Invalid::new(
                at.key("range"),
                "a category or interval signal takes labels, so it has no numeric range",
            ));
        }
        if signal.windows.as_ref().is_some_and(|windows| !windows.is_empty()) {
            return Err(Invalid::new(
                at.key("windows"),
                "windows aggregate numbers; a category or interval signal cannot have them",
            ));
        }
        check_labels(&at.key("categories"), &signal.categories, "category")?;
    } else if !signal.categories.is_empty() {
        return Err(Invalid::new(
            at.key("categories"),
            "only category and interval signals have categories; use kind = \"category\" or \"interval\"",
        ));
    }
    if let Some(windows) = &signal.windows {
        check_windows(&at.key("windows"), windows)?;
    }
    let windows =
        signal.windows.as_deref().unwrap_or(if signal.kind.is_categorical() { &[] } else { &def.windows });
    match signal.retention {
        Some(retention) => check_retention_covers(&at.key("retention"), Some(retention), windows),
        None => match (def.retention, windows.iter().max()) {
            (Some(retention), Some(longest)) if *longest > retention => Err(Invalid::new(
                at.key("windows"),
                format!(
                    "window {longest} is longer than the model's retention {retention}, \
                     so it could not be rebuilt from history"
                ),
            )),
            _ => Ok(()),
        },
    }
}

fn check_windows(at: &FieldPath, windows: &[Span]) -> Result<(), Invalid> {
    if windows.len() > MAX_WINDOWS {
        return Err(Invalid::new(at.clone(), too_many("windows", MAX_WINDOWS)));
    }
    for (index, window) in windows.iter().enumerate() {
        if windows[..index].contains(window) {
            return Err(Invalid::new(at.index(index), format!("window {window} is listed twice")));
        }
    }
    Ok(())
}

/// A window longer than retention could not be rebuilt from history after
/// a restart, so retention must cover every live window.
fn check_retention_covers(at: &FieldPath, retention: Option<Span>, windows: &[Span]) -> Result<(), Invalid> {
    let (Some(retention), Some(longest)) = (retention, windows.iter().max()) else {
        return Ok(());
    };
    if *longest > retention {
        return Err(Invalid::new(
            at.clone(),
            format!(
                "retention {retention} is shorter than the live window {longest}, which could not be rebuilt"
            ),
        ));
    }
    Ok(())
}

fn check_labels(at: &FieldPath, labels: &[String], what: &str) -> Result<(), Invalid> {
    if labels.len() > MAX_CATEGORIES {
        return Err(Invalid::new(at.clone(), too_many(what, MAX_CATEGORIES)));
    }
    for (index, label) in labels.iter().enumerate() {
        let problem = if label.is_empty() {
            Some("must not be empty".to_owned())
        } else if label.len() > MAX_LABEL_BYTES {
            Some(format!("is longer than {MAX_LABEL_BYTES} bytes"))
        } else if label.trim() != label {
            Some("must not start or end with whitespace".to_owned())
        } else if label.chars().any(char::is_control) {
            Some("must not hold control characters".to_owned())
        } else if labels[..index].iter().any(|earlier| earlier.eq_ignore_ascii_case(label)) {
            // Labels resolve ignoring ASCII case, so these would collide.
            Some("is listed twice (labels are matched ignoring case)".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Invalid::new(
                at.index(index),
                format!("{what} {:?} {problem}", crate::ids::truncate(label)),
            ));
        }
    }
    Ok(())
}

/// Model, property and relation names: an ASCII letter, then letters,
/// digits, `_` or `-`, so they work as URL segments, JSON keys and TOML bare keys.
fn check_name(at: &FieldPath, name: &str) -> Result<(), Invalid> {
    let problem = match name.bytes().next() {
        None => Some("must not be empty"),
        Some(_) if name.len() > MAX_NAME_BYTES => Some("is longer than 128 bytes"),
        Some(first) if !first.is_ascii_alphabetic() => Some("must start with a letter"),
        Some(_) if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => {
            Some("may hold only letters, digits, '_' and '-'")
        }
        Some(_) => None,
    };
    match problem {
        Some(problem) => {
            Err(Invalid::new(at.clone(), format!("name {:?} {problem}", crate::ids::truncate(name))))
        }
        None => Ok(()),
    }
}

fn check_unit(at: &FieldPath, unit: &str) -> Result<(), Invalid> {
    if unit.len() > MAX_UNIT_BYTES {
        return Err(Invalid::new(at.clone(), format!("unit is longer than {MAX_UNIT_BYTES} bytes")));
    }
    if unit.chars().any(char::is_control) {
        return Err(Invalid::new(at.clone(), "unit must not hold control characters"));
    }
    Ok(())
}

fn check_description(at: &FieldPath, description: &str) -> Result<(), Invalid> {
    if description.len() > MAX_DESCRIPTION_BYTES {
        return Err(Invalid::new(
            at.clone(),
            format!("description is longer than {MAX_DESCRIPTION_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn too_many(what: &str, limit: usize) -> String {
    format!("more than {limit} {what}")
}
