//! JSON points: accepted bodies and the item/field every refusal names.

use doppel_model::{FieldValue, Timestamp, TwinId, Value};
use doppel_protocols::{Unit, json_points};

fn twin(id: &str) -> TwinId {
    TwinId::new(id).unwrap()
}

#[test]
fn a_full_body_parses_into_series_with_item_numbers() {
    let body = br#"[
        {"twin": "alice", "signal": "heart_rate", "time": "2024-03-01T12:00:00Z", "value": 62, "source": {"device": "watch"}},
        {"twin": "alice", "signal": "sleep_stage", "time": 1709294400000000000, "value": "deep"},
        {"twin": "alice", "signal": "heart_rate", "time": "2024-03-01T12:01:00Z", "value": 63.5, "source": {"device": "watch"}},
        {"twin": "alice", "signal": "medication", "time": 5, "value": true, "source": null}
    ]"#;
    let batch = json_points::parse(body, None).unwrap();
    assert_eq!(batch.series.len(), 3);
    let hr = &batch.series[0];
    assert_eq!(hr.key.provenance.as_str(), "device=watch");
    assert_eq!(hr.samples.iter().map(|s| s.line).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(hr.samples[0].time, Timestamp::from_secs(1_709_294_400));
    assert_eq!(hr.samples[1].value, FieldValue::Number(Value::new(63.5).unwrap()));
    assert_eq!(batch.series[1].samples[0].value, FieldValue::Text("deep".into()));
    assert_eq!(batch.series[1].samples[0].time, Timestamp::from_secs(1_709_294_400));
    assert_eq!(batch.series[2].samples[0].value, FieldValue::Number(Value::new(1.0).unwrap()));
}

#[test]
fn the_default_twin_fills_in_and_must_match() {
    let alice = twin("alice");
    let body = br#"{"points": [{"signal": "steps", "time": 1, "value": 10}, {"twin": "alice", "signal": "steps", "time": 2, "value": 12}]}"#;
    let batch = json_points::parse(body, Some(&alice)).unwrap();
    assert_eq!(batch.series.len(), 1);
    assert_eq!(batch.series[0].key.twin, alice);

    let body = br#"[{"twin": "bob", "signal": "steps", "time": 1, "value": 10}]"#;
    let errors = json_points::parse(body, Some(&alice)).unwrap_err();
    assert_eq!(errors.errors[0].unit, Unit::Item);
    assert!(
        errors.errors[0].to_string().starts_with("item 1, field \"twin\": \"bob\" does not match"),
        "{errors}"
    );
}

#[test]
fn each_bad_item_is_named_with_its_field() {
    let body = br#"[
        {"twin": "a", "signal": "hr", "time": 1, "value": 1},
        {"twin": "a", "signal": "hr", "value": 1},
        {"twin": "a", "signal": "hr", "time": 1, "value": null},
        {"twin": "a", "signal": "hr", "time": 1.5, "value": 1},
        {"twin": "a/b", "signal": "hr", "time": 1, "value": 1},
        {"signal": "hr", "time": 1, "value": 1},
        {"twin": "a", "signal": "1hr", "time": 1, "value": 1},
        {"twin": "a", "signal": "hr", "time": "yesterday", "value": 1},
        {"twin": "a", "signal": "hr", "time": 1, "value": [1]},
        {"twin": "a", "signal": "hr", "time": 1, "value": 1, "unit": "bpm"},
        {"twin": "a", "signal": "hr", "time": 1, "value": 1, "source": {"device": 3}},
        {"twin": "a", "signal": "hr", "time": 1, "value": 1, "source": {"device": ""}},
        42,
        {"twin": "a", "signal": "hr", "time": 2, "value": 2}
    ]"#;
    let errors = json_points::parse(body, None).unwrap_err();
    let shown: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
    let expected_prefixes = [
        "item 2, field \"time\": missing",
        "item 3, field \"value\": expected a number, boolean or string, found null",
        "item 4, field \"time\": 1.5 is not a whole number",
        "item 5, field \"twin\": invalid twin id",
        "item 6, field \"twin\": missing",
        "item 7, field \"signal\": invalid signal name",
        "item 8, field \"time\": \"yesterday\" is not RFC 3339",
        "item 9, field \"value\": expected a number, boolean or string, found an array",
        "item 10, field \"unit\": unknown",
        "item 11, field \"source\": tag \"device\" must be a string",
        "item 12, field \"source\": invalid provenance tag",
        "item 13, expected a point object, found a number",
    ];
    assert_eq!(shown.len(), expected_prefixes.len(), "{shown:#?}");
    for (got, want) in shown.iter().zip(expected_prefixes) {
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }
}

#[test]
fn malformed_json_is_one_error_with_line_and_column() {
    let errors = json_points::parse(b"[\n  {\"twin\": \"a\",\n  oops}\n]", None).unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    let error = &errors.errors[0];
    assert_eq!((error.unit, error.line), (Unit::Line, 3));
    assert!(error.message.contains("line 3 column"), "{error}");
}

#[test]
fn bodies_of_the_wrong_shape_are_refused() {
    for body in [&br#"{"point": []}"#[..], br#"{}"#, br#""points""#, br#"{"points": {}}"#, b""] {
        let errors = json_points::parse(body, None).unwrap_err();
        assert_eq!(errors.errors.len(), 1, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn more_than_the_limit_is_refused_with_a_clear_message() {
    let item = r#"{"twin":"a","signal":"hr","time":1,"value":1}"#;
    let body = format!("[{}]", vec![item; json_points::MAX_JSON_POINTS + 1].join(","));
    let errors = json_points::parse(body.as_bytes(), None).unwrap_err();
    assert!(errors.errors[0].message.contains("more than 100000 points"), "{errors}");

    let body = format!("[{}]", vec![item; json_points::MAX_JSON_POINTS].join(","));
    assert_eq!(
        json_points::parse(body.as_bytes(), None).unwrap().point_count(),
        json_points::MAX_JSON_POINTS
    );
}

#[test]
fn an_empty_array_is_an_empty_batch() {
    assert!(json_points::parse(b"[]", None).unwrap().is_empty());
    assert!(json_points::parse(br#"{"points": []}"#, None).unwrap().is_empty());
}
