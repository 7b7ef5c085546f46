//! JSON points, the REST API's write format.
//!
//! ```json
//! [{"twin": "alice", "signal": "heart_rate", "time": "2024-03-01T12:00:00Z",
//!   "value": 62, "source": {"device": "watch"}}]
//! ```
//!
//! The body is either an array of point objects or `{"points": [...]}`.
//! `time` is an RFC 3339 string or an integer of nanoseconds and is
//! required: a JSON client always knows when it observed something. `value`
//! is a number, a boolean (1/0) or a string (a category label). `source`
//! holds the provenance tags as string values. On the
//! `/api/v1/twins/{id}/points` route the caller passes that twin as
//! `default_twin`: `twin` may then be left out, and must match if present.

use std::fmt;

use doppel_model::{FieldValue, Provenance, SeriesKey, SignalName, Timestamp, TwinId, Value};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use crate::raw::{ErrorList, Grouper, LineError, ParseErrors, RawBatch, RawSample, line_number};

/// Most points one JSON body may carry. Each item is parsed into a tree
/// before it is checked, so the count bounds memory; bigger uploads belong
/// in line protocol or `doppel import`.
pub const MAX_JSON_POINTS: usize = 100_000;

/// The keys a point object may have; anything else is refused so that a
/// misspelt key (`timestamp`, `val`) is reported rather than ignored.
const KNOWN_FIELDS: [&str; 5] = ["twin", "signal", "time", "value", "source"];

/// Parses a JSON points body.
///
/// # Errors
/// Malformed JSON, or too many points: one error with the line and column
/// serde_json reports. Bad items: one error per bad item, naming its 1-based
/// number and the field (see [`crate::Unit::Item`]).
pub fn parse(body: &[u8], default_twin: Option<&TwinId>) -> Result<RawBatch, ParseErrors> {
    let items = parse_items(body)?;
    let mut grouper = Grouper::default();
    let mut errors = ErrorList::default();
    for (i, item) in items.into_iter().enumerate() {
        let number = line_number(i + 1);
        match point(item, default_twin) {
            Ok((key, time, value)) => {
                if errors.is_empty() {
                    let index = grouper.series_index(key);
                    grouper.push(index, RawSample { line: number, time, value });
                }
            }
            Err(message) => {
                if !errors.push(LineError::at_item(number, message)) {
                    break;
                }
            }
        }
    }
    errors.finish(grouper.finish())
}

/// The items of the body, each still a JSON tree.
fn parse_items(body: &[u8]) -> Result<Vec<Json>, ParseErrors> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let result = deserializer
        .deserialize_any(BodyVisitor)
        .and_then(|items| deserializer.end().map(|()| items))
        .and_then(|items| crate::json_keys::check_unique_keys(body).map(|()| items));
    result.map_err(|e| ParseErrors::single(LineError::at_line(line_number(e.line()), e.to_string())))
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Vec<Json>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of points or an object {\"points\": [...]}")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<Json>, A::Error> {
        collect_items(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Json>, A::Error> {
        let mut points = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key != "points" {
                return Err(de::Error::custom(format!("unknown key {key:?}: expected only \"points\"")));
            }
            if points.is_some() {
                return Err(de::Error::custom("\"points\" given twice"));
            }
            points = Some(map.next_value::<Items>()?.0);
        }
        points.ok_or_else(|| de::Error::custom("missing \"points\""))
    }
}

/// An array of items, refused past [`MAX_JSON_POINTS`] before the rest is read.
struct Items(Vec<Json>);

impl<'de> serde::Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;
        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = Items;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of points")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Items, A::Error> {
                collect_items(seq).map(Items)
            }
        }
        deserializer.deserialize_seq(ItemsVisitor)
    }
}

fn collect_items<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Vec<Json>, A::Error> {
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_JSON_POINTS));
    while let Some(item) = seq.next_element::<Json>()? {
        if items.len() == MAX_JSON_POINTS {
            return Err(de::Error::custom(format!(
                "more than {MAX_JSON_POINTS} points in one body; split the upload"
            )));
        }
        items.push(item);
    }
    Ok(items)
}

/// Checks one item; the error names the field at fault.
fn point(item: Json, default_twin: Option<&TwinId>) -> Result<(SeriesKey, Timestamp, FieldValue), String> {
    let Json::Object(mut object) = item else {
        return Err(format!("expected a point object, found {}", kind(&item)));
    };
    if let Some(unknown) = object.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(format!("field {unknown:?}: unknown (a point has twin, signal, time, value and source)"));
    }
    let twin = twin(object.remove("twin"), default_twin)?;
    let signal = match object.remove("signal") {
        Some(Json::String(name)) => SignalName::new(&name).map_err(|e| format!("field \"signal\": {e}"))?,
        Some(other) => return Err(format!("field \"signal\": expected a string, found {}", kind(&other))),
        None => return Err("field \"signal\": missing".to_owned()),
    };
    let time = time(object.remove("time"))?;
    let value = value(object.remove("value"))?;
    let provenance = source(object.remove("source"))?;
    Ok((SeriesKey { twin, signal, provenance }, time, value))
}

fn twin(field: Option<Json>, default_twin: Option<&TwinId>) -> Result<TwinId, String> {
    match (field, default_twin) {
        (Some(Json::String(id)), default) => {
            let id = TwinId::new(&id).map_err(|e| format!("field \"twin\": {e}"))?;
            match default {
                Some(expected) if *expected != id => {
                    Err(format!("field \"twin\": {id:?} does not match the twin in the URL ({expected:?})"))
                }
                _ => Ok(id),
            }
        }
        (Some(other), _) => Err(format!("field \"twin\": expected a string, found {}", kind(&other))),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err("field \"twin\": missing".to_owned()),
    }
}

fn time(field: Option<Json>) -> Result<Timestamp, String> {
    const EXPECTED: &str = "expected an RFC 3339 string or an integer of nanoseconds";
    match field {
        Some(Json::String(text)) => Timestamp::parse(&text)
            .ok_or_else(|| format!("field \"time\": {text:?} is not RFC 3339 ({EXPECTED})")),
        Some(Json::Number(n)) => match n.as_i64() {
            Some(nanos) => Ok(Timestamp::from_nanos(nanos)),
            None => {
                Err(format!("field \"time\": {n} is not a whole number of nanoseconds in range ({EXPECTED})"))
            }
        },
        Some(other) => Err(format!("field \"time\": {EXPECTED}, found {}", kind(&other))),
        None => Err("field \"time\": missing (JSON points must carry their time)".to_owned()),
    }
}

fn value(field: Option<Json>) -> Result<FieldValue, String> {
    const EXPECTED: &str = "expected a number, boolean or string";
    let number = |v: f64| Value::new(v).map(FieldValue::Number).map_err(|e| format!("field \"value\": {e}"));
    match field {
        Some(Json::Number(n)) => match n.as_f64() {
            Some(v) => number(v),
            None => Err(format!("field \"value\": {n} is not representable as a number")),
        },
        Some(Json::Bool(b)) => number(if b { 1.0 } else { 0.0 }),
        Some(Json::String(text)) => Ok(FieldValue::Text(text.into_boxed_str())),
        Some(other) => Err(format!("field \"value\": {EXPECTED}, found {}", kind(&other))),
        None => Err("field \"value\": missing".to_owned()),
    }
}

fn source(field: Option<Json>) -> Result<Provenance, String> {
    let tags: Map<String, Json> = match field {
        None | Some(Json::Null) => return Ok(Provenance::none()),
        Some(Json::Object(tags)) => tags,
        Some(other) => {
            return Err(format!("field \"source\": expected an object of tags, found {}", kind(&other)));
        }
    };
    let mut pairs = Vec::with_capacity(tags.len());
    for (key, value) in &tags {
        match value {
            Json::String(text) => pairs.push((key.as_str(), text.as_str())),
            other => {
                return Err(format!("field \"source\": tag {key:?} must be a string, found {}", kind(other)));
            }
        }
    }
    Provenance::from_tags(pairs).map_err(|e| format!("field \"source\": {e}"))
}

fn kind(value: &Json) -> &'static str {
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
    fn both_body_shapes_are_accepted() {
        let item = r#"{"twin":"a","signal":"heart_rate","time":5,"value":60}"#;
        let array = parse(format!("[{item}]").as_bytes(), None).unwrap();
        let wrapped = parse(format!("{{\"points\":[{item}]}}").as_bytes(), None).unwrap();
        assert_eq!(array, wrapped);
        assert_eq!(array.point_count(), 1);
    }

    #[test]
    fn trailing_garbage_after_the_body_is_malformed() {
        let err = parse(b"[] x", None).unwrap_err();
        assert_eq!(err.errors.len(), 1);
        assert!(err.errors[0].message.contains("column"), "{}", err.errors[0]);
    }
}
